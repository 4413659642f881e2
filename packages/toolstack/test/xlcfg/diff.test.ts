// Differential test: our dryRunCreate against Debian's real `xl -N create` (4.17) run through the
// repository's copy of the xl shim, byte for byte on stdout, stderr and exit status.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { dryRunCreate } from "../../src/xlcfg/create";

const here = new URL(".", import.meta.url).pathname;
const corpus = join(here, "corpus");
const shim = join(here, "../peers/xl/xl-shim.sh");
const xlBin = process.env.XL_BIN ?? "/usr/lib/xen-4.17/bin/xl";

function missingPeer(): string | null {
  if (!existsSync(xlBin))
    return `no xl at ${xlBin}: install xen-utils-4.17 (sudo node scripts/peers.mjs)`;
  try {
    execFileSync("gcc", ["--version"], { stdio: "ignore" });
  } catch {
    return "no gcc: install gcc (sudo node scripts/peers.mjs)";
  }
  if (!existsSync("/usr/include/libxl.h"))
    return "no libxl.h: install libxen-dev (sudo node scripts/peers.mjs)";
  return null;
}

const files = readdirSync(corpus)
  .filter((f) => f.endsWith(".cfg"))
  .sort();
const missing = missingPeer();

describe("xl -N create, ours against the real xl 4.17", () => {
  it("has a corpus of at least 40 configs", () => {
    expect(files.length).toBeGreaterThanOrEqual(40);
  });
  if (missing !== null && process.env.CI === "true") {
    it("needs the real xl peer in CI", () => {
      throw new Error(`the xl peer cannot run: ${missing}`);
    });
    return;
  }
  for (const f of files) {
    it.skipIf(missing !== null)(`${f}${missing ? ` (skipped: ${missing})` : ""}`, () => {
      const real = spawnSync(shim, ["-N", "create", f], { cwd: corpus, encoding: "latin1" });
      const ours = dryRunCreate(readFileSync(join(corpus, f), "latin1"), f);
      expect({ stdout: ours.stdout, stderr: ours.stderr, exitCode: ours.exitCode }).toEqual({
        stdout: real.stdout,
        stderr: real.stderr,
        exitCode: real.status,
      });
    });
  }
});

// Mutated configs, each compared with the real xl (a fixed seed, so the cases are the same on
// every run; HYPERLAB_LONG=1 tries more of them).
const base =
  'name = "g"\nkernel = "/k"\nvcpus = 2\ndisk = [ "/a,raw,xvda,rw" ]\nvif = [ "bridge=xenbr0" ]\n';
const edit = fc.tuple(
  fc.nat(base.length),
  fc.nat(3),
  fc.constantFrom(..."\"'[],;=+#\\\n 0aZ@-x".split("")),
);

describe.skipIf(missing !== null)("mutated configs, ours against the real xl 4.17", () => {
  it("matches byte for byte", () => {
    const dir = mkdtempSync(join(tmpdir(), "xlcfg-"));
    try {
      fc.assert(
        fc.property(fc.array(edit, { maxLength: 3 }), (edits) => {
          let text = base;
          for (const [at, del, ins] of edits) text = text.slice(0, at) + ins + text.slice(at + del);
          writeFileSync(join(dir, "m.cfg"), text, "latin1");
          const real = spawnSync(shim, ["-N", "create", "m.cfg"], { cwd: dir, encoding: "latin1" });
          const ours = dryRunCreate(text, "m.cfg");
          expect({ stdout: ours.stdout, stderr: ours.stderr, exitCode: ours.exitCode }).toEqual({
            stdout: real.stdout,
            stderr: real.stderr,
            exitCode: real.status,
          });
        }),
        { seed: 0x14c0f, numRuns: process.env.HYPERLAB_LONG ? 200 : 20 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
