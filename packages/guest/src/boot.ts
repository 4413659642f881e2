/*
 * Starting the guest kernel on its GuestPort: on bare metal (the frames its builder gave it
 * are its pfns, pfn == mfn) or as a Xen PV guest (everything it knows comes from start_info,
 * the P2M list and shared_info, read through its own mappings, as Linux's xen_start_kernel
 * does). This module sees only the port; host.ts builds the port from a hypervisor and does
 * the builder's part (the native boot's page allocation).
 *
 * Invariants: after boot the kernel runs on its init mm, whose pgd maps the kernel's direct
 * map of every pfn at PAGE_OFFSET: on a CPU with PSE (bare metal, or a guest of nested or
 * shadow paging) every 2 MiB block that is the kernel's whole is one 2 MiB page (read-write,
 * as Linux's), and any other pfn a 4 KiB page (page-table pages read-only there; a Xen PV
 * guest, which Xen allows no PSE, maps every pfn so); every pfn is either reserved (boot
 * image, tables) or in the page allocator; the pv_ops table is frozen.
 */
import {
  __HYPERVISOR_memory_op,
  __HYPERVISOR_update_va_mapping,
  __HYPERVISOR_vm_assist,
  start_info_x86_64,
  UVMF_INVLPG,
  VMASST_CMD_enable,
  VMASST_TYPE_writable_pagetables,
  XENMEM_maximum_ram_page,
} from "@hyperlab/abi";
import type { ApicBus } from "@hyperlab/machine";
import { cpuInit } from "./cpu";
import { guestError } from "./errors";
import { XenEvtchnGuest } from "./events";
import { GuestKernel, type XenBootInfo } from "./kernel";
import {
  PAGE_OFFSET,
  PAGE_SIZE,
  START_KERNEL_MAP,
  type TransparentHugepage,
  X86_FEATURE_PSE,
} from "./layout";
import { Mm } from "./mm";
import { nativePvOps } from "./native-ops";
import { composePvOps, type GuestPlugin } from "./plugins";
import type { GuestPort } from "./port";
import { Process } from "./process";
import { E_PRESENT, E_PSE, KERNPG_TABLE, PAGE_KERNEL, PAGE_KERNEL_RO } from "./pte";
import { XenCpuOps } from "./xen-cpu";
import { type XenPvOpsOptions, xenPvOps } from "./xen-ops";

const TWO_32 = 0x1_0000_0000;

export interface NativeStartOptions {
  /** Linux's transparent_hugepage mode: "always" maps anonymous memory with 2 MiB pages where it can. Default "never". */
  transparentHugepage?: TransparentHugepage;
  /** pv_ops plugins (none: every group keeps its native default). */
  plugins?: readonly GuestPlugin[];
}

export interface NativeBootOptions extends NativeStartOptions {
  /** Pages of RAM the kernel gets (allocated to its domain by bootNativeKernel). */
  nrPages: number;
  /**
   * Reserve the whole 2 MiB blocks as populate-on-demand blocks (Hypervisor's
   * reserveDomainPages: the same frames, populated at the first check that the domain owns
   * one, as KVM backs guest memory on first touch and Xen's PoD fills an entry on first
   * access) instead of allocating every frame now. The pages past the last whole block are
   * allocated as before. Default false.
   */
  populateOnDemand?: boolean;
  /** The chipset's APIC bus (createPlatform's `apics`), so the kernel takes MSIs on cpu 0's LAPIC. */
  apics?: ApicBus;
}

export interface XenPvBootOptions extends XenPvOpsOptions {
  /** The start_info address Xen passed in rsi (PvBuildResult.rsi from @hyperlab/pv-mmu's builder). */
  startInfoVa: number;
  /** transparent_hugepage mode; a Xen PV guest has no PSE, so "always" still maps 4 KiB pages. Default "never". */
  transparentHugepage?: TransparentHugepage;
  /** pv_ops plugins; xenPvOps({ batching }) is added when none provides pv_ops.mmu. */
  plugins?: readonly GuestPlugin[];
  /**
   * The event channel ABI the kernel asks for: "fifo" tries EVTCHNOP_init_control and falls
   * back to "2-level" when Xen refuses it, as Linux's xen_init_IRQ does. Default "2-level".
   */
  evtchnAbi?: "2-level" | "fifo";
}

