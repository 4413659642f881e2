// `hyperlab up --http PORT`'s source over a real host: the dashboard lists a domain created a
// moment before, and draws its page-table tree from the CR3 of its vCPU 0.
import { describe, expect, it } from "vitest";
import { hostDashboardSource } from "../src/daemon/dashboard";
import { destroyDomainRecord, domainCreate, runCli, startDashboard } from "../src/index";
import { config, devicesConnected, host, xImg } from "./libxl/world";

describe("the host's dashboard source", () => {
  it("shows a domain created a moment before, with its page-table tree", async () => {
    const h = await host();
    const dash = await startDashboard(hostDashboardSource(h), { port: 0 });
    try {
      const r = await domainCreate(h, config("alpha"));
      const snap = (await (await fetch(`${dash.url}api/snapshot`)).json()) as {
        domains: { name?: string; domid: number }[];
      };
      expect(snap.domains.map((d) => d.name)).toContain("alpha");
      const res = await fetch(`${dash.url}api/pagetable?domid=${r.domid}`);
      expect(res.status).toBe(200);
      const tree = JSON.stringify(await res.json());
      expect(tree).toContain("L4");
      // A domain that does not exist has no tree.
      expect((await fetch(`${dash.url}api/pagetable?domid=4242`)).status).toBe(404);
      await destroyDomainRecord(h, r);
    } finally {
      await dash.close();
    }
  });

  it("feeds the grant mappings dom0's blkback and netback hold for a domU's rings", async () => {
    const h = await host();
    const dash = await startDashboard(hostDashboardSource(h), { port: 0 });
    try {
      const r = await domainCreate(h, config("beta", `disk = ["${xImg},raw,xvda,rw"]`));
      await devicesConnected(h, r);
      const snap = (await (await fetch(`${dash.url}api/snapshot`)).json()) as {
        grants: { granter: number; grantee: number; ref: number; readonly: boolean }[];
      };
      const mine = snap.grants.filter((g) => g.granter === r.domid);
      expect(mine.length).toBeGreaterThan(0); // blkback maps the ring (and console's page)
      expect(mine.every((g) => g.grantee === 0 && g.readonly === false)).toBe(true);
      await destroyDomainRecord(h, r);
      const after = (await (await fetch(`${dash.url}api/snapshot`)).json()) as {
        grants: { granter: number }[];
      };
      expect(after.grants.filter((g) => g.granter === r.domid)).toEqual([]);
    } finally {
      await dash.close();
    }
  });
});

describe("hyperlab up --http", () => {
  it("refuses a port that is not one, naming the flag, before starting anything", async () => {
    const { mkdtempSync, readdirSync, rmSync } = await import("node:fs");
    const dir = mkdtempSync("/tmp/hl-http-");
    const err: string[] = [];
    const io = { out: () => {}, err: (s: string) => err.push(s) };
    try {
      for (const bad of ["web", "65536", "-1"]) {
        err.length = 0;
        expect(await runCli(["up", "--run-dir", dir, `--http=${bad}`], io)).toBe(2);
        expect(err.join("")).toContain("--http");
      }
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
