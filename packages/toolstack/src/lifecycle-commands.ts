/*
 * xl's lifecycle verbs as `hyperlab` verbs, talking to the running host over its control
 * socket (tools/xl/xl_vmcontrol.c, xl_saverestore.c, xl_mem.c, xl_vcpu.c, xl_console.c,
 * xl_block.c, xl_nic.c): create, destroy, pause, unpause, shutdown, reboot, save, restore,
 * mem-set, vcpu-pin, console, block-attach/-detach, network-attach/-detach; and the host's
 * own `up` and `down`. Each prints xl's messages and exits with xl's status.
 *
 * The host is found in the run directory: HYPERLAB_RUN_DIR, else the default (see
 * daemon/rundir.ts); `up` and `down` also take --run-dir.
 *
 * Invariant: nothing here throws at the user; every outcome is a message and an exit status.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync } from "node:fs";
import { HyperlabError } from "@hyperlab/core";
import type { CliIo, Verb } from "./cli/io";
import { flagValue, parseVerb, verbProgram } from "./cli/parse";
import { ControlClient, xlHostOverSocket } from "./daemon/client";
import { runDaemon } from "./daemon/daemon";
import { hostDashboardSource } from "./daemon/dashboard";
import { checkSocketPath, defaultRunDir, runPaths } from "./daemon/rundir";
import { startDashboard } from "./dashboard/server";
import { configFromXlCfg } from "./libxl/config";
import { setXlHostConnector, xlGetopt } from "./xl/cmd/common";
import { XL_HELP } from "./xl/cmd/help";
import { XL_LIFECYCLE_HELP } from "./xl/cmd/help-lifecycle";

// xl's help() for these verbs comes from the same table as the read-side verbs'.
Object.assign(XL_HELP, XL_LIFECYCLE_HELP);

/** The control socket of the host in the run directory. */
function controlPath(): string {
  return runPaths(defaultRunDir()).control;
}

// xl's read-side verbs reach the host the same way.
setXlHostConnector(async () => xlHostOverSocket(await ControlClient.connect(controlPath())));

