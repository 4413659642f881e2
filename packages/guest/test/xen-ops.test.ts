import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_multicall,
  __HYPERVISOR_update_va_mapping,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  MMUEXT_INVLPG_MULTI,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_TLB_FLUSH_MULTI,
  UVMF_INVLPG,
  UVMF_LOCAL,
  UVMF_NONE,
} from "@hyperlab/abi";
import {
  createHypervisor,
  type Hypervisor,
  PGT_l1_page_table,
  PGT_l4_page_table,
  PGT_pinned,
} from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { assertFrameInvariants } from "@hyperlab/testkit";
import { describe, expect, it } from "vitest";
import {
  bootNativeKernel,
  bootXenPvKernel,
  MAP_FIXED,
  MC_BATCH,
  PROT_READ,
  PROT_WRITE,
  SIGKILL,
  spawnProcess,
  type XenMmuOps,
} from "../src/index";
import { xenBuild } from "./helpers";

/** Every hypercall the kernel makes, as Xen sees it: op, and for mmu_update its count. */
function record(hv: Hypervisor): string[] {
  const log: string[] = [];
  const orig = hv.hypercall.bind(hv);
  const name = (op: number, a: { count?: number; uops?: { cmd: number }[] }) =>
    op === __HYPERVISOR_mmu_update
      ? `mmu_update(${a.count})`
      : op === __HYPERVISOR_mmuext_op
        ? `mmuext(${a.uops![0].cmd})`
        : op === __HYPERVISOR_update_va_mapping
          ? "update_va_mapping"
          : `op${op}`;
  (hv as { hypercall: unknown }).hypercall = (v: never, op: number, args: never) => {
    if (op === __HYPERVISOR_multicall) {
      const entries = (args as { entries: { op: number; args: never }[] }).entries;
      log.push(`multicall[${entries.map((e) => name(e.op, e.args)).join(" ")}]`);
      // Inner calls go through the real dispatcher without being logged again.
      return orig(v, op, args);
    }
    if (!inMulticall) log.push(name(op, args));
    return orig(v, op, args);
  };
  let inMulticall = false;
  const wrapped = hv.hypercall;
  (hv as { hypercall: unknown }).hypercall = (v: never, op: number, args: never) => {
    if (op === __HYPERVISOR_multicall) {
      inMulticall = true;
      try {
        return wrapped(v, op, args);
      } finally {
        inMulticall = false;
      }
    }
    return wrapped(v, op, args);
  };
  return log;
}

function forkOf(pages: number, batching: boolean) {
  const { hv, kernel } = xenBuild(2048, batching);
  const p = spawnProcess(kernel);
  const a = p.mmap(pages * 4096, PROT_READ | PROT_WRITE);
  p.strided(a, pages, 4096, true, 1);
  const log = record(hv);
  const traps = kernel.counts.trappingStores;
  const child = p.fork();
  if (typeof child === "number") throw new Error(`fork: ${child}`);
  assertFrameInvariants(hv);
  return { hv, kernel, p, child, a, log, traps: kernel.counts.trappingStores - traps };
}

