/*
 * The TLB shootdown study: what it costs a 2-vCPU guest to take a mapping away from memory
 * both vCPUs touched (munmap, mprotect), on Xen PV, on nested paging and on bare metal.
 *
 * - Xen PV (Linux's xen_flush_tlb_multi): no IPI in the guest; one MMUEXT_TLB_FLUSH_MULTI or
 *   MMUEXT_INVLPG_MULTI hypercall with a vCPU mask, and Xen flushes the other vCPU by an IPI
 *   of its own to that pCPU (flush_tlb_mask), counted as pv-mmu's remote_flushes.
 * - Native (native_flush_tlb_multi): an IPI per target (x2APIC ICR write), the target takes
 *   the interrupt, runs flush_tlb_func (INVLPG per page, or a full flush) and writes EOI.
 * - Nested paging: the same guest code; without IPI virtualization or APICv each ICR write
 *   and each EOI write is an MSR_WRITE VM exit, and the IPI reaches the target as an
 *   injected interrupt (KVM kicks the target, which exits and re-enters with the event).
 *
 * Method: each backend runs the same program twice, once with vCPU 1 running a thread of the
 * process (it touched every page, so its TLB holds them) and once with the process on vCPU 0
 * alone; the shootdown's cost is the difference, over the munmap/mprotect calls only. Counts
 * are exact (read from the hypervisor, the MMU backends and the guest's IPI layer); cycles
 * are estimates: the counts times the study's default costs (cost-model.ts), plus the IPI
 * costs below, which are our assumptions.
 *
 * Invariant: nothing here depends on time or on the host; a run is a function of its options.
 */

import { createHypervisor, type Hypervisor, schedCredit, type Vcpu } from "@hyperlab/core";
import { evtchn2l, vcpuTimers } from "@hyperlab/evtchn";
import {
  bootNativeKernel,
  bootXenPvKernel,
  type GuestKernel,
  PROT_READ,
  PROT_WRITE,
  spawnProcess,
  threadTouch,
  xenCpuUp,
} from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain } from "@hyperlab/pv-mmu";
import { nativeBackend, nestedBackend, pvBackend, type StudyBackend } from "./backends";
import { DEFAULT_COSTS } from "./cost-model";
import { zeroCounts } from "./counts";
import { studyError } from "./errors";

export type ShootdownBackend = "pv" | "nested" | "native";

/** What the shootdowns cost one backend (the 2-vCPU run minus the 1-vCPU run). */
export interface ShootdownCounts {
  /** munmap/mprotect calls made (each one reached the other vCPU in the 2-vCPU run). */
  shootdowns: number;
  /** Entries into Xen (PV) or hypercalls (none on the others). */
  hypercalls: number;
  /** IPIs the guest sent (ICR writes natively and under nested paging; none on PV). */
  guestIpis: number;
  /** IPIs Xen sent to flush another pCPU (PV only). */
  xenIpis: number;
  /** VM exits (nested paging: the ICR and EOI writes, and the target's kick). */
  vmExits: number;
  /** Interrupts injected into a vCPU (nested paging) or taken by a CPU (native). */
  interrupts: number;
  /** Full TLB flushes and single-page invalidations, on both vCPUs. */
  tlbFlushes: number;
  invlpg: number;
}

export interface ShootdownResult {
  backend: ShootdownBackend;
  counts: ShootdownCounts;
  /** Estimated cycles of the shootdowns, over both CPUs (see ShootdownCosts). */
  cycles: number;
  /** Estimated cycles per shootdown. */
  cyclesPerShootdown: number;
}

/** Cycles per event; the defaults come from the study's cost model, the IPI ones are ours. */
export interface ShootdownCosts {
  hypercalls: number;
  vmExits: number;
  tlbFlushes: number;
  invlpg: number;
  /** Sending an IPI without an exit (native ICR write; Xen's own send). Assumption. */
  ipiSend: number;
  /** Taking an interrupt: entry, the handler's dispatch, EOI and return. Assumption. */
  interrupts: number;
}

