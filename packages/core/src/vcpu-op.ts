/*
 * vCPU state that lives in guest memory or comes from the guest, and the VCPUOPs that set it
 * up (Xen's xen/common/domain.c do_vcpu_op, map_vcpu_info, arch_set_info_guest, and the
 * runstate area of xen/arch/x86/domain.c): VCPUOP_initialise, VCPUOP_register_vcpu_info,
 * VCPUOP_register_runstate_memory_area, and the PV clock stamps written into vcpu_info.
 *
 * Invariants:
 * - Every guest argument is checked before anything changes; a handler answers 0 or Xen's
 *   negative errno and never throws.
 * - A vcpu_info or runstate area the hypervisor writes lies in frames the domain owns, each
 *   held by one general and one PGT_writable_page type reference for as long as it is
 *   registered; the references go when the domain is destroyed (before its frames are
 *   released), so the hypervisor never writes a frame the domain no longer owns.
 * - A vcpu_info never crosses a page; vCPUs 0..XEN_LEGACY_MAX_VCPUS-1 start in shared_info,
 *   the others have none (Xen's dummy_vcpu_info) until they register one.
 * - vCPU 0 of a new domain counts as initialised (the domain builder set its context); any
 *   other vCPU is initialised only by VCPUOP_initialise, and VCPUOP_up refuses it before.
 */
import {
  EEXIST,
  EFAULT,
  EINVAL,
  ENOENT,
  FIRST_RESERVED_GDT_ENTRY,
  HYPERVISOR_VIRT_END_HI,
  HYPERVISOR_VIRT_START_HI,
  shared_info_x86_64,
  VCPUOP_initialise,
  VCPUOP_register_runstate_memory_area,
  VCPUOP_register_vcpu_info,
  VGCF_in_kernel,
  VGCF_online,
  VMASST_TYPE_runstate_update_flag,
  vcpu_guest_context_x86_64,
  vcpu_info_x86_64,
  vcpu_runstate_info,
  XEN_LEGACY_MAX_VCPUS,
} from "@hyperlab/abi";
import type { Machine } from "@hyperlab/machine";
import type { Domain, Vcpu } from "./domain";
import { type FrameTable, PGT_l4_page_table, PGT_writable_page } from "./frame-table";
import { PFEC_write_access } from "./mmu";
import type { MmuBackend } from "./slots/mmu";
import type { SchedService } from "./slots/sched";
import { writeRunstateArea, writeVcpuTime } from "./time";

const PAGE = 4096;
const TWO_32 = 0x1_0000_0000;
const VI_SIZE = vcpu_info_x86_64.sizeof;
const VI_ALIGN = 8;
const RS_SIZE = vcpu_runstate_info.sizeof;
const GC = vcpu_guest_context_x86_64.fields;
/** Most LDT entries a PV guest may name (Xen: 8192 descriptors, one 64 KiB LDT). */
const MAX_LDT_ENTS = 8192;

/** The VCPUOP sub-ops core handles itself. */
export const CORE_VCPUOPS = [
  VCPUOP_initialise,
  VCPUOP_register_vcpu_info,
  VCPUOP_register_runstate_memory_area,
] as const;

/** A guest-supplied 64-bit unsigned field as a JS number, or -1 if it is not one. */
function u64(x: unknown): number {
  return typeof x === "number" && Number.isInteger(x) && x >= 0 && x < 2 ** 64 ? x : -1;
}

/** Whether a 64-bit address given as halves is canonical (bits 63..47 all equal). */
function canonical(hi: number): boolean {
  const top = hi >>> 15;
  return top === 0 || top === 0x1ffff;
}

/**
 * What VcpuAreas needs of the hypervisor: its machine, frame table and the `mmu` and `sched`
 * slots (a structural view, so this module and hypervisor.ts do not import each other).
 */
export interface VcpuAreasHost {
  readonly machine: Machine;
  readonly frames: FrameTable;
  hasSlot(name: "mmu" | "sched"): boolean;
  slot(name: "mmu"): MmuBackend;
  slot(name: "sched"): SchedService;
}

export class VcpuAreas {
  private readonly hv: VcpuAreasHost;
  private cap = 0;
  private initialised = new Uint8Array(0);
  /** Machine address of each vCPU's vcpu_info, or -1 (dummy). */
  private infoMaddr = new Float64Array(0);
  /** The frame a registered vcpu_info holds references on, or -1. */
  private infoMfn = new Int32Array(0);
  /** Runstate area: first machine address, bytes in the first page, second page's address. */
  private rsMaddr = new Float64Array(0);
  private rsSplit = new Int32Array(0);
  private rsMaddr2 = new Float64Array(0);
  private rsMfn = new Int32Array(0);
  private rsMfn2 = new Int32Array(0);
  /** The time stamp last written to each vCPU's vcpu_time_info, or -1. */
  private stampOf = new Float64Array(0);
  /** Each pCPU's current time stamp (its last calibration). */
  private readonly cpuStamp: Float64Array;
  private readonly contexts = new Map<number, Uint8Array>();

