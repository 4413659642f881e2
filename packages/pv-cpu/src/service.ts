/*
 * The PV CPU hypercalls, after Xen 4.17's xen/arch/x86/pv/{traps.c,callback.c,iret.c,
 * descriptor-tables.c,misc-hypercalls.c}, xen/arch/x86/x86_64/mm.c (set_segment_base),
 * xen/common/kernel.c (xen_version) and xen/drivers/char/console.c (console_io).
 *
 * Arguments: register arguments are fields of `args` named as Xen's prototypes name them;
 * a guest pointer is a guest virtual address, read and written through the domain's MMU
 * translation (guest-access.ts):
 *   set_trap_table { traps }           set_callbacks { event_address, failsafe_address, syscall_address }
 *   callback_op { cmd, arg }           iret { rsp }  (the guest's %rsp at the hypercall)
 *   stack_switch { ss, esp }           set_segment_base { which, base }
 *   fpu_taskswitch { set }             update_descriptor { ma, a, b }  (seg_desc_t's two words)
 *   set_gdt { frame_list, entries }    xen_version { cmd, arg }    console_io { cmd, count, buffer }
 *
 * Invariants: every handler answers 0 (iret: 0; console_io read: the bytes read; xen_version
 * version/pagesize: their value) or Xen's negative errno and never throws; a register
 * argument that is not an unsigned 64-bit integer (no real register holds one) answers
 * -EINVAL and a struct field that is not one -EFAULT, before anything changes; every store
 * the hypervisor makes for a guest goes through the guest's own translation (guest-access.ts)
 * or into a frame the domain owns (update_descriptor, GDT fix-ups); the per-vCPU state keeps
 * the invariants stated in vcpu-state.ts.
 */
import {
  CALLBACKF_mask_events,
  CALLBACKOP_register,
  CALLBACKOP_unregister,
  CALLBACKTYPE_event,
  CALLBACKTYPE_failsafe,
  CALLBACKTYPE_nmi,
  CALLBACKTYPE_syscall,
  CALLBACKTYPE_syscall32,
  CALLBACKTYPE_sysenter,
  CONSOLEIO_read,
  CONSOLEIO_write,
  E2BIG,
  EFAULT,
  EINVAL,
  ENODATA,
  ENOSYS,
  EPERM,
  FIRST_RESERVED_GDT_ENTRY,
  FLAT_KERNEL_CS,
  iret_context,
  SEGBASE_FS,
  SEGBASE_GS_KERNEL,
  SEGBASE_GS_USER,
  SEGBASE_GS_USER_SEL,
  SHUTDOWN_crash,
  trap_info,
  VGCF_failsafe_disables_events,
  VGCF_in_syscall,
  VGCF_syscall_disables_events,
  vcpu_guest_context_x86_64,
  vcpu_info_x86_64,
  XEN_CAPABILITIES_INFO_LEN,
  XEN_CHANGESET_INFO_LEN,
  XEN_EXTRAVERSION_LEN,
  XENFEAT_dom0,
  XENFEAT_gnttab_map_avail_bits,
  XENFEAT_highmem_assist,
  XENFEAT_memory_op_vnode_supported,
  XENFEAT_mmu_pt_update_preserve_ad,
  XENVER_build_id,
  XENVER_capabilities,
  XENVER_changeset,
  XENVER_commandline,
  XENVER_compile_info,
  XENVER_extraversion,
  XENVER_get_features,
  XENVER_guest_handle,
  XENVER_pagesize,
  XENVER_platform_parameters,
  XENVER_version,
  xen_compile_info,
  xen_feature_info,
} from "@hyperlab/abi";
import {
  type Domain,
  type Hypervisor,
  PGT_seg_desc_page,
  PGT_writable_page,
  type Vcpu,
} from "@hyperlab/core";
import { XenConsole } from "./console";
import { checkDescriptor, GUEST_KERNEL_RPL } from "./descriptors";
import {
  addr64,
  GuestAccess,
  isCanonical,
  le16,
  le32,
  le64,
  put32,
  put64,
  u64,
} from "./guest-access";
import {
  PvVcpu,
  REG_CS,
  REG_R11,
  REG_RAX,
  REG_RCX,
  REG_RFLAGS,
  REG_RIP,
  REG_RSP,
  REG_SS,
} from "./vcpu-state";

