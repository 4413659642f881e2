// netfront and netback end to end: the xenstore keys each end writes, frames of one and many
// slots between two domUs through dom0's bridge, GSO and checksum flags, learning and
// flooding, back-pressure on both rings, the counters, and the backend's refusals of bad keys.
import { NETRXF_extra_info, NETRXF_more_data, XEN_NETIF_GSO_TYPE_TCPV4 } from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import {
  formatMac,
  GnttabGuest,
  NetbackDriver,
  NetError,
  NetfrontDriver,
  netifSlotsFor,
  parseMac,
  VifBridge,
  xenbusRegisterBackend,
} from "../src/index";
import { addVifTo, ethFrame, macBytes, netWorld, until } from "./net-world";
import { world } from "./world";

const MAC_A = "00:16:3e:00:00:0a";
const MAC_B = "00:16:3e:00:00:0b";
const MAC_C = "00:16:3e:00:00:0c";
const BCAST = "ff:ff:ff:ff:ff:ff";

describe("xenbus keys", () => {
  it("netback advertises its features; netfront writes rings, split channels and flags", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    const fe = (k: string) => w.xs.read(`${a.fe}/${k}`);
    const be = (k: string) => w.xs.read(`${a.be}/${k}`);
    expect(await be("feature-sg")).toBe("1");
    expect(await be("feature-gso-tcpv4")).toBe("1");
    expect(await be("feature-rx-copy")).toBe("1");
    expect(await be("feature-rx-flip")).toBe("0");
    expect(await be("feature-split-event-channels")).toBe("1");
    expect(await be("hotplug-status")).toBe("connected");
    expect(await fe("request-rx-copy")).toBe("1");
    expect(await fe("feature-rx-notify")).toBe("1");
    expect(await fe("feature-sg")).toBe("1");
    expect(await fe("feature-gso-tcpv4")).toBe("1");
    expect(Number(await fe("tx-ring-ref"))).toBeGreaterThan(7);
    expect(Number(await fe("rx-ring-ref"))).toBeGreaterThan(7);
    const ev = a.u.kernel.evtchn;
    expect(await fe("event-channel-tx")).toBe(String(ev.evtchnFromIrq(a.dev.txIrq)));
    expect(await fe("event-channel-rx")).toBe(String(ev.evtchnFromIrq(a.dev.rxIrq)));
    await expect(fe("event-channel")).rejects.toThrow();
    expect(a.dev.mac).toEqual(macBytes(MAC_A));
    const vif = w.back.vif(a.u.domain.domid, 0)!;
    expect(vif.connected).toBe(true);
    expect(vif.mac).toBe(MAC_A);
    expect(a.dev.rxPosted).toBe(64);
  });

  it("one event-channel key when the backend does not offer split channels", async () => {
    const w = await netWorld({ back: { splitEventChannels: false } });
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B);
    expect(await w.xs.read(`${a.be}/feature-split-event-channels`)).toBe("0");
    expect(await w.xs.read(`${a.fe}/event-channel`)).toBe(
      String(a.u.kernel.evtchn.evtchnFromIrq(a.dev.txIrq)),
    );
    expect(a.dev.txIrq).toBe(a.dev.rxIrq);
    await expect(w.xs.read(`${a.fe}/event-channel-tx`)).rejects.toThrow();
    expect(a.dev.send(ethFrame(MAC_B, MAC_A, 100))).toBe(0);
    await until(() => b.got.length === 1);
    expect(b.dev.send(ethFrame(MAC_A, MAC_B, 100))).toBe(0);
    await until(() => a.got.length === 1 && a.dev.txInFlight === 0 && b.dev.txInFlight === 0);
  });
});

