// Hostile frontends against blkback, and hostile backends against blkfront, driven by
// fast-check with a fixed seed (HYPERLAB_LONG=1 runs more). A hostile frontend (grants it
// never made, another domain's grant references, segments beyond their page, too many
// segments, unknown operations, req_prod far ahead, kick storms, a ring-ref of another
// domain) never makes the backend throw, gets the status blkif.h and blkback give, and never
// makes it touch another domain's memory. A hostile backend (bogus ids and operations,
// duplicate answers, rsp_prod far ahead) never makes the frontend throw or read a page that
// is not its own.
import {
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
} from "@hyperlab/abi";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import {
  BLKIF_ENTRY_BYTES,
  BLKIF_RESPONSE_BYTES,
  BlkBack,
  type BlkbackMode,
  type BlkifResponse,
  decodeResponse,
  FrontRing,
  GnttabGuest,
  SharedRing,
  segmentOffset,
  writeDiscardRequest,
  writeIndirectRequest,
  writeRwRequest,
  writeSegment,
  type XenbusDevice,
  type XenbusDriver,
  type XenbusKernel,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
} from "../src/index";
import { makeImage, sha256, XVDA } from "./blk-world";
import { until, world } from "./world";

const LONG = process.env.HYPERLAB_LONG === "1";
const SECTORS = 4096;
const dirs: string[] = [];
afterAll(async () => {
  const { rmSync } = await import("node:fs");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A frontend that writes whatever the test tells it into a real ring (no checks at all). */
class RawFront implements XenbusDriver {
  readonly type = "vbd";
  sring!: SharedRing;
  front!: FrontRing;
  irq = -1;
  readonly responses: BlkifResponse[] = [];
  private readonly buf = new Uint8Array(BLKIF_RESPONSE_BYTES);
  private readonly view = new DataView(this.buf.buffer);
  constructor(
    private readonly k: XenbusKernel,
    private readonly g: GnttabGuest,
    private readonly ringMfn: number,
    private readonly persistent: boolean,
    private readonly ringRef?: number,
    /** Keys written after the usual ones (a hostile ring-page-order, ring-ref%u...). */
    private readonly extraKeys?: (ref: number) => Record<string, string>,
  ) {}
  probe(): number {
    return 0;
  }
  async initialise(dev: XenbusDevice, tx: import("@hyperlab/xenstore").XsOps): Promise<number> {
    const ram = this.k.hv.machine.ram;
    ram.clearFrame(this.ringMfn);
    this.sring = new SharedRing(ram.frameBytes(this.ringMfn), BLKIF_ENTRY_BYTES);
    this.sring.init();
    this.front = new FrontRing(this.sring);
    const ref = this.ringRef ?? this.g.grantForeignAccess(dev.otherendId, this.ringMfn);
    this.irq = this.k.evtchn.bindListeningPortToIrqHandler(dev.otherendId, () => this.onEvent());
    await tx.write(`${dev.nodename}/ring-ref`, String(ref));
    await tx.write(`${dev.nodename}/event-channel`, String(this.k.evtchn.evtchnFromIrq(this.irq)));
    await tx.write(`${dev.nodename}/protocol`, "x86_64-abi");
    await tx.write(`${dev.nodename}/feature-persistent`, this.persistent ? "1" : "0");
    for (const [k, v] of Object.entries(this.extraKeys?.(ref) ?? {})) {
      await tx.write(`${dev.nodename}/${k}`, v);
    }
    return 0;
  }
  connect(): number {
    return 0;
  }
  disconnect(): void {
    if (this.irq >= 0) this.k.evtchn.unbindFromIrqHandler(this.irq);
    this.irq = -1;
  }
  private onEvent(): void {
    do {
      while (this.front.rspCons !== this.sring.rspProd) {
        this.front.consumeResponse(this.buf);
        const r = { idLo: 0, idHi: 0, operation: 0, status: 0 };
        decodeResponse(this.view, r);
        this.responses.push(r);
      }
    } while (this.front.finalCheckForResponses() !== 0);
  }
  /** One raw request: the slot zeroed, then `fill` writes it. */
  put(fill: (v: DataView, off: number) => void): void {
    const off = this.front.nextRequestOffset();
    this.sring.bytes.fill(0, off, off + BLKIF_ENTRY_BYTES);
    fill(this.sring.view, off);
    this.front.produceRequest();
  }
  push(): void {
    if (this.front.pushRequestsAndCheckNotify()) this.kick();
  }
  kick(): void {
    this.k.evtchn.notifyRemoteViaIrq(this.irq);
    this.k.kick();
  }
}

type GrefKind = "rw" | "ro" | "ungranted" | "victim" | "huge";
interface Seg {
  kind: GrefKind;
  page: number;
  first: number;
  last: number;
}
interface Req {
  op: number;
  segs: Seg[];
  /** Overrides nr_segments (to claim more than are written). */
  nseg: number | null;
  sector: number;
  id: [number, number];
  indirectOp: number;
  indirectKind: GrefKind;
  flag: number;
  nrSectors: number;
}

const grefKind = fc.constantFrom<GrefKind>("rw", "rw", "rw", "ro", "ungranted", "victim", "huge");
const seg = fc.record({
  kind: grefKind,
  page: fc.nat(7),
  first: fc.oneof(fc.nat(7), fc.nat(255)),
  last: fc.oneof(fc.nat(7), fc.nat(15)),
});
const req: fc.Arbitrary<Req> = fc.record({
  op: fc.oneof(
    fc.constantFrom(
      BLKIF_OP_READ,
      BLKIF_OP_WRITE,
      BLKIF_OP_WRITE_BARRIER,
      BLKIF_OP_FLUSH_DISKCACHE,
      BLKIF_OP_DISCARD,
      BLKIF_OP_INDIRECT,
      4,
    ),
    fc.nat(255),
  ),
  segs: fc.array(seg, { maxLength: 20 }),
  nseg: fc.option(fc.oneof(fc.nat(12), fc.constantFrom(255, 257, 300)), { freq: 4 }),
  sector: fc.oneof(fc.nat(SECTORS - 1), fc.constantFrom(SECTORS - 1, SECTORS, 2 ** 32, 2 ** 40)),
  id: fc.tuple(fc.nat(0xffff_ffff), fc.oneof(fc.constant(0), fc.nat(0xffff_ffff))),
  indirectOp: fc.oneof(fc.constantFrom(BLKIF_OP_READ, BLKIF_OP_WRITE), fc.nat(255)),
  indirectKind: grefKind,
  flag: fc.nat(255),
  nrSectors: fc.oneof(fc.nat(64), fc.constantFrom(SECTORS, 2 ** 33)),
});

/** Whether blkback can reach a page granted as `kind` for this use. */
function reachable(mode: BlkbackMode, kind: GrefKind, deviceWrites: boolean): boolean {
  if (kind === "rw") return true;
  if (kind === "ro") return mode !== "persistent" && !deviceWrites;
  return false;
}

/** The status blkback gives (blkif.h and dispatch_rw_block_io / dispatch_discard_io). */
function expected(mode: BlkbackMode, r: Req): number {
  const rw = (op: number, flushLike: boolean, max: number) => {
    // nr_segments is a u8 in a direct request, a u16 in an indirect one.
    const n = (r.nseg ?? r.segs.length) & (r.op === BLKIF_OP_INDIRECT ? 0xffff : 0xff);
    if ((n === 0 && !flushLike) || n > max) return BLKIF_RSP_ERROR;
    if (n === 0) return BLKIF_RSP_OKAY;
    if (r.op === BLKIF_OP_INDIRECT && !reachable(mode, r.indirectKind, false))
      return BLKIF_RSP_ERROR;
    let nsec = 0;
    for (let i = 0; i < n; i++) {
      const s = r.segs[i];
      // Segments claimed but not written read as zeros: gref 0 (never granted), sectors 0..0.
      if (s === undefined) return BLKIF_RSP_ERROR;
      if (s.last >= 8 || s.last < s.first) return BLKIF_RSP_ERROR;
      nsec += s.last - s.first + 1;
    }
    if (r.sector + nsec > SECTORS) return BLKIF_RSP_ERROR;
    for (let i = 0; i < n; i++) {
      if (!reachable(mode, r.segs[i]!.kind, op === BLKIF_OP_READ)) return BLKIF_RSP_ERROR;
    }
    return BLKIF_RSP_OKAY;
  };
  switch (r.op) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
      return rw(r.op, false, 11);
    case BLKIF_OP_WRITE_BARRIER:
    case BLKIF_OP_FLUSH_DISKCACHE:
      return rw(BLKIF_OP_WRITE, true, 11);
    case BLKIF_OP_DISCARD:
      return r.sector + r.nrSectors <= SECTORS ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR;
    case BLKIF_OP_INDIRECT:
      if (r.indirectOp !== BLKIF_OP_READ && r.indirectOp !== BLKIF_OP_WRITE) return BLKIF_RSP_ERROR;
      return rw(r.indirectOp, false, 256);
    default:
      return BLKIF_RSP_EOPNOTSUPP;
  }
}

/** A connected raw frontend, a victim domain with a page granted to dom0, and the audit. */
async function hostileWorld(
  mode: BlkbackMode,
  ringRefOf?: "victim",
  extraKeys?: (ref: number, g: GnttabGuest, page: () => number) => Record<string, string>,
) {
  const w = world();
  w.dom0.maxPages += 256;
  const u = await w.bootDomU();
  const victim = await w.bootDomU();
  const img = makeImage(SECTORS, 3);
  dirs.push(img.dir);
  const touched: { mfn: number; write: boolean }[] = [];
  const back = new BlkBack(w.dom0Kernel, {
    image: img.path,
    mode,
    onTouch: (mfn, write) => touched.push({ mfn, write }),
  });
  await xenbusRegisterBackend(w.dom0Kernel, back).start();
  const ram = w.hv.machine.ram;
  // The victim grants one of its pages to dom0, so its grant reference is a live one.
  const vg = new GnttabGuest(w.hv, victim.domain);
  const vPage = w.hv.allocDomainPages(victim.domain);
  ram.frameBytes(vPage).fill(0x5a);
  let victimRef = vg.grantForeignAccess(0, vPage);
  const g = new GnttabGuest(w.hv, u.domain);
  // Make the victim's reference one the domU never granted.
  while (victimRef < 64) victimRef = vg.grantForeignAccess(0, vPage);
  const ringMfn = w.hv.allocDomainPages(u.domain);
  const raw = new RawFront(
    u.kernel,
    g,
    ringMfn,
    mode === "persistent",
    ringRefOf === "victim" ? victimRef : undefined,
    extraKeys && ((ref) => extraKeys(ref, g, () => w.hv.allocDomainPages(u.domain))),
  );
  await xenbusRegisterFrontend(u.kernel, raw).start();
  const { fe, be } = await w.addDevice(u.domain.domid, "vbd", XVDA);
  // Data pages: 8 granted read-write, 8 read-only; two indirect pages (rw and ro).
  const pages: number[] = [];
  const refs: Record<"rw" | "ro", number[]> = { rw: [], ro: [] };
  for (let i = 0; i < 16; i++) {
    const p = w.hv.allocDomainPages(u.domain);
    pages.push(p);
    const ro = i >= 8;
    refs[ro ? "ro" : "rw"].push(g.grantForeignAccess(0, p, ro));
  }
  const indPage = { rw: w.hv.allocDomainPages(u.domain), ro: w.hv.allocDomainPages(u.domain) };
  const indRef = {
    rw: g.grantForeignAccess(0, indPage.rw),
    ro: g.grantForeignAccess(0, indPage.ro, true),
  };
  const victimHash = () => {
    const parts: string[] = [];
    const owner = Int32Array.from(w.hv.frames.ownerKeys, (k) => ~k);
    for (let mfn = 0; mfn < owner.length; mfn++) {
      if (owner[mfn] === victim.domain.domid) parts.push(sha256(ram.frameBytes(mfn)));
    }
    return sha256(new TextEncoder().encode(parts.join()));
  };
  const refOf = (s: { kind: GrefKind; page: number }) =>
    s.kind === "rw" || s.kind === "ro"
      ? refs[s.kind][s.page]!
      : s.kind === "victim"
        ? victimRef
        : s.kind === "huge"
          ? 0xffff_fff0
          : 400 + s.page; // never granted by the domU
  /** Every frame blkback touched is dom0's or the domU's, never the victim's. */
  const audit = () => {
    const owner = Int32Array.from(w.hv.frames.ownerKeys, (k) => ~k);
    for (const t of touched) {
      const o = owner[t.mfn];
      expect(o === 0 || o === u.domain.domid, `blkback touched frame ${t.mfn} of domain ${o}`).toBe(
        true,
      );
    }
  };
  return { w, u, victim, back, raw, fe, be, refOf, indPage, indRef, victimHash, audit, touched };
}

type HW = Awaited<ReturnType<typeof hostileWorld>>;

function putReq(h: HW, r: Req): void {
  const ram = h.w.hv.machine.ram;
  h.raw.put((v, off) => {
    const [lo, hi] = r.id;
    if (r.op === BLKIF_OP_DISCARD) {
      writeDiscardRequest(v, off, r.flag, 0, lo, r.sector, r.nrSectors);
    } else if (r.op === BLKIF_OP_INDIRECT) {
      const kind = r.indirectKind;
      const page = kind === "ro" ? h.indPage.ro : h.indPage.rw;
      const bytes = ram.frameBytes(page);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, 4096);
      bytes.fill(0);
      r.segs.forEach((s, i) => {
        writeSegment(dv, i * 8, h.refOf(s), s.first, s.last);
      });
      const iref = kind === "rw" || kind === "ro" ? h.indRef[kind] : h.refOf({ kind, page: 0 });
      writeIndirectRequest(
        v,
        off,
        r.indirectOp,
        r.nseg ?? r.segs.length,
        0,
        lo,
        r.sector,
        [iref],
        1,
      );
    } else {
      writeRwRequest(v, off, r.op, r.nseg ?? r.segs.length, 0, lo, r.sector);
      r.segs.slice(0, 11).forEach((s, i) => {
        writeSegment(v, off + segmentOffset(i), h.refOf(s), s.first, s.last);
      });
    }
    v.setUint32(off + 12, hi, true); // id's high half
  });
}

