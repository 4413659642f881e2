/*
 * The TLBs of a set of CPUs: one paging Tlb per CPU (a machine's CPUs, or a hypervisor's
 * vCPUs by uid), all of one configuration, made on first use. Every MMU backend keeps its
 * per-vCPU TLBs in one of these.
 *
 * Invariants: CPU i always gets the same Tlb object once it has one, so a flush of it is
 * seen by every later lookup of CPU i; a table made without a configuration (`null`) holds
 * no TLB at all and `of` answers null for every CPU; a bad configuration throws when the
 * table is made, not at the first translation.
 */
import { PagingError } from "./errors";
import { Tlb, type TlbConfig } from "./tlb";

export class CpuTlbs {
  /** The configuration each TLB is made with, or null for CPUs without TLBs. */
  // `declare`d: see AssocArray (a field first defined as undefined loses its map).
  declare readonly config: TlbConfig | null;
  /**
   * The TLBs made so far, by CPU (undefined where none yet): for a hot path to index
   * directly, falling back to `get`/`of` on undefined. Never written from outside.
   */
  declare readonly byCpu: readonly (Tlb | undefined)[];
  private readonly tlbs: (Tlb | undefined)[] = [];

  constructor(config: TlbConfig | null) {
    this.config = config;
    this.byCpu = this.tlbs;
    if (config !== null) new Tlb(config); // a bad configuration throws paging's typed error now
  }

  /**
   * The table a backend's `tlb` option asks for: a TlbConfig (or nothing, for the default
   * TLB) with `random` as the replacement source unless the config gives one; `false` for no
   * TLBs. Answers undefined for anything else, so the backend throws its own typed error.
   */
  static fromOption(option: unknown, random: () => number): CpuTlbs | undefined {
    if (option === false) return new CpuTlbs(null);
    if (option === undefined) return new CpuTlbs({ random });
    if (typeof option !== "object" || option === null) return undefined;
    return new CpuTlbs({ random, ...(option as TlbConfig) });
  }

  /** The TLB of CPU `cpu` (made on first use), or null when the table holds none. */
  of(cpu: number): Tlb | null {
    const t = this.tlbs[cpu];
    if (t !== undefined) return t;
    if (this.config === null) return null;
    if (!(Number.isInteger(cpu) && cpu >= 0)) {
      throw new PagingError("TLB_BAD_CPU", `a CPU index is an integer >= 0, got ${cpu}`);
    }
    const made = new Tlb(this.config);
    this.tlbs[cpu] = made;
    return made;
  }

  /**
   * The TLB of CPU `cpu` (made on first use) of a table that has TLBs; throws PagingError
   * TLB_BAD_CONFIG for a table made with `null` (ask `of` there).
   */
  get(cpu: number): Tlb {
    const t = this.of(cpu);
    if (t === null) {
      throw new PagingError(
        "TLB_BAD_CONFIG",
        "this CpuTlbs was made without TLBs; use of(), which answers null",
      );
    }
    return t;
  }

  /** The TLB of CPU `cpu` if it has been made. */
  peek(cpu: number): Tlb | undefined {
    return this.tlbs[cpu];
  }

  /** Calls `fn` with every TLB made so far and its CPU. */
  forEach(fn: (tlb: Tlb, cpu: number) => void): void {
    this.tlbs.forEach((t, i) => {
      if (t !== undefined) fn(t, i);
    });
  }

  /** INVPCID type 2 on every CPU: drops everything, global entries included. */
  flushAll(): void {
    for (const t of this.tlbs) t?.flushAll();
  }
}
