/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The dashboard in a real browser: Debian's chromium driven by playwright-core loads the page
// with no console errors, shows every section, and shows a domain created a moment later
// without a reload (pushed over Server-Sent Events); the page-table tree and the study
// report (@hyperlab/study's, in a frame) draw too. Over a real host, a domU doing disk and
// network I/O shows live traffic on its ports (counts, a rate, a sparkline) and a ring row
// per device.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlkFront, NetfrontDriver } from "@hyperlab/split-drivers";
import { runStudy } from "@hyperlab/study";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostDashboardSource } from "../../src/daemon/dashboard";
import { type Dashboard, startDashboard, studyResultsFile } from "../../src/dashboard/index";
import { destroyDomainRecord, domainCreate, settle } from "../../src/index";
import { config, devicesConnected, host, xImg } from "../libxl/world";
import { addDomain, fakeSource } from "./fixture";

const CHROMIUM = "/usr/bin/chromium";
const dir = mkdtempSync(join(tmpdir(), "hyperlab-dashboard-browser-"));
let browser: BrowserContext;
let studyDir: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing${process.env.CI === "true" ? " on CI" : ""}: the dashboard is checked in a real browser. Run \`node scripts/peers.mjs\` from the repository root (it installs Debian's chromium).`,
    );
  }
  browser = await chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: CHROMIUM,
    viewport: { width: 1400, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const out = join(dir, "study");
  await runStudy(
    {
      seed: 4,
      workloads: ["random"],
      workingSetBytes: [1024 * 1024],
      operations: [200],
      workers: 0,
    },
    { outDir: out },
  );
  studyDir = out;
}, 120_000);

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => {
    // The event stream is cut when the page closes; anything else failing is a problem.
    if (!r.url().endsWith("/events")) problems.push(`requestfailed: ${r.url()}`);
  });
  return problems;
}

