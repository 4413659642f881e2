// The xenstore ring end to end through the real hypervisor: core + pv-mmu + an event channel
// plugin (2-level and FIFO), xenstored in dom0, PV domUs built by pv-mmu's builder.
import {
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_sched_op,
  EVTCHNOP_alloc_unbound,
  EVTCHNSTAT_closed,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_unbound,
  SCHEDOP_shutdown,
  SHUTDOWN_poweroff,
  start_info_x86_64,
  XENSTORE_CONNECTED,
  XENSTORE_ERROR_NONE,
  XENSTORE_ERROR_PROTO,
  XENSTORE_ERROR_RINGIDX,
  XS_READ,
  xenstore_domain_interface,
} from "@hyperlab/abi";
import { createHypervisor, type Domain, HyperlabError, schedCredit } from "@hyperlab/core";
import { evtchn2l, evtchnFifo } from "@hyperlab/evtchn";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, type PvBuildResult, pvMmu } from "@hyperlab/pv-mmu";
import { XenbusComms } from "@hyperlab/split-drivers";
import { encodeMessage, type XsWatch, type XsWatchEvent } from "@hyperlab/xenstore";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Dom0Xenstored,
  destroyIntroducedDomain,
  introduceDomainToXenstore,
  UpcallLoop,
  type UpcallMode,
  type XenstoreDomainSetup,
} from "../src/index";

type Abi = "2-level" | "fifo";
const F = xenstore_domain_interface.fields;
const SI = start_info_x86_64.fields;

function world(abi: Abi, mode: UpcallMode = "microtask") {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 7 });
  const hv = createHypervisor({
    machine,
    plugins: [pvMmu(), abi === "fifo" ? evtchnFifo() : evtchn2l(), schedCredit()],
  }).boot();
  const pv = hv.slot("pv-mmu");
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 1100 });
  buildPvDomain(hv, pv, { domain: dom0, nrPages: 1024 });
  hv.unpauseDomain(dom0);
  const loop = new UpcallLoop(hv, { mode });
  const xsd = new Dom0Xenstored({ hv, dom0, loop });
  return { hv, pv, dom0, loop, xsd, evtchn: hv.slot("evtchn") };
}
type World = ReturnType<typeof world>;

interface Guest {
  d: Domain;
  b: PvBuildResult;
  setup: XenstoreDomainSetup;
  xb: XenbusComms;
}

/** libxl's order: create (paused), build, introduce, unpause; then the guest's xenbus connects. */
async function guest(w: World, name: string): Promise<Guest> {
  const d = w.hv.createDomain({ maxVcpus: 1, maxPages: 1100 });
  const b = buildPvDomain(w.hv, w.pv, { domain: d, nrPages: 1024 });
  const setup = await introduceDomainToXenstore(w.xsd, {
    domain: d,
    startInfoMfn: b.startInfoMfn,
    name,
  });
  w.hv.unpauseDomain(d);
  const xb = new XenbusComms({ hv: w.hv, domain: d, loop: w.loop, startInfoMfn: b.startInfoMfn });
  return { d, b, setup, xb };
}