const PAGE = 4096;
const DESCS_PER_PAGE = 512;
const TRAP_nmi = 2;
const X86_EFLAGS_IF = 0x200;
const X86_CR0_TS = 0x8;
const X86_EFLAGS_IOPL = 0x3000;
const X86_EFLAGS_VM = 0x20000;
/** console_io copies a guest's text in chunks of this many bytes (Xen: 128). */
const CONSOLE_CHUNK = 128;
/** Largest count CONSOLEIO_write takes in one call (bounded so a copy stays small). */
const CONSOLE_WRITE_MAX = 1 << 16;
/** HYPERVISOR_VIRT_START of a 64-bit PV guest, as XENVER_platform_parameters reports it. */
const HYPERVISOR_VIRT_START = 0xffff_8000_0000_0000;

/** Xen 4.17.0, as this model reports itself. */
export const XEN_MAJOR = 4;
export const XEN_MINOR = 17;
export const XEN_EXTRAVERSION = ".0";
export const XEN_CAPABILITIES = "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64";

export interface PvCpuOptions {
  /** What XENVER_commandline reports to a privileged domain (Xen's boot command line). */
  readonly commandLine?: string;
  /** Characters the console log keeps (Xen's conring_size). Default 16384. */
  readonly consoleRingSize?: number;
}

export interface PvCpuCounts {
  irets: number;
  trapTableLoads: number;
  stackSwitches: number;
  segmentBaseLoads: number;
  fpuTaskswitches: number;
  descriptorUpdates: number;
  gdtLoads: number;
  consoleWrites: number;
}

/** The plugin's service: the hypercalls, the per-vCPU state for tools and tests, the console. */
export class PvCpuService {
  readonly console: XenConsole;
  readonly counts: PvCpuCounts = {
    irets: 0,
    trapTableLoads: 0,
    stackSwitches: 0,
    segmentBaseLoads: 0,
    fpuTaskswitches: 0,
    descriptorUpdates: 0,
    gdtLoads: 0,
    consoleWrites: 0,
  };
  private readonly hv: Hypervisor;
  private readonly mem: GuestAccess;
  private readonly byUid: (PvVcpu | undefined)[] = [];
  private readonly commandLine: string;
  private readonly buf = new Uint8Array(XEN_CAPABILITIES_INFO_LEN);
  private readonly desc = new Uint32Array(2);

  constructor(hv: Hypervisor, options: PvCpuOptions = {}) {
    this.hv = hv;
    this.mem = new GuestAccess(hv.slot("mmu"), hv.machine.ram);
    this.commandLine = options.commandLine ?? "";
    this.console = new XenConsole(options.consoleRingSize ?? 16384);
  }

  /**
   * The vCPU's PV CPU state (created on first use). A vCPU that VCPUOP_initialise started
   * takes its trap table, callbacks, kernel stack, segment bases and CR0.TS from that
   * context once, as Xen's arch_set_info_guest does.
   */
  state(v: Vcpu): PvVcpu {
    let s = this.byUid[v.uid];
    if (s === undefined) {
      s = new PvVcpu();
      this.byUid[v.uid] = s;
    }
    if (!s.contextLoaded && v.vcpuId !== 0) {
      const ctxt = this.hv.vcpuAreas.guestContext(v);
      if (ctxt !== undefined) {
        s.contextLoaded = true;
        loadContext(s, ctxt);
      }
    }
    return s;
  }

  /** Drops what the domain's vCPUs hold (GDT frame references) and forgets their state. */
  domainDestroyed(d: Domain): void {
    for (const v of d.vcpus) {
      const s = this.byUid[v.uid];
      if (s === undefined) continue;
      this.destroyGdt(s);
      this.byUid[v.uid] = undefined;
    }
    this.console.domainDestroyed(d.domid);
  }

  // ---- traps and callbacks (pv/traps.c, pv/callback.c) ----

