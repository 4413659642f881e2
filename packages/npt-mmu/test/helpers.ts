import { createHypervisor, type Hypervisor, type Plugin } from "@hyperlab/core";
import { createMachine, type Ram } from "@hyperlab/machine";
import {
  GuestMem as HarnessMem,
  GuestTables as HarnessTables,
  refWalk as harnessRefWalk,
} from "@hyperlab/testkit";
import { type NptMmu, type NptMmuOptions, nptMmu } from "../src/index";

export const P = 0x1;
export const RW = 0x2;
export const US = 0x4;
export const A = 0x20;
export const D = 0x40;
export const PSE = 0x80;
export const G = 0x100;
export const NX_HI = 0x8000_0000;
export const PRW = P | RW | US;

/** No caches at all: every translation is a full 2D walk. */
export const NO_CACHES: NptMmuOptions = {
  tlb: false,
  nestedPwcEntries: 0,
  nestedTlbEntries: 0,
};

export interface World {
  hv: Hypervisor;
  npt: NptMmu;
  ram: Ram;
}

export function boot(
  options: NptMmuOptions = {},
  ramBytes = 64 << 20,
  extra: Plugin[] = [],
): World {
  const machine = createMachine({ ramBytes, cpus: 2, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nptMmu(options), ...extra] }).boot();
  return { hv, npt: hv.slot("npt-mmu"), ram: machine.ram };
}

/** A guest's memory over this world (testkit's harness). */
export class GuestMem extends HarnessMem<World> {}

/** The guest kernel's page-table writer: stores go straight to RAM (nested paging needs no trap). */
export class GuestTables extends HarnessTables<World> {
  constructor(mem: GuestMem, levels = 4) {
    super(mem, { levels });
  }
}

/** A reference walk of guest tables (no caches, no A/D): the guest-physical address or -1. */
export function refWalk(ram: Ram, cr3: number, va: number, levels: number, access = 0): number {
  return harnessRefWalk(ram, cr3, va, { levels, access });
}

/** Memory references (guest + nested) made by `fn`. */
export function refsOf(npt: NptMmu, fn: () => void): number {
  const before = npt.counts.guestRefs + npt.counts.nestedRefs;
  fn();
  return npt.counts.guestRefs + npt.counts.nestedRefs - before;
}

export const seed = 20261124;
export const runs = (n: number) => (process.env.HYPERLAB_LONG ? n * 20 : n);