function l3Index(va: number): number {
  return Math.floor(va / 2 ** 30) % 512;
}

/**
 * Builds the direct map under a fresh L3 with plain stores (the tree is not yet reachable
 * from any pinned table) and returns the L3's pfn. `extra` slots past the last pfn get
 * tables but no entries (Linux's fixmap room, for shared_info). With `large` (a CPU with
 * PSE), a 2 MiB block whose 512 pfns are all mapped gets one PSE entry in its L2 and no L1,
 * as Linux's init_memory_mapping maps RAM with 2 MiB pages where a whole aligned block is
 * RAM (its head and tail keep 4 KiB pages); then nothing is written per pfn.
 */
function buildDirectMap(
  k: GuestKernel,
  pfns: ArrayLike<number>,
  extra: number,
  large: boolean,
): number {
  const alloc = (level: number): number => {
    const pfn = k.allocPage();
    if (pfn < 0) {
      throw guestError(
        "GUEST_BOOT_NO_MEMORY",
        "The guest kernel ran out of pages while building its direct map. Give it more pages.",
      );
    }
    k.clearPage(pfn);
    k.ptLevel[pfn] = level;
    return pfn;
  };
  const l3 = alloc(3);
  let maxPfn = 0;
  for (let i = 0; i < pfns.length; i++) if (pfns[i] > maxPfn) maxPfn = pfns[i];
  // Mapped pfns of each 2 MiB span (512: a whole block, mapped by one PSE entry if `large`).
  const inSpan = new Map<number, number>();
  for (let i = 0; i < pfns.length; i++) {
    const span = Math.floor(pfns[i] / 512);
    inSpan.set(span, (inSpan.get(span) ?? 0) + 1);
  }
  for (let i = 1; i <= extra; i++) {
    const span = Math.floor((maxPfn + i) / 512);
    if (!inSpan.has(span)) inSpan.set(span, 0);
  }
  const isLarge = (span: number): boolean => large && inSpan.get(span) === 512;
  // Pass 1: an L2 for every 1 GiB and an L1 for every 2 MiB span that holds a mapped pfn
  // (a PSE entry instead where the span is mapped whole with large pages).
  const l1Of = new Map<number, number>();
  for (const span of [...inSpan.keys()].sort((a, b) => a - b)) {
    const va = PAGE_OFFSET + span * 512 * PAGE_SIZE;
    const i3 = l3Index(va);
    let e3 = k.readEntry(l3, i3);
    if ((e3 & E_PRESENT) === 0) {
      const l2 = alloc(2);
      e3 = k.makeEntry(l2, KERNPG_TABLE);
      k.rawStore(l3, i3, e3);
    }
    const l2 = k.entryPfn(e3);
    const i2 = Math.floor(va / 2 ** 21) % 512;
    if (isLarge(span)) {
      k.rawStore(l2, i2, k.makeEntry(span * 512, PAGE_KERNEL | E_PSE));
      continue;
    }
    const l1 = alloc(1);
    k.rawStore(l2, i2, k.makeEntry(l1, KERNPG_TABLE));
    l1Of.set(span, l1);
  }
  // Pass 2: the 4 KiB entries; page-table pages (including the ones just made) read-only.
  for (let i = 0; i < pfns.length; i++) {
    const p = pfns[i];
    const l1 = l1Of.get(Math.floor(p / 512));
    if (l1 === undefined) continue; // in a 2 MiB page
    k.rawStore(l1, p % 512, k.makeEntry(p, k.ptLevel[p] !== 0 ? PAGE_KERNEL_RO : PAGE_KERNEL));
  }
  return l3;
}

