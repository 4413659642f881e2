// Hostile ends. A hostile frontend writes its own tx ring by hand (bad grant references, sizes
// that lie, offset + size beyond the page, more_data chains that never end, req_prod far
// ahead, storms of kicks): netback answers NETIF_RSP_ERROR or disables the vif as Linux's
// xenvif_tx_err / xenvif_fatal_tx_err do, never throws, and never copies another domain's
// memory. A hostile backend writes a frontend's rx and tx responses by hand: netfront drops
// or goes broken, never throws, and reads no page but its own.
import {
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETRXF_more_data,
  NETTXF_extra_info,
  NETTXF_more_data,
} from "@hyperlab/abi";
import { PcapWriter } from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FrontRing, GnttabGuest, SharedRing } from "../src/index";
import { ethFrame, netWorld, until } from "./net-world";

const RUNS = process.env.HYPERLAB_LONG ? 300 : 12;
const MAC_H = "00:16:3e:00:00:66";
const MAC_V = "00:16:3e:00:00:77";
const MAC_B = "00:16:3e:00:00:0b";
const SECRET = [0x53, 0x45, 0x43, 0x52, 0x45, 0x54, 0x21, 0xc3]; // "SECRET!" 0xc3
const HOSTILE_BYTE = 0x5a;

/** Frames that entered the bridge, from an in-memory pcap. */
function capture() {
  const frames: Uint8Array[] = [];
  let next = 24;
  let buf = new Uint8Array(0);
  const writer = new PcapWriter({
    write: (b) => {
      const n = new Uint8Array(buf.length + b.length);
      n.set(buf);
      n.set(b, buf.length);
      buf = n;
      while (next + 16 <= buf.length) {
        const len = new DataView(buf.buffer).getUint32(next + 8, true);
        if (next + 16 + len > buf.length) break;
        frames.push(buf.slice(next + 16, next + 16 + len));
        next += 16 + len;
      }
    },
  });
  return { writer, frames };
}

const hasSecret = (f: Uint8Array) => {
  for (let i = 0; i + SECRET.length <= f.length; i++) {
    let k = 0;
    while (k < SECRET.length && f[i + k] === SECRET[k]) k++;
    if (k === SECRET.length) return true;
  }
  return false;
};