  /** set_trap_table: trap_info entries until one with address 0; a null pointer clears the table. */
  setTrapTable(v: Vcpu, a: { traps?: unknown }): number {
    const va = u64(a.traps);
    if (va < 0) return -EINVAL;
    const s = this.state(v);
    this.counts.trapTableLoads++;
    if (va === 0) {
      s.trapAddress.fill(0);
      s.trapCs.fill(0);
      s.trapFlags.fill(0);
      return 0;
    }
    const b = this.buf;
    for (let i = 0; i < 256 * 4; i++) {
      // Xen's loop is preemptible and unbounded; a table longer than this is a guest bug.
      const rc = this.mem.read(v, va + i * trap_info.sizeof, b, trap_info.sizeof);
      if (rc < 0) return rc;
      const address = addr64(b, trap_info.fields.address.offset);
      if (address === 0) return 0;
      if (!isCanonical(address)) return -EINVAL;
      const vector = b[trap_info.fields.vector.offset];
      let cs = le16(b, trap_info.fields.cs.offset);
      if ((cs & 3) < GUEST_KERNEL_RPL) cs = (cs & ~3) | GUEST_KERNEL_RPL;
      s.trapAddress[vector] = address;
      s.trapCs[vector] = cs;
      s.trapFlags[vector] = b[trap_info.fields.flags.offset];
    }
    return -EINVAL;
  }

  /** register_guest_callback. */
  private registerCallback(v: Vcpu, type: number, flags: number, address: number): number {
    if (!isCanonical(address)) return -EINVAL;
    const s = this.state(v);
    const masks = (flags & CALLBACKF_mask_events) !== 0 ? 1 : 0;
    switch (type) {
      case CALLBACKTYPE_event:
        s.callbackAddress[type] = address;
        return 0;
      case CALLBACKTYPE_failsafe:
      case CALLBACKTYPE_syscall:
      case CALLBACKTYPE_syscall32:
      case CALLBACKTYPE_sysenter:
        s.callbackAddress[type] = address;
        s.callbackMasksEvents[type] = masks;
        return 0;
      case CALLBACKTYPE_nmi:
        // register_guest_nmi_callback: the NMI entry of the virtual IDT, events enabled.
        s.callbackAddress[type] = address;
        s.trapAddress[TRAP_nmi] = address;
        s.trapCs[TRAP_nmi] = FLAT_KERNEL_CS;
        s.trapFlags[TRAP_nmi] = 4;
        return 0;
      default:
        return -ENOSYS;
    }
  }

  /** set_callbacks (64-bit): event, failsafe and syscall at once; Xen ignores each one's result. */
  setCallbacks(
    v: Vcpu,
    a: { event_address?: unknown; failsafe_address?: unknown; syscall_address?: unknown },
  ): number {
    const ev = u64(a.event_address);
    const fs = u64(a.failsafe_address);
    const sc = u64(a.syscall_address);
    if (ev < 0 || fs < 0 || sc < 0) return -EINVAL;
    this.registerCallback(v, CALLBACKTYPE_event, 0, ev);
    this.registerCallback(v, CALLBACKTYPE_failsafe, 0, fs);
    this.registerCallback(v, CALLBACKTYPE_syscall, CALLBACKF_mask_events, sc);
    return 0;
  }

  /** callback_op: CALLBACKOP_register / CALLBACKOP_unregister with their struct at `arg`. */
  callbackOp(v: Vcpu, a: { cmd?: unknown; arg?: unknown }): number {
    const b = this.buf;
    if (a.cmd === CALLBACKOP_register) {
      const rc = this.mem.read(v, u64(a.arg) < 0 ? -1 : (a.arg as number), b, 16);
      if (rc < 0) return rc;
      return this.registerCallback(v, le16(b, 0), le16(b, 2), addr64(b, 8));
    }
    if (a.cmd === CALLBACKOP_unregister) {
      const rc = this.mem.read(v, u64(a.arg) < 0 ? -1 : (a.arg as number), b, 4);
      if (rc < 0) return rc;
      const type = le16(b, 0);
      switch (type) {
        case CALLBACKTYPE_event:
        case CALLBACKTYPE_failsafe:
        case CALLBACKTYPE_syscall:
        case CALLBACKTYPE_syscall32:
        case CALLBACKTYPE_sysenter:
          return -EINVAL; // these stay registered
        case CALLBACKTYPE_nmi: {
          const s = this.state(v);
          s.callbackAddress[type] = 0;
          s.trapAddress[TRAP_nmi] = 0;
          s.trapCs[TRAP_nmi] = 0;
          s.trapFlags[TRAP_nmi] = 0;
          return 0;
        }
        default:
          return -ENOSYS;
      }
    }
    return -ENOSYS;
  }

