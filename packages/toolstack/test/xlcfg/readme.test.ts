// The README's xl.cfg example, run as written.
import { expect, it } from "vitest";
import { dryRunCreate } from "../../src/index";

it("README example: xl -N create as a function", () => {
  const out: unknown[] = [];
  const console = { log: (s: unknown) => out.push(s) };

  const r = dryRunCreate('name = "web"\nkernel = "/boot/vmlinuz"\nmemory = 256\n', "web.cfg");
  console.log(r.exitCode); // 0
  console.log(r.stderr); // "Parsing config from web.cfg\n"
  console.log(r.stdout.includes('"target_memkb": 262144')); // true

  const bad = dryRunCreate("memory = 0xZZ\n", "bad.cfg");
  console.log(bad.exitCode); // 1
  console.log(bad.stderr.split("\n")[1]); // "bad.cfg:1: config parsing error near `ZZ': lexical error"

  expect(out).toEqual([
    0,
    "Parsing config from web.cfg\n",
    true,
    1,
    "bad.cfg:1: config parsing error near `ZZ': lexical error",
  ]);
});