  constructor(hv: VcpuAreasHost) {
    this.hv = hv;
    this.cpuStamp = new Float64Array(hv.machine.cpus.length);
  }

  private grow(n: number): void {
    if (n <= this.cap) return;
    let cap = Math.max(64, this.cap);
    while (cap < n) cap *= 2;
    const f64 = (a: Float64Array) => {
      const b = new Float64Array(cap).fill(-1);
      b.set(a);
      return b;
    };
    const i32 = (a: Int32Array) => {
      const b = new Int32Array(cap).fill(-1);
      b.set(a);
      return b;
    };
    const u8 = new Uint8Array(cap);
    u8.set(this.initialised);
    this.initialised = u8;
    this.infoMaddr = f64(this.infoMaddr);
    this.infoMfn = i32(this.infoMfn);
    this.rsMaddr = f64(this.rsMaddr);
    this.rsSplit = i32(this.rsSplit);
    this.rsMaddr2 = f64(this.rsMaddr2);
    this.rsMfn = i32(this.rsMfn);
    this.rsMfn2 = i32(this.rsMfn2);
    this.stampOf = f64(this.stampOf);
    this.cap = cap;
  }

  /** A new vCPU: its vcpu_info is its shared_info slot (if it has one). */
  vcpuCreated(v: Vcpu): void {
    const uid = v.uid;
    this.grow(uid + 1);
    this.initialised[uid] = v.vcpuId === 0 ? 1 : 0;
    this.infoMaddr[uid] =
      v.vcpuId < XEN_LEGACY_MAX_VCPUS
        ? v.domain.sharedInfoMfn * PAGE +
          shared_info_x86_64.fields.vcpu_info.offset +
          v.vcpuId * VI_SIZE
        : -1;
    this.infoMfn[uid] = -1;
    this.rsMfn[uid] = -1;
    this.rsMfn2[uid] = -1;
    this.rsMaddr[uid] = -1;
    this.stampOf[uid] = -1;
  }

  /** Drops every reference the domain's vCPU areas hold (Xen's unmap_vcpu_info and co.). */
  domainDestroyed(d: Domain): void {
    for (const v of d.vcpus) {
      const uid = v.uid;
      if (uid >= this.cap) continue;
      this.dropRunstateArea(uid);
      if (this.infoMfn[uid] >= 0) {
        this.hv.frames.putPageAndType(this.infoMfn[uid]);
        this.infoMfn[uid] = -1;
      }
      this.infoMaddr[uid] = -1;
      this.contexts.delete(uid);
    }
  }

  /** Machine address of the vCPU's vcpu_info, or -1 when it has none (vCPU >= 32, unregistered). */
  vcpuInfoMaddr(v: Vcpu): number {
    return v.uid < this.cap ? this.infoMaddr[v.uid] : -1;
  }

  /** Machine address of the vCPU's runstate area (its first byte), or -1 when none is registered. */
  runstateAreaMaddr(v: Vcpu): number {
    return v.uid < this.cap && this.rsMfn[v.uid] >= 0 ? this.rsMaddr[v.uid] : -1;
  }

  /** Maps a byte offset of the vCPU's runstate area to its machine address (-1 if none). */
  runstateAreaAt(v: Vcpu, offset: number): number {
    const uid = v.uid;
    if (uid >= this.cap || this.rsMfn[uid] < 0) return -1;
    return offset < this.rsSplit[uid]
      ? this.rsMaddr[uid] + offset
      : this.rsMaddr2[uid] + offset - this.rsSplit[uid];
  }

  /** Whether the vCPU has a context (vCPU 0 from the builder, others from VCPUOP_initialise). */
  isInitialised(v: Vcpu): boolean {
    return v.uid < this.cap && this.initialised[v.uid] === 1;
  }

  /** The vcpu_guest_context bytes VCPUOP_initialise gave the vCPU (a copy), if any. */
  guestContext(v: Vcpu): Uint8Array | undefined {
    const c = this.contexts.get(v.uid);
    return c === undefined ? undefined : c.slice();
  }

  // ---- the PV clock ----