describe("Xen PV ops: what fork asks of Xen", () => {
  it("batching on: pin the child, RO + pin new tables, set entries, batch the PTEs, flush", () => {
    const { log, traps } = forkOf(8, true);
    expect(log).toEqual([
      `multicall[update_va_mapping mmuext(${MMUEXT_PIN_L4_TABLE}) update_va_mapping mmuext(${MMUEXT_PIN_L4_TABLE})]`,
      "update_va_mapping", // pud_alloc: the new L3 read-only
      "mmu_update(2)", // set_p4d: the pgd and the user pgd
      "update_va_mapping", // pmd_alloc
      "mmu_update(1)", // set_pud
      `multicall[update_va_mapping mmuext(${MMUEXT_PIN_L1_TABLE})]`, // pte_alloc: RO + pin
      "mmu_update(1)", // set_pmd
      "mmu_update(8)", // the 8 child PTEs, batched in lazy MMU mode
      `mmuext(${MMUEXT_TLB_FLUSH_LOCAL})`, // flush_tlb_mm(parent)
    ]);
    // ptep_set_wrprotect on the parent: a plain store on a read-only table, emulated by Xen.
    expect(traps).toBe(8);
  });

  it("batching off: no multicalls, and every PTE store traps to Xen", () => {
    const { log, traps } = forkOf(8, false);
    expect(log.some((l) => l.startsWith("multicall"))).toBe(false);
    expect(log).toHaveLength(12);
    expect(traps).toBe(16);
  });

  it("lazy mode flushes mmu_update batches of at most MC_ARGS / 16 = 32 requests", () => {
    const { log, kernel } = forkOf(100, true);
    const batches = log
      .filter((l) => l.startsWith("mmu_update("))
      .map((l) => Number(l.slice(11, -1)));
    expect(Math.max(...batches)).toBe(MC_BATCH);
    expect(batches.slice(-4)).toEqual([32, 32, 32, 4]);
    const c = (kernel.ops.mmu as XenMmuOps).counts;
    expect(c.hypercalls).toBeGreaterThan(0);
    expect(c.mmuUpdateRequests).toBeGreaterThanOrEqual(100);
  });

  it("page faults: update_va_mapping for the single entry, with the flush when one is needed", () => {
    const { hv, kernel, child, p, a } = forkOf(4, true);
    const log = record(hv);
    const flags: number[] = [];
    const real = hv.hypercall.bind(hv);
    (hv as { hypercall: unknown }).hypercall = (v: never, op: number, args: never) => {
      if (op === __HYPERVISOR_update_va_mapping) flags.push((args as { flags: number }).flags);
      return real(v, op, args);
    };
    expect(child.store(a, 2)).toBe(true); // COW: copy, then one update_va_mapping + INVLPG
    expect(log).toEqual([
      `multicall[mmuext(${MMUEXT_NEW_BASEPTR}) mmuext(15)]`,
      "update_va_mapping",
    ]);
    expect(flags).toEqual([UVMF_INVLPG | UVMF_LOCAL]);
    child.exit(0); // (its unpinning makes tables writable again with update_va_mapping too)
    flags.length = 0;
    expect(p.store(a, 3)).toBe(true); // the parent now has the only mapping: reuse in place
    expect(flags).toEqual([UVMF_INVLPG | UVMF_LOCAL]);
    const b = p.mmap(4096, PROT_READ | PROT_WRITE);
    const n = log.length;
    expect(p.store(b + 8, 1)).toBe(true); // demand zero: no flush needed
    expect(log.slice(n).filter((l) => l === "update_va_mapping")).toHaveLength(1);
    expect(flags.at(-1)).toBe(UVMF_NONE);
    expect(kernel.counts.cowCopies).toBe(1);
    expect(kernel.counts.cowReuses).toBe(1);
  });

  it("the child's tables are pinned, read-only to the kernel, and its CR3 loads through mmuext", () => {
    const { hv, kernel, child, a } = forkOf(4, true);
    const log = record(hv);
    expect(child.load(a)).toBe(1);
    expect(log[0]).toBe(`multicall[mmuext(${MMUEXT_NEW_BASEPTR}) mmuext(15)]`);
    const mm = child.mm!;
    const f = hv.frames;
    const mfn = kernel.xen!.p2m[mm.pgd];
    expect(f.typeOf(mfn)).toBe(PGT_l4_page_table);
    expect(f.typeInfo[mfn] & PGT_pinned).not.toBe(0);
    expect(kernel.pinned[mm.pgd]).toBe(1);
    const pt = kernel.ptePage(mm, a, false);
    expect(f.typeOf(kernel.xen!.p2m[pt])).toBe(PGT_l1_page_table);
    expect(() => kernel.rawStore(pt, 0, 0)).toThrow(/pinned/);
  });

  it("exit unpins everything and leaves no page-table type behind", () => {
    const { hv, kernel, p, child } = forkOf(16, true);
    child.exit(0);
    p.exit(0);
    assertFrameInvariants(hv);
    const f = hv.frames;
    let tables = 0;
    for (let pfn = 0; pfn < kernel.nrPfns; pfn++) {
      if (kernel.pinned[pfn] !== 0 && kernel.ptLevel[pfn] !== 0) tables++;
    }
    // Only the init tables (boot image tables and the direct map) stay pinned.
    let pinnedL1 = 0;
    for (const mfn of f.framesOf(1)) {
      if (f.typeOf(mfn) === PGT_l1_page_table) pinnedL1++;
    }
    expect(tables).toBeGreaterThan(0);
    expect(pinnedL1).toBeLessThan(tables);
  });

  it("hypercall errors surface as kernel errors with Xen's errno, never a throw", () => {
    const { kernel } = xenBuild(2048, true);
    const p = spawnProcess(kernel);
    const a = p.mmap(4096, PROT_READ | PROT_WRITE);
    p.store(a, 1);
    const mm = p.mm!;
    const pt = kernel.ptePage(mm, a, false);
    // An entry naming a frame that is not this domain's: Xen refuses it (get_page_from_l1e).
    kernel.ops.mmu.setPte(mm, pt, 7, 5 * 4096 + 7);
    expect(kernel.lastXenError).toEqual({ op: __HYPERVISOR_mmu_update, rc: -EBUSY });
    expect(kernel.takeError()).toBe(-EBUSY);
    expect(kernel.takeError()).toBe(0);
    expect(kernel.counts.kernelErrors).toBe(1);
    // Pinning an L1 that is still mapped writable by a user PTE: Xen says -EINVAL in a multicall.
    const data = kernel.entryPfn(kernel.readEntry(pt, (a / 4096) % 512));
    expect(data).toBeGreaterThanOrEqual(0);
    kernel.ops.mmu.allocPte(mm, data);
    expect(kernel.takeError()).toBe(-EINVAL);
    expect(kernel.stats.read("guest", "kernelErrors")).toBe(2);
  });
});