describe("frames through the bridge", () => {
  it("a 60-byte frame from A reaches B byte for byte, and every slot is answered", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B);
    const f = ethFrame(MAC_B, MAC_A, 60);
    expect(a.dev.send(f)).toBe(0);
    await until(() => b.got.length === 1 && a.dev.txInFlight === 0);
    expect(b.got[0]).toEqual(f);
    expect(a.got.length).toBe(0); // unknown unicast floods, but not back to the sender
    expect(w.bridge.frames).toBe(1);
    expect(w.bridge.bridge.lookup(macBytes(MAC_A))).toBeGreaterThanOrEqual(0);
    const s = w.back.stats.snapshot().netback!;
    const v = (n: string) => s.find((x) => x.name === n)!.value;
    expect(v("tx_packets")).toBe(1);
    expect(v("rx_packets")).toBe(1);
    // One GNTTABOP_copy for the tx slot, one for the rx slot.
    expect(v("grant_copies")).toBe(2);
    expect(v("grant_copy_bytes")).toBe(120);
    expect(v("local_copy_bytes")).toBe(60);
    expect(s.find((x) => x.name === "hypercalls")!.unit).toBe("hypercalls");
    expect(v("hypercalls")).toBe(2 + v("notifications"));
  });

  it("the packets of one poll share one GNTTABOP_copy; each rx frame takes one", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B);
    const txCalls = w.back.copy.hypercalls;
    const rxCalls = w.back.rxCopy.hypercalls;
    // Ten frames before netback runs (one kick: req_event asked for the first only).
    for (let i = 0; i < 10; i++) expect(a.dev.send(ethFrame(MAC_B, MAC_A, 100 + i * 500))).toBe(0);
    await until(() => b.got.length === 10);
    expect(b.got.map((f) => f.length)).toEqual([...Array(10).keys()].map((i) => 100 + i * 500));
    expect(w.back.copy.hypercalls - txCalls).toBe(1);
    // 12 slots (4100 and 4600 bytes take two), packed one after the other in staging
    // (23,500 bytes): five slots cross one of the page boundaries at 4, 8, 12, 16, 20 KiB.
    expect(w.back.copy.ops).toBe(12 + 5);
    expect(w.back.rxCopy.hypercalls - rxCalls).toBe(10);
    expect(w.back.stats.read("netback", "tx_packets")).toBe(10);
  });

  it("frames waiting for rx buffers go together: one GNTTABOP_copy per rx action", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B, { rxBuffers: 2 });
    const rxCalls = w.back.rxCopy.hypercalls;
    for (let i = 0; i < 6; i++) expect(a.dev.send(ethFrame(MAC_B, MAC_A, 100 + i))).toBe(0);
    await until(() => b.got.length === 6);
    expect(b.got.map((f) => f.length)).toEqual([100, 101, 102, 103, 104, 105]);
    // Two frames find buffers as they arrive; the other four wait and go two by two, as B
    // re-posts its two buffers.
    expect(w.back.rxCopy.hypercalls - rxCalls).toBe(4);
    expect(w.back.rxCopy.ops).toBe(6);
  });

  it("frames of 4096, 4097, 9000 and 65535 bytes use more_data chains both ways", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B);
    const sizes = [4096, 4097, 9000, 65535];
    for (const [i, n] of sizes.entries()) {
      const f = ethFrame(MAC_B, MAC_A, n, (j) => (j * 13 + i) & 0xff);
      expect(a.dev.send(f)).toBe(0);
      await until(() => b.got.length === i + 1 && a.dev.txInFlight === 0);
      expect(b.got[i]).toEqual(f);
    }
    expect(netifSlotsFor(65535)).toBe(16);
    // The rx ring shows the last frame's chain: 16 slots, more_data on all but the last.
    const rx = b.dev.rxRing.sring;
    const last = (rx.rspProd - 1) >>> 0;
    let more = 0;
    for (let k = 0; k < 16; k++) {
      const off = rx.slotOffset((last - k) >>> 0);
      if ((rx.view.getUint16(off + 4, true) & NETRXF_more_data) !== 0) more++;
    }
    expect(more).toBe(15);
  });

  it("GSO: the extra slot goes out after the first tx slot and comes back after the first rx slot", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B);
    const metas: { gso: number; type: number; csum: boolean; valid: boolean }[] = [];
    b.dev.onReceive((_f, m) =>
      metas.push({ gso: m.gsoSize, type: m.gsoType, csum: m.csumBlank, valid: m.dataValidated }),
    );
    const f = ethFrame(MAC_B, MAC_A, 20000, undefined, 0x0800);
    expect(a.dev.send(f, { gsoSize: 1448, csumBlank: true })).toBe(0);
    await until(() => b.got.length === 1);
    expect(b.got[0]).toEqual(f);
    expect(metas).toEqual([{ gso: 1448, type: XEN_NETIF_GSO_TYPE_TCPV4, csum: true, valid: true }]);
    // tx: 5 data slots + 1 extra, the extra answered NETIF_RSP_NULL.
    const tx = a.dev.txRing.sring;
    expect(tx.rspProd).toBe(6);
    expect(tx.view.getInt16(tx.slotOffset(1) + 2, true)).toBe(1);
    // rx: the first response carries extra_info and the GSO extra follows it.
    const rx = b.dev.rxRing.sring;
    expect(rx.rspProd).toBe(6);
    expect(rx.view.getUint16(rx.slotOffset(0) + 4, true) & NETRXF_extra_info).toBe(
      NETRXF_extra_info,
    );
    expect(rx.view.getUint8(rx.slotOffset(1))).toBe(1); // XEN_NETIF_EXTRA_TYPE_GSO
    expect(rx.view.getUint16(rx.slotOffset(1) + 2, true)).toBe(1448);
    // data_validated alone travels too.
    expect(a.dev.send(ethFrame(MAC_B, MAC_A, 80), { dataValidated: true })).toBe(0);
    await until(() => metas.length === 2);
    expect(metas[1]).toEqual({ gso: 0, type: 0, csum: false, valid: true });
  });

  it("a frontend without feature-gso-tcpv4 gets the frame with no extra slot", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B, { gso: false });
    expect(await w.xs.read(`${b.fe}/feature-gso-tcpv4`)).toBe("0");
    const sizes: number[] = [];
    b.dev.onReceive((_f, m) => sizes.push(m.gsoSize));
    const f = ethFrame(MAC_B, MAC_A, 9000, undefined, 0x0800);
    expect(a.dev.send(f, { gsoSize: 1448 })).toBe(0);
    await until(() => b.got.length === 1);
    expect(b.got[0]).toEqual(f);
    expect(sizes).toEqual([0]);
    expect(b.dev.rxRing.sring.rspProd).toBe(3); // three data slots, no extra
  });

  it("the bridge learns: broadcast reaches everyone else, a learned unicast only its owner", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B);
    const c = await w.bootVif(MAC_C);
    expect(a.dev.send(ethFrame(BCAST, MAC_A, 64))).toBe(0);
    await until(() => b.got.length === 1 && c.got.length === 1);
    expect(b.dev.send(ethFrame(MAC_A, MAC_B, 64))).toBe(0); // learns B
    await until(() => a.got.length === 1);
    expect(c.got.length).toBe(1); // A was learned: C did not see B's frame to A
    expect(a.dev.send(ethFrame(MAC_B, MAC_A, 64))).toBe(0);
    await until(() => b.got.length === 2);
    expect(c.got.length).toBe(1);
    expect(a.got.length).toBe(1);
    expect(w.bridge.bridge.flooded).toBe(1);
    expect(w.bridge.bridge.forwarded).toBe(2);
  });

  it("1000 frames in order through a full tx ring and a short rx buffer supply", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A, { txPages: 8 });
    const b = await w.bootVif(MAC_B, { rxBuffers: 4 });
    let sent = 0;
    let busy = 0;
    while (sent < 1000) {
      const rc = a.dev.send(ethFrame(MAC_B, MAC_A, 64 + (sent % 1400), () => sent & 0xff));
      if (rc === 0) sent++;
      else {
        expect(rc).toBe(-28); // -ENOSPC: netif_stop_queue
        busy++;
        await new Promise((r) => setImmediate(r));
      }
    }
    await until(() => b.got.length === 1000);
    expect(busy).toBeGreaterThan(0);
    for (let i = 0; i < 1000; i++) {
      expect(b.got[i]!.length).toBe(64 + (i % 1400));
      expect(b.got[i]![20]).toBe(i & 0xff);
    }
    const s = w.back.stats.snapshot().netback!;
    expect(s.find((x) => x.name === "rx_dropped")!.value).toBe(0);
    await until(() => a.dev.txInFlight === 0);
    expect(a.front.stats.snapshot().netfront!.find((x) => x.name === "tx_errors")!.value).toBe(0);
  });

  it("frames beyond dom0's staging room are dropped and counted while B posts nothing", async () => {
    const w = await netWorld({ back: { rxStagePages: 16 } });
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B, { rxBuffers: 1 });
    // B's one buffer takes one frame; then 16 one-page frames fill staging, the rest drop.
    for (let i = 0; i < 30; i++) {
      while (a.dev.send(ethFrame(MAC_B, MAC_A, 3000)) !== 0)
        await new Promise((r) => setImmediate(r));
    }
    await until(() => a.dev.txInFlight === 0);
    const vif = w.back.vif(b.u.domain.domid)!;
    await until(() => b.got.length === 30 - w.back.stats.read("netback", "rx_dropped")!);
    expect(w.back.stats.read("netback", "rx_dropped")).toBeGreaterThan(0);
    expect(vif.rxQueued).toBe(0);
  });

  it("any NetEndpoint shares the bridge; a frame no slot chain can carry is dropped", async () => {
    const w = await netWorld();
    const b = await w.bootVif(MAC_B);
    const seen: number[] = [];
    const port = w.bridge.connect({ receive: (f) => seen.push(f.length) });
    const tap = "02:00:00:00:00:01";
    port.transmit(ethFrame(MAC_B, tap, 200)); // a plain NIC's frame: no offload metadata
    await until(() => b.got.length === 1);
    expect(b.dev.send(ethFrame(tap, MAC_B, 300))).toBe(0);
    await until(() => seen.length === 1);
    expect(seen).toEqual([300]);
    port.transmit(ethFrame(MAC_B, tap, 70_000));
    expect(w.back.stats.read("netback", "rx_dropped")).toBe(1);
    expect(b.got.length).toBe(1);
  });

  it("a frontend that closes: netback unmaps and unbinds, frames to it are dropped", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B);
    expect(b.dev.send(ethFrame(MAC_A, MAC_B, 60))).toBe(0);
    await until(() => a.got.length === 1);
    const unmaps = w.hv.stats.read("grant-table", "unmaps")!;
    await b.bus.device(0)!.close();
    await until(async () => (await w.state(b.be)) === "6" && (await w.state(b.fe)) === "6");
    const vif = w.back.vif(b.u.domain.domid)!;
    expect(vif.connected).toBe(false);
    expect(b.dev.connected).toBe(false);
    expect(b.front.devices.has(0)).toBe(false);
    expect(w.hv.stats.read("grant-table", "unmaps")).toBe(unmaps + 2); // both rings
    const dropped = w.back.stats.read("netback", "rx_dropped")!;
    expect(a.dev.send(ethFrame(MAC_B, MAC_A, 60))).toBe(0);
    await until(() => w.back.stats.read("netback", "rx_dropped") === dropped + 1);
    expect(b.got.length).toBe(0);
  });

  it("netback goes away and comes back: the frontends reconnect and traffic flows again", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B);
    const got: number[] = [];
    const listen = (d: { onReceive(fn: (f: Uint8Array) => void): void }) =>
      d.onReceive((f) => got.push(f.length));
    b.front.onConnect(listen);
    const freeA = a.front.gnttab.freeCount;
    await w.backBus.stop();
    await until(async () => (await w.state(a.be)) === "6" && (await w.state(b.fe)) === "6");
    expect(w.back.vif(a.u.domain.domid)!.connected).toBe(false);
    // Every grant of A's rings and buffers was revoked when it disconnected.
    expect(a.front.gnttab.freeCount).toBe(freeA + 2 + 64);
    await xenbusRegisterBackend(w.dom0Kernel, w.back).start();
    await until(
      async () =>
        (await w.state(a.fe)) === "4" &&
        (await w.state(b.fe)) === "4" &&
        a.front.devices.get(0)?.connected === true &&
        b.front.devices.get(0)?.connected === true,
    );
    expect(a.front.devices.get(0)!.send(ethFrame(MAC_B, MAC_A, 333))).toBe(0);
    await until(() => got.length === 1);
    expect(got).toEqual([333]);
    expect(w.back.vif(a.u.domain.domid)!.connected).toBe(true);
  });

  it("send refuses frames outside 14..65535 bytes with a NetError, and -ENOTCONN when broken", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    expect(() => a.dev.send(new Uint8Array(10))).toThrow(NetError);
    expect(() => a.dev.send(new Uint8Array(65536))).toThrow(NetError);
    expect(() => a.dev.send(new Uint8Array(100), { gsoSize: 1000, gsoType: 9 })).toThrow(NetError);
    a.dev.markBroken("test");
    expect(a.dev.send(new Uint8Array(100))).toBe(-107);
  });
});

