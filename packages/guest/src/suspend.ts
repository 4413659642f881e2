/*
 * The kernel's suspend record and its resume from it (Linux's drivers/xen/manage.c
 * do_suspend and arch/x86/xen/suspend.c xen_post_suspend / xen_arch_resume, for a PV guest).
 *
 * Linux keeps every piece of its own bookkeeping in its RAM (struct page, the free lists,
 * mm_struct and vm_area_struct, task_struct, the per-cpu areas), so a save of the guest's
 * memory carries it with no help. This model's kernel keeps that bookkeeping in JavaScript
 * objects; the record is their image, and conceptually it IS part of the guest's memory: the
 * toolstack writes it into the save file beside the pages and hands it back at restore, and
 * nothing in it is the toolstack's to read. Like guest memory after a restore, it names pfns
 * only, never a machine frame: every machine address the kernel holds (its P2M and M2P,
 * shared_info, its runstate area) is re-learnt on resume from start_info and the P2M list
 * the restore rewrote, as xen_post_suspend does.
 *
 * Invariants: suspendRecord is plain JSON (numbers, strings, arrays, objects) that names no
 * machine frame; resumeXenPvKernel checks the whole record before it changes anything in Xen and
 * refuses one that does not fit the domain it wakes up in with a HyperlabError<GuestErrorCode>
 * (GUEST_BAD_RECORD), never another throw; a resumed kernel allocates exactly what the
 * suspended one would have next (its free list comes back in order).
 */
import { __HYPERVISOR_update_va_mapping, UVMF_INVLPG } from "@hyperlab/abi";
import { readXenStartInfo } from "./boot";
import { KERNEL_IDT, taskCpu } from "./cpu";
import { guestError } from "./errors";
import { XenEvtchnGuest } from "./events";
import { GuestKernel, type KernelCounts } from "./kernel";
import {
  PAGE_SIZE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  type TransparentHugepage,
  USER_VA_END,
} from "./layout";
import { Mm } from "./mm";
import { nativePvOps } from "./native-ops";
import { composePvOps, type GuestPlugin } from "./plugins";
import type { GuestPort } from "./port";
import { Process } from "./process";
import { PAGE_KERNEL } from "./pte";
import { xenCpuUp } from "./smp";
import { XenCpuOps } from "./xen-cpu";
import { XenMmuOps, xenPvOps } from "./xen-ops";

/** The record's format; a resume refuses any other. */
export const GUEST_KERNEL_RECORD_VERSION = 1;

/** One address space: its tables (pfns), its areas, its task's CPU state. */
export interface MmRecord {
  id: number;
  pgd: number;
  userPgd: number;
  pinned: boolean;
  /** [start, end, prot] of each area, sorted. */
  vmas: [number, number, number][];
  sp0: number;
  fsBase: number;
  /** The LDT's page and entries, or null. */
  ldt: [number, number] | null;
}

/** One task of the pid table (a dead one keeps its status). */
export interface ProcessRecord {
  pid: number;
  ppid: number;
  state: "running" | "exited" | "killed";
  exitCode: number;
  signal: number;
  checksum: number;
  accesses: number;
  /** Its mm's id, or null once it is dead. */
  mm: number | null;
}

/** The image of a suspended Xen PV kernel's bookkeeping: pfns only, plain JSON. */
export interface GuestKernelRecord {
  version: typeof GUEST_KERNEL_RECORD_VERSION;
  platform: "xen-pv";
  /** Where start_info is mapped (rsi at boot); resume reads its new frames there. */
  startInfoVa: number;
  nrPages: number;
  /** The pv_ops plugins it was composed of, in setup order (resume must be given the same). */
  plugins: string[];
  batching: boolean;
  transparentHugepage: TransparentHugepage;
  /** [pfn, mappings] of every mapped user page. */
  mapcount: [number, number][];
  /** [pfn, level] of every page-table page. */
  ptLevel: [number, number][];
  /** Pages read-only to the kernel (PG_pinned). */
  pinned: number[];
  /** pfns the kernel does not own (none, for a kernel booted on all its pages). */
  unowned: number[];
  /** The stack of freed pages in order: allocPage takes the last. */
  free: number[];
  /** Never-used runs [first, end) still to hand out, lowest first, after the stack is empty. */
  runs: [number, number][];
  nextMmId: number;
  nextPid: number;
  counts: KernelCounts;
  mms: MmRecord[];
  initMm: number;
  /** The mm id each vCPU had loaded (null: offline). */
  loadedMm: (number | null)[];
  processes: ProcessRecord[];
  /** Xen's CPU ops: CR0 per vCPU, runstate pages, the scratch page. */
  cpu: { cr0: number[]; runstatePfn: number[]; scratchPfn: number } | null;
  /**
   * [vCPU, pfn of its vcpu_info page] of each secondary vCPU that was up: resume brings them
   * up again (xen_vcpu_restore + cpu_up), in this order.
   */
  secondaries: [number, number][];
}

