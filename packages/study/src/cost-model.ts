/*
 * The cost model: exact counts in, estimated cycles out. Each default cost names the
 * section of docs/cost-model.md that gives its published source (or says it is an
 * assumption); a user can override any of them.
 *
 * Invariant: cycles = sum over costs of count * cycles per event; nothing else enters.
 */

import type { CountName, StudyCounts } from "./counts";
import { studyError } from "./errors";

/** The events the model prices; each is a count of StudyCounts. */
export type CostName = Exclude<CountName, "operations">;

export type CostTable = Record<CostName, number>;

export interface CostInfo {
  name: CostName;
  /** Default cycles per event. */
  cycles: number;
  /** Where the figure comes from (the section of docs/cost-model.md and its source). */
  source: string;
  /** Whether the figure is our assumption rather than a published measurement. */
  assumption: boolean;
}

export const COST_INFO: readonly CostInfo[] = [
  {
    name: "accesses",
    cycles: 4,
    source: "L1 data cache load-to-use latency, Intel optimization manual (cost-model.md#accesses)",
    assumption: false,
  },
  {
    name: "l2Hits",
    cycles: 8,
    source:
      "L2 load-to-use latency (12 cycles) beyond L1's 4, Skylake, Intel optimization manual (cost-model.md#l2hits)",
    assumption: false,
  },
  {
    name: "llcHits",
    cycles: 38,
    source:
      "LLC load-to-use latency (about 42 cycles) beyond L1's 4, Skylake, Intel optimization manual (cost-model.md#llchits)",
    assumption: true,
  },
  {
    name: "dramAccesses",
    cycles: 240,
    source:
      "DRAM latency (about 80 ns at 3 GHz) beyond L1's 4, Intel optimization manual and Drepper 2007 (cost-model.md#dramaccesses)",
    assumption: true,
  },
  {
    name: "tlbHits",
    cycles: 0,
    source: "a first-level TLB hit is inside the load pipeline (cost-model.md#tlbhits)",
    assumption: false,
  },
  {
    name: "tlbMisses",
    cycles: 9,
    source: "fixed cost of starting a page walk beyond its references (cost-model.md#tlbmisses)",
    assumption: true,
  },
  {
    name: "walkRefs",
    cycles: 4,
    source:
      "a paging-structure read that hits L1d (walks read through the data caches, Intel SDM 4.10); misses priced apart; Bhargava et al. ASPLOS 2008 (cost-model.md#walkrefs)",
    assumption: false,
  },
  {
    name: "walkL2Hits",
    cycles: 8,
    source: "as l2Hits: L2 latency beyond L1's (cost-model.md#walkl2hits)",
    assumption: false,
  },
  {
    name: "walkLlcHits",
    cycles: 38,
    source: "as llcHits: LLC latency beyond L1's (cost-model.md#walkllchits)",
    assumption: true,
  },
  {
    name: "walkDramAccesses",
    cycles: 240,
    source: "as dramAccesses: DRAM latency beyond L1's (cost-model.md#walkdramaccesses)",
    assumption: true,
  },
  {
    name: "instructions",
    cycles: 1,
    source:
      "one non-memory instruction at a CPI of about 1, as compilers run (cost-model.md#instructions)",
    assumption: true,
  },
  {
    name: "pageFaults",
    cycles: 1500,
    source:
      "Linux anonymous page fault without its page clear or copy, lmbench lat_pagefault's order (cost-model.md#pagefaults)",
    assumption: true,
  },
  {
    name: "pagesZeroed",
    cycles: 256,
    source:
      "clear_page of 4 KiB at 16 bytes per cycle (REP STOSB fast strings), Intel optimization manual (cost-model.md#pageszeroed)",
    assumption: false,
  },
  {
    name: "pagesCopied",
    cycles: 512,
    source:
      "copy_page of 4 KiB at 8 bytes per cycle (REP MOVSB fast strings), Intel optimization manual (cost-model.md#pagescopied)",
    assumption: false,
  },
  {
    name: "syscalls",
    cycles: 150,
    source: "direct cost of a null system call, Soares & Stumm OSDI 2010 (cost-model.md#syscalls)",
    assumption: true,
  },
  {
    name: "forks",
    cycles: 40000,
    source:
      "fork's fixed work (task, mm, areas), lmbench lat_proc's order, McVoy & Staelin USENIX 1996 (cost-model.md#forks)",
    assumption: true,
  },
  {
    name: "execs",
    cycles: 100000,
    source:
      "exec's fixed work (binary loading, new mm), lmbench lat_proc's order (cost-model.md#execs)",
    assumption: true,
  },
  {
    name: "exits",
    cycles: 25000,
    source:
      "exit's fixed work (files, signals, mm teardown beyond tables), lmbench lat_proc's order (cost-model.md#exits)",
    assumption: true,
  },
  {
    name: "ptUpdates",
    cycles: 5,
    source: "one store of a page-table entry by the kernel (cost-model.md#ptupdates)",
    assumption: true,
  },
  {
    name: "hypercalls",
    cycles: 600,
    source:
      "one entry into Xen and back (a multicall is one), Barham et al. SOSP 2003 for the mechanism (cost-model.md#hypercalls)",
    assumption: true,
  },
  {
    name: "multicallEntries",
    cycles: 60,
    source:
      "Xen's do_multicall: copy one entry in, dispatch it, copy its result out (cost-model.md#multicallentries)",
    assumption: true,
  },
  {
    name: "mmuUpdateRequests",
    cycles: 150,
    source:
      "Xen's per-request mmu_update work: copy, get_page_from_l1e type and reference checks, the write (cost-model.md#mmuupdaterequests)",
    assumption: true,
  },
  {
    name: "traps",
    cycles: 1500,
    source: "exception into Xen and bounce to the guest kernel (cost-model.md#traps)",
    assumption: true,
  },
  {
    name: "vmExits",
    cycles: 1500,
    source:
      "VM exit/entry round trip, Adams & Agesen ASPLOS 2006; Agesen et al. USENIX ATC 2012; plus KVM's handling (cost-model.md#vmexits)",
    assumption: true,
  },
  {
    name: "tlbFlushes",
    cycles: 200,
    source: "MOV to CR3 without PCID, Agner Fog's instruction tables (cost-model.md#tlbflushes)",
    assumption: true,
  },
  {
    name: "invlpg",
    cycles: 150,
    source: "INVLPG, Agner Fog's instruction tables (cost-model.md#invlpg)",
    assumption: true,
  },
  {
    name: "contextSwitches",
    cycles: 0,
    source:
      "the same kernel work on every backend; its CR3 load is priced as a flush (cost-model.md#contextswitches)",
    assumption: false,
  },
];

