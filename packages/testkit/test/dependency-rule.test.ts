/*
 * The dependency rule (root .dependency-cruiser.cjs) must fail a tree that breaks it, naming
 * the rule: a floor-4 plugin importing a sibling plugin, guest-side code importing a hypervisor
 * plugin by package name, and an import circle. It lives in testkit, the package of checkers
 * every backend must pass, so `pnpm test` runs it with the other packages' tests.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../../..");
const fixture = join(here, "fixtures/dependency-rule");
// The root devDependency (pnpm links it into the root node_modules).
const bin = join(root, "node_modules/dependency-cruiser/bin/dependency-cruise.mjs");

interface Violation {
  rule: string;
  from: string;
  to: string;
}

/** Runs depcruise as `pnpm test` does (the `err` reporter), on the fixture tree. */
function cruise(): { status: number | null; violations: Violation[] } {
  const r = spawnSync(
    process.execPath,
    [bin, "packages", "--config", join(root, ".dependency-cruiser.cjs"), "--output-type", "err"],
    { cwd: fixture, encoding: "utf8" },
  );
  const violations = [...r.stdout.matchAll(/error ([\w-]+): (\S+) →\s+(\S+)/g)].map((m) => ({
    rule: m[1] as string,
    from: m[2] as string,
    to: m[3] as string,
  }));
  return { status: r.status, violations };
}

describe("the dependency rule", () => {
  const { status, violations } = cruise();
  const named = (rule: string) => violations.filter((v) => v.rule === rule);

  it("fails the fixture tree", () => {
    expect(status).not.toBe(0);
  });

  it("names the sideways import of a sibling plugin", () => {
    for (const rule of ["floor-grant-table", "plugin-imports-grant-table"]) {
      expect(named(rule).map((v) => [v.from, v.to])).toEqual([
        ["packages/grant-table/src/plugin.mjs", "packages/pv-mmu/src/index.mjs"],
      ]);
    }
  });

  it("names guest-side code importing a hypervisor plugin by package name", () => {
    expect(named("guest-side-no-hypervisor-plugin").map((v) => [v.from, v.to])).toEqual([
      ["packages/guest/src/index.mjs", "@hyperlab/evtchn"],
    ]);
  });

  it("names the import circle", () => {
    const circles = named("no-circular");
    expect(circles.length).toBeGreaterThan(0);
    for (const v of circles) expect(v.from).toMatch(/^packages\/grant-table\/src\/[ab]\.mjs$/);
  });

  it("lets a plugin import core", () => {
    expect(violations.filter((v) => v.from.startsWith("packages/pv-mmu/"))).toEqual([]);
    expect(violations).toHaveLength(4);
  });

  it("gives every package of the repository a floor, so a new package cannot escape the rule", () => {
    const config = createRequire(import.meta.url)(join(root, ".dependency-cruiser.cjs")) as {
      forbidden: { name: string }[];
    };
    const rules = new Set(config.forbidden.map((r) => r.name));
    const packages = readdirSync(join(root, "packages"), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
    expect(packages.length).toBeGreaterThan(15);
    // toolstack is the top floor: nothing is above it, so it alone needs no floor rule.
    expect(packages.filter((p) => !rules.has(`floor-${p}`))).toEqual(["toolstack"]);
  });
});