describe("netback refuses bad frontend keys (xenbus_dev_fatal)", () => {
  // A frontend written by hand: the keys a domU wrote, then Initialised.
  async function rawFront(keys: Record<string, string>) {
    const w = await netWorld();
    const u = await w.bootDomU();
    const { fe, be } = await w.addVif(u.domain.domid, 0, MAC_A);
    await until(async () => (await w.state(be)) === "2");
    for (const [k, v] of Object.entries(keys)) await u.comms.client.write(`${fe}/${k}`, v);
    await u.comms.client.write(`${fe}/state`, "3");
    await until(async () => (await w.state(be)) === "5");
    const err = await w.xs.read(`/local/domain/0/error/backend/vif/${u.domain.domid}/0/error`);
    return { w, err };
  }
  const good = {
    "tx-ring-ref": "8",
    "rx-ring-ref": "9",
    "event-channel": "5",
    "request-rx-copy": "1",
    "feature-rx-notify": "1",
  };

  it("no request-rx-copy: -EOPNOTSUPP", async () => {
    const { err } = await rawFront({ ...good, "request-rx-copy": "0" });
    expect(err).toBe("95 read_xenbus_vif_flags");
  });
  it("no feature-rx-notify: -EINVAL, mandatory", async () => {
    const { err } = await rawFront({ ...good, "feature-rx-notify": "0" });
    expect(err).toBe("22 feature-rx-notify is mandatory");
  });
  it("garbage ring refs", async () => {
    const { err } = await rawFront({ ...good, "tx-ring-ref": "banana" });
    expect(err).toMatch(/^22 reading .*\/ring-ref$/);
  });
  it("no event channel at all", async () => {
    const { event: _e, ...rest } = { event: 0, ...good };
    const { "event-channel": _ec, ...noEv } = rest;
    const { err } = await rawFront(noEv);
    expect(err).toMatch(/event-channel\(-tx\/rx\)$/);
  });
  it("more queues than the backend offers", async () => {
    const { err } = await rawFront({ ...good, "multi-queue-num-queues": "4" });
    expect(err).toBe("22 guest requested 4 queues, exceeding the maximum of 1.");
  });
  it("a ring ref that was never granted: the map's GNTST status", async () => {
    const { err, w } = await rawFront({ ...good, "tx-ring-ref": "300" });
    expect(err).toMatch(/^\d+ mapping tx-ring-ref 300$/);
    expect(w.back.vif(1)?.connected ?? false).toBe(false);
  });
});

