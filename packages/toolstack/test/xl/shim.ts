// Runs Debian's real xl 4.17 under the project's copy of the xl shim (test/peers/xl), built
// once per test file, against a host described in the shim's text format.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const here = new URL(".", import.meta.url).pathname;
const shimSource = join(here, "../peers/xl/xlshim.c");
export const XL_BIN = process.env.XL_BIN ?? "/usr/lib/xen-4.17/bin/xl";

/** Why the real xl cannot run here, or null. */
export function missingPeer(): string | null {
  if (!existsSync(XL_BIN))
    return `no xl at ${XL_BIN}: install xen-utils-4.17 (sudo node scripts/peers.mjs)`;
  try {
    execFileSync("gcc", ["--version"], { stdio: "ignore" });
  } catch {
    return "no gcc: install gcc (sudo node scripts/peers.mjs)";
  }
  if (!existsSync("/usr/include/libxl.h"))
    return "no libxl.h: install libxen-dev (sudo node scripts/peers.mjs)";
  return null;
}

export interface XlRun {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

/** A built shim and a scratch folder; `close` removes both. */
export interface Shim {
  run(hostText: string, args: readonly string[]): XlRun;
  close(): void;
}

export function buildShim(): Shim {
  const dir = mkdtempSync(join(tmpdir(), "xlshim-"));
  const so = join(dir, "xlshim.so");
  execFileSync("gcc", ["-O2", "-fPIC", "-shared", "-o", so, shimSource, "-ldl"]);
  const hostFile = join(dir, "host.txt");
  return {
    run(hostText, args) {
      writeFileSync(hostFile, hostText, "latin1");
      const r = spawnSync(XL_BIN, [...args], {
        encoding: "latin1",
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          LD_PRELOAD: so,
          XLSHIM_DOMAINS: hostFile,
        },
      });
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.status };
    },
    close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