const RUNS = LONG ? 300 : 25;

describe.each(["map", "copy", "persistent"] as const)(
  "hostile frontend, blkback in %s mode",
  (mode) => {
    it("gets blkback's status for every request, the backend never throws nor touches the victim", async () => {
      const h = await hostileWorld(mode);
      await until(async () => (await h.w.state(h.be)) === "4");
      const before = h.victimHash();
      let sent = 0;
      const seen = new Set<number>();
      await fc.assert(
        fc.asyncProperty(
          fc.array(req, { minLength: 1, maxLength: 12 }),
          fc.nat(20),
          async (rs, storm) => {
            const from = h.raw.responses.length;
            for (const r of rs) putReq(h, r);
            h.raw.push();
            for (let i = 0; i < storm; i++) h.raw.kick(); // a kick storm: nothing new to do
            sent += rs.length;
            await until(() => h.raw.responses.length === sent);
            rs.forEach((r, i) => {
              const got = h.raw.responses[from + i]!;
              expect(got.idLo).toBe(r.id[0]);
              expect(got.idHi).toBe(r.id[1]);
              expect(got.operation).toBe(r.op);
              expect(got.status, JSON.stringify(r)).toBe(expected(mode, r));
              seen.add(got.status);
            });
            h.audit();
          },
        ),
        { seed: 4242, numRuns: RUNS },
      );
      // The runs covered answered, refused and unsupported requests.
      expect([...seen].sort()).toEqual(
        [BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY].sort(),
      );
      expect(h.touched.length).toBeGreaterThan(0);
      expect(h.victimHash()).toBe(before);
      // No grant of the domU is left mapped by a non-persistent backend between requests.
      const maps: number[] = [];
      h.w.hv.slot("grant-table").forEachMapping((m) => {
        if (m.granterDomid === h.u.domain.domid && m.mapperDomid === 0) maps.push(m.ref);
      });
      // Only the ring stays mapped (and, in persistent mode, the persistent grants).
      if (mode === "persistent")
        expect(maps.length).toBe(1 + h.back.persistentGrants(h.u.domain.domid, XVDA));
      else expect(maps.length).toBe(1);
    });

    it("a req_prod far ahead of the consumer halts the ring; nothing else is answered", async () => {
      const h = await hostileWorld(mode);
      await until(async () => (await h.w.state(h.be)) === "4");
      const okReq: Req = {
        op: BLKIF_OP_READ,
        segs: [{ kind: "rw", page: 0, first: 0, last: 7 }],
        nseg: null,
        sector: 8,
        id: [1, 0],
        indirectOp: 0,
        indirectKind: "rw",
        flag: 0,
        nrSectors: 0,
      };
      putReq(h, okReq);
      h.raw.push();
      await until(() => h.raw.responses.length === 1);
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 33, max: 0xffff_ffff }), async (ahead) => {
          h.raw.sring.reqProd = (h.raw.front.reqProdPvt + ahead) >>> 0;
          h.raw.kick();
          await until(() => h.back.haltedRings > 0);
          for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
          expect(h.raw.responses.length).toBe(1);
        }),
        { seed: 99, numRuns: LONG ? 50 : 5 },
      );
      h.audit();
    });
  },
);