export const DEFAULT_SHOOTDOWN_COSTS: Readonly<ShootdownCosts> = Object.freeze({
  hypercalls: DEFAULT_COSTS.hypercalls,
  vmExits: DEFAULT_COSTS.vmExits,
  tlbFlushes: DEFAULT_COSTS.tlbFlushes,
  invlpg: DEFAULT_COSTS.invlpg,
  ipiSend: 100,
  interrupts: 500,
});

export interface ShootdownOptions {
  /** Pages of the region both vCPUs touch each round (default 16). */
  pages?: number;
  /** Rounds of map, touch, mprotect, munmap (default 8). */
  rounds?: number;
  /** Backends to run (default all three). */
  backends?: readonly ShootdownBackend[];
  /** Cost overrides. */
  costs?: Partial<ShootdownCosts>;
}

const BACKEND: Record<ShootdownBackend, StudyBackend> = {
  pv: pvBackend,
  nested: nestedBackend,
  native: nativeBackend,
};
const NR_PAGES = 4096;
const PARAMS = { guestPageSize: "4K", hostPageSize: "4K" } as const;

interface Booted {
  hv: Hypervisor;
  kernel: GuestKernel;
  vcpus: readonly Vcpu[];
}

function boot(which: ShootdownBackend): Booted {
  const machine = createMachine({ ramBytes: 96 << 20, cpus: 2, seed: 16 });
  const b = BACKEND[which];
  const plugins = [...b.plugins(PARAMS), schedCredit()];
  if (which === "pv") plugins.push(evtchn2l(), vcpuTimers());
  const hv = createHypervisor({ machine, plugins }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 2, maxPages: NR_PAGES + 512 });
  let kernel: GuestKernel;
  if (which === "pv") {
    const built = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: NR_PAGES });
    hv.unpauseDomain(d);
    kernel = bootXenPvKernel(hv, d, { startInfoVa: built.rsi, batching: true });
    const rc = xenCpuUp(kernel, 1);
    if (rc < 0) throw studyError("STUDY_GUEST_FAILED", `bringing up vCPU 1 failed with ${rc}`);
  } else {
    kernel = bootNativeKernel(hv, d, { nrPages: NR_PAGES });
    hv.unpauseDomain(d);
  }
  return { hv, kernel, vcpus: d.vcpus };
}

/** Every count of a build that a shootdown changes, as of now. */
function snapshot(which: ShootdownBackend, x: Booted): ShootdownCounts {
  const b = BACKEND[which];
  const flushes = zeroCounts();
  const hw = zeroCounts();
  // pv-mmu counts per vCPU; the others count for the whole build.
  const vcpus = which === "pv" ? x.vcpus : x.vcpus.slice(0, 1);
  for (const v of vcpus) b.attach(x.hv, v).addFlushCounts(flushes);
  b.attach(x.hv, x.vcpus[0]).addHardwareCounts(hw);
  const ipi = x.kernel.smp.counts;
  const nested = which === "nested";
  // Under nested paging each ICR write and EOI write exits (MSR_WRITE, no APICv), and the
  // target is kicked out of guest mode to take the injected interrupt (one more exit).
  const apicExits = nested ? ipi.icrWrites + ipi.eoiWrites + ipi.received : 0;
  return {
    shootdowns: 0,
    hypercalls: which === "pv" ? hw.hypercalls : 0,
    guestIpis: ipi.icrWrites,
    xenIpis: which === "pv" ? (x.hv.stats.read("pv-mmu", "remote_flushes") ?? 0) : 0,
    vmExits: hw.vmExits + apicExits,
    interrupts: ipi.received,
    tlbFlushes: flushes.tlbFlushes,
    invlpg: flushes.invlpg,
  };
}

function minus(a: ShootdownCounts, b: ShootdownCounts): ShootdownCounts {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof ShootdownCounts)[]) out[k] = a[k] - b[k];
  return out;
}

/**
 * One run: `rounds` times, map `pages` pages, write each from vCPU 0 (and, with `smp`, read
 * each from a thread on vCPU 1), make the first half read-only, unmap pages one at a time
 * from the front, then the rest at once. Returns the counts over the mprotect/munmap calls.
 */
