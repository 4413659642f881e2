/*
 * Guest plugins and the composition of the pv_ops table (Linux fills pv_ops at boot from
 * whichever paravirt backend it detected; here the backends are values passed to boot).
 *
 * Invariants: composition is checked whole before any setup runs (core's resolvePlugins: a
 * missing provider, two providers without an override, a cycle); every group in the table
 * has a native default, either this package's (PV_OPS_GROUPS) or the one the plugin that
 * adds the group `defines`, and a group is defined once; a plugin fills only groups it names
 * in `provides`; after composition the table is frozen.
 */
import { resolvePlugins, SlotTable, type StatGroup } from "@hyperlab/core";
import { guestError } from "./errors";
import type { GuestKernel } from "./kernel";
import { type BuiltinPvOps, PV_OPS_GROUPS, type PvOps, type PvOpsGroup } from "./pv-ops";

export interface GuestSetupContext {
  /** The kernel being booted (its memory, its GuestPort, its boot information). */
  readonly kernel: GuestKernel;
  /** Fills a group this plugin names in `provides`. */
  provide<K extends PvOpsGroup>(group: K, impl: PvOps[K]): void;
  /** A group's implementation so far (a default, or a plugin's that set up earlier). */
  group<K extends PvOpsGroup>(group: K): PvOps[K];
  /** This plugin's stat group, in the kernel's stats. */
  readonly stats: StatGroup;
}

/** Native defaults of groups a plugin adds to PvOps (by declaration merging). */
export type PvOpsDefaults = { readonly [K in PvOpsGroup]?: (kernel: GuestKernel) => PvOps[K] };

/** A pv_ops backend, as data: `{ name, provides, setup(ctx) }`. */
export interface GuestPlugin {
  readonly name: string;
  readonly description?: string;
  /** Groups this plugin adds to pv_ops, each with its native default (the kernel's bare-metal code). */
  readonly defines?: PvOpsDefaults;
  readonly provides?: readonly PvOpsGroup[];
  readonly requires?: readonly PvOpsGroup[];
  readonly overrides?: readonly PvOpsGroup[];
  setup(ctx: GuestSetupContext): void;
}

/** Identity helper that types a guest plugin literal. */
export function defineGuestPlugin(plugin: GuestPlugin): GuestPlugin {
  return plugin;
}

/**
 * Composes the pv_ops table: native defaults (this package's, then those plugins define),
 * then each plugin's setup in dependency order. Throws HyperlabError on a bad composition.
 */
export function composePvOps(
  kernel: GuestKernel,
  defaults: BuiltinPvOps,
  plugins: readonly GuestPlugin[],
): PvOps {
  const table = new SlotTable<PvOps>("guest kernel's pv_ops", defaults as Partial<PvOps>);
  const groups = new Set<string>(PV_OPS_GROUPS);
  const definedBy = new Map<string, string>();
  for (const p of plugins) {
    for (const g of Object.keys(p?.defines ?? {}) as PvOpsGroup[]) {
      const other = (PV_OPS_GROUPS as readonly string[]).includes(g)
        ? "@hyperlab/guest"
        : definedBy.get(g);
      if (other !== undefined) {
        throw guestError(
          "PV_OPS_GROUP_TWICE",
          `Guest plugin "${p.name}" defines pv_ops.${g}, which ${other} already defines. A group has one native default: drop it from "${p.name}"'s defines and provide it instead.`,
        );
      }
      definedBy.set(g, p.name);
      groups.add(g);
    }
  }
  for (const p of plugins) {
    for (const g of [...(p?.provides ?? []), ...(p?.requires ?? [])]) {
      if (!groups.has(g)) {
        throw guestError(
          "PV_OPS_GROUP_NO_DEFAULT",
          `Guest plugin "${p.name}" names pv_ops.${g}, a group no plugin in this kernel defines. Add the plugin whose package adds "${g}" (its defines give the native default).`,
        );
      }
    }
  }
  const { order, providers } = resolvePlugins<PvOpsGroup, GuestPlugin>(plugins, {
    defaults: [...groups] as PvOpsGroup[],
    what: "guest kernel",
  });
  for (const p of plugins) {
    const defs = p.defines ?? {};
    for (const g of Object.keys(defs) as PvOpsGroup[]) {
      const make = defs[g] as ((k: GuestKernel) => PvOps[typeof g]) | undefined;
      if (typeof make !== "function") {
        throw guestError(
          "PLUGIN_INVALID",
          `Guest plugin "${p.name}" defines pv_ops.${g} without a function. defines maps a group to (kernel) => its native default.`,
        );
      }
      table.set(g, make(kernel));
    }
  }
  for (const p of order) {
    if (typeof p.setup !== "function") {
      throw guestError(
        "PLUGIN_INVALID",
        `Guest plugin "${p.name}" has no setup function. A guest plugin is { name, provides, setup(ctx) }.`,
      );
    }
    const declared = p.provides ?? [];
    p.setup({
      kernel,
      provide: (group, impl) => {
        if (!declared.includes(group)) {
          throw guestError(
            "SLOT_UNDECLARED_PROVIDE",
            `Guest plugin "${p.name}" fills pv_ops.${group} without naming it in provides. Add "${group}" to its provides.`,
          );
        }
        table.set(group, impl);
      },
      group: (group) => table.get(group),
      stats: kernel.stats.group(p.name),
    });
  }
  table.freeze();
  kernel.composition = {
    plugins: order.map((p) => p.name),
    pvOps: Object.fromEntries([...groups].map((g) => [g, providers.get(g)?.name ?? "native"])),
  };
  return table.view();
}