  /** A pCPU's time calibration (Xen's local_time_calibration): its stamp moves to `now`. */
  calibrate(cpu: number, now: number): void {
    this.cpuStamp[cpu] = now;
  }

  /**
   * Xen's update_vcpu_system_time for a vCPU scheduled in on `cpu` (or recalibrated there):
   * writes the pCPU's stamp into the vCPU's vcpu_time_info unless it is already there.
   */
  updateTime(uid: number, cpu: number): void {
    const stamp = this.cpuStamp[cpu];
    if (this.stampOf[uid] === stamp) return;
    const at = this.infoMaddr[uid];
    if (at < 0) return;
    this.stampOf[uid] = stamp;
    writeVcpuTime(this.hv.machine.ram, at, stamp);
  }

  /** Writes a vCPU's time stamp as of `now` whatever it held (force_update_vcpu_system_time). */
  private forceTime(uid: number, now: number): void {
    const at = this.infoMaddr[uid];
    if (at < 0) return;
    this.stampOf[uid] = now;
    writeVcpuTime(this.hv.machine.ram, at, now);
  }

  // ---- the runstate area ----

  /** Whether the vCPU has a runstate area (a cheap test for the scheduler's hot path). */
  hasRunstateArea(uid: number): boolean {
    return uid < this.cap && this.rsMfn[uid] >= 0;
  }

  /**
   * Xen's update_runstate_area: copies the vCPU's runstate (times up to `entry`, taken from
   * `times[base .. base + 3]`) into its area, flagged while it writes if the domain enabled
   * VMASST_TYPE_runstate_update_flag.
   */
  writeRunstate(
    v: Vcpu,
    state: number,
    entry: number,
    times: ArrayLike<number>,
    base: number,
  ): void {
    const uid = v.uid;
    if (uid >= this.cap || this.rsMfn[uid] < 0) return;
    writeRunstateArea(
      this.hv.machine.ram,
      state,
      entry,
      times,
      base,
      v.domain.vmAssist.has(VMASST_TYPE_runstate_update_flag),
      this.rsMaddr[uid],
      this.rsSplit[uid],
      this.rsMaddr2[uid],
    );
  }

  private dropRunstateArea(uid: number): void {
    const f = this.hv.frames;
    if (this.rsMfn2[uid] >= 0) f.putPageAndType(this.rsMfn2[uid]);
    if (this.rsMfn[uid] >= 0) f.putPageAndType(this.rsMfn[uid]);
    this.rsMfn[uid] = -1;
    this.rsMfn2[uid] = -1;
    this.rsMaddr[uid] = -1;
  }

  // ---- hypercalls ----

  /** The handlers, for the hypervisor to route __HYPERVISOR_vcpu_op sub-ops to. */
  handler(cmd: (typeof CORE_VCPUOPS)[number]): (v: Vcpu, a: Record<string, unknown>) => number {
    switch (cmd) {
      case VCPUOP_initialise:
        return (v, a) => this.doInitialise(v, a);
      case VCPUOP_register_vcpu_info:
        return (v, a) => this.doRegisterVcpuInfo(v, a);
      default:
        return (v, a) => this.doRegisterRunstate(v, a);
    }
  }

  private target(v: Vcpu, a: Record<string, unknown>): Vcpu | number {
    const id = a.vcpuid;
    if (typeof id !== "number" || !Number.isInteger(id)) return -EFAULT;
    const t = v.domain.vcpus[id];
    return t === undefined ? -ENOENT : t;
  }

