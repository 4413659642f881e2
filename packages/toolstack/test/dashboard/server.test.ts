// The dashboard over HTTP: every route, the SSE stream (first frame, pushes on change, error
// frames from a failing source), and the user mistakes startDashboard refuses.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isHyperlabError } from "@hyperlab/core";
import { afterEach, describe, expect, it } from "vitest";
import { type Dashboard, startDashboard, studyResultsFile } from "../../src/dashboard/index";
import { addDomain, fakeSource } from "./fixture";

let dash: Dashboard | undefined;
afterEach(async () => {
  await dash?.close();
  dash = undefined;
});

async function get(
  url: string,
  method = "GET",
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => {
        body += c;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

/** Reads SSE frames from /events until `want` of them arrived; then closes the stream. */
async function frames(
  url: string,
  want: number,
  during?: () => void,
): Promise<{ event: string; data: unknown }[]> {
  return new Promise((resolve, reject) => {
    const got: { event: string; data: unknown }[] = [];
    const req = request(`${url}events`, (res) => {
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        buf += c;
        let i = buf.indexOf("\n\n");
        while (i >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block);
          const data = /^data: (.*)$/m.exec(block);
          if (ev && data) {
            got.push({ event: ev[1], data: JSON.parse(data[1]) });
            if (got.length === 1) during?.();
            if (got.length === want) {
              req.destroy();
              resolve(got);
              return;
            }
          }
          i = buf.indexOf("\n\n");
        }
      });
    });
    req.on("error", (e) => {
      if (got.length < want) reject(e);
    });
    req.end();
  });
}