function withDefaults(plugins: readonly GuestPlugin[] | undefined): readonly GuestPlugin[] {
  return plugins ?? [];
}

/**
 * Starts a kernel on bare metal over `frames`, the machine frames its builder gave it (they
 * are its pfns). Throws HyperlabError<GuestErrorCode> when the frames are not usable.
 */
export function startNativeKernel(
  port: GuestPort,
  frames: readonly number[] | Float64Array,
  options: NativeStartOptions = {},
): GuestKernel {
  const nrFrames = port.ram.nrFrames;
  const list = Array.isArray(frames) || frames instanceof Float64Array;
  if (!list || frames.length < 16) {
    throw guestError(
      "GUEST_BAD_FRAMES",
      `A native kernel needs at least 16 frames from its builder, got ${list ? frames.length : typeof frames}. Give it more pages.`,
    );
  }
  // A bitmap, not a Set: boot's transient work stays in typed arrays the system gets back,
  // not in a heap of a few tens of bytes per frame that V8 keeps after collecting it.
  const seen = new Uint32Array(Math.ceil(nrFrames / 32));
  for (const f of frames) {
    if (!Number.isInteger(f) || f < 0 || f >= nrFrames || (seen[f >>> 5] & (1 << (f & 31))) !== 0) {
      throw guestError(
        "GUEST_BAD_FRAMES",
        `Frame ${f} is not a distinct machine frame below ${nrFrames}. Pass the frames the builder allocated to the domain, each once.`,
      );
    }
    seen[f >>> 5] |= 1 << (f & 31);
  }
  const sorted = Float64Array.from(frames).sort();
  const k = new GuestKernel(port, { kind: "native", nrPages: sorted.length });
  // Lowest frames handed out first, as a buddy allocator would; as runs, so nothing is
  // written per frame until the frame is first handed out.
  for (let i = 0; i < sorted.length; ) {
    let j = i + 1;
    while (j < sorted.length && sorted[j] === sorted[j - 1] + 1) j++;
    k.addFreeRun(sorted[i], j - i);
    i = j;
  }
  k.ops = composePvOps(k, nativePvOps(k), withDefaults(options.plugins));
  k.setTransparentHugepage(options.transparentHugepage ?? "never");
  const pgd = k.allocPage();
  k.clearPage(pgd);
  k.ptLevel[pgd] = 4;
  // Linux's probe_page_size_mask: the direct map uses 2 MiB pages when the CPU has PSE.
  const leaf1 = new Uint32Array(4);
  k.ops.cpu.cpuid(1, leaf1);
  const l3 = buildDirectMap(k, sorted, 0, (leaf1[3] & (1 << X86_FEATURE_PSE)) !== 0);
  k.rawStore(pgd, Math.floor(PAGE_OFFSET / 2 ** 39) % 512, k.makeEntry(l3, KERNPG_TABLE));
  k.initMm = new Mm(0, pgd);
  k.switchMm(0, k.initMm);
  k.counts.contextSwitches = 0;
  cpuInit(k);
  return k;
}

/** A 64-bit canonical address field as a 48-bit VA. */
function vaOf(lo: number, hi: number): number {
  return (hi & 0xffff) * TWO_32 + lo;
}

/**
 * Reads the boot information Xen's builder (or a restore) left at `si` (the start_info address
 * in rsi) through the vCPU 0's page tables: start_info's fields and the P2M list it names, as
 * Linux's xen_start_kernel reads them. Throws HyperlabError<GuestErrorCode> when start_info is
 * not there or does not describe this domain.
 */