  /** Xen's VCPUOP_initialise -> arch_initialise_vcpu -> arch_set_info_guest (64-bit PV). */
  private doInitialise(v: Vcpu, a: Record<string, unknown>): number {
    const t = this.target(v, a);
    if (typeof t === "number") return t;
    const ctxt = a.ctxt;
    if (!(ctxt instanceof Uint8Array) || ctxt.length < vcpu_guest_context_x86_64.sizeof) {
      return -EFAULT;
    }
    if (this.infoMaddr[t.uid] < 0) return -EINVAL; // dummy vcpu_info
    if (this.initialised[t.uid]) return -EEXIST;
    const dv = new DataView(ctxt.buffer, ctxt.byteOffset, vcpu_guest_context_x86_64.sizeof);
    const lo = (off: number) => dv.getUint32(off, true);
    const hi = (off: number) => dv.getUint32(off + 4, true);
    const u64at = (off: number) => hi(off) * TWO_32 + lo(off);
    // Every address the vCPU will jump to or load must be canonical.
    const addrs = [
      GC["user_regs.rip"].offset,
      GC["user_regs.rsp"].offset,
      GC.kernel_sp.offset,
      GC.event_callback_eip.offset,
      GC.failsafe_callback_eip.offset,
      GC.syscall_callback_eip.offset,
      GC.fs_base.offset,
      GC.gs_base_kernel.offset,
      GC.gs_base_user.offset,
    ];
    for (const off of addrs) if (!canonical(hi(off))) return -EINVAL;
    const trap = GC.trap_ctxt;
    for (let i = 0; i < trap.count!; i++) {
      // trap_info.address is its last 8 bytes.
      if (!canonical(hi(trap.offset + i * trap.size + 8))) return -EINVAL;
    }
    const ldtEnts = u64at(GC.ldt_ents.offset);
    const ldtBaseLo = lo(GC.ldt_base.offset);
    if (ldtEnts > MAX_LDT_ENTS || ldtBaseLo % PAGE !== 0) return -EINVAL;
    if (ldtEnts !== 0 && !canonical(hi(GC.ldt_base.offset))) return -EINVAL;
    // __addr_ok(ldt_base), whatever ldt_ents: below 2^47, or at/above HYPERVISOR_VIRT_END
    // (0xffff880000000000): never inside the hypervisor's hole.
    const ldtHi = hi(GC.ldt_base.offset);
    if (!(ldtHi < 0x8000 || ldtHi >= 0xffff_8800)) return -EINVAL;
    const gdtEnts = u64at(GC.gdt_ents.offset);
    if (gdtEnts > FIRST_RESERVED_GDT_ENTRY) return -EINVAL;
    const d = t.domain;
    const f = this.hv.frames;
    const gdtFrames = Math.ceil(gdtEnts / 512);
    for (let i = 0; i < gdtFrames; i++) {
      const mfn = u64at(GC.gdt_frames.offset + i * 8);
      if (!f.validMfn(mfn) || !f.ownedBy(mfn, d.domid)) return -EINVAL;
    }
    const flags = lo(GC.flags.offset);
    const cr3 = GC.ctrlreg.offset + 3 * 8;
    const cr1 = GC.ctrlreg.offset + 1 * 8;
    const pfnOf = (off: number) => hi(off) * 2 ** 20 + (lo(off) >>> 12);
    const mmu = this.hv.hasSlot("mmu") ? this.hv.slot("mmu") : undefined;
    if (mmu?.kind === "pv") {
      // A PV vCPU starts on a validated L4 of its own domain (and a user L4 if it names one).
      const kernel = pfnOf(cr3);
      if (!f.validMfn(kernel)) return -EINVAL;
      const rc = f.getPageAndType(kernel, d.domid, PGT_l4_page_table);
      if (rc !== 0) return rc;
      const user = pfnOf(cr1);
      if (user !== 0) {
        const urc = f.validMfn(user) ? f.getPageAndType(user, d.domid, PGT_l4_page_table) : -EINVAL;
        if (urc !== 0) {
          f.putPageAndType(kernel);
          return urc;
        }
        if (t.userCr3Mfn >= 0) f.putPageAndType(t.userCr3Mfn);
        t.userCr3Mfn = user;
      }
      if (t.cr3Mfn >= 0) f.putPageAndType(t.cr3Mfn);
      t.cr3Mfn = kernel;
    } else if (mmu !== undefined) {
      // Nested and shadow paging take the guest's CR3 as a guest frame number.
      t.cr3Mfn = pfnOf(cr3);
    }
    t.inKernel = (flags & VGCF_in_kernel) !== 0;
    this.contexts.set(t.uid, ctxt.slice(0, vcpu_guest_context_x86_64.sizeof));
    this.initialised[t.uid] = 1;
    if ((flags & VGCF_online) !== 0 && this.hv.hasSlot("sched")) this.hv.slot("sched").vcpuUp(t);
    return 0;
  }