/** A domU that does netfront's handshake by hand and then writes its tx ring as it likes. */
async function hostileWorld() {
  const cap = capture();
  const w = await netWorld({ pcap: cap.writer });
  // The victim: a well-behaved domU with a page full of secrets granted to dom0.
  const victim = await w.bootVif(MAC_V);
  const vgt = victim.front.gnttab; // the victim kernel's one grant table
  const secretMfn = w.hv.allocDomainPages(victim.u.domain);
  const sb = w.hv.machine.ram.frameBytes(secretMfn);
  for (let i = 0; i < 4096; i++) sb[i] = SECRET[i % SECRET.length]!;
  const secretRef = vgt.grantForeignAccess(0, secretMfn, true);
  const secretCopy = sb.slice();

  const u = await w.bootDomU();
  const hv = w.hv;
  const gt = new GnttabGuest(hv, u.domain);
  const page = () => {
    const m = hv.allocDomainPages(u.domain);
    hv.machine.ram.clearFrame(m);
    return m;
  };
  const txMfn = page();
  const rxMfn = page();
  const tx = new SharedRing(hv.machine.ram.frameBytes(txMfn), 12);
  tx.init();
  const rx = new SharedRing(hv.machine.ram.frameBytes(rxMfn), 8);
  rx.init();
  const rxFront = new FrontRing(rx);
  const txRef = gt.grantForeignAccess(0, txMfn);
  const rxRef = gt.grantForeignAccess(0, rxMfn);
  const dataRefs: number[] = [];
  const dataMfns: number[] = [];
  for (let i = 0; i < 4; i++) {
    const m = page();
    hv.machine.ram.frameBytes(m).fill(HOSTILE_BYTE);
    dataRefs.push(gt.grantForeignAccess(0, m, true));
    dataMfns.push(m);
  }
  const rxDataRef = gt.grantForeignAccess(0, page()); // a page dom0 may write
  /** The hostile domain writes its own data page `i`. */
  const writeData = (i: number, bytes: Uint8Array) =>
    hv.machine.ram.frameBytes(dataMfns[i]!).set(bytes);
  const ev = u.kernel.evtchn;
  const irq = ev.bindListeningPortToIrqHandler(0, () => {});
  const { fe, be } = await w.addVif(u.domain.domid, 0, MAC_H);
  await until(async () => (await w.state(be)) === "2");
  const c = u.comms.client;
  await c.write(`${fe}/tx-ring-ref`, String(txRef));
  await c.write(`${fe}/rx-ring-ref`, String(rxRef));
  await c.write(`${fe}/event-channel`, String(ev.evtchnFromIrq(irq)));
  await c.write(`${fe}/request-rx-copy`, "1");
  await c.write(`${fe}/feature-rx-notify`, "1");
  await c.write(`${fe}/state`, "3");
  await until(async () => (await w.state(be)) === "4");
  const vif = w.back.vif(u.domain.domid)!;
  const front = new FrontRing(tx);
  const dv = tx.view;
  const req = (gref: number, offset: number, flags: number, id: number, size: number) => {
    const o = front.nextRequestOffset();
    dv.setUint32(o, gref >>> 0, true);
    dv.setUint16(o + 4, offset & 0xffff, true);
    dv.setUint16(o + 6, flags & 0xffff, true);
    dv.setUint16(o + 8, id & 0xffff, true);
    dv.setUint16(o + 10, size & 0xffff, true);
    front.produceRequest();
  };
  const extra = (type: number, flags: number, gsoSize: number, gsoType: number) => {
    const o = front.nextRequestOffset();
    tx.bytes.fill(0, o, o + 12);
    dv.setUint8(o, type);
    dv.setUint8(o + 1, flags);
    dv.setUint16(o + 2, gsoSize, true);
    dv.setUint8(o + 4, gsoType);
    front.produceRequest();
  };
  /** Post an rx buffer (any gref the hostile domain likes) and push. */
  const postRx = (id: number, gref: number) => {
    const o = rxFront.nextRequestOffset();
    rx.view.setUint16(o, id, true);
    rx.view.setUint32(o + 4, gref >>> 0, true);
    rxFront.produceRequest();
    rxFront.pushRequests();
  };
  const kick = () => {
    ev.notifyRemoteViaIrq(irq);
    u.kernel.kick();
  };
  const push = () => {
    front.pushRequests();
    kick();
  };
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };
  /** The responses in slots [from, rsp_prod): (id, status). */
  const responses = (from = 0) => {
    const out: [number, number][] = [];
    for (let i = from; i !== tx.rspProd; i = (i + 1) >>> 0) {
      const o = tx.slotOffset(i);
      out.push([dv.getUint16(o, true), dv.getInt16(o + 2, true)]);
    }
    return out;
  };
  const secretIntact = () =>
    hv.machine.ram.frameBytes(secretMfn).every((b, i) => b === secretCopy[i]);
  return {
    w,
    cap,
    victim,
    secretRef,
    secretIntact,
    u,
    vif,
    tx,
    front,
    dataRefs,
    req,
    extra,
    kick,
    push,
    settle,
    responses,
    rx,
    postRx,
    writeData,
    rxDataRef,
    rxFront,
  };
}