describe("user mistakes throw NetError with what to do", () => {
  it("bad driver options", async () => {
    const w = await netWorld();
    const bad = (fn: () => unknown, code: string) => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(NetError);
        expect((e as NetError).code).toBe(code);
        return;
      }
      throw new Error("no throw");
    };
    const k = w.dom0Kernel;
    bad(() => new NetbackDriver(k, {} as never), "NET_BAD_OPTION");
    bad(
      () => new NetbackDriver(k, { bridge: new VifBridge(), rxStagePages: 24 }),
      "NET_BAD_OPTION",
    );
    bad(
      () => new NetbackDriver(k, { bridge: new VifBridge(), rxStagePages: 512 }),
      "NET_BAD_OPTION",
    );
    const u = await w.bootDomU();
    const gt = new GnttabGuest(w.hv, u.domain);
    bad(() => new NetfrontDriver(u.kernel, gt, { txPages: 0 }), "NET_BAD_OPTION");
    bad(() => new NetfrontDriver(u.kernel, gt, { rxBuffers: 257 }), "NET_BAD_OPTION");
    bad(() => formatMac(new Uint8Array(5)), "NET_BAD_MAC");
  });

  it("a dom0 without room for the staging pages", async () => {
    const w = await netWorld();
    w.dom0.maxPages = w.dom0.totPages; // nothing more may be allocated
    expect(() => new NetbackDriver(w.dom0Kernel, { bridge: new VifBridge() })).toThrow(
      /no room for 16 staging pages; raise its maxPages/,
    );
  });

  it("MAC text as libxl writes it", () => {
    expect(parseMac("00:16:3e:0A:ff:01")).toEqual(new Uint8Array([0, 0x16, 0x3e, 0x0a, 0xff, 1]));
    expect(formatMac(new Uint8Array([0, 0x16, 0x3e, 0x0a, 0xff, 1]))).toBe("00:16:3e:0a:ff:01");
    for (const t of [
      null,
      "",
      "00:16:3e:0a:ff",
      "00:16:3e:0a:ff:01:02",
      "0:16:3e:0a:ff:01",
      "zz:16:3e:0a:ff:01",
    ])
      expect(parseMac(t)).toBe(null);
  });

  it("a vif whose mac libxl wrote as garbage: netfront reports it and closes", async () => {
    const w = await netWorld();
    const u = await w.bootDomU();
    const front = new NetfrontDriver(u.kernel, new GnttabGuest(w.hv, u.domain));
    const { xenbusRegisterFrontend } = await import("../src/index");
    await xenbusRegisterFrontend(u.kernel, front).start();
    const { fe } = await w.addVif(u.domain.domid, 0, "not-a-mac");
    await until(async () => ["5", "6"].includes((await w.state(fe)) ?? ""));
    expect(await w.xs.read(`/local/domain/${u.domain.domid}/error/device/vif/0/error`)).toBe(
      `2 parsing ${fe}/mac`,
    );
  });

  it("a backend that does not offer feature-rx-copy: netfront refuses it (-ENODEV)", async () => {
    const w = world();
    const { xenbusRegisterBackend, xenbusRegisterFrontend } = await import("../src/index");
    // A vif backend that advertises nothing (an old flip-only netback).
    await xenbusRegisterBackend(w.dom0Kernel, {
      type: "vif",
      probe: () => 0,
      connect: () => 0,
      disconnect: () => {},
    }).start();
    const u = await w.bootDomU();
    await xenbusRegisterFrontend(
      u.kernel,
      new NetfrontDriver(u.kernel, new GnttabGuest(w.hv, u.domain)),
    ).start();
    const { fe } = await addVifTo(w.xs, u.domain.domid, 0, "00:16:3e:00:00:01");
    await until(async () => ["5", "6"].includes((await w.state(fe)) ?? ""));
    expect(await w.xs.read(`/local/domain/${u.domain.domid}/error/device/vif/0/error`)).toBe(
      "19 backend does not support copying receive path",
    );
  });

  it("a frontend out of grant references gives up cleanly: -ENOSPC, nothing left granted or bound", async () => {
    const w = await netWorld();
    const u = await w.bootDomU();
    const gt = new GnttabGuest(w.hv, u.domain);
    const page = w.hv.allocDomainPages(u.domain);
    while (gt.freeCount > 1) gt.grantForeignAccess(0, page, true);
    const front = new NetfrontDriver(u.kernel, gt);
    const { xenbusRegisterFrontend } = await import("../src/index");
    await xenbusRegisterFrontend(u.kernel, front).start();
    const { fe } = await w.addVif(u.domain.domid, 0, MAC_A);
    await until(async () => ["5", "6"].includes((await w.state(fe)) ?? ""));
    expect(await w.xs.read(`/local/domain/${u.domain.domid}/error/device/vif/0/error`)).toBe(
      "28 writing the transport keys",
    );
    expect(gt.freeCount).toBe(1);
    expect(front.devices.size).toBe(0);
  });
});