  /** Xen's VCPUOP_register_vcpu_info -> map_vcpu_info. */
  private doRegisterVcpuInfo(v: Vcpu, a: Record<string, unknown>): number {
    const t = this.target(v, a);
    if (typeof t === "number") return t;
    const mfn = u64(a.mfn);
    const offset = a.offset;
    const rsvd = a.rsvd ?? 0;
    if (mfn < 0 || typeof offset !== "number" || !Number.isInteger(offset)) return -EFAULT;
    if (typeof rsvd !== "number" || !Number.isInteger(rsvd)) return -EFAULT;
    if (offset < 0 || offset > PAGE - VI_SIZE) return -EINVAL; // crosses the page
    if (offset % VI_ALIGN !== 0) return -EINVAL;
    const uid = t.uid;
    if (this.infoMfn[uid] >= 0) return -EINVAL; // already registered
    // On yourself, or on a vCPU of yours that is down.
    const sched = this.hv.hasSlot("sched") ? this.hv.slot("sched") : undefined;
    if (t !== v && t.state !== "offline") return -EINVAL;
    const f = this.hv.frames;
    if (!f.validMfn(mfn)) return -EINVAL;
    if (f.getPageAndType(mfn, t.domain.domid, PGT_writable_page) !== 0) return -EINVAL;
    const ram = this.hv.machine.ram;
    const to = mfn * PAGE + offset;
    const from = this.infoMaddr[uid];
    for (let i = 0; i < VI_SIZE; i += 4) ram.write32(to + i, from < 0 ? 0 : ram.read32(from + i));
    if (from < 0) ram.write8(to + vcpu_info_x86_64.fields.evtchn_upcall_mask.offset, 1);
    this.infoMaddr[uid] = to;
    this.infoMfn[uid] = mfn;
    // Every selector bit pending, so the guest rescans and misses no event.
    ram.write8(to + vcpu_info_x86_64.fields.evtchn_upcall_pending.offset, 1);
    const sel = to + vcpu_info_x86_64.fields.evtchn_pending_sel.offset;
    ram.write32(sel, 0xffffffff);
    ram.write32(sel + 4, 0xffffffff);
    this.forceTime(uid, this.hv.machine.clock.now);
    sched?.vcpuKick(t);
    return 0;
  }

  /** Xen's VCPUOP_register_runstate_memory_area (addr.v: a guest virtual address). */
  private doRegisterRunstate(v: Vcpu, a: Record<string, unknown>): number {
    const t = this.target(v, a);
    if (typeof t === "number") return t;
    const addr = u64(a.addr);
    if (addr < 0) return -EFAULT;
    const uid = t.uid;
    if (addr === 0) {
      // A null handle: Xen stops copying.
      this.dropRunstateArea(uid);
      return 0;
    }
    // access_ok: canonical, and outside the hypervisor's hole. The MMUs take 48-bit addresses
    // (the upper half without its sign extension, as the guest's PAGE_OFFSET is spelled), so a
    // sign-extended address is folded to that spelling; values in between are not canonical.
    if (addr >= 2 ** 48 && addr < 2 ** 64 - 2 ** 47) return -EFAULT;
    const a48 = addr >= 2 ** 48 ? addr - 2 ** 64 + 2 ** 48 : addr;
    const hole = (hi: number) => hi - 0xffff0000; // the hole's bounds in the 48-bit spelling
    const holeStart = hole(HYPERVISOR_VIRT_START_HI) * TWO_32;
    const holeEnd = hole(HYPERVISOR_VIRT_END_HI) * TWO_32;
    if (a48 + RS_SIZE > 2 ** 48) return -EFAULT;
    if (a48 + RS_SIZE > holeStart && a48 < holeEnd) return -EFAULT;
    if (!this.hv.hasSlot("mmu")) return -EFAULT;
    const mmu = this.hv.slot("mmu");
    const first = PAGE - (a48 % PAGE);
    const split = Math.min(first, RS_SIZE);
    const ma = mmu.translate(v, a48, PFEC_write_access);
    if (ma < 0) return -EFAULT;
    const ma2 = split < RS_SIZE ? mmu.translate(v, a48 + split, PFEC_write_access) : -1;
    if (split < RS_SIZE && ma2 < 0) return -EFAULT;
    const f = this.hv.frames;
    const domid = t.domain.domid;
    const mfn = Math.floor(ma / PAGE);
    if (f.getPageAndType(mfn, domid, PGT_writable_page) !== 0) return -EINVAL;
    const mfn2 = ma2 < 0 ? -1 : Math.floor(ma2 / PAGE);
    if (mfn2 >= 0 && f.getPageAndType(mfn2, domid, PGT_writable_page) !== 0) {
      f.putPageAndType(mfn);
      return -EINVAL;
    }
    this.dropRunstateArea(uid);
    this.rsMfn[uid] = mfn;
    this.rsMfn2[uid] = mfn2;
    this.rsMaddr[uid] = ma;
    this.rsSplit[uid] = split;
    this.rsMaddr2[uid] = ma2;
    if (this.hv.hasSlot("sched")) {
      const info = this.hv.slot("sched").runstate(t);
      this.writeRunstate(t, info.state, info.stateEntryTime, info.time, 0);
    }
    return 0;
  }
}