  /**
   * iret: pops an iret_context from the guest stack at `rsp`, returns to user mode if its
   * CS has RPL 3, and restores the registers and the event mask (from EFLAGS.IF). A stack
   * Xen cannot read, or a return to user mode without user page tables, crashes the domain
   * as in Xen; this model answers the (dead) caller -EFAULT / -EINVAL.
   */
  iret(v: Vcpu, a: { rsp?: unknown }): number {
    const rsp = u64(a.rsp);
    if (rsp < 0) return -EINVAL;
    const b = this.buf;
    const f = iret_context.fields;
    if (this.mem.read(v, rsp, b, iret_context.sizeof) < 0) {
      this.hv.shutdownDomain(v.domain, SHUTDOWN_crash);
      return -EFAULT;
    }
    const cs = le16(b, f.cs.offset);
    if ((cs & 3) === 3) {
      if (v.userCr3Mfn < 0) {
        this.hv.shutdownDomain(v.domain, SHUTDOWN_crash);
        return -EINVAL;
      }
      v.inKernel = !v.inKernel;
    }
    const s = this.state(v);
    const r = s.regs;
    const flagsLo = le32(b, f.rflags.offset);
    r[REG_RIP] = addr64(b, f.rip.offset);
    r[REG_CS] = cs | 3;
    r[REG_RFLAGS] =
      (((flagsLo & ~(X86_EFLAGS_IOPL | X86_EFLAGS_VM)) | X86_EFLAGS_IF) >>> 0) +
      le32(b, f.rflags.offset + 4) * 2 ** 32;
    r[REG_RSP] = addr64(b, f.rsp.offset);
    r[REG_SS] = le16(b, f.ss.offset) | 3;
    if ((le32(b, f.flags.offset) & VGCF_in_syscall) === 0) {
      r[REG_R11] = le64(b, f.r11.offset);
      r[REG_RCX] = le64(b, f.rcx.offset);
    }
    r[REG_RAX] = le64(b, f.rax.offset);
    const vi = this.hv.vcpuAreas.vcpuInfoMaddr(v);
    if (vi >= 0) {
      this.hv.machine.ram.write8(
        vi + vcpu_info_x86_64.fields.evtchn_upcall_mask.offset,
        (flagsLo & X86_EFLAGS_IF) === 0 ? 1 : 0,
      );
    }
    s.irets++;
    this.counts.irets++;
    return 0;
  }

  /** stack_switch: the kernel stack Xen switches to on a trap from user mode. */
  stackSwitch(v: Vcpu, a: { ss?: unknown; esp?: unknown }): number {
    const ss = u64(a.ss);
    const esp = u64(a.esp);
    if (ss < 0 || esp < 0) return -EINVAL;
    const s = this.state(v);
    const sel = ss % 0x10000;
    s.kernelSs = (sel & 3) < GUEST_KERNEL_RPL ? (sel & ~3) | GUEST_KERNEL_RPL : sel;
    s.kernelSp = esp;
    this.counts.stackSwitches++;
    return 0;
  }

  /** set_segment_base: FS, user GS, kernel GS (canonical bases only), or the user GS selector. */
  setSegmentBase(v: Vcpu, a: { which?: unknown; base?: unknown }): number {
    const base = u64(a.base);
    if (base < 0) return -EINVAL;
    const s = this.state(v);
    switch (a.which) {
      case SEGBASE_FS:
        if (!isCanonical(base)) return -EINVAL;
        s.fsBase = base;
        break;
      case SEGBASE_GS_USER:
        if (!isCanonical(base)) return -EINVAL;
        s.gsBaseUser = base;
        break;
      case SEGBASE_GS_KERNEL:
        if (!isCanonical(base)) return -EINVAL;
        s.gsBaseKernel = base;
        break;
      case SEGBASE_GS_USER_SEL: {
        // Loading a selector loads its descriptor's base: 0 for the flat or null segments a
        // 64-bit guest uses (a selector that would fault loads the null selector instead).
        const sel = base % 0x10000;
        s.gsUserSel = this.selectorLoads(s, sel) ? sel : 0;
        s.gsBaseUser = 0;
        break;
      }
      default:
        return -EINVAL;
    }
    this.counts.segmentBaseLoads++;
    return 0;
  }

  /** Whether a data selector would load without a fault: null, or a present GDT entry below gdtEnts. */
  private selectorLoads(s: PvVcpu, sel: number): boolean {
    if ((sel & ~3) === 0) return true;
    if ((sel & 4) !== 0) return false; // no LDT modelled here
    const index = sel >>> 3;
    if (index >= s.gdtEnts) return index >= FIRST_RESERVED_GDT_ENTRY; // Xen's flat selectors
    const mfn = s.gdtFrames[Math.floor(index / DESCS_PER_PAGE)];
    const hi = this.hv.machine.ram.read32(mfn * PAGE + (index % DESCS_PER_PAGE) * 8 + 4);
    return (hi & (1 << 15)) !== 0 && (hi & (1 << 12)) !== 0;
  }