export function readXenStartInfo(port: GuestPort, si: number): XenBootInfo {
  const v = port.vcpus[0];
  const mmu = port.cpu;
  const ram = port.ram;
  const rd64 = (va: number): [number, number] => {
    const ma = mmu.translate(v, va, 0);
    if (ma < 0 || ma % 8 !== 0) {
      throw guestError(
        "GUEST_BAD_START_INFO",
        `The kernel cannot read its boot information at ${va.toString(16)}: not mapped. Pass the builder's rsi as startInfoVa.`,
      );
    }
    return [ram.read64lo(ma), ram.read64hi(ma)];
  };
  if (typeof si !== "number" || !Number.isSafeInteger(si) || si % PAGE_SIZE !== 0) {
    throw guestError(
      "GUEST_BAD_START_INFO",
      `startInfoVa must be the page-aligned address Xen passed in rsi, got ${si}.`,
    );
  }
  const f = start_info_x86_64.fields;
  const magic = new Uint8Array(16);
  for (let i = 0; i < 16; i += 8) {
    const [lo, hi] = rd64(si + f.magic.offset + i);
    new DataView(magic.buffer).setUint32(i, lo, true);
    new DataView(magic.buffer).setUint32(i + 4, hi, true);
  }
  if (!new TextDecoder().decode(magic).startsWith("xen-3.0-x86_64")) {
    throw guestError(
      "GUEST_BAD_START_INFO",
      "start_info does not begin with Xen's magic (xen-3.0-x86_64). Pass the builder's rsi as startInfoVa.",
    );
  }
  const nrPages = rd64(si + f.nr_pages.offset)[0];
  if (nrPages < 1 || nrPages > ram.nrFrames) {
    throw guestError(
      "GUEST_BAD_START_INFO",
      `start_info.nr_pages (${nrPages}) is not a size this machine's RAM can hold. Pass the builder's rsi as startInfoVa.`,
    );
  }
  const [siLo, siHi] = rd64(si + f.shared_info.offset);
  const flags = rd64(si + f.flags.offset)[0];
  const ptBase = vaOf(...rd64(si + f.pt_base.offset));
  const nrPt = rd64(si + f.nr_pt_frames.offset)[0];
  const mfnList = vaOf(...rd64(si + f.mfn_list.offset));
  // The P2M list, one translation per page of it.
  const p2m = new Float64Array(nrPages);
  for (let pfn = 0; pfn < nrPages; pfn++) {
    const [lo, hi] = rd64(mfnList + pfn * 8);
    // INVALID_P2M_ENTRY (~0UL): a pfn with no frame (ballooned out before a save).
    p2m[pfn] = lo === 0xffff_ffff && hi === 0xffff_ffff ? -1 : hi * TWO_32 + lo;
  }
  const maxRam = port.hypercall(0, __HYPERVISOR_memory_op, { cmd: XENMEM_maximum_ram_page });
  if (maxRam < 0) {
    throw guestError("GUEST_BOOT_HYPERCALL", `XENMEM_maximum_ram_page failed (${maxRam}).`);
  }
  const m2p = new Int32Array(maxRam + 1).fill(-1);
  for (let pfn = 0; pfn < nrPages; pfn++)
    if (p2m[pfn] >= 0 && p2m[pfn] <= maxRam) m2p[p2m[pfn]] = pfn;
  const xen: XenBootInfo = {
    nrPages,
    p2m,
    m2p,
    sharedInfoMaddr: siHi * TWO_32 + siLo,
    sharedInfoVa: PAGE_OFFSET + nrPages * PAGE_SIZE,
    flags,
    ptBasePfn: (ptBase - START_KERNEL_MAP) / PAGE_SIZE,
    nrPtFrames: nrPt,
    startInfoVa: si,
  };
  if (port.sharedInfoMfn >= 0 && xen.sharedInfoMaddr !== port.sharedInfoMfn * PAGE_SIZE) {
    throw guestError(
      "GUEST_BAD_START_INFO",
      `start_info.shared_info (${xen.sharedInfoMaddr.toString(16)}) is not the page Xen shares with this domain. Pass the builder's rsi of this domain as startInfoVa.`,
    );
  }
  if (!Number.isInteger(xen.ptBasePfn) || xen.ptBasePfn < 0 || xen.ptBasePfn >= nrPages) {
    throw guestError(
      "GUEST_BAD_START_INFO",
      "start_info.pt_base is not inside the kernel image at __START_KERNEL_map. Build the domain with the default virtBase.",
    );
  }
  return xen;
}

