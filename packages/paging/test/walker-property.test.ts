/*
 * Random page-table trees in a Ram: the walker's answer must equal a slow reference
 * translation written here from the SDM, independently of src/ (BigInt entries, no shared
 * helpers), including the A/D flags it leaves in memory and the memory references it counts.
 * A second property checks that the page-walk caches change nothing but the reference count.
 */
import { Ram } from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  createPagingMode,
  FAULT_NONE,
  FAULT_NOT_PRESENT,
  FAULT_PROTECTION,
  FAULT_RESERVED,
  PageWalkCache,
  PERM_RW,
  PERM_USER,
  pteIndex,
  STEP_FAULT,
  STEP_TABLE,
  WalkResult,
  walk,
  walkBegin,
  walkFinish,
  walkStep,
} from "../src/index";
import { fcParams } from "./helpers";

interface Cfg {
  levels: 4 | 5;
  maxPhysAddr: number;
  nxe: boolean;
  wp: boolean;
  gbPages: boolean;
}

interface Op {
  path: number[]; // index per level, top first (small pool so paths share tables)
  leafLevel: number; // 1, 2 or 3
  flags: { lo: number; hi: bigint }[]; // per level, top first
  mfn: number;
}

const RAM_BYTES = 8 * 2 ** 20;
const ROOT = 0x10;

const hiArb = fc.constantFrom(
  0n,
  0n,
  0n,
  0n,
  0n,
  0n,
  1n << 63n, // XD
  1n << 50n, // reserved below MAXPHYADDR 52
  1n << 42n, // reserved below MAXPHYADDR 43
  0x7ffn << 52n, // software bits
  (1n << 63n) | (1n << 55n),
);
const entryFlagsArb = fc.record({
  lo: fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 0xfff }), weight: 1 },
    { arbitrary: fc.constantFrom(0x007, 0x027, 0x067, 0x167, 0x003, 0x005, 0x001), weight: 5 },
  ),
  hi: hiArb,
});
const opArb = fc.record({
  path: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 5, maxLength: 5 }),
  leafLevel: fc.constantFrom(1, 1, 1, 2, 3),
  flags: fc.array(entryFlagsArb, { minLength: 5, maxLength: 5 }),
  mfn: fc.integer({ min: 0, max: 2 ** 28 - 1 }),
});
/** Ops whose entries mostly allow access (present, RW/US, some with A and D already set). */
const goodOpArb = fc.record({
  path: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 5, maxLength: 5 }),
  leafLevel: fc.constantFrom(1, 1, 1, 2, 3),
  flags: fc.array(
    fc.oneof(
      {
        arbitrary: fc.record({
          lo: fc.constantFrom(0x007, 0x027, 0x067, 0x167, 0x005, 0x025),
          hi: fc.constantFrom(0n, 0n, 0n, 1n << 63n),
        }),
        weight: 6,
      },
      { arbitrary: entryFlagsArb, weight: 1 },
    ),
    { minLength: 5, maxLength: 5 },
  ),
  mfn: fc.integer({ min: 0, max: 2 ** 28 - 1 }),
});
const cfgArb = fc.record({
  levels: fc.constantFrom(4 as const, 5 as const),
  maxPhysAddr: fc.constantFrom(43, 46, 52),
  nxe: fc.boolean(),
  wp: fc.boolean(),
  gbPages: fc.boolean(),
});
const accessArb = fc.record({
  path: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 5, maxLength: 5 }),
  offset: fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 0xfff }), weight: 3 },
    { arbitrary: fc.integer({ min: 0, max: 0x1ff_ffff }), weight: 1 },
  ),
  bits: fc.integer({ min: 0, max: 7 }).map((b) => (b & 3) * 2 + ((b & 4) << 2)), // W, U, I
});

function vaOf(path: number[], levels: number, offset: bigint): bigint {
  let va = 0n;
  for (let i = 0; i < levels; i++) va = (va << 9n) | BigInt(path[5 - levels + i]);
  return (va << 12n) + offset;
}

