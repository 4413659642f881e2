// `hyperlab up --http PORT`'s source over a real host: the dashboard lists a domain created a
// moment before, and draws its page-table tree from the CR3 of its vCPU 0; a domU doing disk
// and network I/O shows its event-channel traffic and a ring row per device, read from the
// ring pages, and guest-written xenstore values cannot point the reader elsewhere.
import { type BlkFront, type NetfrontDriver, ringSize } from "@hyperlab/split-drivers";
import { describe, expect, it } from "vitest";
import { hostDashboardSource } from "../src/daemon/dashboard";
import type { EvtchnTraffic, RingOccupancy } from "../src/dashboard/index";
import { destroyDomainRecord, domainCreate, runCli, settle, startDashboard } from "../src/index";
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

describe("the host's event-channel and ring feeds", () => {
  it("show a domU's disk and vif I/O: sends on its ports, a ring row per device, counts that agree", async () => {
    const h = await host();
    const src = hostDashboardSource(h);
    const r = await domainCreate(
      h,
      config("io", `disk = ["${xImg},raw,xvda,rw"]\nvif = ["bridge=xenbr0"]`),
    );
    await devicesConnected(h, r);
    const xs = h.xsd!.xs;
    const fe = `/local/domain/${r.domid}/device`;
    const vbdPort = Number(await xs.read(`${fe}/vbd/51712/event-channel`));
    const traffic = async () => {
      const all = await src.evtchnTraffic!();
      const at = (domid: number, port: number) =>
        all.find((t) => t.domid === domid && t.port === port) as EvtchnTraffic;
      return { all, at };
    };
    const t0 = (await traffic()).at(r.domid, vbdPort);
    expect(t0).toMatchObject({ kind: "interdomain", remoteDomid: 0 });

    const disk = (r.frontends.get("vbd") as BlkFront).disk(51712)!;
    await disk.ready();
    for (let i = 0; i < 5; i++)
      expect(await disk.write(i * 8, new Uint8Array(4096).fill(i))).toBe(0);
    expect((await disk.read(0, 8)).status).toBe(0);
    const nic = (r.frontends.get("vif") as NetfrontDriver).devices.get(0)!;
    const frame = new Uint8Array(60).fill(0xff, 0, 6);
    frame.set([0, 0x16, 0x3e, 1, 2, 3], 6);
    for (let i = 0; i < 3; i++) expect(nic.send(frame)).toBe(0);
    for (let i = 0; i < 50; i++) await settle();

    const { all, at } = await traffic();
    const mine = at(r.domid, vbdPort);
    expect(mine.sent).toBeGreaterThanOrEqual(t0.sent + 1);
    expect(mine.received).toBeGreaterThanOrEqual(t0.received + 1);
    // The two ends agree: dom0's end got every send of domU's (plus the one event
    // bind_interdomain raises at the binder), and domU's end every send of dom0's.
    const peer = at(0, mine.remotePort!);
    expect(peer).toMatchObject({ kind: "interdomain", remoteDomid: r.domid, remotePort: vbdPort });
    expect(peer.received).toBe(mine.sent + 1);
    expect(mine.received).toBe(peer.sent);
    // Every port of the domU is listed, and some carried traffic both ways.
    const ports = all.filter((t) => t.domid === r.domid);
    expect(ports.length).toBeGreaterThanOrEqual(4); // store, console, vbd, vif
    expect(ports.filter((t) => t.sent > 0).length).toBeGreaterThanOrEqual(2);
    const vcpu = (await src.vcpuEvents!()).find((v) => v.domid === r.domid && v.vcpu === 0)!;
    expect(vcpu.upcalls).toBeGreaterThan(0);
    expect(vcpu.raised).toBeGreaterThanOrEqual(vcpu.upcalls);

    const rings = await src.rings!();
    const ring = (name: string) => rings.find((x) => x.name === name) as RingOccupancy;
    expect(rings.filter((x) => x.domid === r.domid).map((x) => x.name)).toEqual([
      `vbd ${r.domid}/51712`,
      `vif ${r.domid}/0 tx`,
      `vif ${r.domid}/0 rx`,
      `console ${r.domid} out`,
      `console ${r.domid} in`,
      `xenstore ${r.domid} req`,
      `xenstore ${r.domid} rsp`,
    ]);
    const vbd = ring(`vbd ${r.domid}/51712`);
    const order = await xs.read(`${fe}/vbd/51712/ring-page-order`).then(Number, () => 0);
    expect(vbd.size).toBe(ringSize("blkif", order));
    // Six requests made and answered: none in flight.
    expect(vbd.indexes.req_prod).toBeGreaterThanOrEqual(6);
    expect(vbd.indexes.rsp_prod).toBe(vbd.indexes.req_prod);
    expect(vbd.used).toBe(0);
    // The frame is the one dom0's blkback mapped from domU's grant.
    const maps: number[] = [];
    h.hv.slot("grant-table").forEachMapping((m) => {
      if (m.granterDomid === r.domid) maps.push(m.mfn);
    });
    expect(maps).toContain(vbd.frame);
    expect(ring(`vif ${r.domid}/0 tx`).indexes.req_prod).toBeGreaterThanOrEqual(3);
    // The rx ring holds the buffers netfront posted for the backend to fill.
    expect(ring(`vif ${r.domid}/0 rx`).used).toBeGreaterThan(0);
    expect(ring(`console ${r.domid} out`).size).toBe(2048);
    // The console and store pages are the domU's own frames.
    expect(h.hv.frames.ownerOf(ring(`xenstore ${r.domid} req`).frame)).toBe(r.domid);
    expect(h.hv.frames.ownerOf(ring(`console ${r.domid} in`).frame)).toBe(r.domid);

    // A page whose indexes are garbage is shown as it is, beyond the ring, without a throw.
    h.hv.machine.ram.write32(vbd.frame * 4096, (vbd.indexes.rsp_prod + 1000) >>> 0);
    expect(ring(`vbd ${r.domid}/51712`).used).toBe(0); // the earlier reading
    const after = (await src.rings!()).find((x) => x.name === `vbd ${r.domid}/51712`)!;
    expect(after.used).toBe(1000);
    expect(after.used).toBeGreaterThan(after.size);
    // A console ring-ref naming a frame the domain does not own (dom0's shared_info) is not read.
    await xs.write(`/local/domain/${r.domid}/console/ring-ref`, String(h.dom0!.sharedInfoMfn));
    const names = (await src.rings!()).map((x) => x.name);
    expect(names).not.toContain(`console ${r.domid} out`);
    expect(names).toContain(`xenstore ${r.domid} req`);
    // ... nor a ring-ref that is not a number, or a grant the backend has not mapped.
    await xs.write(`${fe}/vif/0/tx-ring-ref`, "12abc");
    await xs.write(`${fe}/vif/0/rx-ring-ref`, "4000");
    const names2 = (await src.rings!()).map((x) => x.name);
    expect(names2).not.toContain(`vif ${r.domid}/0 tx`);
    expect(names2).not.toContain(`vif ${r.domid}/0 rx`);
    await destroyDomainRecord(h, r);
    expect((await src.rings!()).filter((x) => x.domid === r.domid)).toEqual([]);
    expect((await src.evtchnTraffic!()).filter((t) => t.domid === r.domid)).toEqual([]);
  });

  it("a KVM-style host has no rings and no event channels to show", async () => {
    const h = await host({ kind: "kvm" });
    const src = hostDashboardSource(h);
    expect(await src.rings!()).toEqual([]);
    expect(await src.evtchnTraffic!()).toEqual([]);
    expect(await src.vcpuEvents!()).toEqual([]);
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