describe("Xen PV ops: isolation", () => {
  it("a hostile program cannot reach another domain's memory", () => {
    const w = xenBuild(2048, true);
    const { hv, kernel } = w;
    const p = spawnProcess(kernel);
    const a = p.mmap(4096, PROT_READ | PROT_WRITE);
    p.store(a, 0xcafe);
    // A second domain with its own kernel and a secret.
    const d2 = hv.createDomain({ domid: 2, maxVcpus: 1, maxPages: 2100 });
    const b2 = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d2, nrPages: 2048 });
    const k2 = bootXenPvKernel(hv, d2, { startInfoVa: b2.rsi });
    const q = spawnProcess(k2);
    const s = q.mmap(4096, PROT_READ | PROT_WRITE);
    q.store(s, 0x5ec2e7);
    // Hostile accesses from domain 1: kernel half, Xen's area, huge and negative addresses, wild sets.
    for (const va of [0x8880_0000_0000, 0x8000_0000_0000, 2 ** 48, -4, 1.5, 0xffff_8000_0000]) {
      const h = spawnProcess(kernel);
      expect(h.load(va)).toBe(-1);
      expect(h.signal).toBe(11);
    }
    const h = spawnProcess(kernel);
    const vas = new Float64Array(64).map((_, i) => (i * 0x1234_5678_9000) % 2 ** 47);
    expect(h.accessSet(vas, new Uint32Array(64).fill(0xbad))).toBeLessThan(64);
    expect(h.state).toBe("killed");
    expect(q.load(s)).toBe(0x5ec2e7);
    expect(p.load(a)).toBe(0xcafe);
    assertFrameInvariants(hv);
  });
});

describe("Xen PV ops: other vCPUs and the trap path", () => {
  it("flushTlbMulti names the vCPUs in a mask (Xen) or flushes each (native)", () => {
    for (const kind of ["xen", "native"] as const) {
      const machine = createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 1 });
      const hv = createHypervisor({
        machine,
        plugins: [kind === "xen" ? pvMmu() : nativeMmu()],
      }).boot();
      const d = hv.createDomain({ domid: 1, maxVcpus: 2, maxPages: 2100 });
      const k =
        kind === "xen"
          ? bootXenPvKernel(hv, d, {
              startInfoVa: buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 2048 }).rsi,
            })
          : bootNativeKernel(hv, d, { nrPages: 2048 });
      const p = spawnProcess(k);
      const a = p.mmap(4096, PROT_READ | PROT_WRITE);
      p.store(a, 1);
      const log = kind === "xen" ? record(hv) : [];
      k.ops.mmu.flushTlbMulti([1], p.mm!, a, a + 4096);
      k.ops.mmu.flushTlbMulti([1], p.mm!, 0, 2 ** 47);
      expect(k.takeError()).toBe(0);
      if (kind === "xen") {
        expect(log).toEqual([
          `mmuext(${MMUEXT_INVLPG_MULTI})`,
          `mmuext(${MMUEXT_TLB_FLUSH_MULTI})`,
        ]);
        expect(hv.stats.read("pv-mmu", "tlb_flushes")).toBeGreaterThan(0);
      } else {
        expect(hv.stats.read("native-mmu", "invlpg")).toBe(1);
      }
    }
  });

  it("a trapped store Xen will not emulate is a kernel error, not a throw", () => {
    const { kernel } = xenBuild(2048, false);
    const p = spawnProcess(kernel);
    const a = p.mmap(4096, PROT_READ | PROT_WRITE);
    p.store(a, 1);
    const pt = kernel.ptePage(p.mm!, a, false);
    // A PTE naming a free frame: ptwr validates it like mmu_update and refuses.
    expect(kernel.cpuStoreEntry(pt, 9, 7 * 4096 + 7)).toBe(false);
    expect(kernel.lastXenError).toEqual({ op: -1, rc: -EFAULT });
    expect(kernel.takeError()).toBe(-EFAULT);
  });

  it("a refused hypercall inside a system call is that call's errno; inside a fault, SIGKILL", () => {
    const { hv, kernel } = xenBuild(2048, true);
    const p = spawnProcess(kernel);
    const a = p.mmap(8 * 4096, PROT_READ | PROT_WRITE);
    p.strided(a, 8, 4096, true, 1);
    const real = hv.hypercall.bind(hv);
    let refuse = 0;
    (hv as { hypercall: unknown }).hypercall = (v: never, op: number, args: never) =>
      refuse > 0 && op === __HYPERVISOR_mmu_update && refuse-- > 0 ? -ENOMEM : real(v, op, args);
    refuse = 1;
    expect(p.munmap(a, 4096)).toBe(-ENOMEM);
    refuse = 1;
    expect(p.mprotect(a + 4096, 4096, PROT_READ)).toBe(-ENOMEM);
    refuse = 1;
    expect(p.mmap(4096, PROT_READ, MAP_FIXED, a + 2 * 4096)).toBe(-ENOMEM);
    refuse = 1;
    expect(typeof p.fork()).toBe("number");
    expect(p.state).toBe("running");
    const q = spawnProcess(kernel);
    const z = q.mmap(4096, PROT_READ | PROT_WRITE);
    refuse = 100;
    expect(q.store(z, 1)).toBe(false);
    expect(q.signal).toBe(SIGKILL);
    refuse = 0;
    expect(kernel.counts.kernelErrors).toBeGreaterThanOrEqual(5);
  });
});
