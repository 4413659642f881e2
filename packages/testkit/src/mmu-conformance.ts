/*
 * The MMU conformance suite: what the x86 hardware guarantees of a translation must hold on
 * every MMU backend (bare metal, Xen PV, nested, shadow), however the backend builds and
 * caches its translations.
 *
 * Invariant it checks: a TLB hit grants exactly what a cold walk of the same tables grants.
 * An access gets the same answer (the same machine address, or a fault with the same error
 * code) whether the vCPU's TLB is empty or was just filled by another access to the page;
 * in particular, no-execute, read-only and supervisor-only rights hold on a hit as on a walk.
 *
 * A backend's package registers it with a build factory: a function that boots a hypervisor
 * with that backend and returns how to map a page and translate through it (see
 * MmuConformanceBuild). The suite knows nothing else of the backend.
 */
import {
  type MmuBackend,
  type MmuFault,
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_user_mode,
  PFEC_write_access,
  type Vcpu,
} from "@hyperlab/core";
import type { TestRunner } from "./guest-conformance";
import { type GuestTables, PTE_NX_HI, PTE_P, PTE_RW, PTE_US } from "./mmu-harness";

/** The rights of a leaf mapping the suite asks for. */
export interface MmuRights {
  /** RW set. */
  write: boolean;
  /** US set (a user page); clear for a supervisor-only page. */
  user: boolean;
  /** XD set (no-execute; EFER.NXE is on in every build). */
  nx: boolean;
}

/** One booted system with one vCPU for one case. */
export interface MmuConformanceBuild {
  /**
   * Maps page `k` (0 <= k < MMU_CONFORMANCE_PAGES) to a data frame of its own, with every
   * level above the leaf present, writable and user, and the leaf's rights as given; returns
   * the page's virtual address. Maps each k at most once.
   */
  map(k: number, rights: MmuRights): number;
  /**
   * Translates `va` for the vCPU as the hardware would; PFEC_user_mode in `access` means the
   * vCPU runs in user mode (a PV build switches to the guest's user mode for it). Returns
   * the machine address, or -1 after a fault, whose error code is then in `fault`.
   */
  translate(va: number, access: number): number;
  /** The last fault translate reported. */
  readonly fault: MmuFault;
  /** Empties the vCPU's TLB of non-global entries (a CR3 reload). */
  flushLocal(): void;
}

export type MmuBuildFactory = () => MmuConformanceBuild;

/** Pages a build must be able to map. */
export const MMU_CONFORMANCE_PAGES = 8;

/**
 * The build of a backend whose translate takes PFEC_user_mode as the mode of the access
 * (bare metal, nested, shadow): translate and flushLocal go straight to `mmu` for `vcpu`.
 */
export function mmuBuildOf(
  mmu: MmuBackend,
  vcpu: Vcpu,
  map: (k: number, rights: MmuRights) => number,
): MmuConformanceBuild {
  return {
    map,
    translate: (va, access) => mmu.translate(vcpu, va, access),
    get fault() {
      return mmu.fault;
    },
    flushLocal: () => mmu.flushLocal(vcpu),
  };
}

/**
 * The build of a backend whose guest kernel writes its own page tables (bare metal, nested,
 * shadow): page k is mapped at `base + k * 4096` through `tables` (so through whatever store
 * the tables were given) to a fresh frame of the tables' memory, and `vcpu` runs on them.
 */
export function tablesMmuBuild(
  mmu: MmuBackend,
  vcpu: Vcpu,
  tables: GuestTables,
  base: number,
): MmuConformanceBuild {
  vcpu.cr3Mfn = tables.cr3;
  return mmuBuildOf(mmu, vcpu, (k, r) => {
    const va = base + k * 4096;
    const flags = PTE_P | (r.write ? PTE_RW : 0) | (r.user ? PTE_US : 0);
    tables.map(va, tables.mem.alloc(), flags, 1, r.nx ? PTE_NX_HI : 0);
    return va;
  });
}

export class MmuConformanceError extends Error {
  override readonly name = "MmuConformanceError";
  readonly caseName: string;
  constructor(caseName: string, message: string) {
    super(`mmu conformance "${caseName}": ${message}`);
    this.caseName = caseName;
  }
}

export interface MmuConformanceCase {
  readonly name: string;
  /** Runs the case on a fresh build; throws MmuConformanceError on a miss. */
  run(build: MmuBuildFactory): void;
}

const P = PFEC_page_present;
const W = PFEC_write_access;
const U = PFEC_user_mode;
const F = PFEC_insn_fetch;

/** Every kind of access: read, write, fetch, each in supervisor and in user mode. */
const ACCESSES: readonly number[] = [0, W, F, U, U | W, U | F];

function accessName(a: number): string {
  const kind = (a & W) !== 0 ? "write" : (a & F) !== 0 ? "fetch" : "read";
  return `${(a & U) !== 0 ? "user" : "supervisor"} ${kind}`;
}

function rightsName(r: MmuRights): string {
  return `${r.write ? "RW" : "RO"}${r.user ? "+U" : "+S"}${r.nx ? "+NX" : ""}`;
}

