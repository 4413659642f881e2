/*
 * The control socket's `guest` op: what a shell inside a domU would do, run against the
 * domain's own kernel, so a client can give a guest work and look at it afterwards (the
 * save/restore round trip across host daemons is tested this way). Commands follow Linux's
 * names: spawn (a new process), mmap (anonymous, read-write), poke and peek (ptrace's
 * PTRACE_POKEDATA / PEEKDATA: one u32 of a process's memory), fork, ps, and disk-write /
 * disk-read (a block through the domain's blkfront, base64 data).
 *
 * Invariants: nothing a client sends throws anything but a HyperlabError with a
 * ToolstackErrorCode (TOOLSTACK_BAD_ARGUMENT) and a message saying what to send instead; a
 * command acts only on the named domain's kernel, through its program interface, as a process
 * of that guest would.
 */
import { isHyperlabError } from "@hyperlab/core";
import { PROT_READ, PROT_WRITE, type Process, spawnProcess } from "@hyperlab/guest";
import type { BlkFront } from "@hyperlab/split-drivers";
import { TOOLSTACK_ERROR_CODES } from "../errors";
import { libxlError } from "../libxl/errors";
import type { DomainRecord } from "../libxl/host";

type Args = Record<string, unknown>;

const bad = (message: string) => libxlError("TOOLSTACK_BAD_ARGUMENT", message);

function int(a: Args, k: string, min = 0): number {
  const v = a[k];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min)
    throw bad(`guest: argument ${k} must be a whole number of at least ${min}.`);
  return v;
}

function proc(r: DomainRecord, a: Args): Process {
  const pid = int(a, "pid", 1);
  const p = r.kernel!.processes.get(pid) as Process | undefined;
  if (p === undefined) throw bad(`guest: domain ${r.domid} has no process ${pid} (see cmd "ps").`);
  if (p.mm === null)
    throw bad(`guest: process ${pid} of domain ${r.domid} is ${p.state}; spawn or fork another.`);
  return p;
}

async function disk(r: DomainRecord, a: Args) {
  const devid = int(a, "devid");
  const d = (r.frontends.get("vbd") as BlkFront | undefined)?.disk(devid);
  if (d === undefined) throw bad(`guest: domain ${r.domid} has no disk ${devid}.`);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(bad(`guest: disk ${devid} did not connect.`)), 10_000);
  });
  try {
    await Promise.race([d.ready(), late]);
  } finally {
    clearTimeout(timer);
  }
  return d;
}

/** Runs one `guest` command on domain `r`'s kernel; its JSON answer. */
export async function guestOp(r: DomainRecord, a: Args): Promise<unknown> {
  const k = r.kernel;
  if (k === null) throw bad(`guest: domain ${r.domid} runs no guest kernel.`);
  try {
    switch (a.cmd) {
      case "spawn":
        return { pid: spawnProcess(k).pid };
      case "mmap": {
        const addr = proc(r, a).mmap(int(a, "length", 1), PROT_READ | PROT_WRITE);
        if (addr < 0) throw bad(`guest: mmap failed (${addr}).`);
        return { addr };
      }
      case "poke": {
        const value = int(a, "value");
        if (value > 0xffff_ffff) throw bad("guest: argument value must fit in 32 bits.");
        return { ok: proc(r, a).store(int(a, "va"), value) };
      }
      case "peek":
        return { value: proc(r, a).load(int(a, "va")) };
      case "fork": {
        const c = proc(r, a).fork();
        if (typeof c === "number") throw bad(`guest: fork failed (${c}).`);
        return { pid: c.pid };
      }
      case "ps":
        return [...k.processes.values()].map((t) => t.snapshot());
      case "disk-write": {
        if (typeof a.data !== "string") throw bad("guest: argument data must be base64.");
        const d = await disk(r, a);
        return { status: await d.write(int(a, "sector"), Buffer.from(a.data, "base64")) };
      }
      case "disk-read": {
        const d = await disk(r, a);
        const got = await d.read(int(a, "sector"), int(a, "count", 1));
        return { status: got.status, data: Buffer.from(got.data).toString("base64") };
      }
      default:
        throw bad(
          `guest: unknown cmd ${JSON.stringify(a.cmd)}; use spawn, mmap, poke, peek, fork, ps, disk-write or disk-read.`,
        );
    }
  } catch (e) {
    if (isHyperlabError(e, TOOLSTACK_ERROR_CODES)) throw e;
    throw bad(`guest: ${(e as Error).message}`);
  }
}