describe("a ring-ref the frontend did not grant", () => {
  it("(another domain's live grant reference) fails the connect: error node, Closing, no throw", async () => {
    const h = await hostileWorld("map", "victim");
    const errPath = `/local/domain/0/error/backend/vbd/${h.u.domain.domid}/${XVDA}/error`;
    await until(() => h.w.xs.exists(errPath));
    // Closing, and Closed once the frontend followed.
    await until(async () => (await h.w.state(h.be)) === "6");
    const err = await h.w.xs.read(errPath);
    expect(err).toMatch(/^22 mapping ring-ref/);
    expect(h.back.connected(h.u.domain.domid, XVDA)).toBe(false);
    expect(h.touched.length).toBe(0);
  });
});

describe("hostile transport keys", () => {
  const fatal = async (
    keys: (ref: number, g: GnttabGuest, page: () => number) => Record<string, string>,
    msg: RegExp,
  ) => {
    const h = await hostileWorld("map", undefined, keys);
    const errPath = `/local/domain/0/error/backend/vbd/${h.u.domain.domid}/${XVDA}/error`;
    await until(() => h.w.xs.exists(errPath));
    expect(await h.w.xs.read(errPath)).toMatch(msg);
    await until(async () => (await h.w.state(h.be)) === "6");
    expect(h.back.connected(h.u.domain.domid, XVDA)).toBe(false);
    expect(h.touched.length).toBe(0);
    // Nothing of the domU stays mapped by dom0.
    let left = 0;
    h.w.hv.slot("grant-table").forEachMapping((m) => {
      if (m.granterDomid === h.u.domain.domid) left++;
    });
    expect(left).toBe(0);
  };

  it("a two-page ring whose pages are not contiguous: -EINVAL, nothing left mapped", async () => {
    await fatal((ref, g, page) => {
      page(); // a gap, so the second page is not next to the first
      const other = g.grantForeignAccess(0, page());
      return { "ring-page-order": "1", "ring-ref0": String(ref), "ring-ref1": String(other) };
    }, /^22 mapping ring-ref/);
  });

  it("a ring-page-order above max-ring-page-order", async () => {
    await fatal(() => ({ "ring-page-order": "5" }), /^22 .*ring-page-order 5 too big/);
  });

  it("garbage in event-channel", async () => {
    await fatal(() => ({ "event-channel": "x7" }), /^22 reading .*event-channel/);
  });

  it("an unknown protocol", async () => {
    await fatal(() => ({ protocol: "x86_32-abi" }), /^38 unknown fe protocol x86_32-abi/);
  });
});