/** One access's answer: the machine address, or "#PF" with the error code. */
function answer(b: MmuConformanceBuild, va: number, access: number): string {
  const ma = b.translate(va, access);
  return ma >= 0 ? `ma ${ma}` : `#PF ${b.fault.errorCode}`;
}

function expectFault(
  name: string,
  b: MmuConformanceBuild,
  va: number,
  access: number,
  when: string,
  code: (errorCode: number) => boolean,
  want: string,
): void {
  const ma = b.translate(va, access);
  if (ma >= 0) {
    throw new MmuConformanceError(
      name,
      `${accessName(access)} ${when} succeeded (ma ${ma}); it must fault`,
    );
  }
  if (!code(b.fault.errorCode)) {
    throw new MmuConformanceError(
      name,
      `${accessName(access)} ${when} faulted with error code ${b.fault.errorCode}; want ${want}`,
    );
  }
}

function expectOk(
  name: string,
  b: MmuConformanceBuild,
  va: number,
  access: number,
  when: string,
): number {
  const ma = b.translate(va, access);
  if (ma < 0) {
    throw new MmuConformanceError(
      name,
      `${accessName(access)} ${when} faulted (error code ${b.fault.errorCode}); it must succeed`,
    );
  }
  return ma;
}

const NX_CASE = "an instruction fetch from an NX page faults, cold and after a data read";
const RO_CASE = "a supervisor write to a read-only page faults (CR0.WP), cold and after a read";
const US_CASE = "a user access to a supervisor page faults, cold and after a supervisor read";
const AGREE_CASE = "a TLB hit and a cold walk agree on every access to every kind of page";

/** The cases, in the order the suite runs them. */
export const mmuConformanceCases: readonly MmuConformanceCase[] = [
  {
    name: NX_CASE,
    run(build) {
      const b = build();
      const va = b.map(0, { write: true, user: false, nx: true });
      const isNxFault = (e: number) => e === (P | F);
      expectFault(NX_CASE, b, va, F, "on a cold TLB", isNxFault, "present | fetch");
      b.flushLocal();
      expectOk(NX_CASE, b, va, 0, "on a cold TLB");
      expectFault(NX_CASE, b, va, F, "after a data read", isNxFault, "present | fetch");
      expectOk(NX_CASE, b, va, W, "after a data read");
      expectFault(NX_CASE, b, va, F, "after a data write", isNxFault, "present | fetch");
    },
  },
  {
    name: RO_CASE,
    run(build) {
      const b = build();
      const va = b.map(0, { write: false, user: false, nx: false });
      const isWpFault = (e: number) => e === (P | W);
      expectFault(RO_CASE, b, va, W, "on a cold TLB", isWpFault, "present | write");
      b.flushLocal();
      const ma = expectOk(RO_CASE, b, va, 0, "on a cold TLB");
      expectFault(RO_CASE, b, va, W, "after a read", isWpFault, "present | write");
      if (expectOk(RO_CASE, b, va, 0, "after the faulting write") !== ma) {
        throw new MmuConformanceError(RO_CASE, "a read after the faulting write moved the page");
      }
    },
  },
  {
    name: US_CASE,
    run(build) {
      const b = build();
      const va = b.map(0, { write: true, user: false, nx: false });
      const isUserFault = (e: number) => (e & U) !== 0;
      for (const a of [U, U | W, U | F]) {
        b.flushLocal();
        expectFault(US_CASE, b, va, a, "on a cold TLB", isUserFault, "user set");
        b.flushLocal();
        expectOk(US_CASE, b, va, 0, "on a cold TLB");
        expectFault(US_CASE, b, va, a, "after a supervisor read", isUserFault, "user set");
      }
    },
  },
  {
    name: AGREE_CASE,
    run(build) {
      const b = build();
      const pages: [number, MmuRights][] = [];
      for (let k = 0; k < MMU_CONFORMANCE_PAGES; k++) {
        const rights = { write: (k & 1) !== 0, user: (k & 2) !== 0, nx: (k & 4) !== 0 };
        pages.push([b.map(k, rights), rights]);
      }
      for (const [va, rights] of pages) {
        for (const second of ACCESSES) {
          b.flushLocal();
          const cold = answer(b, va + 8, second);
          for (const first of ACCESSES) {
            b.flushLocal();
            answer(b, va, first);
            const warm = answer(b, va + 8, second);
            if (warm !== cold) {
              throw new MmuConformanceError(
                AGREE_CASE,
                `on a ${rightsName(rights)} page, a ${accessName(second)} after a ${accessName(first)} gave ${warm}, on a cold TLB ${cold}`,
              );
            }
          }
        }
      }
    },
  },
];

/** Runs every case on fresh builds from `build`; throws MmuConformanceError on the first miss. */
export function runMmuConformance(build: MmuBuildFactory): void {
  for (const c of mmuConformanceCases) c.run(build);
}

/**
 * Registers the suite with a test runner: one test per build and case. A backend's package
 * calls this with its builds; a failure names the case, the access and the page.
 */
export function defineMmuConformance(
  runner: TestRunner,
  builds: readonly (readonly [name: string, build: MmuBuildFactory])[],
): void {
  for (const [name, build] of builds) {
    runner.describe(`mmu conformance: ${name}`, () => {
      for (const c of mmuConformanceCases) runner.it(c.name, () => c.run(build));
    });
  }
}