/** What a resume needs besides the record: the kernel's pv_ops plugins, as at boot. */
export interface XenPvResumeOptions {
  plugins?: readonly GuestPlugin[];
}

/**
 * The record of a suspended Xen PV kernel (after its pre-suspend: shared_info unmapped, no
 * hypercall until the resume). Throws GUEST_NOT_XEN_PV for a native kernel, whose memory is
 * not saved this way.
 */
export function kernelSuspendRecord(k: GuestKernel): GuestKernelRecord {
  k.requireOps();
  const xen = k.xen;
  if (xen === null) {
    throw guestError(
      "GUEST_NOT_XEN_PV",
      "Only a Xen PV kernel has a suspend record; a native kernel's memory is not saved by a Xen toolstack.",
    );
  }
  const n = k.nrPfns;
  const mapcount: [number, number][] = [];
  const ptLevel: [number, number][] = [];
  const pinned: number[] = [];
  for (let pfn = 0; pfn < n; pfn++) {
    if (k.mapcount[pfn] !== 0) mapcount.push([pfn, k.mapcount[pfn]]);
    if (k.ptLevel[pfn] !== 0) ptLevel.push([pfn, k.ptLevel[pfn]]);
    if (k.pinned[pfn] !== 0) pinned.push(pfn);
  }
  const alloc = k.allocatorState();
  const mms = new Map<Mm, MmRecord>();
  const mmRecord = (mm: Mm): number => {
    if (!mms.has(mm)) {
      const t = taskCpu(mm);
      mms.set(mm, {
        id: mm.id,
        pgd: mm.pgd,
        userPgd: mm.userPgd,
        pinned: mm.pinned,
        vmas: mm.vmas.map((a) => [a.start, a.end, a.prot]),
        sp0: t.sp0,
        fsBase: t.fsBase,
        ldt: t.ldt === null ? null : [t.ldt.pfn, t.ldt.entries],
      });
    }
    return mm.id;
  };
  const initMm = mmRecord(k.initMm);
  const processes: ProcessRecord[] = [];
  for (const task of k.processes.values()) {
    const p = task as Process;
    processes.push({
      pid: p.pid,
      ppid: p.ppid,
      state: p.state,
      exitCode: p.exitCode,
      signal: p.signal,
      checksum: p.checksum,
      accesses: p.accesses,
      mm: p.mm === null ? null : mmRecord(p.mm),
    });
  }
  const loadedMm = k.loadedMm.map((mm) => (mm === null ? null : mmRecord(mm)));
  const secondaries: [number, number][] = [];
  for (let vi = 1; vi < k.registeredVcpuInfo.length; vi++) {
    const maddr = k.registeredVcpuInfo[vi];
    if (maddr === undefined || maddr < 0) continue;
    secondaries.push([vi, xen.m2p[Math.floor(maddr / PAGE_SIZE)] ?? -1]);
  }
  const mmu = k.ops.mmu;
  const cpu = k.ops.cpu;
  return {
    version: GUEST_KERNEL_RECORD_VERSION,
    platform: "xen-pv",
    startInfoVa: xen.startInfoVa,
    nrPages: n,
    plugins: [...k.composition.plugins],
    batching: mmu instanceof XenMmuOps ? mmu.batching : true,
    transparentHugepage: k.transparentHugepage,
    mapcount,
    ptLevel,
    pinned,
    unowned: alloc.unowned,
    free: alloc.free,
    runs: alloc.runs,
    nextMmId: alloc.nextMmId,
    nextPid: k.pidCursor,
    counts: { ...k.counts },
    mms: [...mms.values()],
    initMm,
    loadedMm,
    processes,
    cpu: cpu instanceof XenCpuOps ? cpu.suspendState() : null,
    secondaries,
  };
}

