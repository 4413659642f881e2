import { describe, expect, it } from "vitest";
import { HyperlabError, resolvePlugins, SlotTable } from "../src/index";

type P = { name: string; provides?: string[]; requires?: string[]; overrides?: string[] };

function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HyperlabError);
    return { code: (e as HyperlabError).code, message: (e as Error).message };
  }
  throw new Error("expected a HyperlabError");
}

describe("resolvePlugins", () => {
  it("orders setups after the providers of what each plugin requires", () => {
    const plugins: P[] = [
      { name: "grants", requires: ["mmu", "evtchn"], provides: ["grants"] },
      { name: "evtchn", provides: ["evtchn"] },
      { name: "pv", provides: ["mmu"] },
    ];
    const { order, providers } = resolvePlugins(plugins);
    const names = order.map((p) => p.name);
    expect(names.indexOf("grants")).toBeGreaterThan(names.indexOf("evtchn"));
    expect(names.indexOf("grants")).toBeGreaterThan(names.indexOf("pv"));
    expect(providers.get("mmu")?.name).toBe("pv");
  });

  it("is deterministic: the same list gives the same order", () => {
    const plugins: P[] = [
      { name: "a", requires: ["x"] },
      { name: "b", provides: ["x"] },
      { name: "c" },
    ];
    expect(resolvePlugins(plugins).order.map((p) => p.name)).toEqual(["b", "a", "c"]);
    expect(resolvePlugins(plugins).order.map((p) => p.name)).toEqual(["b", "a", "c"]);
  });

  it("refuses a missing provider, naming plugin and slot", () => {
    const e = codeOf(() =>
      resolvePlugins([{ name: "grants", requires: ["mmu"] }], { what: "hypervisor" }),
    );
    expect(e.code).toBe("SLOT_MISSING_PROVIDER");
    expect(e.message).toContain('"grants"');
    expect(e.message).toContain('"mmu"');
    expect(e.message).toContain("Add a plugin");
  });

  it("accepts a required slot that has a default", () => {
    const { order } = resolvePlugins([{ name: "x", requires: ["time"] }], { defaults: ["time"] });
    expect(order.map((p) => p.name)).toEqual(["x"]);
  });

  it("refuses two providers without an override, naming both", () => {
    const e = codeOf(() =>
      resolvePlugins([
        { name: "pv-mmu", provides: ["mmu"] },
        { name: "npt-mmu", provides: ["mmu"] },
      ]),
    );
    expect(e.code).toBe("SLOT_DUPLICATE_PROVIDER");
    expect(e.message).toContain('"pv-mmu"');
    expect(e.message).toContain('"npt-mmu"');
    expect(e.message).toContain("overrides");
  });

  it("lets an explicit override win", () => {
    const { providers } = resolvePlugins([
      { name: "pv-mmu", provides: ["mmu"] },
      { name: "traced-mmu", provides: ["mmu"], overrides: ["mmu"] },
    ]);
    expect(providers.get("mmu")?.name).toBe("traced-mmu");
  });

  it("refuses two overrides of one slot", () => {
    const e = codeOf(() =>
      resolvePlugins([
        { name: "a", provides: ["mmu"], overrides: ["mmu"] },
        { name: "b", provides: ["mmu"], overrides: ["mmu"] },
      ]),
    );
    expect(e.code).toBe("SLOT_CONFLICTING_OVERRIDES");
    expect(e.message).toContain('"a"');
    expect(e.message).toContain('"b"');
  });

  it("refuses an override of a slot the plugin does not provide", () => {
    const e = codeOf(() => resolvePlugins([{ name: "a", overrides: ["mmu"] }]));
    expect(e.code).toBe("PLUGIN_OVERRIDE_WITHOUT_PROVIDE");
    expect(e.message).toContain('"mmu"');
  });

  it("refuses a cycle, showing its path and the slot", () => {
    const e = codeOf(() =>
      resolvePlugins([
        { name: "a", provides: ["x"], requires: ["y"] },
        { name: "b", provides: ["y"], requires: ["z"] },
        { name: "c", provides: ["z"], requires: ["x"] },
      ]),
    );
    expect(e.code).toBe("PLUGIN_CYCLE");
    expect(e.message).toMatch(/"a" -> "b" -> "c" -> "a"/);
    expect(e.message).toContain('slot "');
  });

  it("lets a plugin require a slot it provides itself", () => {
    expect(resolvePlugins([{ name: "a", provides: ["x"], requires: ["x"] }]).order).toHaveLength(1);
  });

  it("refuses duplicate and nameless plugins", () => {
    expect(codeOf(() => resolvePlugins([{ name: "a" }, { name: "a" }])).code).toBe(
      "PLUGIN_DUPLICATE",
    );
    expect(codeOf(() => resolvePlugins([{ name: "" }])).code).toBe("PLUGIN_INVALID");
    expect(codeOf(() => resolvePlugins([null as unknown as P])).code).toBe("PLUGIN_INVALID");
  });
});

describe("SlotTable", () => {
  it("holds defaults, takes values, and freezes", () => {
    const t = new SlotTable<{ a: number; b: string }>("guest kernel", { a: 1 });
    expect(t.get("a")).toBe(1);
    expect(t.has("b")).toBe(false);
    t.set("b", "x");
    expect(t.names()).toEqual(["a", "b"]);
    expect(t.view()).toEqual({ a: 1, b: "x" });
    t.freeze();
    expect(t.isFrozen).toBe(true);
    expect(codeOf(() => t.set("a", 2)).code).toBe("SLOT_TABLE_FROZEN");
    expect(t.get("a")).toBe(1);
  });

  it("reports an empty slot as a typed error", () => {
    const t = new SlotTable<{ a: number }>("hypervisor");
    const e = codeOf(() => t.get("a"));
    expect(e.code).toBe("SLOT_EMPTY");
    expect(e.message).toContain('"a"');
  });
});
