import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { escapeData, parseCNumber, ringReplay, unescapeData } from "../src/index";

const LONG = process.env.HYPERLAB_LONG !== undefined;
const SCRIPTS = join(import.meta.dirname, "scripts");

describe("ring replay", () => {
  it("prints the reference's example output exactly", () => {
    const r = ringReplay(readFileSync(join(SCRIPTS, "example.ring")));
    expect(r.output).toBe(readFileSync(join(SCRIPTS, "example.expected"), "utf8"));
    expect(r.status).toBe(0);
  });

  it("parses numbers as strtoull/strtoll with base 0 do", () => {
    expect(parseCNumber("0x1F")).toBe(31n);
    expect(parseCNumber("017")).toBe(15n);
    expect(parseCNumber("+9")).toBe(9n);
    expect(parseCNumber("-1")).toBe((1n << 64n) - 1n);
    expect(parseCNumber("-9223372036854775808")).toBe(1n << 63n);
    expect(parseCNumber("18446744073709551615")).toBe((1n << 64n) - 1n);
    for (const bad of [
      "",
      "-",
      "+",
      "08",
      "0x",
      "0xg",
      "1x",
      "18446744073709551616",
      "-9223372036854775809",
      " 1",
      "0b1",
    ]) {
      expect(parseCNumber(bad), bad).toBeUndefined();
    }
  });

  it("escapes and unescapes console data", () => {
    expect(Array.from(unescapeData("a\\s\\n\\t\\\\\\x4\\x41x\\q\\"))).toEqual([
      97, 32, 10, 9, 92, 4, 0x41, 120, 113, 92,
    ]);
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const esc = escapeData(all, 256);
    expect(esc).not.toMatch(/[ \n]/); // "#" prints as itself (0x21..0x7e)
    expect(Array.from(unescapeData(esc))).toEqual(Array.from(all));
    expect(escapeData(all, 0)).toBe("-");
  });

  it("prints a failed command as LINE OP ERROR and changes nothing", () => {
    const r = ringReplay("ring netif_rx\nf.req id=1 gref=2 bogus=3\nstate\n");
    expect(r.status).toBe(1);
    const lines = r.output.split("\n");
    expect(lines[1]).toBe("2 f.req ERROR unknown field 'bogus'");
    expect(lines[2]).toContain("f.req_prod_pvt=0 ");
  });

  it("never throws, whatever the bytes of the script (fast-check)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const r = ringReplay(bytes);
        expect(r.status === 0 || r.status === 1).toBe(true);
      }),
      { seed: 0xbad5, numRuns: LONG ? 5000 : 300 },
    );
  });
});