// ---- hostile backends ----

/** A backend that maps the frontend's ring and answers whatever the test says. */
class RawBack implements XenbusDriver {
  readonly type = "vbd";
  sring!: SharedRing;
  irq = -1;
  /** Request ids (low halves) and operations seen, in order. */
  readonly seen: { id: number; op: number }[] = [];
  private reqCons = 0;
  constructor(private readonly k: XenbusKernel) {}
  async probe(dev: XenbusDevice): Promise<number> {
    await dev.write("feature-max-indirect-segments", "32");
    return 0;
  }
  async connect(dev: XenbusDevice): Promise<number> {
    const ref = Number(await dev.readOtherend("ring-ref"));
    const port = Number(await dev.readOtherend("event-channel"));
    const { xenbusMapRing } = await import("../src/index");
    const m = xenbusMapRing(this.k.hv, this.k.domain, dev.otherendId, ref);
    if (typeof m === "number") return -22;
    this.sring = new SharedRing(this.k.hv.machine.ram.frameBytes(m.mfn), BLKIF_ENTRY_BYTES);
    this.irq = this.k.evtchn.bindInterdomainEvtchnToIrqHandler(dev.otherendId, port, () =>
      this.take(),
    );
    await dev.write("sectors", String(SECTORS));
    await dev.write("sector-size", "512");
    await dev.write("info", "0");
    return 0;
  }
  disconnect(): void {}
  private take(): void {
    while (this.reqCons !== this.sring.reqProd) {
      const off = this.sring.slotOffset(this.reqCons);
      this.seen.push({ id: this.sring.view.getUint32(off + 8, true), op: this.sring.bytes[off]! });
      this.reqCons = (this.reqCons + 1) >>> 0;
    }
  }
  /** Writes a response at rsp_prod (any id, op, status) and publishes it. */
  respond(idLo: number, idHi: number, op: number, status: number): void {
    const s = this.sring;
    const off = s.slotOffset(s.rspProd);
    s.view.setUint32(off, idLo, true);
    s.view.setUint32(off + 4, idHi, true);
    s.view.setUint8(off + 8, op);
    s.view.setInt16(off + 10, status, true);
    s.rspProd = (s.rspProd + 1) >>> 0;
  }
  kick(): void {
    this.k.evtchn.notifyRemoteViaIrq(this.irq);
    this.k.kick();
  }
}

