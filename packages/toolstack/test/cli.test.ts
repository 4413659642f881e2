import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { XsClient } from "@hyperlab/xenstore";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../src/index";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "hyperlab-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) }, out, err };
}

/** The bin, run from source through tsx (workspace packages resolve to their src). */
function spawnCli(args: string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
    cwd: pkgDir,
    env: { ...process.env, TSX_TSCONFIG_PATH: join(pkgDir, "test/tsconfig.cli.json") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  child.stderr.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  child.stdout.on("data", (b: Buffer) => {
    stdout += b.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    exit,
    stderr: () => stderr,
    stdout: () => stdout,
    async waitFor(re: RegExp): Promise<void> {
      for (let i = 0; i < 600 && !re.test(stderr); i++) {
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      if (!re.test(stderr)) throw new Error(`never saw ${re} in stderr:\n${stderr}`);
    },
  };
}

describe("hyperlab (in process)", () => {
  it("--help lists the commands", async () => {
    const c = capture();
    expect(await runCli(["--help"], c.io)).toBe(0);
    expect(c.out.join("")).toMatch(/xenstored --socket PATH/);
  });

  it("no command: usage on stderr, status 2", async () => {
    const c = capture();
    expect(await runCli([], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/usage: hyperlab/);
  });

  it("unknown command says what to run", async () => {
    const c = capture();
    expect(await runCli(["frobnicate"], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/unknown command 'frobnicate'.*hyperlab --help/);
    expect(await runCli(["toString"], c.io)).toBe(2);
  });

  it("xenstored: --help, missing or empty --socket, unknown options", async () => {
    let c = capture();
    expect(await runCli(["xenstored", "--help"], c.io)).toBe(0);
    expect(c.out.join("")).toMatch(/XENSTORED_PATH/);
    c = capture();
    expect(await runCli(["xenstored"], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/--socket PATH is required/);
    c = capture();
    expect(await runCli(["xenstored", "--socket"], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/--socket needs a path/);
    c = capture();
    expect(await runCli(["xenstored", "--sock", "x"], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/unknown option '--sock'.*hyperlab xenstored --help/);
  });

  it("xenstored: a path that is not a socket fails with status 1 and says what to do", async () => {
    const f = join(dir, "plain-file");
    writeFileSync(f, "x");
    const c = capture();
    expect(await runCli(["xenstored", "--socket", f], c.io)).toBe(1);
    expect(c.err.join("")).toMatch(/not a socket; remove it or choose another --socket path/);
  });
});

describe("CLI conventions", () => {
  const version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;

  it("--version and -V print the package's version", async () => {
    for (const flag of ["--version", "-V"]) {
      const c = capture();
      expect(await runCli([flag], c.io)).toBe(0);
      expect(c.out.join("")).toBe(`hyperlab ${version}\n`);
    }
  });

  it("help VERB prints that verb's help, not the top-level one", async () => {
    let c = capture();
    expect(await runCli(["help", "study"], c.io)).toBe(0);
    expect(c.out.join("")).toMatch(/^Usage: hyperlab study \[options\]/);
    expect(c.out.join("")).toMatch(/--working-set <LIST>/);
    expect(c.out.join("")).not.toMatch(/Commands:/);
    c = capture();
    expect(await runCli(["help", "xenstored"], c.io)).toBe(0);
    expect(c.out.join("")).toMatch(/--socket <PATH>/);
    c = capture();
    expect(await runCli(["help"], c.io)).toBe(0);
    expect(c.out.join("")).toMatch(/Commands:[\s\S]*help \[COMMAND\]/);
    c = capture();
    expect(await runCli(["help", "nope"], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/unknown command 'nope'/);
    c = capture();
    expect(await runCli(["--frob"], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/unknown option '--frob'.*hyperlab --help/);
  });

  it("errors name the flag as typed and suggest the near one", async () => {
    let c = capture();
    expect(await runCli(["xenstored", "--sock", "x"], c.io)).toBe(2);
    expect(c.err.join("")).toBe(
      "hyperlab xenstored: unknown option '--sock' (did you mean --socket?). Run 'hyperlab xenstored --help' for the options.\n",
    );
    c = capture();
    expect(await runCli(["xenstored", "--socket", "--help"], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(
      /^hyperlab xenstored: --socket needs a value; got the flag '--help'/,
    );
    c = capture();
    expect(await runCli(["xenstored", "stray"], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/unexpected argument 'stray'/);
  });

  it("`pnpm exec hyperlab` works from the repository root after pnpm install", async () => {
    const root = join(pkgDir, "../..");
    const run = promisify(execFile);
    const { stdout } = await run("pnpm", ["exec", "hyperlab", "--version"], { cwd: root });
    expect(stdout).toBe(`hyperlab ${version}\n`);
    const help = await run("pnpm", ["exec", "hyperlab", "help", "study"], { cwd: root });
    expect(help.stdout).toMatch(/--out <DIR>/);
    // Usage errors keep status 2 through the bin.
    const bad = await run("pnpm", ["exec", "hyperlab", "study", "--bogus"], { cwd: root }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad?.code).toBe(2);
    expect(bad?.stderr).toMatch(/unknown option '--bogus'/);
    // Three pnpm processes, each starting Node and the bin: a loaded 2-core host needs more than
    // the default minute.
  }, 180_000);
});

describe("hyperlab xenstored (as a process)", () => {
  it("the bin starts with a node shebang", () => {
    expect(readFileSync(join(pkgDir, "src/cli.ts"), "utf8").split("\n")[0]).toBe(
      "#!/usr/bin/env node",
    );
  });

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`serves libxenstore and our client, logs connections, stops cleanly on ${signal}`, async () => {
      const sock = join(dir, `xs-${signal}.sock`);
      const p = spawnCli(["xenstored", "--socket", sock]);
      await p.waitFor(/listening on/);
      expect(existsSync(sock)).toBe(true);
      // A real libxenstore client.
      for (const t of ["/usr/bin/xenstore-write", "/usr/bin/xenstore-read"]) {
        if (!existsSync(t)) {
          throw new Error(
            `${t} is missing; run \`node scripts/peers.mjs\` from the repository root`,
          );
        }
      }
      const run = promisify(execFile);
      await run("/usr/bin/xenstore-write", ["/cli/key", "value"], {
        env: { ...process.env, XENSTORED_PATH: sock },
      });
      const { stdout } = await run("/usr/bin/xenstore-read", ["/cli/key"], {
        env: { ...process.env, XENSTORED_PATH: sock },
      });
      expect(stdout).toBe("value\n");
      const c = await XsClient.connect(sock);
      expect(await c.read("/cli/key")).toBe("value");
      // A client that sends garbage is dropped and logged; the daemon stays up.
      const huge = new Uint8Array(16);
      new DataView(huge.buffer).setUint32(12, 1 << 20, true);
      await new Promise<void>((resolve) => {
        const bad = netConnect(sock, () => bad.write(huge));
        bad.on("close", () => resolve());
        bad.on("error", () => {});
      });
      expect(await c.read("/cli/key")).toBe("value");
      c.close();
      await p.waitFor(/closed[\s\S]*closed[\s\S]*dropped: payload longer/);
      p.child.kill(signal);
      expect(await p.exit).toBe(0);
      expect(existsSync(sock)).toBe(false);
      const log = p.stderr();
      expect(log).toMatch(new RegExp(`${signal}: shutting down`));
      expect(log).toMatch(/xenstored: stopped/);
      for (const line of log.trim().split("\n")) expect(line).toMatch(/^xenstored: /);
    });
  }

  it("unknown subcommand as a process: status 2 and a hint", async () => {
    const p = spawnCli(["nope"]);
    expect(await p.exit).toBe(2);
    expect(p.stderr()).toMatch(/hyperlab --help/);
  });
});
