import {
  createHypervisor,
  type Hypervisor,
  PFEC_insn_fetch,
  PFEC_user_mode,
  PFEC_write_access,
  type Vcpu,
} from "@hyperlab/core";
import { createMachine, type Ram } from "@hyperlab/machine";
import {
  GuestMem as HarnessMem,
  GuestTables as HarnessTables,
  refWalk as harnessRefWalk,
} from "@hyperlab/testkit";
import fc from "fast-check";
import { type ShadowMmu, type ShadowMmuOptions, shadowMmu } from "../src/index";

export const P = 0x1;
export const RW = 0x2;
export const US = 0x4;
export const A = 0x20;
export const D = 0x40;
export const PSE = 0x80;
export const G = 0x100;
export const NX_HI = 0x8000_0000;
export const PRW = P | RW | US;

export interface World {
  hv: Hypervisor;
  sh: ShadowMmu;
  ram: Ram;
}

export function boot(options: ShadowMmuOptions = {}, ramBytes = 64 << 20): World {
  const machine = createMachine({ ramBytes, cpus: 2, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [shadowMmu(options)] }).boot();
  return { hv, sh: hv.slot("shadow-mmu"), ram: machine.ram };
}

/** A guest's memory over this world (testkit's harness). */
export class GuestMem extends HarnessMem<World> {}

/** The guest kernel's page-table code: every store goes through guestStore, as it must. */
export class GuestTables extends HarnessTables<World> {
  constructor(
    mem: GuestMem,
    readonly v: Vcpu,
  ) {
    super(mem, {
      store: (gpa, lo, hi) => {
        const rc = mem.w.sh.guestStore(v, gpa, lo, hi);
        if (rc !== 0) throw new Error(`guestStore failed: ${rc}`);
      },
    });
  }
}

/**
 * A reference walk of guest tables: the machine address, or -1 where the hardware would
 * fault or the domain does not own a frame on the path.
 */
export function refWalk(
  ram: Ram,
  ownerKeys: Int32Array,
  dom: number,
  cr3: number,
  va: number,
  access = 0,
): number {
  return harnessRefWalk(ram, cr3, va, { access, owns: (f) => ownerKeys[f] === ~dom });
}

export const seed = 20261124;
export const runs = (n: number) => (process.env.HYPERLAB_LONG ? n * 20 : n);

/** The table indices the property tests use, so random tables and VAs share paths. */
export const PATH_IDX = [0, 1, 2, 511];

/** VAs whose index at every level is one of PATH_IDX. */
export const pathVaArb = fc
  .tuple(fc.nat(3), fc.nat(3), fc.nat(3), fc.nat(3), fc.nat(4095))
  .map(
    ([a, b, c, d, off]) =>
      PATH_IDX[a] * 2 ** 39 +
      PATH_IDX[b] * 2 ** 30 +
      PATH_IDX[c] * 2 ** 21 +
      PATH_IDX[d] * 2 ** 12 +
      off,
  );

/** The access kinds the property tests draw: read, write, user, fetch, user write. */
export const accessArb = fc.constantFrom(
  0,
  PFEC_write_access,
  PFEC_user_mode,
  PFEC_insn_fetch,
  PFEC_write_access | PFEC_user_mode,
);