type BackAct =
  | { t: "valid"; pick: number; status: number }
  | { t: "badId"; idLo: number; idHi: number }
  | { t: "badOp"; pick: number; op: number }
  | { t: "dup" }
  | { t: "jump"; ahead: number };

const backAct: fc.Arbitrary<BackAct> = fc.oneof(
  fc.record({
    t: fc.constant("valid" as const),
    pick: fc.nat(),
    status: fc.oneof(fc.constantFrom(0, -1, -2), fc.integer({ min: -32768, max: 32767 })),
  }),
  fc.record({
    t: fc.constant("badId" as const),
    idLo: fc.nat(0xffff_ffff),
    idHi: fc.nat(0xffff_ffff),
  }),
  fc.record({ t: fc.constant("badOp" as const), pick: fc.nat(), op: fc.nat(255) }),
  fc.record({ t: fc.constant("dup" as const) }),
  fc.record({ t: fc.constant("jump" as const), ahead: fc.integer({ min: 33, max: 0xffff_ffff }) }),
);

describe("hostile backend", () => {
  it("bogus ids, operations, duplicates and rsp_prod far ahead: the frontend never throws, never reads a page not its own, and ends every request", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(backAct, { minLength: 1, maxLength: 10 }), async (acts) => {
        const w = world();
        const u = await w.bootDomU();
        u.domain.maxPages += 256;
        const rb = new RawBack(w.dom0Kernel);
        await xenbusRegisterBackend(w.dom0Kernel, rb).start();
        const touched: number[] = [];
        const { BlkFront } = await import("../src/index");
        const front = new BlkFront(u.kernel, {
          gnttab: new GnttabGuest(w.hv, u.domain),
          persistent: false,
          onTouch: (mfn) => touched.push(mfn),
        });
        await xenbusRegisterFrontend(u.kernel, front).start();
        const { fe } = await w.addDevice(u.domain.domid, "vbd", XVDA);
        await until(async () => (await w.state(fe)) === "4");
        const disk = front.disk(XVDA)!;
        await disk.ready();
        const results: number[] = [];
        const jobs = [
          disk.read(0, 8).then((r) => results.push(r.status)),
          disk.write(8, new Uint8Array(64 * 1024)).then((s) => results.push(s)),
          disk.read(16, 1).then((r) => results.push(r.status)),
        ];
        await until(() => rb.seen.length === 3);
        const answered = new Set<number>();
        let bogus = false;
        for (const a of acts) {
          const open = rb.seen.filter((s) => !answered.has(s.id));
          if (a.t === "valid" && open.length > 0) {
            const s = open[a.pick % open.length]!;
            answered.add(s.id);
            rb.respond(s.id, 0, s.op, a.status);
          } else if (a.t === "badId") {
            const known = rb.seen.some((s) => s.id === a.idLo && !answered.has(s.id));
            if (known && a.idHi === 0) continue;
            rb.respond(a.idLo, a.idHi, 0, 0);
            bogus = true;
          } else if (a.t === "badOp") {
            const s = rb.seen[a.pick % rb.seen.length]!;
            if (a.op === s.op && !answered.has(s.id)) continue;
            rb.respond(s.id, 0, a.op, 0);
            bogus = true;
          } else if (a.t === "dup" && answered.size > 0) {
            const s = rb.seen.find((x) => answered.has(x.id))!;
            rb.respond(s.id, 0, s.op, 0);
            bogus = true;
          } else if (a.t === "jump") {
            rb.sring.rspProd = (rb.sring.rspProd + a.ahead) >>> 0;
            bogus = true;
          } else continue;
          rb.kick();
          await new Promise((r) => setImmediate(r));
          if (bogus) break;
        }
        if (!bogus) {
          // Answer the rest properly so every request ends.
          for (const s of rb.seen.filter((x) => !answered.has(x.id))) rb.respond(s.id, 0, s.op, 0);
          rb.kick();
        }
        await Promise.all(jobs);
        expect(results.length).toBe(3);
        expect(disk.state).toBe(bogus ? "error" : "connected");
        if (bogus) expect(disk.badResponses).toBe(1);
        const owner = Int32Array.from(w.hv.frames.ownerKeys, (k) => ~k);
        for (const mfn of touched) expect(owner[mfn]).toBe(u.domain.domid);
      }),
      { seed: 2026, numRuns: LONG ? 100 : 10 },
    );
  });
});