const isInt = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x);
const PROT_ANY = PROT_READ | PROT_WRITE | PROT_EXEC;

/**
 * Checks a record (anything parsed from JSON) against a domain of `nrPages` pages: the
 * reason it cannot be resumed there, or null. Every pfn it names must be one of the domain's,
 * and the structures must be what a kernel could have left.
 */
export function checkKernelRecord(rec: unknown, nrPages: number): string | null {
  if (rec === null || typeof rec !== "object") return "the kernel record is not an object";
  const r = rec as Record<string, unknown>;
  if (r.version !== GUEST_KERNEL_RECORD_VERSION)
    return `the kernel record is version ${String(r.version)}, this kernel resumes version ${GUEST_KERNEL_RECORD_VERSION}`;
  if (r.platform !== "xen-pv") return "the kernel record is not a Xen PV kernel's";
  if (r.nrPages !== nrPages)
    return `the kernel record is of ${String(r.nrPages)} pages, the domain has ${nrPages}`;
  const pfn = (x: unknown) => isInt(x) && x >= 0 && x < nrPages;
  const pfnOrNone = (x: unknown) => x === -1 || pfn(x);
  if (!isInt(r.startInfoVa) || r.startInfoVa % PAGE_SIZE !== 0) return "bad startInfoVa";
  if (!Array.isArray(r.plugins) || !r.plugins.every((p) => typeof p === "string"))
    return "bad plugin list";
  if (typeof r.batching !== "boolean") return "bad batching flag";
  if (r.transparentHugepage !== "always" && r.transparentHugepage !== "never")
    return "bad transparentHugepage mode";
  const pairs = (x: unknown, max: number) =>
    Array.isArray(x) &&
    x.every(
      (e) =>
        Array.isArray(e) && e.length === 2 && pfn(e[0]) && isInt(e[1]) && e[1] > 0 && e[1] <= max,
    );
  if (!pairs(r.mapcount, 0xffff)) return "a mapcount names a pfn beyond the domain";
  if (!pairs(r.ptLevel, 4)) return "a page-table level names a pfn beyond the domain";
  for (const k of ["pinned", "unowned", "free"] as const) {
    const a = r[k];
    if (!Array.isArray(a) || !a.every(pfn)) return `the ${k} list names a pfn beyond the domain`;
  }
  const level = new Uint8Array(nrPages);
  for (const [p, l] of r.ptLevel as [number, number][]) level[p] = l;
  const mapped = new Uint8Array(nrPages);
  for (const [p] of r.mapcount as [number, number][]) mapped[p] = 1;
  const pinnedSet = new Uint8Array(nrPages);
  for (const p of r.pinned as number[]) pinnedSet[p] = 1;
  const unowned = new Uint8Array(nrPages);
  for (const p of r.unowned as number[]) unowned[p] = 1;
  const seen = new Uint8Array(nrPages);
  for (const p of r.free as number[]) {
    if (seen[p] !== 0) return `pfn ${p} is twice in the free list`;
    seen[p] = 1;
    if (unowned[p] !== 0 || level[p] !== 0 || pinnedSet[p] !== 0 || mapped[p] !== 0)
      return `free pfn ${p} is also in use`;
  }
  if (
    !Array.isArray(r.runs) ||
    !r.runs.every(
      (e) =>
        Array.isArray(e) &&
        e.length === 2 &&
        pfn(e[0]) &&
        isInt(e[1]) &&
        e[1] > e[0] &&
        e[1] <= nrPages,
    )
  )
    return "a never-used run names a pfn beyond the domain";
  for (const [a, b] of r.runs as [number, number][]) {
    for (let p = a; p < b; p++) {
      if (seen[p] !== 0) return `pfn ${p} is twice among the free pages`;
      seen[p] = 1;
      if (unowned[p] !== 0 || level[p] !== 0 || pinnedSet[p] !== 0 || mapped[p] !== 0)
        return `free pfn ${p} is also in use`;
    }
  }
  if (!isInt(r.nextMmId) || r.nextMmId < 0 || !isInt(r.nextPid) || r.nextPid < 1)
    return "bad id counters";
  if (r.counts === null || typeof r.counts !== "object") return "bad counters";
  for (const v of Object.values(r.counts as object)) if (!isInt(v) || v < 0) return "bad counters";
  if (!Array.isArray(r.mms)) return "bad mm list";
  const ids = new Set<number>();
  for (const m of r.mms as unknown[]) {
    if (m === null || typeof m !== "object") return "bad mm";
    const mm = m as Record<string, unknown>;
    if (!isInt(mm.id) || ids.has(mm.id)) return "bad or repeated mm id";
    ids.add(mm.id);
    if (!pfn(mm.pgd) || level[mm.pgd as number] !== 4)
      return `mm ${mm.id}'s pgd is not an L4 table of the domain`;
    if (!pfnOrNone(mm.userPgd)) return `mm ${mm.id}'s user pgd names a pfn beyond the domain`;
    if (typeof mm.pinned !== "boolean" || !isInt(mm.sp0) || !isInt(mm.fsBase))
      return `mm ${mm.id}'s CPU state is bad`;
    if (mm.ldt !== null) {
      const l = mm.ldt;
      if (
        !Array.isArray(l) ||
        l.length !== 2 ||
        !pfn(l[0]) ||
        !isInt(l[1]) ||
        l[1] < 1 ||
        l[1] > 512
      )
        return `mm ${mm.id}'s LDT names a pfn beyond the domain`;
    }
    if (!Array.isArray(mm.vmas)) return `mm ${mm.id}'s areas are bad`;
    let at = 0;
    for (const a of mm.vmas as unknown[]) {
      if (!Array.isArray(a) || a.length !== 3) return `mm ${mm.id}'s areas are bad`;
      const [s, e, p] = a as unknown[];
      if (!isInt(s) || !isInt(e) || !isInt(p) || s < at || e <= s || e > USER_VA_END)
        return `mm ${mm.id}'s areas overlap or leave the user half`;
      if (s % PAGE_SIZE !== 0 || e % PAGE_SIZE !== 0 || (p & ~PROT_ANY) !== 0)
        return `mm ${mm.id}'s areas are not page-aligned`;
      at = e;
    }
  }
  if (!isInt(r.initMm) || !ids.has(r.initMm)) return "the init mm is not in the record";
  if (
    !Array.isArray(r.loadedMm) ||
    !r.loadedMm.every((x) => x === null || (isInt(x) && ids.has(x)))
  )
    return "a vCPU has an mm that is not in the record";
  if (r.loadedMm[0] === null || r.loadedMm[0] === undefined) return "vCPU 0 runs no mm";
  if (!Array.isArray(r.processes)) return "bad process list";
  const pids = new Set<number>();
  const owners = new Set<number>();
  for (const x of r.processes as unknown[]) {
    if (x === null || typeof x !== "object") return "bad process";
    const p = x as Record<string, unknown>;
    if (!isInt(p.pid) || p.pid < 1 || pids.has(p.pid) || !isInt(p.ppid) || p.ppid < 0)
      return "bad or repeated pid";
    pids.add(p.pid);
    if (p.state !== "running" && p.state !== "exited" && p.state !== "killed")
      return `process ${p.pid} has a bad state`;
    if (!isInt(p.exitCode) || !isInt(p.signal) || !isInt(p.checksum) || !isInt(p.accesses))
      return `process ${p.pid} has bad counters`;
    if ((p.state === "running") !== (p.mm !== null))
      return `process ${p.pid}'s mm does not fit its state`;
    if (p.mm !== null) {
      if (!isInt(p.mm) || !ids.has(p.mm) || p.mm === r.initMm || owners.has(p.mm))
        return `process ${p.pid}'s mm is not its own`;
      owners.add(p.mm);
    }
  }
  if (r.cpu !== null) {
    const c = r.cpu as Record<string, unknown>;
    if (
      c === undefined ||
      typeof c !== "object" ||
      !Array.isArray(c.cr0) ||
      !c.cr0.every(isInt) ||
      !Array.isArray(c.runstatePfn) ||
      !c.runstatePfn.every(pfnOrNone) ||
      !pfnOrNone(c.scratchPfn)
    )
      return "the CPU state names a pfn beyond the domain";
  }
  if (
    !Array.isArray(r.secondaries) ||
    !r.secondaries.every(
      (e) => Array.isArray(e) && e.length === 2 && isInt(e[0]) && e[0] >= 1 && pfn(e[1]),
    )
  )
    return "a secondary vCPU's vcpu_info names a pfn beyond the domain";
  const cpus = new Set<number>();
  for (const [vi, p] of r.secondaries as [number, number][]) {
    if (cpus.has(vi)) return `secondary vCPU ${vi} is listed twice`;
    cpus.add(vi);
    if (seen[p] !== 0) return `vCPU ${vi}'s vcpu_info page ${p} is also free`;
  }
  return null;
}