  /** fpu_taskswitch: sets (nonzero) or clears the guest's CR0.TS. */
  fpuTaskswitch(v: Vcpu, a: { set?: unknown }): number {
    const set = a.set;
    if (typeof set !== "number" || !Number.isInteger(set)) return -EINVAL;
    this.state(v).cr0Ts = set !== 0;
    this.counts.fpuTaskswitches++;
    return 0;
  }

  // ---- descriptor tables (pv/descriptor-tables.c) ----

  /** Whether frame `mfn` of domain `domid` holds 512 descriptors check_descriptor accepts (fixed up in place). */
  private validSegdescPage(mfn: number): boolean {
    const ram = this.hv.machine.ram;
    const d = this.desc;
    for (let i = 0; i < DESCS_PER_PAGE; i++) {
      const ma = mfn * PAGE + i * 8;
      d[0] = ram.read32(ma);
      d[1] = ram.read32(ma + 4);
      if (!checkDescriptor(d)) return false;
    }
    for (let i = 0; i < DESCS_PER_PAGE; i++) {
      const ma = mfn * PAGE + i * 8;
      d[0] = ram.read32(ma);
      d[1] = ram.read32(ma + 4);
      checkDescriptor(d);
      ram.write32(ma, d[0]);
      ram.write32(ma + 4, d[1]);
    }
    return true;
  }

  /** get_page_and_type(PGT_seg_desc_page), validating the frame on its first such reference. */
  private getSegdescPage(mfn: number, domid: number): boolean {
    const f = this.hv.frames;
    if (!f.validMfn(mfn) || !f.ownedBy(mfn, domid)) return false;
    // alloc_segdesc_page: a frame becoming a descriptor page has every descriptor checked.
    if (f.typeCount(mfn) === 0 && !this.validSegdescPage(mfn)) return false;
    return f.getPageAndType(mfn, domid, PGT_seg_desc_page) === 0;
  }

  private destroyGdt(s: PvVcpu): void {
    for (let i = 0; i < s.gdtFrames.length; i++) {
      if (s.gdtFrames[i] >= 0) this.hv.frames.putPageAndType(s.gdtFrames[i]);
      s.gdtFrames[i] = -1;
    }
    s.gdtEnts = 0;
  }

  /** set_gdt: up to FIRST_RESERVED_GDT_ENTRY entries in frames of this domain, each typed seg_desc. */
  setGdt(v: Vcpu, a: { frame_list?: unknown; entries?: unknown }): number {
    const entries = u64(a.entries);
    if (entries < 0) return -EINVAL;
    if (entries > FIRST_RESERVED_GDT_ENTRY) return -EINVAL;
    const nr = Math.ceil(entries / DESCS_PER_PAGE);
    const b = this.buf;
    const list = u64(a.frame_list);
    if (nr > 0) {
      const rc = this.mem.read(v, list < 0 ? -1 : list, b, nr * 8);
      if (rc < 0) return rc;
    }
    const frames = new Int32Array(nr);
    const domid = v.domain.domid;
    for (let i = 0; i < nr; i++) {
      const mfn = le64(b, i * 8);
      if (!this.getSegdescPage(mfn, domid)) {
        for (let j = 0; j < i; j++) this.hv.frames.putPageAndType(frames[j]);
        return -EINVAL;
      }
      frames[i] = mfn;
    }
    const s = this.state(v);
    this.destroyGdt(s);
    s.gdtFrames.set(frames);
    s.gdtEnts = entries;
    this.hv.slot("mmu").flushLocal(v);
    this.counts.gdtLoads++;
    return 0;
  }