/**
 * Starts a kernel as a Xen PV guest that Xen's domain builder has just set up: vCPU 0 runs on
 * the builder's pinned tables and `startInfoVa` is what Xen put in rsi. Throws
 * HyperlabError when start_info is not where it is said to be or boot hypercalls fail.
 */
export function startXenPvKernel(port: GuestPort, options: XenPvBootOptions): GuestKernel {
  const xen = readXenStartInfo(port, options?.startInfoVa);
  const { nrPages, nrPtFrames: nrPt } = xen;
  const k = new GuestKernel(port, { kind: "xen-pv", xen });
  // Linux turns on writable page tables first thing (xen_start_kernel).
  port.hypercall(0, __HYPERVISOR_vm_assist, {
    cmd: VMASST_CMD_enable,
    type: VMASST_TYPE_writable_pagetables,
  });
  const plugins = options.plugins ?? [];
  const hasMmu = plugins.some((p) => (p.provides ?? []).includes("mmu"));
  k.ops = composePvOps(
    k,
    nativePvOps(k),
    hasMmu ? plugins : [...plugins, xenPvOps({ batching: options.batching })],
  );
  k.setTransparentHugepage(options.transparentHugepage ?? "never");
  // The builder's bootstrap region: the pfns its L1s map from __START_KERNEL_map up.
  const boot = new Uint8Array(nrPages);
  for (let i = 0; i < nrPt; i++) {
    k.ptLevel[xen.ptBasePfn + i] = 1;
    k.pinned[xen.ptBasePfn + i] = 1;
  }
  k.ptLevel[xen.ptBasePfn] = 4;
  for (let va = START_KERNEL_MAP; ; va += PAGE_SIZE) {
    const pfn = pfnMappedAt(k, xen.ptBasePfn, va);
    if (pfn < 0) break;
    boot[pfn] = 1;
  }
  // Lowest pfns handed out first; the free ones as runs, nothing written per pfn.
  for (let pfn = 0; pfn < nrPages; ) {
    if (boot[pfn] !== 0) {
      k.reservePage(pfn++);
      continue;
    }
    let end = pfn + 1;
    while (end < nrPages && boot[end] === 0) end++;
    k.addFreeRun(pfn, end - pfn);
    pfn = end;
  }
  const all = new Float64Array(nrPages);
  for (let pfn = 0; pfn < nrPages; pfn++) all[pfn] = pfn;
  // Xen refuses PSE in a PV guest's L2 entries: its direct map keeps 4 KiB pages.
  const l3 = buildDirectMap(k, all, 1, false);
  // The new tree joins the pinned init tables: its pages are pinned from now on.
  for (let pfn = 0; pfn < nrPages; pfn++) if (k.ptLevel[pfn] !== 0) k.pinned[pfn] = 1;
  const init = new Mm(0, xen.ptBasePfn);
  init.pinned = true;
  k.initMm = init;
  k.loadedMm[0] = init;
  k.cr3Pfn[0] = xen.ptBasePfn;
  k.ops.mmu.setP4d(init, Math.floor(PAGE_OFFSET / 2 ** 39) % 512, k.makeEntry(l3, KERNPG_TABLE));
  k.ops.mmu.lazyMmuFlush();
  // shared_info into the fixmap slot (Linux: set_fixmap(FIX_PARAVIRT_BOOTMAP, shared_info)).
  const rc = port.hypercall(0, __HYPERVISOR_update_va_mapping, {
    va: xen.sharedInfoVa,
    val: xen.sharedInfoMaddr + PAGE_KERNEL,
    flags: UVMF_INVLPG,
  });
  const err = k.takeError();
  if (err !== 0 || rc !== 0) {
    throw guestError(
      "GUEST_BOOT_HYPERCALL",
      `Xen refused the kernel's boot page-table updates (${err !== 0 ? err : rc}). Boot on a domain fresh from buildPvDomain.`,
    );
  }
  const events = initEvents(k, xen.sharedInfoMaddr, options.evtchnAbi ?? "2-level");
  k.events = events;
  // Linux registers xen_hypervisor_callback as its event callback: the upcall entry.
  port.registerUpcall((cpu) => events.xenEvtchnDoUpcall(cpu));
  // trap_init's IDT, the callbacks Xen bounces to, the runstate area for steal time, the banner.
  cpuInit(k, () => {
    const cpu = k.ops.cpu;
    if (cpu instanceof XenCpuOps) {
      cpu.setupCallbacks();
      cpu.registerRunstate(0); // the others' when they come up (xenCpuUp)
    }
  });
  const cpuErr = k.takeError();
  if (cpuErr !== 0) {
    throw guestError(
      "GUEST_BOOT_HYPERCALL",
      `Xen refused the kernel's CPU setup (trap table, callbacks or runstate area): ${cpuErr}.`,
    );
  }
  return k;
}

