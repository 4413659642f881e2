// `hyperlab study --queue URL` with `hyperlab worker URL` processes on a real redis-server
// (Debian's, started here on a free port with no persistence): a worker SIGKILLed mid-cell
// loses no cell, none is counted twice, and results.json is byte-identical to a local run.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/index";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "hyperlab-queue-"));
const children: ChildProcess[] = [];
let url = "";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0));
    });
  });
}

async function startRedis(): Promise<string> {
  const port = await freePort();
  const p = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { cwd: dir, stdio: "ignore" },
  );
  children.push(p);
  const r = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null });
  r.on("error", () => {});
  for (let i = 0; ; i++) {
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      return `redis://127.0.0.1:${port}`;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}

/** `hyperlab worker URL` from source, with a short lock so a dead worker's cell soon retries. */
function startWorker(name: string) {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli.ts",
      "worker",
      url,
      "--lock-duration",
      "1500",
      "--stalled-interval",
      "500",
    ],
    {
      cwd: pkgDir,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(pkgDir, "test/tsconfig.cli.json") },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  children.push(child);
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  return {
    name,
    child,
    exit,
    stderr: () => stderr,
    async waitFor(re: RegExp): Promise<RegExpExecArray> {
      for (let i = 0; i < 1200; i++) {
        const m = re.exec(stderr);
        if (m !== null) return m;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${name} never printed ${re}:\n${stderr}`);
    },
  };
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) }, out, err };
}

const SWEEP = [
  "study",
  ...["--workloads", "random,stream", "--backends", "native,nested"],
  ...["--working-set", "1M", "--ops", "2000", "--workers", "0", "--quiet"],
];

beforeAll(async () => {
  url = await startRedis();
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("hyperlab study --queue", () => {
  it("survives a worker SIGKILLed mid-cell: every cell once, results as a local run", async () => {
    const local = capture();
    expect(await runCli([...SWEEP, "--out", join(dir, "local")], local.io)).toBe(0);

    const a = startWorker("worker A");
    const b = startWorker("worker B");
    await a.waitFor(/ready on /);
    await b.waitFor(/ready on /);
    const q = capture();
    const study = runCli([...SWEEP, "--queue", url, "--out", join(dir, "queued")], q.io);
    // A takes a cell and dies in the middle of it (its thread is still booting or running).
    const [, killed] = await a.waitFor(/start cell (\d+) /);
    a.child.kill("SIGKILL");
    expect(await a.exit).toBeNull();
    expect(await study).toBe(0);
    expect(q.err.join("")).toBe("");
    expect(a.stderr()).not.toMatch(new RegExp(`done cell ${killed} `));
    // B ran the dead worker's cell once its lock expired, and every other cell.
    expect(b.stderr()).toMatch(new RegExp(`done cell ${killed} `));

    const localJson = readFileSync(join(dir, "local/results.json"));
    const queuedJson = readFileSync(join(dir, "queued/results.json"));
    expect(queuedJson.equals(localJson)).toBe(true);
    const runs = JSON.parse(queuedJson.toString()).runs as { index: number }[];
    expect(runs.map((r) => r.index)).toEqual([0, 1, 2, 3]);

    // One job per cell in Redis, all completed: the retry made no second job.
    const r = new Redis(url);
    const completed = await r.zcard("bull:hyperlab-study:completed");
    const failed = await r.zcard("bull:hyperlab-study:failed");
    r.disconnect();
    expect(completed).toBe(4);
    expect(failed).toBe(0);

    // The same study again: the jobs are found by their ids, nothing runs twice.
    const again = capture();
    expect(await runCli([...SWEEP, "--queue", url, "--out", join(dir, "again")], again.io)).toBe(0);
    expect(readFileSync(join(dir, "again/results.json")).equals(localJson)).toBe(true);
    const starts = (b.stderr().match(/start cell/g) ?? []).length;
    expect(starts).toBeLessThanOrEqual(4);

    b.child.kill("SIGTERM");
    expect(await b.exit).toBe(0);
    expect(b.stderr()).toMatch(/SIGTERM: finishing the cell it holds/);
  }, 120_000);

  it("a bad --queue URL is refused before any run, naming the flag (status 2)", async () => {
    for (const bad of ["localhost:6379", "http://127.0.0.1:6379", "redis://", "redis://h/x"]) {
      const c = capture();
      expect(await runCli([...SWEEP, "--queue", bad], c.io)).toBe(2);
      expect(c.err.join("")).toMatch(/^hyperlab study: --queue takes a Redis URL/);
      expect(c.err.join("")).toContain(`got '${bad}'`);
    }
  });

  it("an unreachable Redis is refused before any run, naming the flag (status 1)", async () => {
    const port = await freePort();
    const c = capture();
    const out = join(dir, "unreachable");
    expect(
      await runCli([...SWEEP, "--queue", `redis://127.0.0.1:${port}`, "--out", out], c.io),
    ).toBe(1);
    expect(c.err.join("")).toMatch(
      new RegExp(`^hyperlab study: --queue redis://127.0.0.1:${port}: Redis did not answer`),
    );
    expect(c.out.join("")).toBe("");
  });

  it("hyperlab worker refuses a bad or unreachable URL, naming it", async () => {
    const bad = capture();
    expect(await runCli(["worker", "nope"], bad.io)).toBe(2);
    expect(bad.err.join("")).toMatch(/^hyperlab worker: URL takes a Redis URL/);
    const port = await freePort();
    const down = capture();
    expect(await runCli(["worker", `redis://127.0.0.1:${port}`], down.io)).toBe(1);
    expect(down.err.join("")).toMatch(
      /^hyperlab worker: URL redis:\/\/127.0.0.1:\d+: Redis did not answer/,
    );
    const none = capture();
    expect(await runCli(["worker"], none.io)).toBe(2);
    const flag = capture();
    expect(await runCli(["worker", url, "--lock-duration", "0"], flag.io)).toBe(2);
    expect(flag.err.join("")).toMatch(/--lock-duration/);
  });

  it("is listed in the help", async () => {
    const c = capture();
    expect(await runCli(["--help"], c.io)).toBe(0);
    expect(c.out.join("")).toMatch(/worker URL +run study cells/);
    const s = capture();
    expect(await runCli(["study", "--help"], s.io)).toBe(0);
    expect(s.out.join("")).toMatch(/--queue <URL>/);
  });
});
