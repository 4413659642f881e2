// cfmt against C itself: a small C program (built with the gcc the xl peer needs) prints
// "%.1f" of doubles and "%8.1f" of (float)ns / 1e9; ours must print the same bytes, exact
// ties included (1.25 -> 1.2, 2.75 -> 2.8), over fixed cases and fast-check's doubles.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cLength,
  cpuSeconds,
  fixed1,
  hex32,
  int32,
  padEnd,
  padStart,
  uint32,
} from "../../src/xl/cfmt";

let gcc = true;
try {
  execFileSync("gcc", ["--version"], { stdio: "ignore" });
} catch {
  gcc = false;
}
const dir = mkdtempSync(join(tmpdir(), "cfmt-"));
const bin = join(dir, "fmt");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  if (!gcc) return;
  // Each input line: "d HEXBITS" (a double) or "n DECIMAL" (a uint64 of nanoseconds).
  writeFileSync(
    join(dir, "fmt.c"),
    `#include <stdio.h>
#include <stdint.h>
#include <string.h>
int main(void) {
  char kind; unsigned long long v;
  while (scanf(" %c %llx", &kind, &v) == 2) {
    if (kind == 'd') { double d; memcpy(&d, &v, 8); printf("%.1f\\n", d); }
    else printf("%8.1f|%9.1f\\n", ((float)(uint64_t)v / 1e9), ((float)(uint64_t)v / 1e9));
  }
  return 0;
}
`,
  );
  execFileSync("gcc", ["-O0", "-o", bin, join(dir, "fmt.c")]);
});

function bits(d: number): string {
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, d);
  return b.getBigUint64(0).toString(16);
}

function cPrint(lines: string[]): string[] {
  const out = execFileSync(bin, { input: `${lines.join("\n")}\n`, encoding: "latin1" });
  return out.split("\n").slice(0, -1);
}

describe.skipIf(!gcc && process.env.CI !== "true")(
  "fixed1 and cpuSeconds against C's printf",
  () => {
    it("rounds exact ties to even, as glibc does", () => {
      expect([1.25, 2.25, 2.75, 0.25, 0.75, 0.05, 0.15, 1e15 + 0.25].map(fixed1)).toEqual(
        cPrint([1.25, 2.25, 2.75, 0.25, 0.75, 0.05, 0.15, 1e15 + 0.25].map((d) => `d ${bits(d)}`)),
      );
      expect(fixed1(1.25)).toBe("1.2");
      expect(fixed1(2.75)).toBe("2.8");
    });
    it("matches on random doubles", () => {
      const ds = fc.sample(
        fc.oneof(
          fc.double({ min: 0, max: 1e15, noNaN: true }),
          fc.nat(1_000_000).map((k) => k / 4),
          fc.nat(1_000_000).map((k) => k / 20),
        ),
        { seed: 26, numRuns: process.env.HYPERLAB_LONG === "1" ? 200_000 : 5000 },
      );
      const c = cPrint(ds.map((d) => `d ${bits(d)}`));
      ds.forEach((d, i) => {
        if (fixed1(d) !== c[i]) expect({ d, ours: fixed1(d) }).toEqual({ d, ours: c[i] });
      });
    });
    it("matches xl's (float)ns / 1e9 with %8.1f and %9.1f", () => {
      const ns = fc.sample(
        fc.oneof(
          fc.nat(100_000).map((k) => k * 50_000_000),
          fc.nat({ max: 2 ** 53 - 1 }),
        ),
        { seed: 27, numRuns: 3000 },
      );
      const c = cPrint(ns.map((n) => `n ${n.toString(16)}`));
      ns.forEach((n, i) => {
        const s = fixed1(cpuSeconds(n));
        const ours = `${padStart(s, 8)}|${padStart(s, 9)}`;
        if (ours !== c[i]) expect({ n, ours }).toEqual({ n, ours: c[i] });
      });
    });
  },
);

describe("integer and padding helpers", () => {
  it("wraps as C's int and unsigned", () => {
    expect(int32(2 ** 31)).toBe(-(2 ** 31));
    expect(int32(2 ** 32 + 5)).toBe(5);
    expect(uint32(-1)).toBe(0xffffffff);
    expect(hex32(-1)).toBe("ffffffff");
    expect(hex32(255)).toBe("ff");
  });
  it("pads by bytes, as printf counts them, and never cuts", () => {
    expect(padEnd("ab", 4)).toBe("ab  ");
    expect(padStart("ab", 4)).toBe("  ab");
    expect(padEnd("abcdef", 4)).toBe("abcdef");
    expect(cLength("é")).toBe(2);
    expect(padEnd("é", 4)).toBe("é  ");
  });
});