  /** update_descriptor: one checked descriptor into a frame of the domain (seg_desc or writable). */
  updateDescriptor(v: Vcpu, a: { ma?: unknown; a?: unknown; b?: unknown }): number {
    const ma = u64(a.ma);
    const lo = a.a;
    const hi = a.b;
    if (ma < 0) return -EINVAL;
    if (typeof lo !== "number" || !Number.isInteger(lo) || lo < 0 || lo >= 2 ** 32) return -EINVAL;
    if (typeof hi !== "number" || !Number.isInteger(hi) || hi < 0 || hi >= 2 ** 32) return -EINVAL;
    const d = this.desc;
    d[0] = lo;
    d[1] = hi;
    if (ma % 8 !== 0 || !checkDescriptor(d)) return -EINVAL;
    const f = this.hv.frames;
    const mfn = Math.floor(ma / PAGE);
    const domid = v.domain.domid;
    if (!f.getPage(mfn, domid)) return -EINVAL;
    // A live descriptor page takes another seg_desc reference; any other frame must be writable.
    const type =
      f.typeCount(mfn) > 0 && f.typeOf(mfn) === PGT_seg_desc_page
        ? PGT_seg_desc_page
        : PGT_writable_page;
    const rc = f.getPageType(mfn, type);
    if (rc !== 0) {
      f.putPage(mfn);
      return -EINVAL;
    }
    const ram = this.hv.machine.ram;
    ram.write32(ma, d[0]);
    ram.write32(ma + 4, d[1]);
    f.putPageAndType(mfn);
    this.counts.descriptorUpdates++;
    return 0;
  }

  // ---- xen_version (common/kernel.c) ----

  private copyString(v: Vcpu, va: unknown, text: string, size: number): number {
    const b = this.buf;
    b.fill(0, 0, size);
    for (let i = 0; i < text.length && i < size - 1; i++) b[i] = text.charCodeAt(i) & 0x7f;
    return this.mem.write(v, u64(va) < 0 ? -1 : (va as number), b, size);
  }

  xenVersion(v: Vcpu, a: { cmd?: unknown; arg?: unknown }): number {
    const d = v.domain;
    switch (a.cmd) {
      case XENVER_version:
        return (XEN_MAJOR << 16) | XEN_MINOR;
      case XENVER_extraversion:
        return this.copyString(v, a.arg, XEN_EXTRAVERSION, XEN_EXTRAVERSION_LEN);
      case XENVER_compile_info: {
        const b = this.buf;
        const f = xen_compile_info.fields;
        b.fill(0, 0, xen_compile_info.sizeof);
        const put = (off: number, n: number, s: string) => {
          for (let i = 0; i < s.length && i < n - 1; i++) b[off + i] = s.charCodeAt(i);
        };
        put(f.compiler.offset, 64, "gcc (hyperlab model)");
        put(f.compile_by.offset, 16, "hyperlab");
        put(f.compile_domain.offset, 32, "hyperlab.invalid");
        put(f.compile_date.offset, 32, "Tue Dec 13 00:00:00 UTC 2022");
        const va = u64(a.arg);
        return this.mem.write(v, va < 0 ? -1 : va, b, xen_compile_info.sizeof);
      }
      case XENVER_capabilities:
        return this.copyString(v, a.arg, XEN_CAPABILITIES, XEN_CAPABILITIES_INFO_LEN);
      case XENVER_changeset:
        return this.copyString(v, a.arg, "unavailable", XEN_CHANGESET_INFO_LEN);
      case XENVER_platform_parameters: {
        const b = this.buf;
        put64(b, 0, HYPERVISOR_VIRT_START);
        const va = u64(a.arg);
        return this.mem.write(v, va < 0 ? -1 : va, b, 8);
      }
      case XENVER_get_features: {
        const b = this.buf;
        const va = u64(a.arg);
        const rc = this.mem.read(v, va < 0 ? -1 : va, b, xen_feature_info.sizeof);
        if (rc < 0) return rc;
        if (le32(b, xen_feature_info.fields.submap_idx.offset) !== 0) return -EINVAL;
        let submap =
          (1 << XENFEAT_memory_op_vnode_supported) |
          (1 << XENFEAT_mmu_pt_update_preserve_ad) |
          (1 << XENFEAT_highmem_assist) |
          (1 << XENFEAT_gnttab_map_avail_bits);
        if (d.isPrivileged) submap |= 1 << XENFEAT_dom0;
        put32(b, xen_feature_info.fields.submap.offset, submap >>> 0);
        return this.mem.write(v, va, b, xen_feature_info.sizeof);
      }
      case XENVER_pagesize:
        return PAGE;
      case XENVER_guest_handle:
        // xen_domain_handle_t: the toolstack's UUID for the domain; this model keeps none.
        return this.copyString(v, a.arg, "", 16);
      case XENVER_commandline:
        // Privileged domains see Xen's command line, others an empty string.
        return d.isPrivileged
          ? this.copyString(v, a.arg, this.commandLine, 1024)
          : this.copyString(v, a.arg, "", 1);
      case XENVER_build_id:
        return d.isPrivileged ? -ENODATA : -EPERM;
      default:
        return -ENOSYS;
    }
  }

