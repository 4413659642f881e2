// hyperlab up / down and the lifecycle verbs against a real detached host: its xenstored
// serves Debian's xenstore-utils, its control socket serves the verbs, a client killed
// mid-command leaves it consistent, and bad run directories get errors naming the flag.
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlClient, runCli, setConsoleStreams, xlHostOverSocket } from "../src/index";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const run = promisify(execFile);
const dir = mkdtempSync("/tmp/hl-");
const kernel = join(dir, "vmlinuz");
for (const n of ["web", "b"]) writeFileSync(join(dir, `${n}.img`), new Uint8Array(32768));
const image = new Uint8Array(8192);
image.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
writeFileSync(kernel, image);
const cfg = join(dir, "web.cfg");
writeFileSync(
  cfg,
  `name = "web"\nmemory = 8\nvcpus = 2\nkernel = "${kernel}"\ndisk = ['${dir}/web.img,raw,xvda,rw']\nvif = ['mac=00:16:3e:00:00:01,bridge=xenbr0']\n`,
);

/** The CLI as a child process (workspace packages from source), as cli.test.ts runs it. */
function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
      cwd: pkgDir,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(pkgDir, "test/tsconfig.cli.json"), ...env },
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

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) },
    out: () => out.join(""),
    err: () => err.join(""),
  };
}

async function hl(...args: string[]) {
  const c = capture();
  const code = await runCli(args, c.io);
  return { code, out: c.out(), err: c.err() };
}

const xsEnv = () => ({ ...process.env, XENSTORED_PATH: join(dir, "xenstored.sock") });