/** Builds the tree: tables are fresh frames from ROOT + 1 on; flags and leaves are random. */
function build(ram: Ram, cfg: Cfg, ops: Op[]): void {
  let next = ROOT + 1;
  const children = new Map<number, number>(); // entry address -> child table frame
  for (const op of ops) {
    let table = ROOT;
    for (let level: number = cfg.levels; level >= 1; level--) {
      const idx = op.path[5 - level];
      const addr = table * 4096 + idx * 8;
      const f = op.flags[5 - level];
      if (level === op.leafLevel) {
        // Large leaves mostly aligned (PAT in bit 0 of the frame field), sometimes not.
        let mfn = op.mfn;
        const low = level === 2 ? 0x1ff : level === 3 ? 0x3ffff : 0;
        if (low !== 0 && mfn % 4 !== 3) mfn = mfn - (mfn & low) + ((mfn >> 2) & 1);
        let e = (BigInt(mfn) << 12n) | BigInt(f.lo) | f.hi;
        if (level > 1) e |= 0x80n; // PS
        if (!children.has(addr)) ram.writeU64(addr, e);
        break;
      }
      let child = children.get(addr);
      if (child === undefined) {
        if (next * 4096 >= RAM_BYTES) break;
        child = next++;
        children.set(addr, child);
        ram.writeU64(addr, (BigInt(child) << 12n) | BigInt(f.lo & ~0x80) | f.hi);
      }
      table = child;
    }
  }
}

interface RefResult {
  ok: boolean;
  kind: number;
  level: number;
  errorCode: number;
  maddr: bigint;
  pageShift: number;
  reads: number;
  writes: Map<bigint, bigint>;
}

/** The SDM's 4/5-level translation, slowly, with BigInt. */
function reference(ram: Ram, cfg: Cfg, root: number, va: bigint, access: number): RefResult {
  const nrFrames = BigInt(ram.nrFrames);
  let table = BigInt(root);
  let rw = true;
  let us = true;
  let xd = false;
  const used: [number, bigint, bigint][] = [];
  const code = access & (cfg.nxe ? 0x16 : 0x06);
  const res: RefResult = {
    ok: false,
    kind: 0,
    level: 0,
    errorCode: 0,
    maddr: 0n,
    pageShift: 0,
    reads: 0,
    writes: new Map(),
  };
  for (let level: number = cfg.levels; level >= 1; level--) {
    const idx = (va >> BigInt(12 + 9 * (level - 1))) & 511n;
    const addr = table * 4096n + idx * 8n;
    const e = table < nrFrames ? ram.readU64(Number(addr)) : 0n;
    res.reads++;
    used.push([level, addr, e]);
    if ((e & 1n) === 0n) {
      return { ...res, kind: FAULT_NOT_PRESENT, level, errorCode: code };
    }
    const ps = level > 1 && ((e >> 7n) & 1n) === 1n;
    let rsvd =
      ((e >> BigInt(cfg.maxPhysAddr)) & ((1n << BigInt(52 - cfg.maxPhysAddr)) - 1n)) !== 0n;
    if (!cfg.nxe && e >> 63n === 1n) rsvd = true;
    if (ps && level >= 4) rsvd = true;
    if (ps && level === 3 && !cfg.gbPages) rsvd = true;
    if (ps && level === 3 && ((e >> 13n) & ((1n << 17n) - 1n)) !== 0n) rsvd = true;
    if (ps && level === 2 && ((e >> 13n) & 0xffn) !== 0n) rsvd = true;
    if (rsvd) return { ...res, kind: FAULT_RESERVED, level, errorCode: code | 0x9 };
    rw &&= ((e >> 1n) & 1n) === 1n;
    us &&= ((e >> 2n) & 1n) === 1n;
    xd ||= cfg.nxe && e >> 63n === 1n;
    if (level === 1 || ps) {
      const shift = 12 + 9 * (level - 1);
      const mask = (1n << BigInt(shift)) - 1n;
      res.maddr = (e & ((1n << 52n) - 1n) & ~mask) | (va & mask);
      res.pageShift = shift;
      break;
    }
    table = (e >> 12n) & ((1n << 40n) - 1n);
  }
  const write = (access & 2) !== 0;
  const user = (access & 4) !== 0;
  const fetch = (access & 16) !== 0;
  let deny = false;
  if (user && !us) deny = true;
  if (write && !rw && (user || cfg.wp)) deny = true;
  if (fetch && xd) deny = true;
  if (deny) return { ...res, kind: FAULT_PROTECTION, errorCode: code | 1 };
  res.ok = true;
  for (let i = 0; i < used.length; i++) {
    const [, addr, e] = used[i];
    const leaf = i === used.length - 1;
    const nv = e | 0x20n | (leaf && write ? 0x40n : 0n);
    if (nv !== e) res.writes.set(addr, nv);
  }
  return res;
}