function runOnce(which: ShootdownBackend, smp: boolean, pages: number, rounds: number) {
  const x = boot(which);
  const k = x.kernel;
  const p = spawnProcess(k);
  const mm = p.mm!;
  let total = zeroShootdown();
  let calls = 0;
  const measured = (fn: () => number) => {
    const before = snapshot(which, x);
    const rc = fn();
    if (rc !== 0) {
      throw studyError("STUDY_GUEST_FAILED", `${which}: a munmap/mprotect failed with ${rc}`);
    }
    total = add(total, minus(snapshot(which, x), before));
    calls++;
  };
  for (let r = 0; r < rounds; r++) {
    const buf = p.mmap(pages * 4096, PROT_READ | PROT_WRITE);
    for (let i = 0; i < pages; i++) p.store(buf + i * 4096, r * pages + i);
    if (smp) {
      for (let i = 0; i < pages; i++) {
        if (threadTouch(k, 1, mm, buf + i * 4096, false) < 0) {
          throw studyError("STUDY_SEGV", `${which}: vCPU 1 could not read page ${i}`);
        }
      }
    }
    const half = Math.max(1, pages >> 1);
    measured(() => p.mprotect(buf, half * 4096, PROT_READ));
    const singles = Math.min(4, pages - 1);
    for (let i = 0; i < singles; i++) measured(() => p.munmap(buf + i * 4096, 4096));
    measured(() => p.munmap(buf + singles * 4096, (pages - singles) * 4096));
  }
  total.shootdowns = calls;
  return total;
}

function zeroShootdown(): ShootdownCounts {
  return {
    shootdowns: 0,
    hypercalls: 0,
    guestIpis: 0,
    xenIpis: 0,
    vmExits: 0,
    interrupts: 0,
    tlbFlushes: 0,
    invlpg: 0,
  };
}

function add(a: ShootdownCounts, b: ShootdownCounts): ShootdownCounts {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof ShootdownCounts)[]) out[k] = a[k] + b[k];
  return out;
}

/** Estimated cycles of `c` under `costs`. */
export function shootdownCycles(c: ShootdownCounts, costs: ShootdownCosts): number {
  return (
    c.hypercalls * costs.hypercalls +
    c.vmExits * costs.vmExits +
    (c.guestIpis + c.xenIpis) * costs.ipiSend +
    (c.interrupts + c.xenIpis) * costs.interrupts +
    c.tlbFlushes * costs.tlbFlushes +
    c.invlpg * costs.invlpg
  );
}

function positiveInt(name: string, v: number | undefined, dflt: number, max: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < 1 || x > max) {
    throw studyError(
      "STUDY_BAD_CONFIG",
      `shootdown ${name} must be a whole number from 1 to ${max}, got ${v}.`,
    );
  }
  return x;
}

/**
 * Runs the shootdown study: per backend, the cost of taking mappings away from a 2-vCPU
 * process (the 2-vCPU run minus the 1-vCPU run). Throws a HyperlabError on bad options.
 */
export function runShootdownStudy(options: ShootdownOptions = {}): ShootdownResult[] {
  const pages = positiveInt("pages", options.pages, 16, 1024);
  const rounds = positiveInt("rounds", options.rounds, 8, 1000);
  const backends = options.backends ?? (["pv", "nested", "native"] as const);
  for (const b of backends) {
    if (!(b in BACKEND)) {
      throw studyError(
        "STUDY_BAD_CONFIG",
        `shootdown backend "${b}" is not one of pv, nested, native.`,
      );
    }
  }
  const costs: ShootdownCosts = { ...DEFAULT_SHOOTDOWN_COSTS };
  for (const [k, v] of Object.entries(options.costs ?? {})) {
    if (!(k in costs) || typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
      throw studyError(
        "STUDY_BAD_CONFIG",
        `shootdown cost "${k}" must be a finite number >= 0 of one of ${Object.keys(costs).join(", ")}.`,
      );
    }
    costs[k as keyof ShootdownCosts] = v;
  }
  return backends.map((backend) => {
    const up = runOnce(backend, false, pages, rounds);
    const smp = runOnce(backend, true, pages, rounds);
    const counts = minus(smp, up);
    counts.shootdowns = smp.shootdowns;
    const cycles = shootdownCycles(counts, costs);
    return { backend, counts, cycles, cyclesPerShootdown: cycles / counts.shootdowns };
  });
}