/** Lets queued microtasks and macrotasks (the in-memory toolstack client) run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

function collect(w: XsWatch): XsWatchEvent[] {
  const seen: XsWatchEvent[] = [];
  w.on((e) => seen.push(e));
  return seen;
}

describe.each<Abi>(["2-level", "fifo"])("xenstore over the ring and event channels (%s)", (abi) => {
  it("introduce sets up start_info, the store port, dom0's bound end and the home", async () => {
    const w = world(abi);
    const g = await guest(w, "alpha");
    const { hv, dom0, evtchn, xsd } = w;
    const si = g.b.startInfoMfn * 4096;
    expect(hv.machine.ram.read64(si + SI.store_mfn.offset)).toBe(g.setup.storeMfn);
    expect(hv.machine.ram.read32(si + SI.store_evtchn.offset)).toBe(g.setup.storeEvtchn);
    expect(hv.frames.ownerOf(g.setup.storeMfn)).toBe(g.d.domid);
    expect(hv.machine.ram.read32(g.setup.storeMfn * 4096 + F.connection.offset)).toBe(
      XENSTORE_CONNECTED,
    );
    const [iface] = xsd.interfaces();
    expect(iface).toMatchObject({ domid: g.d.domid, mfn: g.setup.storeMfn });
    expect(evtchn.portInfo(g.d, g.setup.storeEvtchn)).toMatchObject({
      status: EVTCHNSTAT_interdomain,
      remoteDom: 0,
      remotePort: iface.localPort,
    });
    expect(evtchn.portInfo(dom0, iface.localPort)).toMatchObject({
      status: EVTCHNSTAT_interdomain,
      remoteDom: g.d.domid,
      remotePort: g.setup.storeEvtchn,
    });
    expect(evtchn.domainAbi(g.d)).toBe(abi);
    expect(await xsd.xs.read(`${g.setup.path}/store/port`)).toBe(String(g.setup.storeEvtchn));
    expect(await xsd.xs.read(`${g.setup.path}/store/ring-ref`)).toBe(String(g.setup.storeMfn));
    expect(await xsd.xs.getPerms(g.setup.path)).toEqual(["n0", `r${g.d.domid}`]);
    expect(await g.xb.client.read("name")).toBe("alpha");
    expect(g.xb.ringError).toBe(XENSTORE_ERROR_NONE);
  });

  it("a domU writes, reads, lists and runs a transaction over its ring", async () => {
    const w = world(abi);
    const g = await guest(w, "alpha");
    const c = g.xb.client;
    const sendsBefore = hv_sends(w);
    await c.write("data/a", "1");
    await c.write("data/b", "two");
    expect(await c.read("data/a")).toBe("1");
    expect(await c.read(`${g.setup.path}/data/b`)).toBe("two");
    expect(await c.directory("data")).toEqual(["a", "b"]);
    expect(await w.xsd.xs.read(`${g.setup.path}/data/b`)).toBe("two");
    await expect(c.write("name", "mallory")).rejects.toMatchObject({ xsError: "EACCES" });
    await expect(c.write("control/reboot-now", "1")).rejects.toMatchObject({ xsError: "EACCES" });
    await c.write("control/feature-poweroff", "1");
    expect(await w.xsd.xs.getPerms(`${g.setup.path}/control/shutdown`)).toEqual([`n${g.d.domid}`]);
    await expect(c.read("data/missing")).rejects.toMatchObject({ xsError: "ENOENT" });
    const r = await c.transaction(async (tx) => {
      const v = Number(await tx.read("data/a"));
      await tx.write("data/a", String(v + 1));
      await tx.write("data/c", "new");
      return v;
    });
    expect(r).toBe(1);
    expect(await c.read("data/a")).toBe("2");
    expect(await c.directory("data")).toEqual(["a", "b", "c"]);
    // A conflicting transaction fails with EAGAIN (commit resolves false).
    const tx = await c.transactionStart();
    await tx.read("data/a");
    await w.xsd.xs.write(`${g.setup.path}/data/a`, "3");
    await tx.write("data/a", "9");
    expect(await tx.commit()).toBe(false);
    expect(await c.read("data/a")).toBe("3");
    // Every byte moved with real event channel sends, and dom0/domU upcalls delivered them.
    expect(hv_sends(w)).toBeGreaterThan(sendsBefore + 10);
    expect(w.loop.upcalls).toBeGreaterThan(10);
    expect(w.xsd.daemon.checkInvariants()).toEqual([]);
  });

  it("a watch event arrives over the ring and the event channel", async () => {
    const w = world(abi);
    const g = await guest(w, "alpha");
    const watch = await g.xb.client.watch("data", "tok");
    expect(await watch.next()).toEqual({ path: "data", token: "tok" });
    const before = g.xb.evtchn.handled[0];
    await w.xsd.xs.write(`${g.setup.path}/data/k`, "v");
    expect(await watch.next()).toEqual({ path: "data/k", token: "tok" });
    expect(g.xb.evtchn.handled[0]).toBeGreaterThan(before);
    await watch.unwatch();
    expect(w.xsd.daemon.watchCount).toBe(0);
  });

  it("a second domU cannot read or write the first one's nodes without permission", async () => {
    const w = world(abi);
    const a = await guest(w, "alpha");
    const b = await guest(w, "beta");
    await a.xb.client.write("data/secret", "s3");
    const other = `${a.setup.path}/data/secret`;
    await expect(b.xb.client.read(other)).rejects.toMatchObject({ xsError: "EACCES" });
    await expect(b.xb.client.read(`${a.setup.path}/name`)).rejects.toMatchObject({
      xsError: "EACCES",
    });
    await expect(b.xb.client.write(other, "x")).rejects.toMatchObject({ xsError: "EACCES" });
    // Once alpha grants read access, beta can read it.
    await a.xb.client.setPerms("data/secret", [`n${a.d.domid}`, `r${b.d.domid}`]);
    expect(await b.xb.client.read(other)).toBe("s3");
    expect(await b.xb.client.read("name")).toBe("beta");
  });

  it("@introduceDomain fires on introduce and @releaseDomain on release, which frees the channel and the page", async () => {
    const w = world(abi);
    const intro = collect(await w.xsd.xs.watch("@introduceDomain", "i"));
    const rel = collect(await w.xsd.xs.watch("@releaseDomain", "r"));
    await settle();
    intro.length = 0;
    rel.length = 0;
    const g = await guest(w, "alpha");
    await settle();
    expect(intro).toEqual([{ path: "@introduceDomain", token: "i" }]);
    const [iface] = w.xsd.interfaces();
    const refs = w.hv.frames.refCount(g.setup.storeMfn);
    expect(await w.xsd.xs.isDomainIntroduced(g.d.domid)).toBe(true);
    const conns = w.xsd.daemon.connectionCount;
    await w.xsd.xs.release(g.d.domid);
    await settle();
    expect(rel).toEqual([{ path: "@releaseDomain", token: "r" }]);
    expect(await w.xsd.xs.isDomainIntroduced(g.d.domid)).toBe(false);
    expect(w.xsd.daemon.connectionCount).toBe(conns - 1);
    expect(w.xsd.interfaces()).toEqual([]);
    // Dom0 closed its end (by hypercall); the domU's end is unbound again, naming dom0.
    expect(w.evtchn.portInfo(w.dom0, iface.localPort).status).toBe(EVTCHNSTAT_closed);
    expect(w.evtchn.portInfo(g.d, g.setup.storeEvtchn)).toMatchObject({
      status: EVTCHNSTAT_unbound,
      remoteDom: 0,
    });
    expect(w.hv.frames.refCount(g.setup.storeMfn)).toBe(refs - 1);
  });

  it("destroying the domU closes its channels and the daemon frees the connection once dom0 takes VIRQ_DOM_EXC", async () => {
    const w = world(abi);
    const a = await guest(w, "alpha");
    const b = await guest(w, "beta");
    await a.xb.client.write("data/x", "1");
    await a.xb.client.watch("data");
    const rel = collect(await w.xsd.xs.watch("@releaseDomain", "r"));
    await settle();
    rel.length = 0;
    const [ia] = w.xsd.interfaces();
    const conns = w.xsd.daemon.connectionCount;
    const watches = w.xsd.daemon.watchCount;
    await destroyIntroducedDomain(w.xsd, a.d);
    await settle();
    expect(rel).toEqual([{ path: "@releaseDomain", token: "r" }]);
    expect(w.xsd.daemon.connectionCount).toBe(conns - 1);
    expect(w.xsd.daemon.watchCount).toBe(watches - 1);
    expect(w.xsd.interfaces().map((i) => i.domid)).toEqual([b.d.domid]);
    expect(w.evtchn.portInfo(w.dom0, ia.localPort).status).toBe(EVTCHNSTAT_closed);
    // xenstored let go of the page, so the domain is fully dead.
    expect(a.d.state).toBe("dead");
    expect(await w.xsd.xs.exists(a.setup.path)).toBe(false);
    expect(w.xsd.daemon.checkInvariants()).toEqual([]);
    // The other domain keeps working.
    await b.xb.client.write("data/y", "2");
    expect(await b.xb.client.read("data/y")).toBe("2");
  });

  it("a hostile domU's bad ring indices get XENSTORE_ERROR_RINGIDX; other domains keep working", async () => {
    const w = world(abi);
    const evil = await guest(w, "evil");
    const good = await guest(w, "good");
    const ram = w.hv.machine.ram;
    const page = evil.setup.storeMfn * 4096;
    const cons = ram.read32(page + F.req_cons.offset);
    ram.write32(page + F.req_prod.offset, cons + 5000);
    expect(evil.xb.evtchn.notifyRemoteViaIrq(evil.xb.irq)).toBe(0);
    w.loop.runPendingUpcalls();
    expect(ram.read32(page + F.error.offset)).toBe(XENSTORE_ERROR_RINGIDX);
    expect(evil.xb.ringError).toBe(XENSTORE_ERROR_RINGIDX);
    // Still introduced until released, as in C; its requests go unanswered.
    expect(await w.xsd.xs.isDomainIntroduced(evil.d.domid)).toBe(true);
    await good.xb.client.write("data/ok", "yes");
    expect(await good.xb.client.read("data/ok")).toBe("yes");
    expect(w.xsd.daemon.checkInvariants()).toEqual([]);
    await w.xsd.xs.release(evil.d.domid);
    expect(w.xsd.interfaces().map((i) => i.domid)).toEqual([good.d.domid]);
  });

  it("a hostile domU's oversized message length gets XENSTORE_ERROR_PROTO", async () => {
    const w = world(abi);
    const evil = await guest(w, "evil");
    const good = await guest(w, "good");
    const hdr = encodeMessage(XS_READ, 1, 0, new Uint8Array(0));
    new DataView(hdr.buffer, hdr.byteOffset).setUint32(12, 5000, true);
    evil.xb.frontend.send(hdr);
    w.loop.runPendingUpcalls();
    expect(evil.xb.ringError).toBe(XENSTORE_ERROR_PROTO);
    expect(await good.xb.client.read("name")).toBe("good");
  });

  it("domU shutdown (SCHEDOP_shutdown) raises VIRQ_DOM_EXC and @releaseDomain fires once", async () => {
    const w = world(abi);
    const g = await guest(w, "alpha");
    const rel = collect(await w.xsd.xs.watch("@releaseDomain", "r"));
    await settle();
    rel.length = 0;
    const rc = w.hv.hypercall(g.d.vcpus[0], __HYPERVISOR_sched_op, {
      cmd: SCHEDOP_shutdown,
      reason: SHUTDOWN_poweroff,
    });
    expect(rc).toBe(0);
    // The scheduler raised VIRQ_DOM_EXC at dom0; its upcall runs xenstored's domain_cleanup.
    expect(w.loop.pending).toBe(true);
    w.loop.runPendingUpcalls();
    await settle();
    expect(rel).toEqual([{ path: "@releaseDomain", token: "r" }]);
    w.xsd.domainCleanup();
    await settle();
    expect(rel).toHaveLength(1);
    // Shut down but not destroyed: still introduced, still mapped.
    expect(w.xsd.interfaces()).toHaveLength(1);
  });
});

function hv_sends(w: World): number {
  const s = w.hv.describe().stats;
  for (const group of Object.values(s)) {
    const c = group.find((x) => x.name === "sends");
    if (c !== undefined) return c.value;
  }
  return 0;
}

describe("who runs upcalls when", () => {
  it("in manual mode nothing moves until runPendingUpcalls; a paused domain's upcalls wait", async () => {
    const w = world("2-level", "manual");
    const d = w.hv.createDomain({ maxVcpus: 1, maxPages: 1100 });
    const b = buildPvDomain(w.hv, w.pv, { domain: d, nrPages: 1024 });
    const p = introduceDomainToXenstore(w.xsd, { domain: d, startInfoMfn: b.startInfoMfn });
    const setup = await p;
    w.hv.unpauseDomain(d);
    const xb = new XenbusComms({ hv: w.hv, domain: d, loop: w.loop, startInfoMfn: b.startInfoMfn });
    // INTRODUCE's "connected" kick and the bind left upcalls pending: take them first.
    expect(w.loop.pending).toBe(true);
    expect(w.loop.runPendingUpcalls()).toBeGreaterThan(0);
    expect(w.loop.pending).toBe(false);
    let got: string | null = null;
    void xb.client.read("name").then((v) => {
      got = v;
    });
    await settle();
    expect(got).toBe(null);
    // The request sits in the ring; dom0 has an upcall pending.
    expect(w.loop.pending).toBe(true);
    w.hv.pauseDomain(w.dom0);
    expect(w.loop.runPendingUpcalls()).toBe(0);
    w.hv.unpauseDomain(w.dom0);
    expect(w.loop.runPendingUpcalls()).toBeGreaterThan(0);
    await settle();
    expect(got).toBe(`domain-${setup.domid}`);
    expect(w.loop.pending).toBe(false);
  });

  it("a domain with upcalls masked gets none until it unmasks", async () => {
    const w = world("2-level", "manual");
    const g = await (async () => {
      const d = w.hv.createDomain({ maxVcpus: 1, maxPages: 1100 });
      const b = buildPvDomain(w.hv, w.pv, { domain: d, nrPages: 1024 });
      await introduceDomainToXenstore(w.xsd, { domain: d, startInfoMfn: b.startInfoMfn });
      w.hv.unpauseDomain(d);
      return new XenbusComms({ hv: w.hv, domain: d, loop: w.loop, startInfoMfn: b.startInfoMfn });
    })();
    w.loop.runPendingUpcalls();
    g.evtchn.disableUpcalls(0);
    let got: string | null = null;
    void g.client.read("domid").then((v) => {
      got = v;
    });
    w.loop.runPendingUpcalls();
    await settle();
    expect(got).toBe(null);
    g.evtchn.enableUpcalls(0);
    w.loop.runPendingUpcalls();
    await settle();
    expect(got).toBe(String(g.domain.domid));
  });

  it("a domain's kernel stopping (close) unbinds its store irq", async () => {
    const w = world("2-level");
    const g = await guest(w, "alpha");
    const port = g.setup.storeEvtchn;
    g.xb.close();
    await expect(g.xb.client.read("name")).rejects.toMatchObject({ code: "XS_CLOSED" });
    expect(w.evtchn.portInfo(g.d, port).status).toBe(EVTCHNSTAT_closed);
  });
});

describe("destroy, step by step", () => {
  it("a destroyed domain stays dying while xenstored maps its page, and dies when dom0 takes VIRQ_DOM_EXC", async () => {
    const w = world("fifo", "manual");
    const d = w.hv.createDomain({ maxVcpus: 1, maxPages: 1100 });
    const b = buildPvDomain(w.hv, w.pv, { domain: d, nrPages: 1024 });
    const setup = await introduceDomainToXenstore(w.xsd, {
      domain: d,
      startInfoMfn: b.startInfoMfn,
    });
    w.hv.unpauseDomain(d);
    new XenbusComms({ hv: w.hv, domain: d, loop: w.loop, startInfoMfn: b.startInfoMfn });
    w.loop.runPendingUpcalls();
    const [iface] = w.xsd.interfaces();
    await destroyIntroducedDomain(w.xsd, d);
    expect(d.state).toBe("dying");
    expect(w.hv.frames.ownerOf(setup.storeMfn)).toBe(d.domid);
    expect(await w.xsd.xs.isDomainIntroduced(d.domid)).toBe(true);
    expect(w.loop.runPendingUpcalls()).toBeGreaterThan(0);
    expect(d.state).toBe("dead");
    expect(w.hv.frames.ownerOf(setup.storeMfn)).toBe(-1);
    expect(w.evtchn.portInfo(w.dom0, iface.localPort).status).toBe(EVTCHNSTAT_closed);
    expect(await w.xsd.xs.isDomainIntroduced(d.domid)).toBe(false);
    // Destroying it again is a no-op.
    await destroyIntroducedDomain(w.xsd, d);
  });

  it("a domU that closes its own store port: dom0's end goes unbound, its sends are dropped, nothing throws", async () => {
    const w = world("2-level");
    const g = await guest(w, "alpha");
    const other = await guest(w, "beta");
    await g.xb.client.watch("data");
    const [iface] = w.xsd.interfaces();
    expect(g.xb.evtchn.unbindFromIrqHandler(g.xb.irq)).toBe(0);
    expect(w.evtchn.portInfo(w.dom0, iface.localPort)).toMatchObject({
      status: EVTCHNSTAT_unbound,
      remoteDom: g.d.domid,
    });
    // A watch event for alpha makes xenstored notify into the void.
    const sends = hv_sends(w);
    await w.xsd.xs.write(`${g.setup.path}/data/x`, "1");
    w.loop.runPendingUpcalls();
    expect(hv_sends(w)).toBe(sends);
    expect(w.hv.machine.ram.read32(g.setup.storeMfn * 4096 + F.rsp_prod.offset)).toBeGreaterThan(0);
    expect(await other.xb.client.read("name")).toBe("beta");
    await w.xsd.xs.release(g.d.domid);
    expect(w.xsd.interfaces().map((i) => i.domid)).toEqual([other.d.domid]);
  });
});

describe("re-introduce", () => {
  it("a second INTRODUCE of a live domain rebinds dom0's end and resets its watches", async () => {
    const w = world("2-level");
    const g = await guest(w, "alpha");
    await g.xb.client.watch("data");
    const [before] = w.xsd.interfaces();
    expect(w.xsd.daemon.watchCount).toBe(1);
    await w.xsd.xs.introduce(g.d.domid, g.setup.storeMfn, g.setup.storeEvtchn);
    const [after] = w.xsd.interfaces();
    expect(w.xsd.daemon.watchCount).toBe(0);
    expect(after.remotePort).toBe(g.setup.storeEvtchn);
    expect(w.evtchn.portInfo(w.dom0, after.localPort)).toMatchObject({
      status: EVTCHNSTAT_interdomain,
      remoteDom: g.d.domid,
    });
    expect(before.irq).toBeGreaterThan(0);
    expect(await g.xb.client.read("name")).toBe("alpha");
  });
});

describe("errors", () => {
  it("INTRODUCE of a frame the domain does not own, or of dom0, answers EINVAL", async () => {
    const w = world("2-level");
    const d = w.hv.createDomain({ maxVcpus: 1, maxPages: 16 });
    const a = { cmd: EVTCHNOP_alloc_unbound, dom: d.domid, remote_dom: 0, port: 0 };
    expect(w.hv.hypercall(w.dom0.vcpus[0], __HYPERVISOR_event_channel_op, a)).toBe(0);
    await expect(w.xsd.xs.introduce(d.domid, w.dom0.sharedInfoMfn, a.port)).rejects.toMatchObject({
      xsError: "EINVAL",
    });
    await expect(w.xsd.xs.introduce(d.domid, 1 << 30, a.port)).rejects.toMatchObject({
      xsError: "EINVAL",
    });
    await expect(w.xsd.xs.introduce(77, 5, a.port)).rejects.toMatchObject({ xsError: "EINVAL" });
    // A port that is not unbound for dom0: bind_interdomain fails, nothing stays mapped.
    const mfn = w.hv.allocDomainPages(d);
    const refs = w.hv.frames.refCount(mfn);
    await expect(w.xsd.xs.introduce(d.domid, mfn, a.port + 5)).rejects.toMatchObject({
      xsError: "EINVAL",
    });
    expect(w.hv.frames.refCount(mfn)).toBe(refs);
    expect(w.xsd.interfaces()).toEqual([]);
  });

  it("toolstack mistakes throw HyperlabError with a code", async () => {
    const w = world("2-level");
    const d = w.hv.createDomain({ maxVcpus: 1, maxPages: 1 });
    const err = (code: string) => expect.objectContaining({ code, name: expect.any(String) });
    await expect(
      introduceDomainToXenstore(w.xsd, { domain: d, storeMfn: w.dom0.sharedInfoMfn }),
    ).rejects.toEqual(err("TOOLSTACK_NOT_OWNER"));
    await expect(introduceDomainToXenstore(w.xsd, { domain: w.dom0 })).rejects.toEqual(
      err("TOOLSTACK_INTRODUCE_DOM0"),
    );
    await expect(
      introduceDomainToXenstore(w.xsd, { domain: d, storeMfn: -3 }),
    ).rejects.toBeInstanceOf(HyperlabError);
    await expect(
      introduceDomainToXenstore(w.xsd, { domain: d, startInfoMfn: w.dom0.sharedInfoMfn }),
    ).rejects.toEqual(err("TOOLSTACK_NOT_OWNER"));
    // One page of allowance: the ring takes it; a second domain-less call has none left.
    const d2 = w.hv.createDomain({ maxVcpus: 1, maxPages: 0 });
    await expect(introduceDomainToXenstore(w.xsd, { domain: d2 })).rejects.toEqual(
      err("TOOLSTACK_NO_MEMORY"),
    );
    expect(() => new XenbusComms({ hv: w.hv, domain: d, loop: w.loop, storeMfn: 5 })).toThrow(
      expect.objectContaining({ code: "XENBUS_NO_STORE" }),
    );
    expect(
      () =>
        new XenbusComms({
          hv: w.hv,
          domain: d,
          loop: w.loop,
          storeMfn: w.dom0.sharedInfoMfn,
          storeEvtchn: 3,
        }),
    ).toThrow(expect.objectContaining({ code: "XENBUS_NOT_OWNER" }));
    const du = w.hv.createDomain({ maxVcpus: 1, maxPages: 4 });
    expect(() => new Dom0Xenstored({ hv: w.hv, dom0: du, loop: w.loop })).toThrow(
      expect.objectContaining({ code: "TOOLSTACK_NOT_PRIVILEGED" }),
    );
    expect(() => new Dom0Xenstored({ hv: w.hv, dom0: w.dom0, loop: w.loop, cpu: 4 })).toThrow(
      expect.objectContaining({ code: "TOOLSTACK_BAD_OPTION" }),
    );
    expect(() => new UpcallLoop(w.hv, { mode: "eager" as UpcallMode })).toThrow(
      expect.objectContaining({ code: "TOOLSTACK_BAD_OPTION" }),
    );
    expect(() => new UpcallLoop(w.hv, { maxRounds: 0 })).toThrow(
      expect.objectContaining({ code: "TOOLSTACK_BAD_OPTION" }),
    );
    await expect(destroyIntroducedDomain(w.xsd, w.dom0)).rejects.toEqual(
      err("TOOLSTACK_NO_DOMAIN"),
    );
  });
});

describe("a hostile domU scribbling over its whole ring page", () => {
  it("never makes anything throw; the daemon stays sound and another domain keeps working", async () => {
    const runs = process.env.HYPERLAB_LONG ? 60 : 8;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            off: fc.integer({ min: 0, max: 4095 }),
            bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        async (writes) => {
          const w = world("2-level");
          const evil = await guest(w, "evil");
          const good = await guest(w, "good");
          const ram = w.hv.machine.ram;
          const page = evil.setup.storeMfn * 4096;
          for (const { off, bytes } of writes) {
            ram.writeBytes(page + off, bytes.subarray(0, Math.min(bytes.length, 4096 - off)));
            evil.xb.evtchn.notifyRemoteViaIrq(evil.xb.irq);
            w.loop.runPendingUpcalls();
          }
          expect(w.xsd.daemon.checkInvariants()).toEqual([]);
          await good.xb.client.write("data/k", "v");
          expect(await good.xb.client.read("data/k")).toBe("v");
        },
      ),
      { seed: 42, numRuns: runs },
    );
  });
});