describe("walker vs an independent reference translation (property)", () => {
  it("agrees on translations, faults, A/D flags and memory references", () => {
    const seen = new Map<string, number>();
    const note = (k: string) => seen.set(k, (seen.get(k) ?? 0) + 1);
    fc.assert(
      fc.property(
        cfgArb,
        fc.array(opArb, { minLength: 1, maxLength: 12 }),
        fc.array(accessArb, { minLength: 1, maxLength: 12 }),
        (cfg, ops, accesses) => {
          const ram = new Ram({ bytes: RAM_BYTES });
          build(ram, cfg, ops);
          const mode = createPagingMode(cfg);
          const out = new WalkResult();
          // Half the accesses go to paths the ops built, half to random ones.
          const all = accesses.map((a, i) =>
            i % 2 === 0 ? { ...a, path: ops[i % ops.length].path } : a,
          );
          for (const a of all) {
            const va = vaOf(a.path, cfg.levels, BigInt(a.offset));
            const ref = reference(ram, cfg, ROOT, va, a.bits);
            const before = new Map([...ref.writes.keys()].map((k) => [k, ram.readU64(Number(k))]));
            const ok = walk(ram, ROOT, Number(va), a.bits, mode, out);
            expect(ok).toBe(ref.ok);
            note(ok ? `ok${out.pageShift}` : `fault${out.fault}`);
            expect(out.reads).toBe(ref.reads);
            expect(out.writes).toBe(ref.writes.size);
            if (ok) {
              expect(BigInt(out.maddr)).toBe(ref.maddr);
              expect(out.pageShift).toBe(ref.pageShift);
              for (const [addr, v] of ref.writes) {
                expect(before.get(addr)).not.toBe(v);
                expect(ram.readU64(Number(addr))).toBe(v);
              }
            } else {
              expect(out.fault).toBe(ref.kind);
              expect(out.errorCode).toBe(ref.errorCode);
              if (ref.kind !== FAULT_PROTECTION) expect(out.faultLevel).toBe(ref.level);
            }
          }
        },
      ),
      fcParams(300),
    );
    // The generator reaches every outcome: each page size and each fault kind.
    for (const k of ["ok12", "ok21", "ok30", "fault1", "fault2", "fault3"]) {
      expect(seen.get(k) ?? 0, k).toBeGreaterThan(0);
    }
  });

  it("page-walk caches change the reference count, never the answer", () => {
    fc.assert(
      fc.property(
        cfgArb,
        fc.array(opArb, { minLength: 1, maxLength: 12 }),
        fc.array(accessArb, { minLength: 1, maxLength: 24 }),
        (cfg, ops, accesses) => {
          const plain = new Ram({ bytes: RAM_BYTES });
          const cached = new Ram({ bytes: RAM_BYTES });
          build(plain, cfg, ops);
          build(cached, cfg, ops);
          const mode = createPagingMode(cfg);
          const pwc = new PageWalkCache({
            pml5e: { sets: 1, ways: 1 },
            pml4e: { sets: 1, ways: 2 },
            pdpte: { sets: 2, ways: 2 },
            pde: { sets: 2, ways: 2, replacement: "plru" },
          });
          const a1 = new WalkResult();
          const a2 = new WalkResult();
          for (const [i, a] of accesses.entries()) {
            const path = i % 2 === 0 ? ops[i % ops.length].path : a.path;
            const va = Number(vaOf(path, cfg.levels, BigInt(a.offset)));
            const ok = walk(plain, ROOT, va, a.bits, mode, a1);
            expect(walk(cached, ROOT, va, a.bits, mode, a2, pwc, 7)).toBe(ok);
            expect(a2.reads).toBeLessThanOrEqual(a1.reads);
            expect(a2.reads).toBe(
              a1.reads - (a2.pwcLevel === 0 ? 0 : cfg.levels - a2.pwcLevel + 1),
            );
            // The levels the cached walk read hold what the plain walk read there.
            for (let l = a2.startLevel; l > a2.startLevel - a2.reads; l--) {
              expect([a2.entryMaddr[l], a2.entryLo[l], a2.entryHi[l]]).toEqual([
                a1.entryMaddr[l],
                a1.entryLo[l],
                a1.entryHi[l],
              ]);
            }
            if (ok) {
              expect(a2.maddr).toBe(a1.maddr);
              expect(a2.perms).toBe(a1.perms);
            } else {
              expect(a2.fault).toBe(a1.fault);
              expect(a2.errorCode).toBe(a1.errorCode);
            }
          }
          // Same memory afterwards: the A/D flags skipped under a cached entry were set.
          const differ: number[] = [];
          for (let f = ROOT; f < ROOT + 200; f++) {
            const x = Buffer.from(cached.readBytes(f * 4096, 4096));
            if (!x.equals(plain.readBytes(f * 4096, 4096))) differ.push(f);
          }
          expect(differ).toEqual([]);
        },
      ),
      fcParams(150),
    );
  });

  it("a walk through the page-walk caches is walkStep from the cached entry down, field by field", () => {
    // The reference: a second cache fed the same walks, probed with lookup, then walkBegin
    // at the level below the hit with its rights, walkStep per level, walkFinish and fill.
    // Every field, per-level array, total, cache counter and A/D flag must agree, on the
    // walker's paths from a PDE-cache hit (finished early or not) as on the others.
    let fromPde = 0;
    fc.assert(
      fc.property(
        cfgArb,
        fc.array(goodOpArb, { minLength: 1, maxLength: 12 }),
        fc.array(accessArb, { minLength: 1, maxLength: 24 }),
        fc.constantFrom("lru" as const, "plru" as const),
        (cfg, ops, accesses, replacement) => {
          const a = new Ram({ bytes: RAM_BYTES });
          const b = new Ram({ bytes: RAM_BYTES });
          build(a, cfg, ops);
          build(b, cfg, ops);
          const mode = createPagingMode(cfg);
          const geometry = {
            pml5e: { sets: 1, ways: 1 },
            pml4e: { sets: 1, ways: 2 },
            pdpte: { sets: 2, ways: 2 },
            pde: { sets: 2, ways: 2, replacement },
          };
          const pwcW = new PageWalkCache(geometry);
          const pwcS = new PageWalkCache(geometry);
          const w = new WalkResult();
          const s = new WalkResult();
          for (const [i, acc] of accesses.entries()) {
            const path = i % 4 !== 3 ? ops[i % ops.length].path : acc.path;
            const va = Number(vaOf(path, cfg.levels, BigInt(acc.offset)));
            const ok = walk(a, ROOT, va, acc.bits, mode, w, pwcW, 3);
            let table = ROOT;
            let level: number = cfg.levels;
            let perms = PERM_RW | PERM_USER;
            const hit = pwcS.lookup(va, 3, cfg.levels);
            if (hit) {
              level = pwcS.hitLevel - 1;
              table = pwcS.hitMfn;
              perms = pwcS.hitPerms;
            }
            walkBegin(s, va, acc.bits, level, perms);
            if (hit) s.pwcLevel = pwcS.hitLevel;
            let r = walkStep(b, table, pteIndex(va, level), level, mode, s);
            while (r === STEP_TABLE) {
              table = s.nextMfn;
              level--;
              r = walkStep(b, table, pteIndex(va, level), level, mode, s);
            }
            const ok2 = r !== STEP_FAULT && walkFinish(b, mode, s);
            if (ok2 && s.startLevel > s.leafLevel) pwcS.fill(va, 3, s);
            expect(ok2).toBe(ok);
            if (ok && w.pwcLevel === 2) fromPde++;
            const fields = (x: WalkResult) => [
              x.ok,
              x.fault,
              x.errorCode,
              x.faultLevel,
              x.reads,
              x.writes,
              x.startLevel,
              x.pwcLevel,
              x.leafLevel,
              x.vaLo,
              x.access,
            ];
            expect(fields(w)).toEqual(fields(s));
            for (let l = w.startLevel; l > w.startLevel - w.reads; l--) {
              expect([w.entryMaddr[l], w.entryLo[l], w.entryHi[l]]).toEqual([
                s.entryMaddr[l],
                s.entryLo[l],
                s.entryHi[l],
              ]);
              if (l > w.startLevel - w.reads + 1 || ok || w.fault === FAULT_PROTECTION) {
                expect(w.levelPerms[l]).toBe(s.levelPerms[l]);
              }
            }
            if (ok) {
              expect([w.maddr, w.pageMfn, w.pageShift, w.perms, w.leafLo, w.leafHi]).toEqual([
                s.maddr,
                s.pageMfn,
                s.pageShift,
                s.perms,
                s.leafLo,
                s.leafHi,
              ]);
            }
          }
          expect([w.totalWalks, w.totalReads, w.totalWrites, w.totalFaults]).toEqual([
            s.totalWalks,
            s.totalReads,
            s.totalWrites,
            s.totalFaults,
          ]);
          expect([...pwcW.counters]).toEqual([...pwcS.counters]);
          for (let f = ROOT; f < ROOT + 200; f++) {
            const x = Buffer.from(a.readBytes(f * 4096, 4096));
            expect(x.equals(b.readBytes(f * 4096, 4096)), `frame ${f}`).toBe(true);
          }
        },
      ),
      fcParams(150),
    );
    // The generator reaches walks that succeed from a PDE-cache hit.
    expect(fromPde).toBeGreaterThan(5);
  });

  it("walkBegin / walkStep / walkFinish compose to exactly what walk does", () => {
    fc.assert(
      fc.property(
        cfgArb,
        fc.array(opArb, { minLength: 1, maxLength: 12 }),
        fc.array(accessArb, { minLength: 1, maxLength: 12 }),
        (cfg, ops, accesses) => {
          const a = new Ram({ bytes: RAM_BYTES });
          const b = new Ram({ bytes: RAM_BYTES });
          build(a, cfg, ops);
          build(b, cfg, ops);
          const mode = createPagingMode(cfg);
          const w = new WalkResult();
          const s = new WalkResult();
          for (const [i, acc] of accesses.entries()) {
            const path = i % 2 === 0 ? ops[i % ops.length].path : acc.path;
            const va = Number(vaOf(path, cfg.levels, BigInt(acc.offset)));
            const ok = walk(a, ROOT, va, acc.bits, mode, w);
            walkBegin(s, va, acc.bits, cfg.levels, PERM_RW | PERM_USER);
            let table = ROOT;
            let level: number = cfg.levels;
            let r = walkStep(b, table, pteIndex(va, level), level, mode, s);
            while (r === STEP_TABLE) {
              table = s.nextMfn;
              level--;
              r = walkStep(b, table, pteIndex(va, level), level, mode, s);
            }
            const ok2 = r !== STEP_FAULT && walkFinish(b, mode, s);
            expect(ok2).toBe(ok);
            expect([s.fault, s.errorCode, s.faultLevel, s.reads, s.writes]).toEqual([
              w.fault,
              w.errorCode,
              w.faultLevel,
              w.reads,
              w.writes,
            ]);
            // The per-level arrays of every level read; the rights of every level that passed.
            const lowest = cfg.levels - w.reads + 1;
            for (let l = cfg.levels; l >= lowest; l--) {
              expect([s.entryMaddr[l], s.entryLo[l], s.entryHi[l]]).toEqual([
                w.entryMaddr[l],
                w.entryLo[l],
                w.entryHi[l],
              ]);
              if (l > lowest || w.fault === FAULT_NONE || w.fault === FAULT_PROTECTION) {
                expect(s.levelPerms[l]).toBe(w.levelPerms[l]);
              }
            }
            if (ok) {
              expect([s.maddr, s.pageMfn, s.pageShift, s.perms, s.leafLo, s.leafHi]).toEqual([
                w.maddr,
                w.pageMfn,
                w.pageShift,
                w.perms,
                w.leafLo,
                w.leafHi,
              ]);
            }
          }
          expect([s.totalWalks, s.totalReads, s.totalWrites, s.totalFaults]).toEqual([
            w.totalWalks,
            w.totalReads,
            w.totalWrites,
            w.totalFaults,
          ]);
        },
      ),
      fcParams(150),
    );
  });
});