async function withHost<T>(
  verb: string,
  io: CliIo,
  fn: (c: ControlClient) => Promise<T>,
): Promise<T | number> {
  let c: ControlClient;
  try {
    c = await ControlClient.connect(controlPath());
  } catch (e) {
    io.err(`hyperlab ${verb}: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/**
 * xl's find_domain takes an all-digit qualifier as a domid without looking it up; libxl then
 * fails on it and logs (libxl_domain.c) "Domain N:Non-existant domain".
 */
function missingById(e: unknown, dom: string): boolean {
  return e instanceof HyperlabError && e.code === "TOOLSTACK_NO_DOMAIN" && /^\d+$/.test(dom);
}

function nonExistant(io: CliIo, dom: string): void {
  io.err(`libxl: error: libxl_domain.c: Domain ${Number(dom)}:Non-existant domain\n`);
}

/** The daemon's typed error as xl prints it. */
function report(io: CliIo, e: unknown, prefix = ""): number {
  if (e instanceof HyperlabError) {
    io.err(`${prefix}${e.message}${e.message.endsWith("\n") ? "" : "\n"}`);
    return 1;
  }
  throw e;
}

/** xl's parse_mem_size_kb: a number with an optional b/k/m/g/t suffix (m when none); -1 if bad. */
export function parseMemSizeKb(s: string): number {
  const m = /^[\t\n\v\f\r ]*([+-]?\d+)(.*)$/.exec(s);
  if (m === null) return -1;
  let kb = Number(m[1]);
  const suffix = m[2]!;
  if (suffix.length > 1) return -1;
  switch (suffix.toLowerCase()) {
    case "t":
      kb *= 1024 ** 3;
      break;
    case "g":
      kb *= 1024 ** 2;
      break;
    case "":
    case "m":
      kb *= 1024;
      break;
    case "k":
      break;
    case "b":
      kb = Math.floor(kb / 1024);
      break;
    default:
      return -1;
  }
  return kb;
}

/** libxl's cpumap parser for vcpu-pin: "all", "3", "0-3,6", "^2" exclusions; null if bad. */
export function parseCpuMap(s: string, nrCpus: number): number[] | null {
  if (s === "all") return Array.from({ length: nrCpus }, (_, i) => i);
  const set = new Set<number>();
  for (const part of s.split(",")) {
    const neg = part.startsWith("^");
    const m = /^(\d+)(?:-(\d+))?$/.exec(neg ? part.slice(1) : part);
    if (m === null) return null;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return null;
    for (let i = a; i <= b; i++) {
      if (neg) set.delete(i);
      else set.add(i);
    }
  }
  return [...set].sort((x, y) => x - y);
}

const simple =
  (
    verb: string,
    op: string,
    message?: (dom: string, r: { domid: number }) => string,
  ): Verb["run"] =>
  async (args, io) => {
    const p = xlGetopt(verb, [], args, io, 1);
    if (!p.ok) return p.status;
    const dom = p.operands[0]!;
    const rc = await withHost(verb, io, async (c) => {
      try {
        const r = await c.request<{ domid: number }>(op, { dom });
        if (message) io.err(message(dom, r));
        return 0;
      } catch (e) {
        if (missingById(e, dom)) {
          // xl's pause_domain / unpause_domain ignore libxl's answer.
          nonExistant(io, dom);
          return 0;
        }
        return report(io, e);
      }
    });
    return rc;
  };

/**
 * xl create's work after reading the file: parse it (printing "Parsing config from FILE"
 * and libxlutil's messages), then create the domain on the host.
 */
export async function createOnHost(
  text: string,
  file: string,
  extra: readonly string[],
  io: CliIo,
): Promise<number> {
  const parsed = configFromXlCfg(text, file, extra);
  io.err(parsed.stderr);
  if (!parsed.ok) return parsed.exitCode;
  return (await withHost("create", io, async (c) => {
    try {
      await c.request("create", { text, file, extra });
      return 0;
    } catch (e) {
      report(io, e);
      // create_domain's ERROR_FAIL, returned by main_create as -rc.
      return 3;
    }
  })) as number;
}

async function destroyVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("destroy", [{ short: "f", long: "force", arg: false }], args, io, 1);
  if (!p.ok) return p.status;
  return (await withHost("destroy", io, async (c) => {
    const dom = p.operands[0]!;
    try {
      await c.request("destroy", { dom });
      return 0;
    } catch (e) {
      if (missingById(e, dom)) {
        nonExistant(io, dom);
        io.err("destroy failed (rc=-21)\n");
        return 1;
      }
      return report(io, e);
    }
  })) as number;
}

const shutdownOrReboot =
  (reboot: boolean): Verb["run"] =>
  async (args, io) => {
    const what = reboot ? "reboot" : "shutdown";
    const p = xlGetopt(
      what,
      [
        { short: "a", long: "all", arg: false },
        { short: "w", long: "wait", arg: false },
        { short: "F", long: "fallback", arg: false },
      ],
      args,
      io,
      0,
    );
    if (!p.ok) return p.status;
    const all = p.opts.all === true;
    const wait = p.opts.wait === true;
    if (p.operands[0] === undefined && !all) {
      io.err("You must specify -a or a domain id.\n\n");
      return 1;
    }
    return (await withHost(what, io, async (c) => {
      let doms: string[] = [];
      if (all) {
        const list = await xlHostOverSocket(c).listDomains();
        doms = list.filter((d) => d.domid !== 0).map((d) => String(d.domid));
      } else doms = [p.operands[0]!];
      const waiting: Promise<{ domid: number; reason?: number }>[] = [];
      for (const dom of doms) {
        try {
          io.err(`${reboot ? "Rebooting" : "Shutting down"} domain ${await domidOf(c, dom)}\n`);
          const req = c.request<{ domid: number; reason?: number }>("shutdown", {
            dom,
            reboot,
            wait,
          });
          if (wait) waiting.push(req);
          else await req;
        } catch (e) {
          if (e instanceof HyperlabError && /PV control interface not available/.test(e.message)) {
            io.err(
              `PV control interface not available: external graceful ${reboot ? "reboot" : "shutdown"} not possible.\n` +
                `Use "-F" to fallback to ACPI ${reboot ? "reset" : "power"} event.\n`,
            );
            io.err(`${what} failed (rc=-8)\n`);
            return 1;
          }
          return report(io, e);
        }
      }
      if (wait) {
        io.err(`Waiting for ${waiting.length} domains\n`);
        for (const w of waiting) {
          try {
            const r = await w;
            io.err(`Domain ${r.domid} has been shut down, reason code ${r.reason}\n`);
          } catch (e) {
            return report(io, e);
          }
        }
      }
      return 0;
    })) as number;
  };

/** find_domain's answer for a qualifier: the number, or the name's id (or the name, if none). */
async function domidOf(c: ControlClient, dom: string): Promise<string> {
  if (/^\d+$/.test(dom)) return dom;
  const id = await xlHostOverSocket(c).domid(dom);
  if (id === undefined)
    throw new HyperlabError(
      "TOOLSTACK_NO_DOMAIN",
      `${dom} is an invalid domain identifier (rc=-6)`,
    );
  return String(id);
}

async function saveVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("save", [{ short: "c", long: "checkpoint", arg: false }], args, io, 2);
  if (!p.ok) return p.status;
  const [dom, file] = p.operands;
  return (await withHost("save", io, async (c) => {
    try {
      const r = await c.request<{ domid: number; bytes: number }>("save", {
        dom,
        file: absolute(file!),
      });
      io.err(`Saving to ${file} new xl format (info 0x3/0x0/${r.bytes})\n`);
      return 0;
    } catch (e) {
      return report(io, e);
    }
  })) as number;
}

async function restoreVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("restore", [{ short: "p", long: "paused", arg: false }], args, io, 1);
  if (!p.ok) return p.status;
  const file = p.operands[p.operands.length - 1]!;
  return (await withHost("restore", io, async (c) => {
    try {
      await c.request("restore", { file: absolute(file) });
      return 0;
    } catch (e) {
      report(io, e);
      return 3;
    }
  })) as number;
}

function absolute(f: string): string {
  return f.startsWith("/") ? f : `${process.cwd()}/${f}`;
}

async function memSetVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("mem-set", [], args, io, 2);
  if (!p.ok) return p.status;
  const [dom, size] = p.operands;
  const kb = parseMemSizeKb(size!);
  if (kb < 0) {
    io.err(`invalid memory size: ${size}\n`);
    return 1;
  }
  return (await withHost("mem-set", io, async (c) => {
    try {
      await c.request("memSet", { dom, kb });
      return 0;
    } catch (e) {
      return report(io, e);
    }
  })) as number;
}

async function vcpuPinVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("vcpu-pin", [{ short: "f", long: "force", arg: false }], args, io, 3);
  if (!p.ok) return p.status;
  const [dom, vcpuArg, hard, soft] = p.operands;
  const vcpu = vcpuArg === "all" ? -1 : /^\d+$/.test(vcpuArg!) ? Number(vcpuArg) : Number.NaN;
  if (Number.isNaN(vcpu)) {
    io.err(`Invalid vcpu specification '${vcpuArg}'.\n`);
    return 1;
  }
  return (await withHost("vcpu-pin", io, async (c) => {
    const phys = await xlHostOverSocket(c).physInfo();
    // "-" (or a missing soft map) leaves that affinity as it is.
    const parse = (s: string | undefined): number[] | null | false => {
      if (s === undefined || s === "-") return null;
      const m = parseCpuMap(s, phys.nrCpus);
      if (m === null) {
        io.err(`Invalid cpu specification '${s}'.\n`);
        return false;
      }
      return m;
    };
    const cpus = parse(hard);
    if (cpus === false) return 1;
    const softCpus = parse(soft);
    if (softCpus === false) return 1;
    if (cpus === null && softCpus === null) return 0;
    try {
      await c.request("vcpuPin", { dom, vcpu, cpus, soft: softCpus });
      return 0;
    } catch (e) {
      return report(io, e);
    }
  })) as number;
}

/** The byte that detaches a console (Ctrl-], as xenconsole's ESCAPE_CHARACTER 0x1d). */
export const CONSOLE_ESCAPE = 0x1d;

export interface ConsoleStreams {
  input: NodeJS.ReadableStream;
  output: (b: Buffer) => void;
}

let consoleStreams: ConsoleStreams | null = null;
/** Where `hyperlab console` reads keystrokes and writes the console (tests set their own). */
export function setConsoleStreams(s: ConsoleStreams | null): void {
  consoleStreams = s;
}

async function consoleVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt(
    "console",
    [
      { short: "t", long: "type", arg: true },
      { short: "n", long: "num", arg: true },
    ],
    args,
    io,
    1,
  );
  if (!p.ok) return p.status;
  const dom = p.operands[0]!;
  const streams = consoleStreams ?? {
    input: process.stdin,
    output: (b: Buffer) => void process.stdout.write(b),
  };
  let c: ControlClient;
  try {
    c = await ControlClient.connect(controlPath());
  } catch (e) {
    io.err(`hyperlab console: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    const con = await c.console(dom, streams.output);
    const tty = streams.input as NodeJS.ReadStream;
    if (tty.isTTY === true) tty.setRawMode(true);
    return await new Promise<number>((resolve) => {
      const done = (code: number) => {
        streams.input.off("data", onData);
        streams.input.off("end", onEnd);
        if (tty.isTTY === true) tty.setRawMode(false);
        if (typeof (streams.input as NodeJS.ReadStream).pause === "function")
          (streams.input as NodeJS.ReadStream).pause();
        c.close();
        resolve(code);
      };
      const onData = (d: Buffer | string) => {
        const b = typeof d === "string" ? Buffer.from(d, "latin1") : d;
        const esc = b.indexOf(CONSOLE_ESCAPE);
        if (esc >= 0) {
          if (esc > 0) con.write(b.subarray(0, esc));
          done(0);
        } else con.write(b);
      };
      const onEnd = () => done(0);
      streams.input.on("data", onData);
      streams.input.on("end", onEnd);
      c.socket.on("close", () => done(0));
    });
  } catch (e) {
    c.close();
    return report(io, e);
  }
}

const deviceVerb =
  (verb: string, op: string, min: number, join: boolean): Verb["run"] =>
  async (args, io) => {
    const p = xlGetopt(verb, [{ short: "f", long: "force", arg: false }], args, io, min);
    if (!p.ok) return p.status;
    const [dom, ...rest] = p.operands;
    const a: Record<string, unknown> = { dom };
    if (join) a.spec = rest.join(",");
    else a.dev = rest[0];
    return (await withHost(verb, io, async (c) => {
      try {
        const r = await c.request<{ warnings?: string }>(op, a);
        if (r?.warnings) io.err(r.warnings);
        return 0;
      } catch (e) {
        return report(io, e);
      }
    })) as number;
  };

async function upVerb(args: string[], io: CliIo): Promise<number> {
  const cmd = verbProgram(
    "up",
    "Starts a host in the background: the hypervisor, dom0 with xenstored (a unix socket for XENSTORED_PATH) and xenconsoled, and the control socket the other verbs use.",
    io,
  )
    .option(
      "--run-dir <DIR>",
      "where the sockets go (default $XDG_RUNTIME_DIR/hyperlab or /tmp/hyperlab-$UID)",
      flagValue,
    )
    .option("--kvm", "start the KVM-style host (nested paging) instead of the Xen-style one")
    .option("--http <PORT>", "serve the live dashboard on this port", flagValue)
    .option("--ram <MiB>", "machine RAM in MiB (default 1024)", flagValue)
    .option("--cpus <N>", "physical CPUs (default 4)", flagValue)
    .option("--foreground", "run in this process instead of a detached child");
  const p = parseVerb<{
    runDir?: string;
    kvm?: boolean;
    http?: string;
    ram?: string;
    cpus?: string;
    foreground?: boolean;
  }>(cmd, args, io, "up", {
    "--run-dir": "a directory, e.g. --run-dir /tmp/h",
    "--http": "a port, e.g. --http 8080",
  });
  if (!p.ok) return p.status;
  const o = p.opts;
  const flag = o.runDir !== undefined ? "--run-dir" : "HYPERLAB_RUN_DIR";
  const dir = o.runDir ?? defaultRunDir();
  if (o.runDir === undefined) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const paths = runPaths(dir);
  try {
    checkSocketPath(paths.control, flag);
    checkSocketPath(paths.xenstored, flag);
  } catch (e) {
    return report(io, e, "hyperlab up: ");
  }
  for (const [name, v, lo, hi] of [
    ["--ram", o.ram, 64, 65536],
    ["--cpus", o.cpus, 1, 64],
  ] as const) {
    if (v !== undefined && !(/^\d+$/.test(v) && Number(v) >= lo && Number(v) <= hi)) {
      io.err(`hyperlab up: ${name} must be a whole number from ${lo} to ${hi}, got '${v}'.\n`);
      return 2;
    }
  }
  if (o.http !== undefined && !(/^\d+$/.test(o.http) && Number(o.http) <= 65535)) {
    io.err(`hyperlab up: --http must be a TCP port from 0 to 65535, got '${o.http}'.\n`);
    return 2;
  }
  const httpPort = o.http !== undefined ? Number(o.http) : undefined;
  // One host per run directory.
  try {
    const c = await ControlClient.connect(paths.control);
    c.close();
    io.err(
      `hyperlab up: a host is already running at ${paths.control}; stop it with 'hyperlab down' first.\n`,
    );
    return 1;
  } catch {
    // Nothing listens: go on.
  }
  if (o.foreground === true) {
    try {
      const d = await runDaemon({
        runDir: dir,
        runDirFlag: flag,
        kind: o.kvm === true ? "kvm" : "xen",
        ramMiB: o.ram !== undefined ? Number(o.ram) : undefined,
        cpus: o.cpus !== undefined ? Number(o.cpus) : undefined,
        log: (l) => io.err(`${l}\n`),
        services:
          httpPort === undefined
            ? []
            : [
                async (h) => {
                  const dash = await startDashboard(hostDashboardSource(h), { port: httpPort });
                  io.err(`hyperlabd: dashboard at ${dash.url}\n`);
                  return dash;
                },
              ],
      });
      await d.stopped;
      return 0;
    } catch (e) {
      return report(io, e, "hyperlab up: ");
    }
  }
  // Detach: the same command in a child of its own session, logging to the run directory.
  const log = openSync(paths.log, "a");
  const childArgs = [...process.execArgv, process.argv[1]!, "up", "--foreground", "--run-dir", dir];
  if (o.kvm === true) childArgs.push("--kvm");
  if (o.ram !== undefined) childArgs.push("--ram", o.ram);
  if (o.cpus !== undefined) childArgs.push("--cpus", o.cpus);
  if (o.http !== undefined) childArgs.push("--http", o.http);
  const child = spawn(process.execPath, childArgs, {
    detached: true,
    stdio: ["ignore", log, log],
    env: process.env,
  });
  child.unref();
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) break;
    try {
      const c = await ControlClient.connect(paths.control);
      const info = await c.request<{ pid: number; xenstored: string | null }>("hello");
      c.close();
      io.out(
        `hyperlab: ${o.kvm === true ? "KVM" : "Xen"}-style host up (pid ${info.pid})\n  control   ${paths.control}\n` +
          (info.xenstored !== null
            ? `  xenstored ${info.xenstored}  (XENSTORED_PATH=${info.xenstored} xenstore-ls)\n`
            : "") +
          `  log       ${paths.log}\n`,
      );
      return 0;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  io.err(`hyperlab up: the host did not start; see ${paths.log}\n`);
  return 1;
}

async function downVerb(args: string[], io: CliIo): Promise<number> {
  const cmd = verbProgram(
    "down",
    "Stops the host started by 'hyperlab up': its domains go, its sockets are removed.",
    io,
  ).option("--run-dir <DIR>", "the run directory 'hyperlab up' used", flagValue);
  const p = parseVerb<{ runDir?: string }>(cmd, args, io, "down", {
    "--run-dir": "a directory, e.g. --run-dir /tmp/h",
  });
  if (!p.ok) return p.status;
  const paths = runPaths(p.opts.runDir ?? defaultRunDir());
  let c: ControlClient;
  try {
    c = await ControlClient.connect(paths.control);
  } catch {
    io.err(`hyperlab down: no host is running (nothing listens at ${paths.control}).\n`);
    return 1;
  }
  const info = await c.request<{ pid: number }>("hello");
  try {
    await c.request("stop");
  } catch {
    // The daemon may close the connection as it stops: that is the answer too.
  }
  c.close();
  for (let i = 0; i < 600 && existsSync(paths.control); i++)
    await new Promise((r) => setTimeout(r, 20));
  for (let i = 0; i < 600; i++) {
    try {
      process.kill(info.pid, 0);
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  io.out(`hyperlab: host stopped (pid ${info.pid})\n`);
  return 0;
}

export const LIFECYCLE_COMMANDS: Record<string, Verb> = {
  up: { summary: "up [--kvm] [--run-dir DIR] start a host in the background", run: upVerb },
  down: { summary: "down [--run-dir DIR]      stop the host", run: downVerb },
  destroy: {
    summary: "destroy DOM               destroy a domain, as xl destroy",
    run: destroyVerb,
  },
  pause: { summary: "pause DOM                 pause a domain", run: simple("pause", "pause") },
  unpause: {
    summary: "unpause DOM               unpause a domain",
    run: simple("unpause", "unpause"),
  },
  shutdown: {
    summary: "shutdown [-w] DOM|-a      ask a domain to shut down",
    run: shutdownOrReboot(false),
  },
  reboot: {
    summary: "reboot [-w] DOM|-a        ask a domain to reboot",
    run: shutdownOrReboot(true),
  },
  save: {
    summary: "save DOM FILE             save a domain to FILE (and destroy it)",
    run: saveVerb,
  },
  restore: { summary: "restore FILE              restore a domain from FILE", run: restoreVerb },
  "mem-set": {
    summary: "mem-set DOM SIZE          set a domain's balloon target",
    run: memSetVerb,
  },
  "vcpu-pin": { summary: "vcpu-pin DOM VCPU CPUS    set a vCPU's hard affinity", run: vcpuPinVerb },
  console: {
    summary: "console DOM               attach to a domain's console (Ctrl-] detaches)",
    run: consoleVerb,
  },
  "block-attach": {
    summary: "block-attach DOM SPEC     add a virtual disk",
    run: deviceVerb("block-attach", "blockAttach", 2, true),
  },
  "block-detach": {
    summary: "block-detach DOM DEV      remove a virtual disk",
    run: deviceVerb("block-detach", "blockDetach", 2, false),
  },
  "network-attach": {
    summary: "network-attach DOM [k=v]  add a virtual nic",
    run: deviceVerb("network-attach", "networkAttach", 1, true),
  },
  "network-detach": {
    summary: "network-detach DOM DEV    remove a virtual nic",
    run: deviceVerb("network-detach", "networkDetach", 2, false),
  },
};
