/*
 * Stats: every counted event has a unit and a description, grouped per plugin.
 * Counters are plain objects with a numeric `value` that hot paths increment directly;
 * gauges read a value that a plugin keeps elsewhere (a typed array, a TLB's fields).
 */
import { HyperlabError } from "./errors";

export interface Counter {
  value: number;
}

export interface StatInfo {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
}

export interface StatValue extends StatInfo {
  readonly value: number;
}

interface Entry extends StatInfo {
  read(): number;
}

export class StatGroup {
  readonly name: string;
  private readonly entries = new Map<string, Entry>();

  constructor(name: string) {
    this.name = name;
  }

  private add(entry: Entry): void {
    if (this.entries.has(entry.name)) {
      throw new HyperlabError(
        "STAT_DUPLICATE",
        `Stat "${this.name}.${entry.name}" is defined twice. Give each stat of a plugin its own name.`,
      );
    }
    this.entries.set(entry.name, entry);
  }

  /** A counter the caller increments: `c.value++`. */
  counter(name: string, unit: string, description: string): Counter {
    const c: Counter = { value: 0 };
    this.add({ name, unit, description, read: () => c.value });
    return c;
  }

  /** A value read on demand from wherever the plugin keeps it. */
  gauge(name: string, unit: string, description: string, read: () => number): void {
    this.add({ name, unit, description, read });
  }

  snapshot(): StatValue[] {
    return [...this.entries.values()].map((e) => ({
      name: e.name,
      unit: e.unit,
      description: e.description,
      value: e.read(),
    }));
  }
}

export class Stats {
  private readonly groups = new Map<string, StatGroup>();

  group(name: string): StatGroup {
    let g = this.groups.get(name);
    if (g === undefined) {
      g = new StatGroup(name);
      this.groups.set(name, g);
    }
    return g;
  }

  /** Every stat, by group, in definition order. */
  snapshot(): Record<string, StatValue[]> {
    const out: Record<string, StatValue[]> = {};
    for (const [name, g] of this.groups) out[name] = g.snapshot();
    return out;
  }

  /** One stat's current value, or undefined if no such stat exists. */
  read(group: string, name: string): number | undefined {
    return this.groups
      .get(group)
      ?.snapshot()
      .find((s) => s.name === name)?.value;
  }
}
