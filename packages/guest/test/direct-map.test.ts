// The kernel's direct map after boot: every pfn mapped at PAGE_OFFSET + pfn * 4096; on a CPU
// with PSE a 2 MiB block that is all the kernel's is one 2 MiB page (as Linux's
// init_memory_mapping), elsewhere and under Xen PV (no PSE) 4 KiB pages.
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { describe, expect, it } from "vitest";
import {
  bootNativeKernel,
  defineGuestPlugin,
  E_PRESENT,
  E_PSE,
  E_RW,
  type GuestKernel,
  type GuestPlugin,
  PAGE_OFFSET,
} from "../src/index";
import { xenBuild } from "./helpers";

interface Leaf {
  pfn: number;
  level: number;
  writable: boolean;
}

/** The direct map's leaf for `pfn`, read from the init mm's tables as the CPU walks them. */
function directMapLeaf(k: GuestKernel, pfn: number): Leaf | null {
  const va = PAGE_OFFSET + pfn * 4096;
  let table = k.initMm.pgd;
  for (let level = 4; level >= 1; level--) {
    const e = k.readEntry(table, Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512);
    if ((e & E_PRESENT) === 0) return null;
    const next = k.entryPfn(e);
    if (level === 1 || (level === 2 && (e & E_PSE) !== 0)) {
      return { pfn: next + (level === 2 ? pfn % 512 : 0), level, writable: (e & E_RW) !== 0 };
    }
    table = next;
  }
  return null;
}

/** A native kernel of `nrPages` pages, and its pfns: the frames its domain got at boot (pfn == mfn). */
function nativeKernel(
  nrPages: number,
  plugins: GuestPlugin[] = [],
): { k: GuestKernel; pfns: number[] } {
  const machine = createMachine({ ramBytes: 128 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: nrPages + 16 });
  const before = Int32Array.from(hv.frames.ownerKeys, (k) => ~k);
  const k = bootNativeKernel(hv, d, { nrPages, plugins });
  const pfns: number[] = [];
  for (let p = 0; p < hv.frames.nrFrames; p++)
    if (hv.frames.ownerOf(p) === 1 && before[p] !== 1) pfns.push(p);
  return { k, pfns };
}

describe("the direct map", () => {
  it("natively maps every pfn, a whole 2 MiB block with one 2 MiB page", () => {
    const { k, pfns } = nativeKernel(4096);
    expect(pfns.length).toBe(4096);
    const mine = new Set(pfns);
    const blocks = new Map<number, number>();
    for (const p of pfns)
      blocks.set(Math.floor(p / 512), (blocks.get(Math.floor(p / 512)) ?? 0) + 1);
    let large = 0;
    for (const p of pfns) {
      const leaf = directMapLeaf(k, p);
      expect(leaf?.pfn).toBe(p);
      const whole = blocks.get(Math.floor(p / 512)) === 512;
      expect(leaf?.level).toBe(whole ? 2 : 1);
      if (whole) {
        large++;
        expect(leaf?.writable).toBe(true);
      } else {
        // A 4 KiB alias of a page table is read-only, as before.
        expect(leaf?.writable).toBe(k.ptLevel[p] === 0);
      }
    }
    // 4096 contiguous pages hold at least seven whole blocks.
    expect(large).toBeGreaterThanOrEqual(7 * 512);
    // A pfn the kernel does not have is not in a 4 KiB-mapped block's table.
    const partial = [...blocks].find(([, n]) => n < 512);
    if (partial !== undefined) {
      const [b] = partial;
      for (let p = b * 512; p < b * 512 + 512; p++)
        if (!mine.has(p)) expect(directMapLeaf(k, p)).toBeNull();
    }
  });

  it("keeps 4 KiB pages on a CPU without PSE", () => {
    const noPse = defineGuestPlugin({
      name: "no-pse",
      provides: ["cpu"],
      setup(ctx) {
        const native = ctx.group("cpu");
        const cpu = Object.create(native) as typeof native;
        cpu.cpuid = (leaf, out) => {
          native.cpuid(leaf, out);
          if (leaf === 1) out[3] = 0;
        };
        ctx.provide("cpu", cpu);
      },
    });
    const { k, pfns } = nativeKernel(4096, [noPse]);
    for (const p of pfns) {
      const leaf = directMapLeaf(k, p);
      expect(leaf).toEqual({ pfn: p, level: 1, writable: k.ptLevel[p] === 0 });
    }
  });

  it("under Xen PV maps every pfn with a 4 KiB page, page tables read-only", () => {
    const { kernel: k } = xenBuild(2048);
    for (let p = 0; p < k.xen!.nrPages; p++) {
      const leaf = directMapLeaf(k, p);
      expect(leaf?.level).toBe(1);
      expect(leaf?.pfn).toBe(p);
      expect(leaf?.writable).toBe(k.ptLevel[p] === 0);
    }
  });
});
