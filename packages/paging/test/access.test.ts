import { Ram } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import {
  ACCESS_FETCH,
  ACCESS_USER,
  ACCESS_WRITE,
  accessDenied,
  CpuTlbs,
  checkAccess,
  createPagingMode,
  PERM_DIRTY,
  PERM_NX,
  PERM_RW,
  PERM_USER,
  Tlb,
  tlbGrants,
  WalkResult,
  walk,
} from "../src/index";
import { expectPagingError, TableBuilder } from "./helpers";

const MODES = [
  createPagingMode({ wp: true, nxe: true }),
  createPagingMode({ wp: false, nxe: true }),
  createPagingMode({ wp: true, nxe: false }),
];
/** Every access: read, write, fetch, in supervisor and user mode. */
const ACCESSES = [0, ACCESS_WRITE, ACCESS_FETCH].flatMap((a) => [a, a | ACCESS_USER]);

describe("the one access-rights check", () => {
  it("checkAccess, accessDenied and tlbGrants agree on every rights, access and mode", () => {
    let grants = 0;
    for (const m of MODES) {
      for (let perms = 0; perms < 16; perms++) {
        const p =
          (perms & 1 ? PERM_RW : 0) |
          (perms & 2 ? PERM_USER : 0) |
          (perms & 4 ? PERM_NX : 0) |
          (perms & 8 ? PERM_DIRTY : 0);
        for (const a of ACCESSES) {
          const c = checkAccess(p, a, m);
          expect(accessDenied(p, a, m)).toBe(c > 0);
          expect(tlbGrants(p, a, m)).toBe(c === 0);
          if (c === 0) grants++;
        }
      }
    }
    expect(grants).toBeGreaterThan(0);
  });

  it("a TLB hit grants exactly what the walk that filled it grants (no-execute included)", () => {
    const va = 0x40_0000;
    for (const m of MODES) {
      for (let leaf = 0; leaf < 16; leaf++) {
        const ram = new Ram({ bytes: 4 * 2 ** 20 });
        const b = new TableBuilder(ram, 0x10);
        const flags =
          0x1n | (leaf & 1 ? 0x2n : 0n) | (leaf & 2 ? 0x4n : 0n) | (leaf & 8 ? 0x40n : 0n);
        b.map4k(va, 0x200, flags | (leaf & 4 ? 1n << 63n : 0n));
        for (const fill of ACCESSES) {
          const out = new WalkResult();
          if (!walk(ram, b.root, va, fill, m, out, null)) continue;
          const tlb = new Tlb({ pwc: false });
          tlb.insertWalk(out, 0);
          expect(tlb.lookup(va, 0)).toBe(true);
          for (const a of ACCESSES) {
            const probe = new WalkResult();
            const walkOk = walk(ram, b.root, va, a, m, probe, null);
            // A hit may only serve what a walk allows; what it refuses, a walk decides.
            if (tlbGrants(tlb.hitPerms, a, m)) expect(walkOk).toBe(true);
            if (!walkOk) expect(tlbGrants(tlb.hitPerms, a, m)).toBe(false);
            if (walkOk && (a & ACCESS_WRITE) === 0)
              expect(tlbGrants(tlb.hitPerms, a, m)).toBe(true);
          }
        }
      }
    }
  });
});

describe("CpuTlbs: one TLB per CPU", () => {
  it("makes a CPU's TLB once, on first use, and flushes them all", () => {
    const t = new CpuTlbs({ pwc: false });
    expect(t.peek(3)).toBeUndefined();
    const a = t.get(3);
    expect(t.of(3)).toBe(a);
    expect(t.peek(3)).toBe(a);
    expect(t.byCpu[3]).toBe(a);
    expect(t.byCpu[2]).toBeUndefined();
    expect(t.of(0)).not.toBe(a);
    a.insert(0x1000, 0, 7, 12, PERM_RW);
    t.flushAll();
    expect(a.lookup(0x1000, 0)).toBe(false);
    const seen: number[] = [];
    t.forEach((_, cpu) => {
      seen.push(cpu);
    });
    expect(seen).toEqual([0, 3]);
  });

  it("holds no TLB without a configuration, and rejects bad ones and bad CPUs", () => {
    const none = new CpuTlbs(null);
    expect(none.of(0)).toBeNull();
    expectPagingError(() => none.get(0), "TLB_BAD_CONFIG");
    expectPagingError(() => new CpuTlbs({ levels: [] }), "TLB_BAD_CONFIG");
    expectPagingError(() => new CpuTlbs({}).of(-1), "TLB_BAD_CPU");
  });
});