/**
 * Event channels, as Linux's xen_init_IRQ: the FIFO ABI if asked for and Xen accepts it,
 * else the 2-level one over shared_info; every port masked.
 */
function initEvents(
  k: GuestKernel,
  sharedInfoMaddr: number,
  abi: "2-level" | "fifo",
): XenEvtchnGuest {
  const make = (which: "2-level" | "fifo") =>
    new XenEvtchnGuest({
      port: k.port,
      sharedInfoMfn: Math.floor(sharedInfoMaddr / PAGE_SIZE),
      abi: which,
      allocFrame: () => {
        const pfn = k.allocPage();
        return pfn < 0 ? -1 : k.frameOf(pfn);
      },
    });
  let events = abi === "fifo" ? make("fifo") : null;
  if (events === null || events.init() !== 0) {
    events = make("2-level");
    events.init();
  }
  // Interrupts stay off until the kernel enables them (pv_ops.irq.irqEnable, Linux's
  // local_irq_enable late in start_kernel): the upcall mask is the guest's interrupt flag.
  for (let cpu = 0; cpu < k.port.vcpus.length; cpu++) events.disableUpcalls(cpu);
  return events;
}

/** The pfn the builder's tables map at `va`, or -1 (a direct read of the kernel's own tables). */
function pfnMappedAt(k: GuestKernel, pgd: number, va: number): number {
  let t = pgd;
  for (let shift = 39; shift >= 12; shift -= 9) {
    const e = k.readEntry(t, Math.floor(va / 2 ** shift) % 512);
    if ((e & E_PRESENT) === 0) return -1;
    t = k.entryPfn(e);
    if (t < 0) return -1;
  }
  return t;
}

/** Starts the first user process (init): a fresh address space, activated. */
export function spawnProcess(k: GuestKernel): Process {
  k.requireOps();
  const mm = k.mmForExec(k.initMm);
  if (mm === null) {
    throw guestError(
      "GUEST_NO_MEMORY",
      "The guest kernel has no memory for a new process. Give it more pages or exit processes.",
    );
  }
  const rc = k.takeError();
  if (rc !== 0) {
    k.mmTeardown(mm);
    k.takeError();
    throw guestError(
      "GUEST_SPAWN_FAILED",
      `The hypervisor refused the new address space's page-table updates (${rc}); the kernel recorded it in lastXenError.`,
    );
  }
  const p = new Process(k, k.allocPid(), 0, mm);
  k.processes.set(p.pid, p);
  return p;
}

/**
 * What @hyperlab/testkit's guest conformance suite needs of a booted kernel (its
 * GuestConformanceBuild): `() => conformanceBuildOf(bootMyBackend(), () => checks())`.
 */
export function conformanceBuildOf(
  k: GuestKernel,
  check?: () => void,
): {
  spawn(): Process;
  freePages(): number;
  signals(): number;
  check?: () => void;
} {
  return {
    spawn: () => spawnProcess(k),
    freePages: () => k.freePages,
    signals: () => k.counts.signals,
    check,
  };
}