describe("startDashboard", () => {
  it("serves the page, a snapshot and the stream", async () => {
    const src = fakeSource();
    dash = await startDashboard(src, { port: 0, intervalMs: 60_000 });
    expect(dash.url).toBe(`http://127.0.0.1:${dash.port}/`);
    const page = await get(dash.url);
    expect(page.status).toBe(200);
    expect(page.type).toContain("text/html");
    expect(page.body).toContain('new EventSource("/events")');
    const snap = JSON.parse((await get(`${dash.url}api/snapshot`)).body);
    expect(snap.domains.map((d: { name: string }) => d.name)).toEqual(["Domain-0"]);
    expect(snap.domains[0].vcpus).toHaveLength(4);
    expect(snap.domains[0].vcpus[0].state).toBe("r");
    expect(snap.evtchn[0].sent).toBe(10);
    expect(snap.hasPageTables).toBe(true);
    expect(snap.hasStudy).toBe(false);
  });

  it("pushes a new snapshot when the source reports a change", async () => {
    const src = fakeSource();
    dash = await startDashboard(src, { port: 0, intervalMs: 60_000 });
    const got = await frames(dash.url, 2, () => {
      addDomain(src.host, 7, "web");
      src.changed();
    });
    const names = got.map((f) =>
      (f.data as { domains: { name: string }[] }).domains.map((d) => d.name),
    );
    expect(names[0]).toEqual(["Domain-0"]);
    expect(names[1]).toEqual(["Domain-0", "web"]);
  });

  it("streams on its interval without any change", async () => {
    dash = await startDashboard(fakeSource(), { port: 0, intervalMs: 20 });
    const got = await frames(dash.url, 3);
    expect(got.map((f) => f.event)).toEqual(["snapshot", "snapshot", "snapshot"]);
  });

  it("sends an error frame when the source fails, and recovers", async () => {
    const src = fakeSource();
    src.broken = true;
    dash = await startDashboard(src, { port: 0, intervalMs: 60_000 });
    const got = await frames(dash.url, 2, () => {
      src.broken = false;
      src.changed();
    });
    expect(got[0]).toEqual({ event: "error", data: { message: "host gone" } });
    expect(got[1].event).toBe("snapshot");
    const failed = await get(`${dash.url}api/snapshot`);
    expect(failed.status).toBe(200);
  });

  it("answers a snapshot request with 500 while the source fails", async () => {
    const src = fakeSource();
    src.broken = true;
    dash = await startDashboard(src, { port: 0, intervalMs: 60_000 });
    const r = await get(`${dash.url}api/snapshot`);
    expect(r.status).toBe(500);
    expect(r.body).toBe("dashboard source failed: host gone\n");
  });

  it("serves page-table trees and says why it cannot", async () => {
    const src = fakeSource();
    dash = await startDashboard(src, { port: 0, intervalMs: 60_000 });
    const ok = await get(`${dash.url}api/pagetable?domid=0`);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).children[0].label).toBe("L3 mfn 0x101");
    expect(await get(`${dash.url}api/pagetable?domid=9`)).toMatchObject({
      status: 404,
      body: "domain 9 has no page-table tree\n",
    });
    expect(await get(`${dash.url}api/pagetable?domid=x`)).toMatchObject({
      status: 400,
      body: "domid must be a number; got 'x'\n",
    });
    await dash.close();
    const bare = fakeSource();
    bare.pageTable = undefined;
    dash = await startDashboard(bare, { port: 0, intervalMs: 60_000 });
    expect(await get(`${dash.url}api/pagetable?domid=0`)).toMatchObject({
      status: 404,
      body: "this host shows no page tables\n",
    });
  });

  it("answers 404 for /study without results, unknown paths, and 405 for other methods", async () => {
    dash = await startDashboard(fakeSource(), { port: 0, intervalMs: 60_000 });
    expect(await get(`${dash.url}study`)).toMatchObject({
      status: 404,
      body: "no study results\n",
    });
    expect(await get(`${dash.url}nope`)).toMatchObject({ status: 404, body: "no page /nope\n" });
    expect(await get(dash.url, "POST")).toMatchObject({ status: 405, body: "only GET\n" });
  });

  it("refuses a bad port, a bad interval, and a port in use", async () => {
    const src = fakeSource();
    for (const port of [-1, 65536, 1.5, Number.NaN]) {
      await expect(startDashboard(src, { port })).rejects.toSatisfy(
        (e: unknown) =>
          isHyperlabError(e, ["TOOLSTACK_DASHBOARD"]) &&
          /is not a TCP port/.test((e as Error).message),
      );
    }
    await expect(startDashboard(src, { port: 0, intervalMs: 1 })).rejects.toThrow(
      /intervalMs 1 is too small/,
    );
    dash = await startDashboard(src, { port: 0, intervalMs: 60_000 });
    await expect(startDashboard(src, { port: dash.port })).rejects.toThrow(
      `dashboard port ${dash.port} is in use: choose another (--http PORT) or stop what listens there.`,
    );
  });

  it("close() ends open streams and stops listening", async () => {
    const d = await startDashboard(fakeSource(), { port: 0, intervalMs: 60_000 });
    const ended = new Promise<void>((resolve) => {
      request(`${d.url}events`, (res) => res.on("end", () => resolve()).resume()).end();
    });
    await new Promise((r) => setTimeout(r, 50));
    await d.close();
    await ended;
    await expect(get(d.url)).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("studyResultsFile", () => {
  it("reads a results.json or a study folder each time; missing is no results; junk says what to give", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dash-study-"));
    try {
      const read = studyResultsFile(join(dir, "out"));
      expect(await read()).toBeUndefined();
      mkdirSync(join(dir, "out"));
      expect(await read()).toBeUndefined();
      writeFileSync(join(dir, "out", "results.json"), '{"format":"hyperlab-study/2","runs":[]}');
      expect((await read())?.format).toBe("hyperlab-study/2");
      writeFileSync(join(dir, "out", "results.json"), "{nope");
      await expect(read()).rejects.toSatisfy(
        (e: unknown) =>
          isHyperlabError(e, ["TOOLSTACK_DASHBOARD"]) &&
          /is not valid JSON/.test((e as Error).message),
      );
      writeFileSync(join(dir, "x.json"), '{"format":"other"}');
      await expect(studyResultsFile(join(dir, "x.json"))()).rejects.toThrow(
        /is not a study's results/,
      );
      // served: /study answers 500 with the message while the file is junk
      const src = fakeSource();
      src.study = studyResultsFile(join(dir, "x.json"));
      dash = await startDashboard(src, { port: 0, intervalMs: 60_000 });
      const r = await get(`${dash.url}study`);
      expect(r.status).toBe(500);
      expect(r.body).toContain("is not a study's results");
      // ... while the snapshot still carries everything else, and says why.
      const snap = JSON.parse((await get(`${dash.url}api/snapshot`)).body);
      expect(snap.domains).toHaveLength(1);
      expect(snap.hasStudy).toBe(false);
      expect(snap.studyError).toMatch(/is not a study's results/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