describe("a hostile frontend's tx ring", () => {
  it("a gref it never granted (and the victim's ref number): NETIF_RSP_ERROR, nothing sent", async () => {
    const h = await hostileWorld();
    h.req(300, 0, 0, 1, 60);
    h.req(h.secretRef, 0, 0, 2, 60);
    expect(h.dataRefs).not.toContain(h.secretRef);
    h.push();
    await h.settle();
    expect(h.responses()).toEqual([
      [1, NETIF_RSP_ERROR],
      [2, NETIF_RSP_ERROR],
    ]);
    expect(h.cap.frames.length).toBe(0);
    expect(h.vif.disabled).toBe(false);
    expect(h.secretIntact()).toBe(true);
    // The vif still works: a good packet goes out.
    h.req(h.dataRefs[0]!, 0, 0, 3, 60);
    h.push();
    await until(() => h.cap.frames.length === 1);
    expect(h.responses(2)).toEqual([[3, NETIF_RSP_OKAY]]);
    expect(h.cap.frames[0]!.every((b) => b === HOSTILE_BYTE)).toBe(true);
  });

  it("slots at any offset in their pages are joined in order (copies split at staging pages)", async () => {
    const h = await hostileWorld();
    const p0 = ethFrame("ff:ff:ff:ff:ff:ff", MAC_H, 4096, (i) => (i * 7) & 0xff);
    const p1 = new Uint8Array(4096).map((_, i) => (i * 11 + 3) & 0xff);
    const p2 = new Uint8Array(4096).map((_, i) => (i * 5 + 1) & 0xff);
    h.writeData(0, p0);
    h.writeData(1, p1);
    h.writeData(2, p2);
    // The header sits at offset 0 of page 0 here: Linux puts it at offset_in_page(skb->data).
    h.req(h.dataRefs[0]!, 0, NETTXF_more_data, 1, 3000 + 3000 + 1500);
    h.req(h.dataRefs[1]!, 1000, NETTXF_more_data, 2, 3000);
    h.req(h.dataRefs[2]!, 2596, 0, 3, 1500);
    h.push();
    await until(() => h.cap.frames.length === 1);
    const want = new Uint8Array(7500);
    want.set(p0.subarray(0, 3000), 0);
    want.set(p1.subarray(1000, 4000), 3000);
    want.set(p2.subarray(2596, 4096), 6000);
    expect(h.cap.frames[0]).toEqual(want);
    expect(h.responses()).toEqual([
      [1, NETIF_RSP_OKAY],
      [2, NETIF_RSP_OKAY],
      [3, NETIF_RSP_OKAY],
    ]);
    // tx: 3000, then 1096 + 1904 (the second slot crosses staging page 0/1), then 1500: four
    // ops in one hypercall; rx: the broadcast flooded to the victim, 4096 + 3404.
    await until(() => h.victim.got.length === 1);
    expect(h.w.back.stats.read("netback", "grant_copies")).toBe(6);
  });

  it("a following slot bigger than the total: every slot answered ERROR (drop, not fatal)", async () => {
    const h = await hostileWorld();
    h.req(h.dataRefs[0]!, 0, NETTXF_more_data, 1, 100);
    h.req(h.dataRefs[1]!, 0, 0, 2, 200);
    h.push();
    await h.settle();
    expect(h.responses()).toEqual([
      [1, NETIF_RSP_ERROR],
      [2, NETIF_RSP_ERROR],
    ]);
    expect(h.vif.disabled).toBe(false);
    expect(h.cap.frames.length).toBe(0);
  });

  it("a first slot shorter than an Ethernet header: Bad packet size, ERROR", async () => {
    const h = await hostileWorld();
    h.req(h.dataRefs[0]!, 0, 0, 9, 13);
    h.push();
    await h.settle();
    expect(h.responses()).toEqual([[9, NETIF_RSP_ERROR]]);
    expect(h.vif.disabled).toBe(false);
  });

  it("19 slots pass; 20 (more than 18 after the first) are dropped with ERROR; 21 follow-ups are fatal", async () => {
    const h = await hostileWorld();
    const chain = (n: number, id0: number) => {
      for (let i = 0; i < n; i++)
        h.req(
          h.dataRefs[0]!,
          0,
          i < n - 1 ? NETTXF_more_data : 0,
          id0 + i,
          i === 0 ? 100 * n : 100,
        );
    };
    chain(19, 0);
    h.push();
    await until(() => h.cap.frames.length === 1);
    expect(h.cap.frames[0]!.length).toBe(1900);
    chain(20, 30);
    h.push();
    await h.settle();
    expect(h.responses(19).map((r) => r[1])).toEqual(new Array(20).fill(NETIF_RSP_ERROR));
    expect(h.vif.disabled).toBe(false);
    chain(22, 100);
    h.push();
    await h.settle();
    expect(h.vif.disabled).toBe(true);
    expect(h.vif.fatalReason).toMatch(/^Malicious frontend using 20 slots/);
    expect(h.tx.rspProd).toBe(39); // no response for the fatal packet
  });

  const fatal: [string, (h: Awaited<ReturnType<typeof hostileWorld>>) => void, RegExp][] = [
    [
      "offset + size beyond the page",
      (h) => h.req(h.dataRefs[0]!, 4000, 0, 1, 200),
      /^Cross page boundary/,
    ],
    [
      "a follow-up slot beyond its page",
      (h) => {
        h.req(h.dataRefs[0]!, 0, NETTXF_more_data, 1, 300);
        h.req(h.dataRefs[1]!, 4090, 0, 2, 100);
      },
      /^Cross page boundary, txp->offset: 4090/,
    ],
    [
      "a more_data chain that never ends",
      (h) => {
        for (let i = 0; i < 5; i++) h.req(h.dataRefs[0]!, 0, NETTXF_more_data, i, 60);
      },
      /^Asked for 4 slots but exceeds this limit/,
    ],
    [
      "an extra_info flag with no extra slot",
      (h) => h.req(h.dataRefs[0]!, 0, NETTXF_extra_info, 1, 60),
      /^Missing extra info/,
    ],
    [
      "an extra slot of an invalid type",
      (h) => {
        h.req(h.dataRefs[0]!, 0, NETTXF_extra_info, 1, 60);
        h.extra(9, 0, 0, 0);
      },
      /^Invalid extra type: 9/,
    ],
    [
      "a GSO extra with size 0",
      (h) => {
        h.req(h.dataRefs[0]!, 0, NETTXF_extra_info, 1, 60);
        h.extra(1, 0, 0, 1);
      },
      /^GSO size must not be zero/,
    ],
    [
      "a GSO extra of an unknown type",
      (h) => {
        h.req(h.dataRefs[0]!, 0, NETTXF_extra_info, 1, 60);
        h.extra(1, 0, 1400, 7);
      },
      /^Bad GSO type 7/,
    ],
  ];
  for (const [what, write, reason] of fatal) {
    it(`${what}: xenvif_fatal_tx_err disables the vif`, async () => {
      const h = await hostileWorld();
      write(h);
      h.push();
      await h.settle();
      expect(h.vif.disabled).toBe(true);
      expect(h.vif.fatalReason).toMatch(reason);
      expect(h.tx.rspProd).toBe(0);
      expect(h.w.back.stats.read("netback", "fatal_errors")).toBe(1);
      // Disabled: later good requests are not consumed, frames to it are dropped.
      h.req(h.dataRefs[0]!, 0, 0, 50, 60);
      h.push();
      await h.settle();
      expect(h.cap.frames.length).toBe(0);
      expect(h.tx.rspProd).toBe(0);
    });
  }

  it("req_prod far ahead of the consumer: Impossible number of requests, fatal", async () => {
    const h = await hostileWorld();
    h.tx.reqProd = 100_000;
    h.kick();
    await h.settle();
    expect(h.vif.disabled).toBe(true);
    expect(h.vif.fatalReason).toMatch(/^Impossible number of requests/);
  });

  it("a multicast filter extra is acknowledged without sending anything", async () => {
    const h = await hostileWorld();
    h.req(0, 0, NETTXF_extra_info, 4, 0);
    h.extra(2, 0, 0, 0); // XEN_NETIF_EXTRA_TYPE_MCAST_ADD
    h.push();
    await h.settle();
    expect(h.responses()).toEqual([
      [4, NETIF_RSP_OKAY],
      [0, NETIF_RSP_NULL],
    ]);
    expect(h.cap.frames.length).toBe(0);
  });

  it("a storm of 2000 kicks with nothing on the ring: no responses, the backend keeps serving", async () => {
    const h = await hostileWorld();
    const before = h.w.back.stats.read("netback", "events")!;
    for (let i = 0; i < 2000; i++) h.kick();
    await h.settle();
    expect(h.tx.rspProd).toBe(0);
    expect(h.w.back.stats.read("netback", "events")!).toBeGreaterThan(before);
    const b = await h.w.bootVif(MAC_B);
    expect(b.dev.send(ethFrame(MAC_V, MAC_B, 60))).toBe(0);
    await until(() => h.victim.got.length === 1);
  });

  it("property: any sequence of hostile tx slots, rx buffers, pushes, jumps, kicks and frames", async () => {
    const slot = fc.record({
      kind: fc.constantFrom(
        "req",
        "req",
        "req",
        "extra",
        "push",
        "jump",
        "storm",
        "rx",
        "rxjump",
        "frame",
        "good",
        "good",
      ),
      gref: fc.integer({ min: 0, max: 7 }),
      offset: fc.oneof(fc.constantFrom(0, 1, 100, 4000, 4095, 4096, 65535), fc.nat(65535)),
      size: fc.oneof(fc.constantFrom(0, 13, 14, 60, 1500, 4096, 4097, 65535), fc.nat(65535)),
      flags: fc.nat(15),
      id: fc.nat(65535),
      jump: fc.integer({ min: 1, max: 2 ** 32 - 1 }),
    });
    const seen = { rxAnswered: 0, framesOut: 0, disabled: 0, runs: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(slot, { minLength: 1, maxLength: 40 }), async (cmds) => {
        const h = await hostileWorld();
        const b = await h.w.bootVif(MAC_B);
        const refs = [...h.dataRefs.slice(0, 3), h.rxDataRef, 0, 300, h.secretRef, 0xffffffff];
        let consAtDisable = -1;
        for (const c of cmds) {
          if (c.kind === "req") h.req(refs[c.gref]!, c.offset, c.flags, c.id, c.size);
          else if (c.kind === "good") {
            // A well-formed packet of one or two slots, among the hostile ones.
            const two = (c.flags & 1) === 1;
            h.req(h.dataRefs[0]!, 0, two ? NETTXF_more_data : 0, c.id, two ? 5000 : 60);
            if (two) h.req(h.dataRefs[1]!, 0, 0, c.id ^ 1, 4000);
            h.push();
          } else if (c.kind === "rx") {
            h.postRx(c.id, refs[c.gref]!);
            h.kick();
          } else if (c.kind === "rxjump") {
            h.rx.reqProd = (h.rxFront.reqProdPvt + c.jump) >>> 0;
            h.kick();
          } else if (c.kind === "frame") {
            const len = Math.max(14, Math.min(65535, c.size));
            const dst = c.flags & 1 ? "ff:ff:ff:ff:ff:ff" : MAC_H;
            b.dev.send(ethFrame(dst, MAC_B, len));
          } else if (c.kind === "extra") h.extra(c.flags % 7, c.flags & 1, c.size, c.id % 4);
          else if (c.kind === "push") h.push();
          else if (c.kind === "jump") {
            h.tx.reqProd = (h.front.reqProdPvt + c.jump) >>> 0;
            h.kick();
          } else for (let i = 0; i < 50; i++) h.kick();
          await h.settle();
          const ring = h.vif.txRing!;
          if (h.vif.disabled) {
            if (consAtDisable < 0) consAtDisable = ring.reqCons;
            expect(ring.reqCons).toBe(consAtDisable); // nothing consumed once disabled
          } else {
            // Every consumed request answered, and the answers published.
            expect(ring.rspProdPvt).toBe(ring.reqCons);
            expect(h.tx.rspProd).toBe(ring.rspProdPvt);
            // rx: every consumed buffer answered in its own slot, no status beyond a page.
            const rx = h.vif.rxRing!;
            expect(rx.rspProdPvt).toBe(rx.reqCons);
            for (let i = 0; i < Math.min(256, h.rx.rspProd); i++) {
              expect(
                h.rx.view.getInt16(h.rx.slotOffset(h.rx.rspProd - 1 - i) + 6, true),
              ).toBeLessThanOrEqual(4096);
            }
          }
        }
        h.push();
        await h.settle();
        expect(h.secretIntact()).toBe(true);
        for (const f of h.cap.frames) expect(hasSecret(f)).toBe(false);
        seen.runs++;
        seen.rxAnswered += h.rx.rspProd;
        seen.framesOut += h.cap.frames.filter((f) => f[6] === 0x5a).length;
        if (h.vif.disabled) seen.disabled++;
        // The backend still serves a well-behaved pair.
        await until(() => b.dev.txFree === 256);
        expect(b.dev.send(ethFrame(MAC_V, MAC_B, 60))).toBe(0);
        await until(() =>
          h.victim.got.some((f) => f.length === 60 && f[6] === 0x00 && f[11] === 0x0b),
        );
      }),
      { seed: 2213, numRuns: RUNS },
    );
    // The runs reached every outcome: frames out of the hostile domain, rx answers, fatal errors.
    expect(seen.runs).toBe(RUNS);
    expect(seen.framesOut).toBeGreaterThan(0);
    expect(seen.rxAnswered).toBeGreaterThan(0);
    expect(seen.disabled).toBeGreaterThan(0);
    expect(seen.disabled).toBeLessThan(RUNS);
  }, 600_000);
});