describe("the dashboard in chromium", () => {
  let dash: Dashboard;
  afterAll(async () => dash?.close());

  it("loads with no console errors and shows a domain created a moment later, without reload", async () => {
    const src = fakeSource();
    src.study = studyResultsFile(studyDir);
    dash = await startDashboard(src, { port: 0, intervalMs: 200 });
    const page = await browser.newPage();
    const problems = watch(page);
    await page.goto(dash.url, { waitUntil: "load" });
    await page.waitForSelector("#status.live");
    await page.waitForSelector('#domains tr[data-domid="0"]');
    const navigations: string[] = [];
    page.on("framenavigated", (f) => {
      if (f === page.mainFrame()) navigations.push(f.url());
    });

    addDomain(src.host, 5, "guest-web", 2);
    src.changed();
    await page.waitForSelector('#domains tr[data-domid="5"]', { timeout: 10_000 });
    const row = await page.textContent('#domains tr[data-domid="5"]');
    expect(row).toContain("guest-web");
    expect(row).toContain("256"); // MiB
    expect(navigations).toEqual([]);

    // The timeline has a lane per vCPU, the new domain's two among them.
    await page.waitForFunction(
      () => document.querySelectorAll('rect.slot[data-lane^="5."]').length >= 2,
    );
    const lanes = await page.evaluate(() => [
      ...new Set(
        [...document.querySelectorAll("rect.slot")].map((r) => (r as SVGElement).dataset.lane),
      ),
    ]);
    expect(lanes.sort()).toEqual(["0.0", "0.1", "0.2", "0.3", "5.0", "5.1"]);

    // Traffic, grants and rings.
    expect(await page.textContent("#evtchn tbody")).toContain("interdomain");
    expect(await page.textContent("#grants tbody")).toContain("0x1234");
    expect(await page.textContent('[data-ring="vbd 1/51712"]')).toContain("8 / 32 in flight");
    expect(await page.textContent('[data-ring="vbd 1/51712"]')).toContain("req_prod 12");
    expect(await page.textContent('tr[data-vcpu="0.0"]')).toContain("5");
    // A ring whose guest-written indexes claim more than it holds is drawn full, and says so.
    src.ringList.push({
      name: "vif 1/0 tx",
      domid: 1,
      kind: "netif_tx",
      frame: 0x2346,
      size: 256,
      used: 4000,
      indexes: { req_prod: 4000, req_event: 1, rsp_prod: 0, rsp_event: 1 },
    });
    src.changed();
    await page.waitForSelector('[data-ring="vif 1/0 tx"].over');
    expect(await page.textContent('[data-ring="vif 1/0 tx"]')).toContain("(index beyond the ring)");

    // Removing a domain takes it off the table too.
    src.host.remove(5);
    src.changed();
    await page.waitForSelector('#domains tr[data-domid="5"]', {
      state: "detached",
      timeout: 10_000,
    });

    // The page-table tree of the chosen domain.
    await page.selectOption("#pt-domain", "0");
    await page.waitForSelector("#pt-root");
    expect(await page.textContent("#pt-root")).toContain("L1 pte 0x2000 -> mfn 0x300 rw");
    // ... and follows it when the guest remaps the page.
    src.trees.set(0, {
      label: "L4 mfn 0x100",
      children: [{ label: "L1 pte 0x2000 -> mfn 0x301 ro" }],
    });
    src.changed();
    await page.waitForFunction(() =>
      document.querySelector("#pt-root")?.textContent?.includes("0x301 ro"),
    );

    // The study report, drawn by @hyperlab/study's own page in a frame.
    const frame = page.frameLocator('#study iframe[src="/study"]');
    await frame.locator("svg").first().waitFor({ timeout: 10_000 });
    expect(await frame.locator("svg").count()).toBeGreaterThan(0);

    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  it("over a real host, a domU doing disk and vif I/O shows live traffic on its ports and a ring row per device", async () => {
    const h = await host();
    const d = await startDashboard(hostDashboardSource(h), { port: 0, intervalMs: 200 });
    const r = await domainCreate(
      h,
      config("web", `disk = ["${xImg},raw,xvda,rw"]\nvif = ["bridge=xenbr0"]`),
    );
    await devicesConnected(h, r);
    const xs = h.xsd!.xs;
    const vbdPort = Number(
      await xs.read(`/local/domain/${r.domid}/device/vbd/51712/event-channel`),
    );
    const disk = (r.frontends.get("vbd") as BlkFront).disk(51712)!;
    await disk.ready();
    const nic = (r.frontends.get("vif") as NetfrontDriver).devices.get(0)!;
    const frame = new Uint8Array(60).fill(0xff, 0, 6);
    frame.set([0, 0x16, 0x3e, 1, 2, 3], 6);
    // The guest keeps doing I/O while the page watches.
    let busy = true;
    const io = (async () => {
      for (let i = 0; busy; i++) {
        expect(await disk.write((i % 8) * 8, new Uint8Array(4096).fill(i & 0xff))).toBe(0);
        expect(nic.send(frame)).toBe(0);
        for (let k = 0; k < 5; k++) await settle();
      }
    })();
    const page = await browser.newPage();
    const problems = watch(page);
    try {
      await page.goto(d.url, { waitUntil: "load" });
      await page.waitForSelector("#status.live");
      const key = `${r.domid}:${vbdPort}`;
      const sel = `#evtchn tr[data-port="${key}"]`;
      await page.waitForSelector(sel, { timeout: 10_000 });
      // Columns: Dom, Port, Kind, Remote, vCPU, Bits, Sent, Received, Sent/s, sparkline.
      await page.waitForFunction(
        (s) => {
          const cells = document.querySelector(s)?.querySelectorAll("td");
          return (
            cells !== undefined &&
            Number(cells[6]?.textContent) > 0 &&
            Number(cells[8]?.textContent) > 0
          );
        },
        sel,
        { timeout: 15_000 },
      );
      const cells = await page.$$eval(`${sel} td`, (tds) => tds.map((t) => t.textContent ?? ""));
      expect(cells[2]).toBe("interdomain");
      expect(cells[3]).toMatch(/^0:\d+$/); // dom0's end
      expect(Number(cells[7])).toBeGreaterThan(0); // blkback's responses
      // The sparkline of sends/s drew a line over the snapshots seen.
      const points = await page.getAttribute(`${sel} svg.spark polyline`, "points");
      expect((points ?? "").split(" ").length).toBeGreaterThan(1);
      // Every port of the domU is listed.
      const rows = await page.$$eval(`#evtchn tr[data-port^="${r.domid}:"]`, (x) => x.length);
      expect(rows).toBeGreaterThanOrEqual(4);
      await page.waitForSelector(`#vcpu-events tr[data-vcpu="${r.domid}.0"]`);
      // A ring row per device (and the console's and xenstore's).
      for (const name of [
        `vbd ${r.domid}/51712`,
        `vif ${r.domid}/0 tx`,
        `vif ${r.domid}/0 rx`,
        `console ${r.domid} out`,
        `xenstore ${r.domid} req`,
      ]) {
        await page.waitForSelector(`[data-ring="${name}"]`);
      }
      expect(await page.textContent(`[data-ring="vbd ${r.domid}/51712"]`)).toMatch(
        /\d+ \/ \d+ in flight/,
      );
      expect(await page.textContent(`[data-ring="vif ${r.domid}/0 rx"]`)).toMatch(/req_prod \d+/);
      expect(problems).toEqual([]);
    } finally {
      busy = false;
      await io;
      await page.close();
      await d.close();
      await destroyDomainRecord(h, r);
    }
  }, 90_000);

  it("says so when the source has no domains, rings or study", async () => {
    const src = fakeSource();
    src.host.remove(0);
    src.ringList = [];
    src.evtchn = [];
    src.grants = [];
    const d = await startDashboard(src, { port: 0, intervalMs: 200 });
    const page = await browser.newPage();
    const problems = watch(page);
    await page.goto(d.url, { waitUntil: "load" });
    await page.waitForSelector("#status.live");
    await page.waitForFunction(() => document.body.dataset.snapshots !== undefined);
    expect(await page.textContent("#domains tbody")).toBe("no domains");
    expect(await page.textContent("#rings")).toBe("no shared rings");
    expect(await page.textContent("#study")).toBe("no study results");
    expect(problems).toEqual([]);
    await page.close();
    await d.close();
  }, 60_000);
});
