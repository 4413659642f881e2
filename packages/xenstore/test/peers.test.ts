/*
 * Real clients against our daemon's unix socket: Debian's xenstore-utils (libxenstore),
 * Xen 4.17's own test-xenstore, and python3-pyxs. A missing peer is a failure that says
 * how to install it, never a skip.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenUnix, Xenstored, type XenstoredSocketServer } from "../src/index";

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const TEST_XENSTORE = join(repoRoot, ".peers/usr/lib/xen-4.17/bin/test-xenstore");
const TOOLS = ["read", "write", "ls", "rm", "chmod", "list", "exists", "watch"].map(
  (t) => `/usr/bin/xenstore-${t}`,
);
const PYTHON = "/usr/bin/python3";

function requirePeer(path: string, what: string): void {
  if (!existsSync(path)) {
    throw new Error(
      `${what} is missing (${path}); run \`node scripts/peers.mjs\` from the repository root to install the test peers`,
    );
  }
}

let dir: string;
let sock: string;
let daemon: Xenstored;
let server: XenstoredSocketServer;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hyperlab-xs-"));
  sock = join(dir, "socket");
  daemon = new Xenstored();
  server = await listenUnix(daemon, sock);
  env = { ...process.env, XENSTORED_PATH: sock };
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function xs(tool: string, ...args: string[]): Promise<{ out: string; code: number }> {
  const bin = `/usr/bin/xenstore-${tool}`;
  requirePeer(bin, `xenstore-${tool} (Debian xenstore-utils)`);
  try {
    const { stdout } = await run(bin, args, { env, timeout: 20_000 });
    return { out: stdout, code: 0 };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      out: `${err.stdout ?? ""}${err.stderr ?? ""}`,
      code: typeof err.code === "number" ? err.code : -1,
    };
  }
}

describe("Debian xenstore-utils (libxenstore over XENSTORED_PATH)", () => {
  it("all tools are installed", () => {
    for (const t of TOOLS) requirePeer(t, `${t} (Debian xenstore-utils)`);
  });

  it("write, read, exists, list, ls, rm", async () => {
    expect((await xs("write", "/peers/a", "alpha", "/peers/b/c", "gamma")).code).toBe(0);
    expect((await xs("read", "/peers/a", "/peers/b/c")).out).toBe("alpha\ngamma\n");
    expect((await xs("exists", "/peers/b")).code).toBe(0);
    expect((await xs("exists", "/peers/nope")).code).not.toBe(0);
    expect((await xs("list", "/peers")).out).toBe("a\nb\n");
    expect((await xs("ls", "/peers")).out).toBe('a = "alpha"\nb = ""\n c = "gamma"\n');
    expect((await xs("rm", "/peers/b")).code).toBe(0);
    expect((await xs("list", "/peers")).out).toBe("a\n");
    const miss = await xs("read", "/peers/b/c");
    expect(miss.code).not.toBe(0);
    expect(miss.out).toMatch(/couldn't read path/);
  });

  it("chmod sets permissions that ls -p shows", async () => {
    await xs("write", "/perm/x", "1");
    expect((await xs("chmod", "/perm/x", "n0", "r5", "b7")).code).toBe(0);
    expect((await xs("ls", "-p", "/perm")).out).toMatch(/x = "1" .*\(n0,r5,b7\)/);
    expect((await xs("chmod", "/perm/x", "q9")).code).not.toBe(0);
  });

  it("xenstore-watch sees the initial event and later writes", async () => {
    const bin = "/usr/bin/xenstore-watch";
    requirePeer(bin, "xenstore-watch (Debian xenstore-utils)");
    const child = spawn(bin, ["-n", "3", "/watched"], { env });
    let out = "";
    let errOut = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      errOut += b.toString();
    });
    const exited = new Promise<number>((resolve) => child.on("exit", (c) => resolve(c ?? -1)));
    while (!out.includes("/watched\n")) await new Promise((r) => setTimeout(r, 20));
    await xs("write", "/watched/child", "1");
    await xs("write", "/elsewhere", "1");
    await xs("write", "/watched", "2");
    const code = await exited;
    expect(out).toBe("/watched\n/watched/child\n/watched\n");
    expect(`${code} ${errOut}`).toBe("0 ");
    // The client's socket closes after it exits: its watch goes with the connection.
    for (let i = 0; i < 200 && daemon.watchCount > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(daemon.watchCount).toBe(0);
  });
});

describe("Xen 4.17's test-xenstore", () => {
  it("passes all 12 tests", async () => {
    requirePeer(TEST_XENSTORE, "test-xenstore (from Debian xen-utils-4.17)");
    const list = await run(TEST_XENSTORE, ["--list-tests"], { env });
    const names = list.stdout
      .trim()
      .split("\n")
      .map((l) => l.slice(0, l.indexOf(":")).trim());
    expect(names).toHaveLength(12);
    // It works below dom0's home (a relative path "xenstore-test/<pid>"): a socket
    // connection is privileged, so it may create that.
    const { stdout } = await run(TEST_XENSTORE, [], { env, timeout: 60_000 });
    const lines = stdout.trim().split("\n");
    for (const name of names) {
      const line = lines.find((l) => l.slice(0, l.indexOf(":")).trim() === name);
      expect(line, `test-xenstore printed nothing for "${name}":\n${stdout}`).toBeDefined();
      expect(line).toMatch(/: \d+ ns$/);
    }
    expect(stdout).not.toMatch(/failed/);
    // It cleans up after itself.
    expect(daemon.db.has("/local/domain/0/xenstore-test")).toBe(false);
    expect(daemon.checkInvariants()).toEqual([]);
  });
});

describe("python3-pyxs", () => {
  it("write, read, list, watch and a transaction", async () => {
    requirePeer(PYTHON, "/usr/bin/python3");
    const script = `
import sys
try:
    from pyxs import Client
except ImportError:
    sys.exit("pyxs missing: run node scripts/peers.mjs")
with Client(unix_socket_path=sys.argv[1]) as c:
    c.write(b"/py/a", b"1")
    assert c.read(b"/py/a") == b"1"
    c.write(b"/py/b", b"2")
    print(sorted(c.list(b"/py")))
    m = c.monitor()
    m.watch(b"/py/a", b"tok")
    events = m.wait()
    print(next(events))
    with Client(unix_socket_path=sys.argv[1]) as other:
        other.write(b"/py/a", b"3")
    print(next(events))
    c.transaction()
    c.write(b"/py/t", b"in-tx")
    print(c.commit())
    print(c.read(b"/py/t"))
    print(c.get_perms(b"/py/t"))
`;
    const { stdout } = await run(PYTHON, ["-c", script, sock], { env, timeout: 30_000 });
    expect(stdout.trim().split("\n")).toEqual([
      "[b'a', b'b']",
      "Event(path=b'/py/a', token=b'tok')",
      "Event(path=b'/py/a', token=b'tok')",
      "True",
      "b'in-tx'",
      "[b'n0']",
    ]);
  });
});