describe("a hostile frontend's rx ring", () => {
  it("rx buffers naming grants it never made: the copy fails, the response carries GNTST, no one else's page is written", async () => {
    const h = await hostileWorld();
    // The hostile domain announces its MAC (a broadcast from its data page) so that frames to
    // it are not flooded to the victim.
    h.writeData(0, ethFrame("ff:ff:ff:ff:ff:ff", MAC_H, 14));
    h.req(h.dataRefs[0]!, 0, 0, 1, 60);
    h.push();
    await until(() => h.victim.got.length === 1);
    // The victim's rx buffers are granted writable to dom0; the hostile domain names their refs.
    const vRefs = (h.victim.dev as unknown as { rxIdxGref: Int32Array }).rxIdxGref;
    const vPages = (h.victim.dev as unknown as { rxPageMfn: number[] }).rxPageMfn;
    const ram = h.w.hv.machine.ram;
    const before = vPages.map((m) => ram.frameBytes(m).slice());
    const victimRef = vRefs[5]!;
    expect(victimRef).toBeGreaterThan(13); // not one the hostile domain granted itself
    h.postRx(0, victimRef);
    h.kick();
    const b = await h.w.bootVif(MAC_B);
    expect(b.dev.send(ethFrame(MAC_H, MAC_B, 200))).toBe(0);
    await until(() => h.rx.rspProd === 1);
    const o = h.rx.slotOffset(0);
    // GNTST_general_error: Xen finds no GTF_permit_access in the hostile domain's own entry.
    expect(h.rx.view.getInt16(o + 6, true)).toBe(-1);
    expect(h.w.back.stats.read("netback", "rx_errors")).toBe(1);
    expect(h.victim.got.length).toBe(1); // the frame to the hostile MAC went nowhere else
    for (const [i, m] of vPages.entries()) expect(ram.frameBytes(m)).toEqual(before[i]);
  });

  it("a frontend without feature-sg gets no multi-slot frame: it is dropped", async () => {
    const h = await hostileWorld();
    const page = h.w.hv.allocDomainPages(h.u.domain);
    const ref = new GnttabGuest(h.w.hv, h.u.domain).grantForeignAccess(0, page);
    h.postRx(0, ref);
    h.postRx(1, ref);
    h.kick();
    const b = await h.w.bootVif(MAC_B);
    expect(b.dev.send(ethFrame(MAC_H, MAC_B, 5000))).toBe(0);
    await until(() => h.w.back.stats.read("netback", "rx_dropped") === 1);
    expect(h.rx.rspProd).toBe(0);
    expect(b.dev.send(ethFrame(MAC_H, MAC_B, 100))).toBe(0);
    await until(() => h.rx.rspProd === 1);
    expect(h.rx.view.getInt16(h.rx.slotOffset(0) + 6, true)).toBe(100);
  });
});