function badRecord(why: string) {
  return guestError(
    "GUEST_BAD_RECORD",
    `The kernel cannot resume from this record: ${why}. Restore a save file written by this kernel for this domain.`,
  );
}

/**
 * Resumes a Xen PV kernel from its suspend record on `port` (a domain the restore has just
 * filled with the kernel's memory and started on its tables): reads start_info and the new
 * P2M there, rebuilds the bookkeeping, maps the new shared_info, loads the running task's
 * address space, registers its callbacks and runstate area again and sets event channels up
 * afresh (xen_post_suspend, xen_vcpu_restore, xen_irq_resume). Throws GUEST_BAD_RECORD for a
 * record that does not fit the domain (before it changes anything in Xen), GUEST_BAD_START_INFO when
 * start_info is not where the record says, GUEST_BOOT_HYPERCALL when Xen refuses a resume
 * hypercall.
 */
export function resumeXenPvKernel(
  port: GuestPort,
  record: unknown,
  options: XenPvResumeOptions = {},
): GuestKernel {
  const pre = record as Partial<GuestKernelRecord> | null;
  if (pre === null || typeof pre !== "object" || !isInt(pre.startInfoVa))
    throw badRecord("it has no start_info address");
  const xen = readXenStartInfo(port, pre.startInfoVa);
  const why = checkKernelRecord(record, xen.nrPages);
  if (why !== null) throw badRecord(why);
  const rec = record as GuestKernelRecord;
  const n = xen.nrPages;
  const k = new GuestKernel(port, { kind: "xen-pv", xen });
  const plugins = options.plugins ?? [];
  const hasMmu = plugins.some((p) => (p.provides ?? []).includes("mmu"));
  k.ops = composePvOps(
    k,
    nativePvOps(k),
    hasMmu ? plugins : [...plugins, xenPvOps({ batching: rec.batching })],
  );
  if (k.composition.plugins.join(",") !== rec.plugins.join(",")) {
    throw badRecord(
      `it was composed of [${rec.plugins.join(", ")}], this resume of [${k.composition.plugins.join(", ")}]`,
    );
  }
  k.setTransparentHugepage(rec.transparentHugepage);
  for (const [p, c] of rec.mapcount) k.mapcount[p] = c;
  for (const [p, l] of rec.ptLevel) k.ptLevel[p] = l;
  for (const p of rec.pinned) k.pinned[p] = 1;
  const unowned = new Uint8Array(n);
  for (const p of rec.unowned) unowned[p] = 1;
  k.restoreAllocatorState(unowned, rec.free, rec.runs, rec.nextMmId);
  k.pidCursor = rec.nextPid;
  for (const key of Object.keys(k.counts) as (keyof KernelCounts)[]) {
    const v = (rec.counts as Partial<KernelCounts>)[key];
    if (v !== undefined) k.counts[key] = v;
  }
  const mms = new Map<number, Mm>();
  for (const m of rec.mms) {
    const mm = new Mm(m.id, m.pgd);
    mm.userPgd = m.userPgd;
    mm.pinned = m.pinned;
    mm.vmas = m.vmas.map(([start, end, prot]) => ({ start, end, prot }));
    const t = taskCpu(mm);
    t.sp0 = m.sp0;
    t.fsBase = m.fsBase;
    t.ldt = m.ldt === null ? null : { pfn: m.ldt[0], va: k.physVa(m.ldt[0]), entries: m.ldt[1] };
    mms.set(m.id, mm);
  }
  k.initMm = mms.get(rec.initMm)!;
  for (const p of [...rec.processes].sort((a, b) => a.pid - b.pid)) {
    const proc = new Process(k, p.pid, p.ppid, p.mm === null ? k.initMm : mms.get(p.mm)!);
    if (p.mm === null) proc.mm = null;
    proc.state = p.state;
    proc.exitCode = p.exitCode;
    proc.signal = p.signal;
    proc.checksum = p.checksum >>> 0;
    proc.accesses = p.accesses;
    k.processes.set(proc.pid, proc);
  }
  // xen_post_suspend: shared_info at its fixmap slot again, now the new domain's page.
  let rc = port.hypercall(0, __HYPERVISOR_update_va_mapping, {
    va: xen.sharedInfoVa,
    val: xen.sharedInfoMaddr + PAGE_KERNEL,
    flags: UVMF_INVLPG,
  });
  if (rc !== 0) throw resumeFailed("mapping shared_info", rc);
  // The running task's address space: the restore loaded the kernel base pointer from the
  // vCPU context; both base pointers go in again, as the resumed kernel's first switch_mm.
  const running = mms.get(rec.loadedMm[0]!)!;
  k.loadedMm[0] = running;
  k.cr3Pfn[0] = running.pgd;
  k.ops.mmu.writeCr3(0, running);
  k.ops.mmu.lazyMmuFlush();
  rc = k.takeError();
  if (rc !== 0) throw resumeFailed("loading the running task's page tables", rc);
  const cpu = k.ops.cpu;
  if (cpu instanceof XenCpuOps && rec.cpu !== null) cpu.resumeState(rec.cpu, KERNEL_IDT);
  // The rest of the task's CPU state the vCPU context would carry: its FS base and LDT.
  const t = taskCpu(running);
  if (t.fsBase !== 0) cpu.writeFsBase(0, t.fsBase);
  if (t.ldt !== null) cpu.setLdt(0, t.ldt.va, t.ldt.entries);
  rc = k.takeError();
  if (rc !== 0) throw resumeFailed("setting the CPU up again", rc);
  // xen_irq_resume: event channels afresh (the drivers bind theirs again as they reconnect).
  const events = new XenEvtchnGuest({
    port,
    sharedInfoMfn: Math.floor(xen.sharedInfoMaddr / PAGE_SIZE),
    abi: "2-level",
  });
  rc = events.init();
  if (rc !== 0) throw resumeFailed("EVTCHNOP setup", rc);
  for (let c = 0; c < port.vcpus.length; c++) events.disableUpcalls(c);
  k.events = events;
  port.registerUpcall((c) => events.xenEvtchnDoUpcall(c));
  // xen_vcpu_restore + cpu_up: each secondary vCPU that was up gets its vcpu_info page back
  // (freed, then taken again by the bring-up, which allocates the page freed last), a fresh
  // context, its IPIs (and the boot CPU's) and VCPUOP_up. One the new domain lacks stays down.
  for (const [vi, infoPfn] of rec.secondaries) {
    if (vi >= port.vcpus.length) continue;
    k.freePage(infoPfn);
    rc = xenCpuUp(k, vi);
    if (rc < 0) throw resumeFailed(`bringing vCPU ${vi} up`, rc);
    events.enableUpcalls(vi);
  }
  return k;
}

function resumeFailed(what: string, rc: number) {
  return guestError(
    "GUEST_BOOT_HYPERCALL",
    `Xen refused the resumed kernel's ${what} (${rc}). Resume on a domain the restore has just filled from the save file.`,
  );
}
