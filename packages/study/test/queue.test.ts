// The queue's parts: URL parsing, the study hash and job ids, the job function's outcomes,
// and the collector with an in-process queue worker on a real redis-server (Debian's,
// started here on a free port with no persistence).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isHyperlabError } from "@hyperlab/core";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import {
  cellJob,
  cellJobId,
  checkQueue,
  expandMatrix,
  parseQueueUrl,
  type QueueConnection,
  resolveConfig,
  runCell,
  runCellsOnQueue,
  STUDY_ERROR_CODES,
  STUDY_QUEUE_NAME,
  type StudyCell,
  startQueueWorker,
  studyHash,
} from "../src/index";

const dir = mkdtempSync(join(tmpdir(), "hyperlab-study-queue-"));
let redis: ChildProcess | undefined;
let started: QueueConnection | undefined;
afterAll(() => {
  redis?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

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

async function startRedis(): Promise<QueueConnection> {
  const port = await freePort();
  redis = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { cwd: dir, stdio: "ignore" },
  );
  for (let i = 0; ; i++) {
    try {
      started = await checkQueue(`redis://127.0.0.1:${port}`);
      return started;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isHyperlabError(e, STUDY_ERROR_CODES)) return e.code;
    throw e;
  }
  return undefined;
}

const tiny = () =>
  expandMatrix(
    resolveConfig({
      workloads: ["random"],
      backends: ["native", "pv"],
      workingSetBytes: [1 << 20],
      operations: [1000],
      seed: 7,
    }),
  ).cells;

describe("parseQueueUrl", () => {
  it("reads host, port, database, credentials and TLS", () => {
    expect(parseQueueUrl("redis://127.0.0.1:6380")).toEqual({
      host: "127.0.0.1",
      port: 6380,
      db: 0,
    });
    expect(parseQueueUrl("redis://queue.example")).toEqual({
      host: "queue.example",
      port: 6379,
      db: 0,
    });
    expect(parseQueueUrl("rediss://u:p%40ss@[::1]:7000/3")).toEqual({
      host: "::1",
      port: 7000,
      db: 3,
      username: "u",
      password: "p@ss",
      tls: {},
    });
  });

  it("refuses what is not a Redis URL with STUDY_BAD_QUEUE naming the flag", () => {
    for (const bad of [
      "127.0.0.1:6379",
      "http://h:6379",
      "redis://",
      "redis://h/db",
      "redis://h?x=1",
      "redis://h:99999",
    ]) {
      expect(codeOf(() => parseQueueUrl(bad, "--queue"))).toBe("STUDY_BAD_QUEUE");
      expect(() => parseQueueUrl(bad, "URL")).toThrow(/^URL takes a Redis URL/);
    }
  });
});

describe("study hash and job ids", () => {
  it("are the same for the same cells and differ when a run differs", () => {
    const a = tiny();
    expect(studyHash(a)).toBe(studyHash(tiny()));
    expect(studyHash(a)).toMatch(/^[0-9a-f]{20}$/);
    const other = a.map((c) => ({ ...c, seed: c.seed + 1 }));
    expect(studyHash(other)).not.toBe(studyHash(a));
    expect(cellJobId(studyHash(a), 3)).toBe(`${studyHash(a)}-3`);
  });
});

describe("cellJob", () => {
  it("gives runCell's result, or a failed outcome with the study error's code", () => {
    const [cell] = tiny();
    expect(cellJob(cell)).toEqual({ kind: "done", result: runCell(cell) });
    const bad: StudyCell = { ...cell, workload: "no-such-workload" };
    const out = cellJob(bad);
    expect(out.kind).toBe("failed");
    expect(out.kind === "failed" && out.code).toBe("STUDY_UNKNOWN_WORKLOAD");
  });
});

describe("runCellsOnQueue with a queue worker", () => {
  it("gives the local results in matrix order; a failing cell rejects with its code", async () => {
    const connection = await startRedis();
    const w = startQueueWorker(connection, { lockDuration: 5000, stalledInterval: 1000 });
    await w.ready;
    try {
      const cells = tiny();
      const seen: number[] = [];
      const { runs, accepted, study } = await runCellsOnQueue(cells, connection, {
        onProgress: (done, total, last) => {
          expect(total).toBe(cells.length);
          seen.push(last.index);
          expect(done).toBe(seen.length);
        },
      });
      expect(accepted).toBe(cells.length);
      expect(study).toBe(studyHash(cells));
      expect(JSON.stringify(runs)).toBe(JSON.stringify(cells.map((c) => runCell(c))));
      expect([...seen].sort()).toEqual([0, 1]);

      // The same study again finds its jobs by id: no second job for any cell.
      const again = await runCellsOnQueue(cells, connection);
      expect(JSON.stringify(again.runs)).toBe(JSON.stringify(runs));
      const r = new Redis(connection);
      const completed = await r.zcard("bull:hyperlab-study:completed");
      r.disconnect();
      expect(completed).toBe(cells.length);

      // A study error on the worker is the job's result, and the collector throws it typed.
      const bad = cells.map((c) => ({ ...c, workload: "no-such-workload" }));
      await expect(runCellsOnQueue(bad, connection)).rejects.toMatchObject({
        code: "STUDY_UNKNOWN_WORKLOAD",
      });
    } finally {
      await w.close();
    }
  }, 60_000);

  it("refuses a result for another cell, and a job that fails every attempt", async () => {
    const connection = started ?? (await startRedis());
    const cells = tiny().map((c) => ({ ...c, seed: c.seed + 100 }));
    // A rogue worker that answers every job with the result of cell 0.
    const wrong = runCell(cells[0]);
    const rogue = new Worker(STUDY_QUEUE_NAME, async () => ({ kind: "done", result: wrong }), {
      connection,
    });
    await expect(runCellsOnQueue(cells, connection)).rejects.toMatchObject({
      code: "STUDY_WORKER_FAILED",
      message: expect.stringMatching(/returned run .* for cell .* #1/),
    });
    await rogue.close();
    // A worker whose every attempt throws: the job fails and the study says so.
    const broken = new Worker(
      STUDY_QUEUE_NAME,
      async () => {
        throw new Error("disk on fire");
      },
      { connection },
    );
    const other = cells.map((c) => ({ ...c, seed: c.seed + 100 }));
    await expect(runCellsOnQueue(other, connection, { attempts: 2 })).rejects.toMatchObject({
      code: "STUDY_WORKER_FAILED",
      message: expect.stringMatching(/failed on the queue after 2 attempts: disk on fire/),
    });
    await broken.close();
  }, 60_000);

  it("checkQueue refuses a port where no Redis listens", async () => {
    const port = await freePort();
    await expect(checkQueue(`redis://127.0.0.1:${port}`, "--queue")).rejects.toMatchObject({
      code: "STUDY_QUEUE_UNREACHABLE",
      message: expect.stringMatching(/^--queue redis:\/\/127\.0\.0\.1:\d+: Redis did not answer/),
    });
  });
});