export const COST_NAMES: readonly CostName[] = COST_INFO.map((c) => c.name);

/** The default cycles per event. */
export const DEFAULT_COSTS: Readonly<CostTable> = Object.freeze(
  Object.fromEntries(COST_INFO.map((c) => [c.name, c.cycles])) as CostTable,
);

/** The defaults with `overrides` applied; throws on an unknown name or a bad value. */
export function resolveCosts(overrides: Partial<Record<string, number>> = {}): CostTable {
  if (overrides === null || typeof overrides !== "object") {
    throw studyError(
      "STUDY_BAD_COST",
      'Cost overrides are an object of cycles per event, e.g. { "vmExits": 800 }.',
    );
  }
  const out = { ...DEFAULT_COSTS } as CostTable;
  for (const [name, value] of Object.entries(overrides)) {
    if (!(COST_NAMES as readonly string[]).includes(name)) {
      throw studyError(
        "STUDY_BAD_COST",
        `There is no cost "${name}". Override one of: ${COST_NAMES.join(", ")}.`,
      );
    }
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw studyError(
        "STUDY_BAD_COST",
        `Cost "${name}" must be a finite number of cycles >= 0, got ${String(value)}.`,
      );
    }
    out[name as CostName] = value;
  }
  return out;
}

/** Estimated cycles of a run: the total, and per event. */
export function estimateCycles(
  counts: StudyCounts,
  costs: CostTable,
): { total: number; byEvent: CostTable } {
  const byEvent = {} as CostTable;
  let total = 0;
  for (const name of COST_NAMES) {
    const c = counts[name] * costs[name];
    byEvent[name] = c;
    total += c;
  }
  return { total, byEvent };
}