  // ---- console_io (drivers/char/console.c) ----

  consoleIo(v: Vcpu, a: { cmd?: unknown; count?: unknown; buffer?: unknown }): number {
    const count = a.count;
    if (typeof count !== "number" || !Number.isInteger(count) || count < 0 || count >= 2 ** 32) {
      return -EINVAL;
    }
    const va = u64(a.buffer);
    const d = v.domain;
    if (a.cmd === CONSOLEIO_write) {
      // As a debug build of Xen lets every domain write (CONFIG_VERBOSE_DEBUG).
      if (count > CONSOLE_WRITE_MAX) return -EINVAL;
      const b = this.buf;
      for (let done = 0; done < count; done += CONSOLE_CHUNK) {
        const n = Math.min(CONSOLE_CHUNK, count - done);
        const rc = this.mem.read(v, va < 0 ? -1 : va + done, b, n);
        if (rc < 0) return rc;
        this.console.write(d.domid, d.isPrivileged, b, n);
      }
      this.counts.consoleWrites++;
      return 0;
    }
    if (a.cmd === CONSOLEIO_read) {
      if (!d.isPrivileged) return -EPERM;
      if (count >= 2 ** 31) return -E2BIG;
      const want = Math.min(count, this.console.pendingInput, XEN_CAPABILITIES_INFO_LEN);
      if (want === 0) return 0;
      // Check the buffer before taking the input, so a bad buffer loses nothing.
      const probe = this.buf;
      probe.fill(0, 0, want);
      const rc = this.mem.write(v, va < 0 ? -1 : va, probe, want);
      if (rc < 0) return rc;
      const bytes = this.console.takeInput(want);
      this.mem.write(v, va, bytes, bytes.length);
      return bytes.length;
    }
    return -ENOSYS;
  }
}

/** arch_set_info_guest's PV part: the vCPU state a vcpu_guest_context carries. */
function loadContext(s: PvVcpu, c: Uint8Array): void {
  const f = vcpu_guest_context_x86_64.fields;
  const ti = f.trap_ctxt;
  for (let i = 0; i < 256; i++) {
    const at = ti.offset + i * ti.size;
    const address = addr64(c, at + trap_info.fields.address.offset);
    if (address === 0 || !isCanonical(address)) continue;
    const vector = c[at + trap_info.fields.vector.offset];
    let cs = le16(c, at + trap_info.fields.cs.offset);
    if ((cs & 3) < GUEST_KERNEL_RPL) cs = (cs & ~3) | GUEST_KERNEL_RPL;
    s.trapAddress[vector] = address;
    s.trapCs[vector] = cs;
    s.trapFlags[vector] = c[at + trap_info.fields.flags.offset];
  }
  const flags = le32(c, f.flags.offset);
  const addr = (off: number) => {
    const x = addr64(c, off);
    return isCanonical(x) ? x : 0;
  };
  s.callbackAddress[CALLBACKTYPE_event] = addr(f.event_callback_eip.offset);
  s.callbackAddress[CALLBACKTYPE_failsafe] = addr(f.failsafe_callback_eip.offset);
  s.callbackAddress[CALLBACKTYPE_syscall] = addr(f.syscall_callback_eip.offset);
  s.callbackMasksEvents[CALLBACKTYPE_failsafe] =
    (flags & VGCF_failsafe_disables_events) !== 0 ? 1 : 0;
  s.callbackMasksEvents[CALLBACKTYPE_syscall] =
    (flags & VGCF_syscall_disables_events) !== 0 ? 1 : 0;
  const ss = le16(c, f.kernel_ss.offset);
  s.kernelSs = (ss & 3) < GUEST_KERNEL_RPL ? (ss & ~3) | GUEST_KERNEL_RPL : ss;
  s.kernelSp = addr64(c, f.kernel_sp.offset);
  s.fsBase = addr(f.fs_base.offset);
  s.gsBaseKernel = addr(f.gs_base_kernel.offset);
  s.gsBaseUser = addr(f.gs_base_user.offset);
  s.cr0Ts = (c[f.ctrlreg.offset] & X86_CR0_TS) !== 0;
}