describe("a hostile backend", () => {
  async function victimFront() {
    const w = await netWorld();
    const b = await w.bootVif(MAC_B, { rxBuffers: 16 });
    const vif = w.back.vif(b.u.domain.domid)!;
    const ram = w.hv.machine.ram;
    // Every rx page the frontend owns is filled with 0x77; the backend sends nothing real.
    const own = new Set<number>();
    const rxPages = (b.dev as unknown as { rxPageMfn: number[] }).rxPageMfn;
    const txPages = (b.dev as unknown as { txPageMfn: number[] }).txPageMfn;
    for (const m of rxPages) {
      ram.frameBytes(m).fill(0x77);
      own.add(m);
    }
    for (const m of txPages) own.add(m);
    const seen = new Set<number>();
    const orig = ram.frameBytes.bind(ram);
    ram.frameBytes = (mfn: number) => {
      seen.add(mfn);
      return orig(mfn);
    };
    return { w, b, vif, own, seen, rxPages };
  }

  it("rx responses with offset + status beyond the page, negative status, chains past rsp_prod: dropped", async () => {
    const v = await victimFront();
    const rx = v.b.dev.rxRing.sring;
    const put = (i: number, offset: number, flags: number, status: number) => {
      const o = rx.slotOffset(i);
      rx.view.setUint16(o, i, true);
      rx.view.setUint16(o + 2, offset, true);
      rx.view.setUint16(o + 4, flags, true);
      rx.view.setInt16(o + 6, status, true);
    };
    put(0, 4000, 0, 200); // beyond the page
    put(1, 0, 0, -1); // an error status
    put(2, 0, 0, 100); // a good 100-byte frame of 0x77
    put(3, 0, NETRXF_more_data, 100); // a chain that runs past rsp_prod
    rx.rspProd = 4;
    v.vif.notifyRx();
    await until(() => v.b.dev.rxRing.rspCons === 4);
    expect(v.b.got.length).toBe(1);
    expect(v.b.got[0]!.every((x) => x === 0x77)).toBe(true);
    expect(v.b.front.stats.read("netfront", "rx_errors")).toBe(3);
    expect(v.b.dev.broken).toBe(false);
    for (const m of v.seen) expect(v.own.has(m)).toBe(true);
  });

  it("rsp_prod beyond the ring, or a tx response with an idle id: the device goes broken", async () => {
    const v = await victimFront();
    v.b.dev.rxRing.sring.rspProd = 1000;
    v.vif.notifyRx();
    await until(() => v.b.dev.broken);
    expect(v.b.dev.brokenReason).toMatch(/^Illegal number of responses/);
    const v2 = await victimFront();
    const tx = v2.b.dev.txRing.sring;
    tx.view.setUint16(tx.slotOffset(0), 17, true);
    tx.view.setInt16(tx.slotOffset(0) + 2, 0, true);
    tx.rspProd = 1;
    v2.vif.notifyTx();
    await until(() => v2.b.dev.broken);
    expect(v2.b.dev.brokenReason).toBe("Response has incorrect id (17)");
  });

  it("property: random rx and tx responses never make netfront throw or read a page not its own", async () => {
    const rsp = fc.record({
      offset: fc.oneof(fc.constantFrom(0, 1, 4000, 4095, 4096), fc.nat(65535)),
      flags: fc.nat(31),
      status: fc.oneof(
        fc.constantFrom(-1, 0, 1, 14, 100, 4096, 4097),
        fc.integer({ min: -32768, max: 32767 }),
      ),
      id: fc.nat(65535),
      type: fc.nat(7),
    });
    const seen = { delivered: 0, broken: 0, rxErrors: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(rsp, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 300 }),
        fc.boolean(),
        async (rsps, prodAhead, txSide) => {
          const v = await victimFront();
          const ring = txSide ? v.b.dev.txRing.sring : v.b.dev.rxRing.sring;
          const cons = txSide ? v.b.dev.txRing.rspCons : v.b.dev.rxRing.rspCons;
          for (const [k, r] of rsps.entries()) {
            const o = ring.slotOffset(cons + k);
            if (txSide) {
              ring.view.setUint16(o, r.id, true);
              ring.view.setInt16(o + 2, r.status, true);
            } else if (r.type !== 0 && k > 0 && (r.flags & 8) !== 0) {
              ring.view.setUint8(o, r.type);
              ring.view.setUint8(o + 1, r.flags & 1);
            } else {
              ring.view.setUint16(o, r.id, true);
              ring.view.setUint16(o + 2, r.offset, true);
              ring.view.setUint16(o + 4, r.flags, true);
              ring.view.setInt16(o + 6, r.status, true);
            }
          }
          ring.rspProd = (cons + Math.min(rsps.length, prodAhead)) >>> 0;
          if (prodAhead > 256) ring.rspProd = (cons + prodAhead) >>> 0;
          if (txSide) v.vif.notifyTx();
          else v.vif.notifyRx();
          for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
          for (const m of v.seen) expect(v.own.has(m)).toBe(true);
          for (const f of v.b.got) {
            expect(f.length).toBeGreaterThanOrEqual(14);
            expect(f.every((x) => x === 0x77)).toBe(true);
          }
          if (prodAhead > 256) expect(v.b.dev.broken).toBe(true);
          seen.delivered += v.b.got.length;
          if (v.b.dev.broken) seen.broken++;
          seen.rxErrors += v.b.front.stats.read("netfront", "rx_errors")!;
        },
      ),
      { seed: 2214, numRuns: RUNS },
    );
    // The runs reached frames delivered, chains dropped and devices broken.
    expect(seen.delivered).toBeGreaterThan(0);
    expect(seen.rxErrors).toBeGreaterThan(0);
    expect(seen.broken).toBeGreaterThan(0);
  }, 600_000);
});
