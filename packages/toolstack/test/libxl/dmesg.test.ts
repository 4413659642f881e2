// `xl dmesg [-c]` over a host: Xen's console ring with its own consumer mark, so -c keeps
// working after the ring wraps (what reading by text offset got wrong).
import { describe, expect, it } from "vitest";
import { libxlHost } from "../../src/index";
import { host } from "./world";

describe("dmesg over the host", () => {
  it("reads the console ring, and -c clears by the ring's mark even after a wrap", async () => {
    const h = await host();
    const xl = libxlHost(h);
    const con = h.hv.slot("pv-cpu").console;
    const line = (s: string) => new TextEncoder().encode(s);
    const before = await xl.dmesg(true); // whatever boot printed, then clear
    expect(typeof before).toBe("string");
    const a = line("first line\n");
    con.write(0, true, a, a.length);
    expect(await xl.dmesg(false)).toContain("first line");
    expect(await xl.dmesg(true)).toContain("first line");
    expect(await xl.dmesg(false)).toBe("");
    // Wrap the ring several times over; after a clear only what came later shows.
    const big = line(`${"x".repeat(1000)}\n`);
    for (let i = 0; i < 100; i++) con.write(0, true, big, big.length);
    await xl.dmesg(true);
    const b = line("after the wrap\n");
    con.write(0, true, b, b.length);
    expect(await xl.dmesg(false)).toMatch(/^(\(XEN\) )?after the wrap\n$/);
  });
});
