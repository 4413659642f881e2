// Save in one host daemon, restore in another: `hyperlab up`, create a domain, give its guest
// a process that writes memory and a disk block, `save`, `down`, `up` again, `restore`; the
// process's memory reads back and the kernel keeps serving (fork, mmap, the console, the
// disk). A corrupt file is refused with libxl's message and xl's exit code, leaving nothing.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ControlClient, runCli, setConsoleStreams } from "../src/index";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync("/tmp/hl-sr-");
const kernel = join(dir, "vmlinuz");
const image = new Uint8Array(8192);
image.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
writeFileSync(kernel, image);
const img = join(dir, "sr.img");
writeFileSync(img, new Uint8Array(64 * 512));
const cfg = join(dir, "sr.cfg");
writeFileSync(
  cfg,
  `name = "sr"\nmemory = 8\nkernel = "${kernel}"\ndisk = ['${img},raw,xvda,rw']\n`,
);
const saveFile = join(dir, "sr.save");

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
      cwd: pkgDir,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(pkgDir, "test/tsconfig.cli.json") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.on("exit", (code) => resolve({ code, out, err }));
  });
}

async function hl(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, {
    out: (s: string) => out.push(s),
    err: (s: string) => err.push(s),
  });
  return { code, out: out.join(""), err: err.join("") };
}

async function up(): Promise<number> {
  const r = await cli(["up", "--run-dir", dir, "--ram", "128", "--cpus", "2"]);
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  return Number(/pid (\d+)/.exec(r.out)![1]);
}

async function guest<T>(args: Record<string, unknown>): Promise<T> {
  const c = await ControlClient.connect(join(dir, "hyperlabd.sock"));
  try {
    return await c.request<T>("guest", { dom: "sr", ...args });
  } finally {
    c.close();
  }
}

const N = 24;
const valueAt = (i: number) => (0x5100_0000 + i * 7919) >>> 0;

describe("save in one host daemon, restore in another", () => {
  afterAll(async () => {
    await cli(["down", "--run-dir", dir]);
    delete process.env.HYPERLAB_RUN_DIR;
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("the guest's process, console and disk survive save, down, up, restore", async () => {
    process.env.HYPERLAB_RUN_DIR = dir;
    const first = await up();
    expect((await hl("create", cfg)).code).toBe(0);
    const { pid } = await guest<{ pid: number }>({ cmd: "spawn" });
    const { addr } = await guest<{ addr: number }>({ cmd: "mmap", pid, length: N * 4096 });
    for (let i = 0; i < N; i++)
      await guest({ cmd: "poke", pid, va: addr + i * 4096 + 4 * i, value: valueAt(i) });
    const block = Buffer.from(new Uint8Array(4096).map((_, i) => (i * 31 + 7) & 0xff));
    const w = await guest<{ status: number }>({
      cmd: "disk-write",
      devid: 51712,
      sector: 24,
      data: block.toString("base64"),
    });
    expect(w.status).toBe(0);
    const saved = await hl("save", "sr", saveFile);
    expect(saved.err).toMatch(/^Saving to .*sr\.save new xl format/);
    expect(saved.code).toBe(0);
    expect(readFileSync(saveFile).subarray(0, 15).toString()).toBe("HyperlabSave 2\n");
    expect((await cli(["down", "--run-dir", dir])).code).toBe(0);

    // Another host process: nothing of the first is left but the file (and the disk image).
    const second = await up();
    expect(second).not.toBe(first);
    const restored = await hl("restore", saveFile);
    expect(restored.err).toBe("");
    expect(restored.code).toBe(0);
    expect((await hl("list", "sr")).out).toMatch(/^sr\s+\d+\s+8\s+1\s/m);
    const ps = await guest<{ pid: number; state: string }[]>({ cmd: "ps" });
    expect(ps.map((p) => [p.pid, p.state])).toEqual([[pid, "running"]]);
    for (let i = 0; i < N; i++) {
      const { value } = await guest<{ value: number }>({
        cmd: "peek",
        pid,
        va: addr + i * 4096 + 4 * i,
      });
      expect(value).toBe(valueAt(i));
    }
    // It keeps serving: a fork sees the memory, a new mapping takes stores.
    const child = await guest<{ pid: number }>({ cmd: "fork", pid });
    expect(child.pid).toBe(pid + 1);
    expect(
      (await guest<{ value: number }>({ cmd: "peek", pid: child.pid, va: addr + 4 * 3 + 3 * 4096 }))
        .value,
    ).toBe(valueAt(3));
    const more = await guest<{ addr: number }>({ cmd: "mmap", pid: child.pid, length: 4096 });
    await guest({ cmd: "poke", pid: child.pid, va: more.addr, value: 99 });
    expect(
      (await guest<{ value: number }>({ cmd: "peek", pid: child.pid, va: more.addr })).value,
    ).toBe(99);
    // The disk reads back through the reconnected blkfront.
    const r = await guest<{ status: number; data: string }>({
      cmd: "disk-read",
      devid: 51712,
      sector: 24,
      count: 8,
    });
    expect(r.status).toBe(0);
    expect(Buffer.from(r.data, "base64").equals(block)).toBe(true);
    // The console echoes what is typed.
    const input = new PassThrough();
    let seen = "";
    setConsoleStreams({ input, output: (b) => (seen += b.toString("latin1")) });
    const done = hl("console", "sr");
    input.write("still here\n");
    for (let i = 0; i < 300 && !seen.includes("still here\n"); i++)
      await new Promise((res) => setTimeout(res, 10));
    expect(seen).toContain("still here\n");
    input.write(Buffer.from([0x1d]));
    expect((await done).code).toBe(0);
    setConsoleStreams(null);
  }, 240_000);

  it("a corrupt file fails restore with libxl's message and xl's exit code, and leaves nothing", async () => {
    const state = async () => {
      const list = (await hl("list")).out
        .split("\n")
        .map((l) => l.split(/\s+/).slice(0, 3).join(" "));
      const free = /^free_memory\s*:\s*(\d+)/m.exec((await hl("info")).out)?.[1];
      return { list, free };
    };
    const before = await state();
    expect(before.free).toBeDefined();
    const bad = join(dir, "bad.save");
    writeFileSync(bad, readFileSync(saveFile).subarray(0, 3000));
    const r = await hl("restore", bad);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/truncated or corrupt/);
    const bytes = readFileSync(saveFile);
    const nl = bytes.indexOf(10, 15);
    const header = JSON.parse(bytes.subarray(15, nl).toString());
    header.config.c_info.name = "sr2";
    header.kernel.free.push(header.nrPages + 1);
    writeFileSync(
      bad,
      Buffer.concat([
        Buffer.from(`HyperlabSave 2\n${JSON.stringify(header)}\n`),
        bytes.subarray(nl + 1),
      ]),
    );
    const r2 = await hl("restore", bad);
    expect(r2.code).toBe(3);
    expect(r2.err).toMatch(/restore of .*bad\.save failed: the guest could not resume/);
    expect(await state()).toEqual(before);
  }, 60_000);
});
