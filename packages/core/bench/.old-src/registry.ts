/*
 * The registry: plugins are data, composition is checked before anything runs.
 *
 * Invariants: every slot has exactly one provider (a default, one plugin, or a plugin that
 * names it in `overrides`); every required slot is provided; the requires graph is acyclic;
 * setups run in an order where each plugin comes after the providers of what it requires;
 * after `freeze()` no slot changes. The same machinery composes the hypervisor (core's
 * `Slots`) and the guest kernel's pv_ops table.
 */
import { HyperlabError } from "./errors";

/** What composition needs to know about a plugin; the setup function is the caller's. */
export interface PluginShape<Name extends string = string> {
  readonly name: string;
  readonly provides?: readonly Name[];
  readonly requires?: readonly Name[];
  /** Slots this plugin provides although another plugin (or a default) also does: it wins. */
  readonly overrides?: readonly Name[];
}

export interface ResolveOptions<Name extends string> {
  /** Slots that have a default implementation, used when no plugin provides them. */
  readonly defaults?: readonly Name[];
  /** What the composed thing is called in messages ("hypervisor", "guest kernel"). */
  readonly what?: string;
}

export interface Resolution<P> {
  /** Plugins in setup order. */
  readonly order: readonly P[];
  /** Which plugin provides each slot; slots left to their default are absent. */
  readonly providers: ReadonlyMap<string, P>;
}

/**
 * Checks a composition and orders its setups. Throws HyperlabError for a duplicate plugin
 * name, a slot with no provider, two providers without an override, or a cycle.
 */
export function resolvePlugins<Name extends string, P extends PluginShape<Name>>(
  plugins: readonly P[],
  options: ResolveOptions<Name> = {},
): Resolution<P> {
  const what = options.what ?? "system";
  const defaults = new Set<string>(options.defaults ?? []);
  const byName = new Map<string, P>();
  for (const p of plugins) {
    if (typeof p?.name !== "string" || p.name === "") {
      throw new HyperlabError(
        "PLUGIN_INVALID",
        `A plugin passed to the ${what} has no name. A plugin is an object { name, provides, requires, setup }: check what you put in the plugins list.`,
      );
    }
    if (byName.has(p.name)) {
      throw new HyperlabError(
        "PLUGIN_DUPLICATE",
        `Plugin "${p.name}" is listed twice in the ${what}. Remove one of them.`,
      );
    }
    byName.set(p.name, p);
  }

  // Providers: overriders win; otherwise exactly one provider per slot.
  const providers = new Map<string, P>();
  const candidates = new Map<Name, P[]>();
  for (const p of plugins) {
    for (const slot of p.provides ?? []) {
      const list = candidates.get(slot) ?? [];
      list.push(p);
      candidates.set(slot, list);
    }
    for (const slot of p.overrides ?? []) {
      if (!(p.provides ?? []).includes(slot)) {
        throw new HyperlabError(
          "PLUGIN_OVERRIDE_WITHOUT_PROVIDE",
          `Plugin "${p.name}" overrides slot "${slot}" but does not provide it. Add "${slot}" to its provides, or drop it from overrides.`,
        );
      }
    }
  }
  for (const [slot, list] of candidates) {
    const overriders = list.filter((p) => (p.overrides ?? []).includes(slot));
    if (overriders.length > 1) {
      throw new HyperlabError(
        "SLOT_CONFLICTING_OVERRIDES",
        `Slot "${slot}" is overridden by more than one plugin (${overriders.map((p) => `"${p.name}"`).join(", ")}). Keep one of them in the ${what}.`,
      );
    }
    if (overriders.length === 1) {
      providers.set(slot, overriders[0]);
    } else if (list.length > 1) {
      throw new HyperlabError(
        "SLOT_DUPLICATE_PROVIDER",
        `Slot "${slot}" is provided by both ${list.map((p) => `"${p.name}"`).join(" and ")}. Remove one of them from the ${what}, or name "${slot}" in the overrides of the one that should win.`,
      );
    } else {
      providers.set(slot, list[0]);
    }
  }

  for (const p of plugins) {
    for (const slot of p.requires ?? []) {
      if (!providers.has(slot) && !defaults.has(slot)) {
        throw new HyperlabError(
          "SLOT_MISSING_PROVIDER",
          `Plugin "${p.name}" requires slot "${slot}", but no plugin in the ${what} provides it. Add a plugin that provides "${slot}".`,
        );
      }
    }
  }

  // Order: depth-first over requires, reporting the first cycle found with its path.
  const order: P[] = [];
  const state = new Map<P, 1 | 2>(); // 1 = on the stack, 2 = done
  const stack: P[] = [];
  const visit = (p: P, via: string | null): void => {
    const s = state.get(p);
    if (s === 2) return;
    if (s === 1) {
      const from = stack.indexOf(p);
      const cycle = [...stack.slice(from), p].map((q) => `"${q.name}"`).join(" -> ");
      throw new HyperlabError(
        "PLUGIN_CYCLE",
        `The plugins of the ${what} require each other in a cycle: ${cycle} (through slot "${via}"). Break the cycle: one of them must not require the other's slot.`,
      );
    }
    state.set(p, 1);
    stack.push(p);
    for (const slot of p.requires ?? []) {
      const provider = providers.get(slot);
      if (provider !== undefined && provider !== p) visit(provider, slot);
    }
    stack.pop();
    state.set(p, 2);
    order.push(p);
  };
  for (const p of plugins) visit(p, null);
  return { order, providers };
}

/**
 * A table of slots filled during setup and frozen afterwards. Reading a slot that was never
 * filled and has no default is a bug in a plugin's setup, reported as a HyperlabError.
 */
export class SlotTable<S extends object> {
  private readonly values = new Map<keyof S, unknown>();
  private frozen = false;
  private readonly what: string;

  constructor(what: string, defaults: Partial<S> = {}) {
    this.what = what;
    for (const key of Object.keys(defaults) as (keyof S)[]) this.values.set(key, defaults[key]);
  }

  set<K extends keyof S>(slot: K, value: S[K]): void {
    if (this.frozen) {
      throw new HyperlabError(
        "SLOT_TABLE_FROZEN",
        `Slot "${String(slot)}" of the ${this.what} cannot change after boot. Provide it from a plugin's setup instead.`,
      );
    }
    this.values.set(slot, value);
  }

  get<K extends keyof S>(slot: K): S[K] {
    if (!this.values.has(slot)) {
      throw new HyperlabError(
        "SLOT_EMPTY",
        `Slot "${String(slot)}" of the ${this.what} has no implementation. Add a plugin that provides it.`,
      );
    }
    return this.values.get(slot) as S[K];
  }

  has(slot: keyof S): boolean {
    return this.values.has(slot);
  }

  names(): string[] {
    return [...this.values.keys()].map(String).sort();
  }

  freeze(): void {
    this.frozen = true;
  }

  get isFrozen(): boolean {
    return this.frozen;
  }

  /** A read-only object view of the table (the values as they are now). */
  view(): Readonly<S> {
    const out = {} as Record<string, unknown>;
    for (const [k, v] of this.values) out[String(k)] = v;
    return Object.freeze(out) as Readonly<S>;
  }
}
