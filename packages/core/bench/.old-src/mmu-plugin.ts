/*
 * How an MMU backend becomes a plugin: it fills the `mmu` slot (and, if it has one, the slot
 * of its extended service) with one object, publishes its counters as gauges from a table,
 * publishes one gauge per VM-exit reason it takes, and hears of every domain destroyed. The
 * bare-metal, nested and shadow backends share this wiring instead of three copies of it.
 *
 * Invariants: the `mmu` slot and the service slot hold the same object; every gauge reads the
 * backend's live counter (no copy that could go stale); a table row names a counter the
 * backend's counts object has (the type says so).
 */
import type { Domain } from "./domain";
import {
  definePlugin,
  type Hypervisor,
  type Plugin,
  type SlotName,
  type Slots,
} from "./hypervisor";
import type { StatGroup } from "./stats";

/** One counter shown as a stat: [its key in the counts object, stat name, unit, description]. */
export type CountStat<K extends string> = readonly [
  key: K,
  name: string,
  unit: string,
  description: string,
];

/** Publishes each row of `table` as a gauge of `stats` that reads `counts[key]` live. */
export function countGauges<K extends string>(
  stats: StatGroup,
  counts: Readonly<Record<K, number>>,
  table: readonly CountStat<K>[],
): void {
  for (const [key, name, unit, description] of table) {
    stats.gauge(name, unit, description, () => counts[key]);
  }
}

export interface MmuPluginSpec<B extends Slots["mmu"], K extends string> {
  /** The plugin's name (kebab-case). */
  readonly name: string;
  readonly description: string;
  /** The slot key of the backend's extended service, if it offers one beyond `mmu`. */
  readonly service?: SlotName;
  /** Makes the backend (once per hypervisor, at setup). */
  create(hv: Hypervisor): B;
  /** The backend's counters object (read live by the gauges). */
  counts(backend: B): Readonly<Record<K, number>>;
  /** Which counters become stats. */
  readonly stats: readonly CountStat<K>[];
  /** VM-exit reasons the backend counts, by number, with how to read a reason's count. */
  readonly exits?: {
    readonly names: Readonly<Record<number, string>>;
    count(backend: B, reason: number): number;
  };
  /** Runs when a domain is destroyed, before its pages are released. */
  domainDestroyed?(backend: B, d: Domain): void;
}

/** An MMU backend as a plugin value, wired as MmuPluginSpec says. */
export function defineMmuPlugin<B extends Slots["mmu"], K extends string>(
  spec: MmuPluginSpec<B, K>,
): Plugin {
  return definePlugin({
    name: spec.name,
    description: spec.description,
    provides: spec.service === undefined ? ["mmu"] : ["mmu", spec.service],
    setup(ctx) {
      const backend = spec.create(ctx.hv);
      countGauges(ctx.stats, spec.counts(backend), spec.stats);
      const exits = spec.exits;
      if (exits !== undefined) {
        for (const [reason, name] of Object.entries(exits.names)) {
          const r = Number(reason);
          ctx.stats.gauge(`exit_${name}`, "exits", `VM exits with reason ${name}`, () =>
            exits.count(backend, r),
          );
        }
      }
      ctx.provide("mmu", backend);
      // The service slot's type is declared by the backend's package; it is this object.
      if (spec.service !== undefined) ctx.provide(spec.service, backend as never);
      const destroyed = spec.domainDestroyed;
      if (destroyed !== undefined) ctx.onDomainDestroy((d) => destroyed(backend, d));
    },
  });
}