describe("a Xen-style host in the background", () => {
  beforeAll(async () => {
    process.env.HYPERLAB_RUN_DIR = dir;
    const up = await cli(["up", "--run-dir", dir, "--ram", "256", "--cpus", "2"]);
    expect(up.err).toBe("");
    expect(up.code).toBe(0);
    expect(up.out).toMatch(/Xen-style host up \(pid \d+\)/);
  }, 120_000);

  afterAll(async () => {
    await cli(["down", "--run-dir", dir]);
    delete process.env.HYPERLAB_RUN_DIR;
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("a second up on the same run dir is refused", async () => {
    const r = await cli(["up", "--run-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /a host is already running at .*hyperlabd\.sock; stop it with 'hyperlab down' first/,
    );
  }, 60_000);

  it("Debian's xenstore-ls and xenstore-read reach its xenstored through XENSTORED_PATH", async () => {
    const ls = await run("xenstore-ls", ["/local/domain/0"], { env: xsEnv() });
    expect(ls.stdout).toMatch(/^name = "Domain-0"$/m);
    const rd = await run("xenstore-read", ["/local/domain/0/name"], { env: xsEnv() });
    expect(rd.stdout).toBe("Domain-0\n");
  });

  it("create, then the domain is in xenstore (as libxl writes it) and in xl list", async () => {
    const c = await hl("create", cfg);
    expect(c.err).toBe(`Parsing config from ${cfg}\n`);
    expect(c.code).toBe(0);
    const id = (await run("xenstore-read", ["/local/domain/1/name"], { env: xsEnv() })).stdout;
    expect(id).toBe("web\n");
    const ls = (await run("xenstore-ls", ["/local/domain/1"], { env: xsEnv() })).stdout;
    for (const line of [
      ' static-max = "8192"',
      ' target = "8192"',
      '  availability = "online"',
      ' feature-poweroff = "1"',
      'vm = "/vm/',
    ]) {
      expect(ls.split("\n").filter((l) => l.startsWith(line))).not.toEqual([]);
    }
    const be = (await run("xenstore-ls", ["/local/domain/0/backend/vbd/1/51712"], { env: xsEnv() }))
      .stdout;
    expect(be).toContain(`params = "${dir}/web.img"`);
    const list = await hl("list");
    expect(list.code).toBe(0);
    // VCPUs counts the online ones: the guest brought vCPU 1 up itself (VCPUOP_up), and the
    // scheduler put the domain on a pCPU at once (no virtual time has passed: 0.0 s).
    expect(list.out).toMatch(/^web {42}1 {5}8 {5}2 {5}r----- {7}0\.0$/m);
    expect((await hl("domid", "web")).out).toBe("1\n");
    const bl = await hl("block-list", "web");
    expect(bl.out).toMatch(/^51712\s+0\s+1\s+[14]\s/m); // Initialising, or Connected once blkback ran
  });

  it("xl's texts and exit codes for a taken name, too much memory, a domain that does not exist", async () => {
    const again = await hl("create", cfg);
    expect(again.code).toBe(3);
    expect(again.err).toMatch(/domain with name "web" already exists/);
    const big = await hl("create", cfg, 'name="huge"', "memory=100000");
    expect(big.code).toBe(3);
    expect(big.err).toMatch(/^failed to free memory for the domain$/m);
    const d = await hl("destroy", "nosuch");
    expect(d).toEqual({
      code: 1,
      out: "",
      err: "nosuch is an invalid domain identifier (rc=-6)\n",
    });
    expect((await hl("pause", "nosuch")).code).toBe(1);
    // An all-digit qualifier is a domid that xl does not look up; libxl fails on it.
    expect(await hl("destroy", "42")).toEqual({
      code: 1,
      out: "",
      err: "libxl: error: libxl_domain.c: Domain 42:Non-existant domain\ndestroy failed (rc=-21)\n",
    });
    expect((await hl("pause", "42")).code).toBe(0);
    const d0 = await hl("destroy", "0");
    expect(d0.code).toBe(1);
    expect(d0.err).toMatch(/^Not destroying domain 0; use -f to force\./);
    const usage = await hl("destroy");
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/^'xl destroy' requires at least 1 argument\.\n\n/);
    expect(usage.out).toMatch(/^Usage: xl \[-vtTf\] destroy/);
    const mem = await hl("mem-set", "web", "12x");
    expect(mem).toEqual({ code: 1, out: "", err: "invalid memory size: 12x\n" });
  });

  it("pause, unpause, mem-set, vcpu-pin, sched-credit through the verbs", async () => {
    expect((await hl("pause", "web")).code).toBe(0);
    expect((await hl("list", "web")).out).toMatch(/--p---/);
    expect((await hl("unpause", "web")).code).toBe(0);
    expect((await hl("mem-set", "web", "6144k")).code).toBe(0);
    expect(
      (await run("xenstore-read", ["/local/domain/1/memory/target"], { env: xsEnv() })).stdout,
    ).toBe("6144\n");
    expect((await hl("vcpu-pin", "web", "0", "1")).code).toBe(0);
    expect((await hl("vcpu-list", "web")).out).toMatch(/^web\s+1\s+0\s+1\s.*\s1 \/ all$/m);
    // The soft map alone ("-" keeps the hard one).
    expect((await hl("vcpu-pin", "web", "0", "-", "0")).code).toBe(0);
    expect((await hl("vcpu-list", "web")).out).toMatch(/^web\s+1\s+0\s+1\s.*\s1 \/ 0$/m);
    expect(await hl("vcpu-pin", "web", "0", "-", "x")).toEqual({
      code: 1,
      out: "",
      err: "Invalid cpu specification 'x'.\n",
    });
    expect((await hl("sched-credit", "-d", "web", "-w", "512")).code).toBe(0);
    expect((await hl("sched-credit", "-d", "web")).out).toMatch(/^web\s+1\s+512\s+0$/m);
  });

  it("console: the boot messages, then what is typed comes back; Ctrl-] detaches", async () => {
    const input = new PassThrough();
    let seen = "";
    setConsoleStreams({ input, output: (b) => (seen += b.toString("latin1")) });
    const done = hl("console", "web");
    for (let i = 0; i < 200 && !seen.includes("Linux version"); i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(seen).toMatch(/Linux version 6\.1\.0-hyperlab \(web\)/);
    input.write("hello\n");
    for (let i = 0; i < 200 && !seen.includes("hello\n"); i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(seen).toMatch(/hello\n$/);
    input.write(Buffer.from([0x1d]));
    expect((await done).code).toBe(0);
    setConsoleStreams(null);
  });

  it("block and network attach and detach", async () => {
    expect((await hl("block-attach", "web", `format=raw,vdev=xvdb,target=${dir}/b.img`)).code).toBe(
      0,
    );
    expect((await hl("block-list", "web")).out).toMatch(/^51728\s/m);
    expect((await hl("block-detach", "web", "xvdb")).code).toBe(0);
    expect((await hl("block-list", "web")).out).not.toMatch(/^51728\s/m);
    expect((await hl("network-attach", "web", "bridge=xenbr1")).code).toBe(0);
    expect((await hl("network-list", "web")).out).toMatch(/^1\s+0\s/m);
    expect((await hl("network-detach", "web", "1")).code).toBe(0);
    const bad = await hl("block-detach", "web", "xvdq");
    expect(bad).toEqual({ code: 1, out: "", err: "Error: Device xvdq not connected.\n" });
  });

  it("a client that vanishes mid-command leaves the host consistent", async () => {
    const text = `name = "ghost"\nmemory = 8\nkernel = "${kernel}"\n`;
    await new Promise<void>((resolve) => {
      const s = connect(join(dir, "hyperlabd.sock"), () => {
        s.write(
          `${JSON.stringify({ id: 1, op: "create", args: { text, file: "ghost.cfg", extra: [] } })}\n`,
        );
        s.destroy();
        resolve();
      });
    });
    const c = await ControlClient.connect(join(dir, "hyperlabd.sock"));
    const xl = xlHostOverSocket(c);
    // The command ran to its end: the domain is there, whole.
    const id = await xl.domid("ghost");
    expect(id).toBeTypeOf("number");
    expect((await xl.domainInfo(id!))?.running !== undefined).toBe(true);
    expect(
      (await run("xenstore-read", [`/local/domain/${id}/name`], { env: xsEnv() })).stdout,
    ).toBe("ghost\n");
    c.close();
    expect((await hl("destroy", "ghost")).code).toBe(0);
    await expect(
      run("xenstore-read", [`/local/domain/${id}/name`], { env: xsEnv() }),
    ).rejects.toThrow();
    // A console client killed while attached: the host goes on serving.
    const con = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "console", "web"], {
      cwd: pkgDir,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(pkgDir, "test/tsconfig.cli.json") },
      stdio: ["pipe", "pipe", "pipe"],
    });
    await new Promise<void>((resolve) => con.stdout.once("data", () => resolve()));
    con.kill("SIGKILL");
    expect((await hl("list", "web")).code).toBe(0);
  }, 60_000);

  it("shutdown -w: the guest shuts down and on_poweroff destroys it; save and restore through the verbs", async () => {
    const file = join(dir, "web.save");
    const s = await hl("save", "web", file);
    expect(s.code).toBe(0);
    expect(s.err).toMatch(/^Saving to .*web\.save new xl format/);
    expect((await hl("list", "web")).code).toBe(1);
    const r = await hl("restore", file);
    expect(r).toEqual({ code: 0, out: "", err: "" });
    const sd = await hl("shutdown", "-w", "web");
    expect(sd.code).toBe(0);
    expect(sd.err).toMatch(
      /^Shutting down domain \d+\nWaiting for 1 domains\nDomain \d+ has been shut down, reason code 0\n$/,
    );
    for (let i = 0; i < 100 && (await hl("list", "web")).code === 0; i++)
      await new Promise((res) => setTimeout(res, 20));
    expect((await hl("list", "web")).code).toBe(1);
  }, 60_000);
});

describe("up and down: errors and the KVM-style host", () => {
  it("a run dir that does not exist, one too long for sun_path, and down with no host", async () => {
    const missing = await cli(["up", "--run-dir", "/tmp/hl-no/such/dir"]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(
      /^hyperlab up: --run-dir: the directory \/tmp\/hl-no\/such\/dir does not exist/,
    );
    const long = mkdtempSync(`/tmp/${"x".repeat(90)}-`);
    const tooLong = await cli(["up", "--run-dir", long]);
    expect(tooLong.code).toBe(1);
    expect(tooLong.err).toMatch(
      /--run-dir: the socket path .* bytes; a unix socket path may have at most 107 \(sun_path\)/,
    );
    rmSync(long, { recursive: true, force: true });
    const empty = mkdtempSync("/tmp/hl-");
    const down = await hl("down", "--run-dir", empty);
    expect(down).toEqual({
      code: 1,
      out: "",
      err: `hyperlab down: no host is running (nothing listens at ${empty}/hyperlabd.sock).\n`,
    });
    rmSync(empty, { recursive: true, force: true });
  }, 60_000);

  it("--kvm starts the nested-paging host; down removes its sockets and exits", async () => {
    const d = mkdtempSync("/tmp/hl-");
    const up = await cli(["up", "--kvm", "--run-dir", d, "--ram", "128"]);
    expect(up.code).toBe(0);
    expect(up.out).toMatch(/KVM-style host up/);
    expect(existsSync(join(d, "xenstored.sock"))).toBe(false);
    const c = await ControlClient.connect(join(d, "hyperlabd.sock"));
    const info = await xlHostOverSocket(c).physInfo();
    expect(info.capHap).toBe(true);
    c.close();
    const down = await cli(["down", "--run-dir", d]);
    expect(down.code).toBe(0);
    expect(existsSync(join(d, "hyperlabd.sock"))).toBe(false);
    expect(existsSync(join(d, "hyperlabd.pid"))).toBe(false);
    rmSync(d, { recursive: true, force: true });
  }, 120_000);
});
