// `hyperlab -N create FILE` through the CLI: the same text and exit status as the library's
// dryRunCreate (itself checked against Debian's xl in xlcfg/diff.test.ts), and xl's answers for
// a missing file, no file, and a create without a host.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { dryRunCreate, runCli } from "../src/index";

const corpus = fileURLToPath(new URL("./xlcfg/corpus/", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "hyperlab-create-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) },
    out: () => out.join(""),
    err: () => err.join(""),
  };
}

describe("hyperlab create", () => {
  it("-N create prints what dryRunCreate prints, with its exit status", async () => {
    const file = join(corpus, "02-full.cfg");
    const want = dryRunCreate(readFileSync(file, "latin1"), file);
    expect(want.exitCode).toBe(0);
    const c = capture();
    expect(await runCli(["-N", "create", file], c.io)).toBe(0);
    expect(c.out()).toBe(want.stdout);
    expect(c.err()).toBe(want.stderr);
    expect(JSON.parse(c.out())).toHaveProperty("c_info");
    const n = capture();
    expect(await runCli(["create", "-n", file], n.io)).toBe(0);
    expect(n.out()).toBe(want.stdout);
  });

  it("a malformed file gets libxlutil's message and xl's exit status", async () => {
    const file = join(dir, "bad.cfg");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(file, 'name = "unterminated\n');
    const c = capture();
    const rc = await runCli(["-N", "create", file], c.io);
    expect(rc).toBe(1);
    expect(c.err()).toMatch(/^Parsing config from .*bad\.cfg\n/);
    expect(c.err()).toMatch(/Failed to parse config: Invalid argument\n$/);
  });

  it("answers as xl for a missing file (3) and no file (6)", async () => {
    const c = capture();
    expect(await runCli(["-N", "create", join(dir, "nope.cfg")], c.io)).toBe(3);
    expect(c.err()).toBe(
      `Failed to read config file: ${join(dir, "nope.cfg")}: No such file or directory\n`,
    );
    const d = capture();
    expect(await runCli(["-N", "create"], d.io)).toBe(6);
    expect(d.err()).toBe("Config file not specified and none in save file\n");
  });

  it("without a running host: parses the file, then says to start one", async () => {
    const old = process.env.HYPERLAB_RUN_DIR;
    process.env.HYPERLAB_RUN_DIR = dir;
    const c = capture();
    expect(await runCli(["create", join(corpus, "01-minimal.cfg")], c.io)).toBe(1);
    expect(c.err()).toMatch(
      /^Parsing config from .*\nhyperlab create: no host is running at .*start one with 'hyperlab up'/,
    );
    if (old === undefined) delete process.env.HYPERLAB_RUN_DIR;
    else process.env.HYPERLAB_RUN_DIR = old;
  });

  it("names an unknown flag as typed, and -N without create is a usage error", async () => {
    const c = capture();
    expect(await runCli(["create", "--frob", "x.cfg"], c.io)).toBe(2);
    expect(c.err()).toMatch(/'--frob'/);
    const d = capture();
    expect(await runCli(["-N", "list"], d.io)).toBe(2);
  });
});

describe("hyperlab xenstored --domains", () => {
  it("passes the list to the daemon, whose check rejects a malformed one", async () => {
    const c = capture();
    const rc = await runCli(
      ["xenstored", "--socket", join(dir, "xs.sock"), "--domains", "0,banana"],
      c.io,
    );
    expect(rc).toBe(1);
    expect(c.err()).toMatch(/banana/);
  });
});
