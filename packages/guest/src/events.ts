/*
 * The guest kernel's side of event channels, as Linux's drivers/xen/events/ does it
 * (events_base.c, events_2l.c, events_fifo.c): an evtchn-to-irq table, binding helpers,
 * IPIs between the guest's vCPUs, and the upcall handler that scans the 2-level bitmaps or
 * consumes the FIFO queues and runs each irq's handler. It reaches the hypervisor only
 * through hypercalls and the bytes of shared_info, vcpu_info and the FIFO pages in guest
 * memory (layouts from @hyperlab/abi), never through the event channel plugin's internals.
 *
 * Invariants: `portIrq[port]` and `irqPort[irq]` are inverse where set; an event is acked
 * (its pending bit cleared) before its handler runs, so an event raised during the handler
 * is seen by the next pass; the upcall loops until evtchn_upcall_pending stays clear, so no
 * event raised before the upcall returns is left unhandled.
 */
import {
  __HYPERVISOR_event_channel_op,
  DOMID_SELF,
  ENOSPC,
  EVTCHN_FIFO_LINK_MASK,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_ipi,
  EVTCHNOP_bind_pirq,
  EVTCHNOP_bind_vcpu,
  EVTCHNOP_bind_virq,
  EVTCHNOP_close,
  EVTCHNOP_expand_array,
  EVTCHNOP_init_control,
  EVTCHNOP_send,
  EVTCHNOP_unmask,
  type StructLayout,
  shared_info_x86_32,
  shared_info_x86_64,
  VIRQ_TIMER,
  vcpu_info_x86_32,
  vcpu_info_x86_64,
} from "@hyperlab/abi";
import type { Vcpu } from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import { guestError } from "./errors";
import type { GuestPort } from "./port";

/** Where the 2-level ABI's words sit in shared_info and vcpu_info, for one guest width. */
interface SharedLayout {
  /** Bits in one word of the bitmaps: 64 for x86_64 guests, 32 for x86_32 ones. */
  readonly bitsPerWord: 32 | 64;
  /** Channels the 2-level ABI can name (bits per word squared). */
  readonly nrChannels: number;
  /** 32-bit word index of evtchn_pending[0] within the frame. */
  readonly pendingW: number;
  /** 32-bit word index of evtchn_mask[0]. */
  readonly maskW: number;
  /** 32-bit word index of evtchn_pending_sel within a vcpu_info. */
  readonly selW: number;
  /** vcpu_info size in 32-bit words. */
  readonly vcpuInfoW: number;
  /** vcpu_info slots in shared_info. */
  readonly legacyVcpus: number;
}

function sharedLayout(si: StructLayout, vi: StructLayout): SharedLayout {
  const bits = (si.fields.evtchn_pending.size * 8) as 32 | 64;
  return {
    bitsPerWord: bits,
    nrChannels: bits * bits,
    pendingW: si.fields.evtchn_pending.offset / 4,
    maskW: si.fields.evtchn_mask.offset / 4,
    selW: vi.fields.evtchn_pending_sel.offset / 4,
    vcpuInfoW: vi.sizeof / 4,
    legacyVcpus: si.fields.vcpu_info.count ?? 0,
  };
}

const LAYOUT_64 = sharedLayout(shared_info_x86_64, vcpu_info_x86_64);
const LAYOUT_32 = sharedLayout(shared_info_x86_32, vcpu_info_x86_32);

const PENDING = 1 << 31;
const MASKED = 1 << 30;
const LINKED = 1 << 29;
const FIFO_PAGE_WORDS = 1024;
const FIRST_DYNIRQ = 16;

/** An irq handler: gets the irq and the vCPU (cpu) it runs on. */
export type IrqHandler = (irq: number, cpu: number) => void;

export interface GuestEvtchnOptions {
  /** The kernel's handle on the machine: hypercalls on its vCPUs, and its memory. */
  port?: Pick<GuestPort, "hypercall" | "ram" | "vcpus">;
  /**
   * Instead of `port`, for event channels run outside a guest kernel (a toolstack acting for
   * a domain, a test): the hypercall instruction and the memory bus, as a Hypervisor has
   * them. Used only for `hypercall` and for the guest's own memory (`machine.ram`).
   */
  hv?: EvtchnGuestHost;
  /** The guest's vCPUs; cpu n is vcpus[n] (default: the port's). */
  vcpus?: readonly Vcpu[];
  /** The frame holding shared_info (from start_info). */
  sharedInfoMfn: number;
  /** 64 or 32: decides the 2-level layout. */
  addressSize?: 64 | 32;
  /** "2-level" (default) or "fifo" (needs allocFrame). */
  abi?: "2-level" | "fifo";
  /** FIFO: gives the guest one of its own free frames (an mfn, as a PV guest knows them). */
  allocFrame?: () => number;
}

/** What XenEvtchnGuest needs of a host when it is not given a GuestPort (a Hypervisor has it). */
export interface EvtchnGuestHost {
  hypercall(vcpu: Vcpu, op: number, args: object): number;
  readonly machine: { readonly ram: Ram };
}

export class XenEvtchnGuest {
  readonly abi: "2-level" | "fifo";
  private readonly call: (cpu: number, op: number, args: object) => number;
  private readonly ram: Ram;
  private readonly vcpus: readonly Vcpu[];
  private readonly layout: SharedLayout;
  private readonly si: Uint32Array;
  private readonly siBase: number;
  private readonly allocFrame?: () => number;
  private portIrq = new Int32Array(0);
  private portCpu = new Int32Array(0);
  private irqPort: number[] = [];
  private irqHandler: (IrqHandler | undefined)[] = [];
  private readonly virqIrq: Int32Array[];
  private readonly ipiIrq: Map<number, number>[];
  /** 2-level: per-vCPU bitmap of the ports bound to it (Linux's cpu_evtchn_mask). */
  private readonly cpuMask: Uint32Array[];
  private readonly curWord: Int32Array;
  private readonly selBuf = new Uint32Array(2);
  /**
   * Per vCPU, the frame view holding its vcpu_info and the word it starts at (Linux's
   * per_cpu(xen_vcpu)): shared_info's slot until xen_vcpu_setup registers another area.
   */
  private readonly viView: Uint32Array[];
  private readonly viWord: Int32Array;
  // FIFO
  private readonly cbView: Uint32Array[] = [];
  private readonly cbBase: number[] = [];
  private readonly arrView: Uint32Array[] = [];
  private readonly arrBase: number[] = [];
  private readonly qHead: Int32Array;
  private initialised = false;
  /** Events handled per vCPU. */
  readonly handled: Float64Array;

  constructor(options: GuestEvtchnOptions) {
    const { hv, port, sharedInfoMfn } = options;
    const vcpus = options.vcpus ?? port?.vcpus;
    if (
      (hv === undefined) === (port === undefined) ||
      !Array.isArray(vcpus) ||
      vcpus.length === 0
    ) {
      throw guestError(
        "EVTCHN_GUEST_OPTIONS",
        "XenEvtchnGuest needs { port } (or { hv, vcpus }) and sharedInfoMfn: the guest's way to make hypercalls, its vCPUs and its shared_info frame.",
      );
    }
    if (port !== undefined) {
      this.call = (cpu, op, args) => port.hypercall(cpu, op, args);
      this.ram = port.ram;
    } else {
      const host = hv!;
      this.call = (cpu, op, args) => host.hypercall(vcpus[cpu], op, args);
      this.ram = host.machine.ram;
    }
    this.vcpus = vcpus;
    this.abi = options.abi ?? "2-level";
    if (this.abi === "fifo" && typeof options.allocFrame !== "function") {
      throw guestError(
        "EVTCHN_GUEST_OPTIONS",
        "The FIFO ABI needs allocFrame: a function that gives the guest one of its own frames for control blocks and event arrays.",
      );
    }
    this.allocFrame = options.allocFrame;
    this.layout = options.addressSize === 32 ? LAYOUT_32 : LAYOUT_64;
    this.si = this.ram.frameWords(sharedInfoMfn, true);
    this.siBase = 0; // the view is shared_info's frame alone
    const n = vcpus.length;
    this.virqIrq = vcpus.map(() => new Int32Array(24).fill(-1));
    this.ipiIrq = vcpus.map(() => new Map());
    this.cpuMask = vcpus.map(() => new Uint32Array(this.layout.nrChannels / 32));
    this.curWord = new Int32Array(n);
    // A vCPU from 32 on has no slot in shared_info: until it registers one, its vcpu_info is
    // a private dummy (Xen's dummy_vcpu_info), where nothing is ever pending.
    const dummy = new Uint32Array(this.layout.vcpuInfoW);
    this.viView = vcpus.map((_, cpu) => (cpu < this.layout.legacyVcpus ? this.si : dummy));
    this.viWord = new Int32Array(n);
    for (let cpu = 0; cpu < n; cpu++) {
      this.viWord[cpu] =
        cpu < this.layout.legacyVcpus ? this.siBase + cpu * this.layout.vcpuInfoW : 0;
    }
    this.qHead = new Int32Array(n * 16);
    this.handled = new Float64Array(n);
    this.growPorts(this.layout.nrChannels);
  }

  private growPorts(n: number): void {
    if (n <= this.portIrq.length) return;
    const a = new Int32Array(n).fill(-1);
    a.set(this.portIrq);
    this.portIrq = a;
    const c = new Int32Array(n);
    c.set(this.portCpu);
    this.portCpu = c;
  }

  private op(cpu: number, args: Record<string, unknown>): number {
    return this.call(cpu, __HYPERVISOR_event_channel_op, args);
  }

  /** Boot-time setup (Linux's xen_init_IRQ): masks every port, sets up FIFO, enables upcalls. */
  init(): number {
    if (this.initialised) return 0;
    if (this.abi === "fifo") {
      for (let cpu = 0; cpu < this.vcpus.length; cpu++) {
        const mfn = this.allocFrame!();
        const ram = this.ram;
        const view = ram.frameWords(mfn, true);
        const base = 0; // the view is the control block's frame alone
        view.fill(0);
        const rc = this.op(cpu, {
          cmd: EVTCHNOP_init_control,
          control_gfn: mfn,
          offset: 0,
          vcpu: cpu,
        });
        if (rc < 0) return rc;
        this.cbView[cpu] = view;
        this.cbBase[cpu] = base;
      }
      const rc = this.expand();
      if (rc < 0) return rc;
    } else {
      const m = this.siBase + this.layout.maskW;
      this.si.fill(0xffffffff, m, m + this.layout.nrChannels / 32);
    }
    for (let cpu = 0; cpu < this.vcpus.length; cpu++) this.enableUpcalls(cpu);
    this.initialised = true;
    return 0;
  }

  private expand(): number {
    const mfn = this.allocFrame!();
    const ram = this.ram;
    const view = ram.frameWords(mfn, true);
    const base = 0; // the view is the event array's frame alone
    view.fill(MASKED >>> 0, 0, FIFO_PAGE_WORDS);
    const rc = this.op(0, { cmd: EVTCHNOP_expand_array, array_gfn: mfn });
    if (rc < 0) return rc;
    this.arrView.push(view);
    this.arrBase.push(base);
    this.growPorts(this.arrView.length * FIFO_PAGE_WORDS);
    return 0;
  }

  private requireInit(): void {
    if (!this.initialised) {
      throw guestError(
        "EVTCHN_GUEST_NOT_INIT",
        "Call init() on the guest's event channels before binding ports.",
      );
    }
  }

  /**
   * xen_vcpu_setup's switch: vCPU `cpu`'s vcpu_info now lives at machine address `maddr` (a
   * page of this kernel it registered with VCPUOP_register_vcpu_info); every read and write
   * of its upcall flags and selector goes there from now on, as Xen's do.
   */
  setVcpuInfo(cpu: number, maddr: number): void {
    this.checkCpu(cpu);
    if (!Number.isInteger(maddr) || maddr < 0 || maddr % 64 !== 0) {
      throw guestError(
        "EVTCHN_GUEST_OPTIONS",
        `vcpu_info address ${maddr} is not a 64-byte aligned machine address; pass the area registered with VCPUOP_register_vcpu_info.`,
      );
    }
    this.viView[cpu] = this.ram.frameWords(Math.floor(maddr / 4096), true);
    this.viWord[cpu] = (maddr % 4096) >>> 2;
  }

  /** Clears evtchn_upcall_mask (the PV guest's "interrupts on"). */
  enableUpcalls(cpu: number): void {
    this.viView[cpu][this.viWord[cpu]] &= ~0xff00;
  }

  /** Sets evtchn_upcall_mask (the PV guest's "interrupts off"). */
  disableUpcalls(cpu: number): void {
    this.viView[cpu][this.viWord[cpu]] |= 0x100;
  }

  /** Whether this vCPU has upcalls masked (evtchn_upcall_mask, the PV "interrupts off"). */
  upcallMasked(cpu: number): boolean {
    return (this.viView[cpu][this.viWord[cpu]] & 0xff00) !== 0;
  }

  /** Whether Xen has flagged an upcall for this vCPU (evtchn_upcall_pending). */
  upcallPending(cpu: number): boolean {
    return (this.viView[cpu][this.viWord[cpu]] & 0xff) !== 0;
  }

  // ---- port primitives (Linux's evtchn_ops) ----

  private wordOf(port: number): number {
    return this.arrBase[port >>> 10] + (port & 1023);
  }

  maskEvtchn(port: number): void {
    if (this.abi === "fifo") {
      const page = port >>> 10;
      if (page < this.arrView.length) this.arrView[page][this.wordOf(port)] |= MASKED;
      return;
    }
    this.si[this.siBase + this.layout.maskW + (port >>> 5)] |= 1 << (port & 31);
  }

  clearEvtchn(port: number): void {
    if (this.abi === "fifo") {
      const page = port >>> 10;
      if (page < this.arrView.length) this.arrView[page][this.wordOf(port)] &= ~PENDING;
      return;
    }
    this.si[this.siBase + this.layout.pendingW + (port >>> 5)] &= ~(1 << (port & 31));
  }

  isPending(port: number): boolean {
    if (this.abi === "fifo") {
      const page = port >>> 10;
      return page < this.arrView.length && (this.arrView[page][this.wordOf(port)] & PENDING) !== 0;
    }
    return (this.si[this.siBase + this.layout.pendingW + (port >>> 5)] & (1 << (port & 31))) !== 0;
  }

  /** Unmasks a port; when an event waits, Xen re-raises it (EVTCHNOP_unmask), as Linux does. */
  unmaskEvtchn(port: number, cpu = 0): void {
    if (this.abi === "fifo") {
      const page = port >>> 10;
      if (page >= this.arrView.length) return;
      const view = this.arrView[page];
      const wi = this.wordOf(port);
      view[wi] &= ~MASKED;
      if (view[wi] & PENDING) this.op(cpu, { cmd: EVTCHNOP_unmask, port });
      return;
    }
    if (this.isPending(port)) {
      this.op(cpu, { cmd: EVTCHNOP_unmask, port });
      return;
    }
    this.si[this.siBase + this.layout.maskW + (port >>> 5)] &= ~(1 << (port & 31));
  }

  // ---- irq table ----

  private newIrq(port: number, cpu: number, handler: IrqHandler): number {
    if (this.abi === "fifo") {
      while (port >= this.arrView.length * FIFO_PAGE_WORDS) {
        const rc = this.expand();
        if (rc < 0) return rc;
      }
    } else if (port >= this.portIrq.length) {
      return -ENOSPC; // Xen never hands out a port past the 2-level limit
    }
    let irq = FIRST_DYNIRQ;
    while (this.irqPort[irq] !== undefined && this.irqPort[irq] >= 0) irq++;
    this.irqPort[irq] = port;
    this.irqHandler[irq] = handler;
    this.portIrq[port] = irq;
    this.bindToCpu(port, cpu);
    this.unmaskEvtchn(port, cpu);
    return irq;
  }

  private bindToCpu(port: number, cpu: number): void {
    if (this.abi === "2-level" && port < this.layout.nrChannels) {
      const old = this.portCpu[port];
      this.cpuMask[old][port >>> 5] &= ~(1 << (port & 31));
      this.cpuMask[cpu][port >>> 5] |= 1 << (port & 31);
    }
    this.portCpu[port] = cpu;
  }

  /** The port behind an irq, or -1. */
  evtchnFromIrq(irq: number): number {
    const p = this.irqPort[irq];
    return p === undefined ? -1 : p;
  }

  /** The irq bound to a port, or -1. */
  irqFromEvtchn(port: number): number {
    return port >= 0 && port < this.portIrq.length ? this.portIrq[port] : -1;
  }

  private checkHandler(handler: IrqHandler): void {
    this.requireInit();
    if (typeof handler !== "function") {
      throw guestError(
        "EVTCHN_GUEST_HANDLER",
        "An irq handler must be a function (irq, cpu) => void.",
      );
    }
  }

  private checkCpu(cpu: number): void {
    if (!(Number.isInteger(cpu) && cpu >= 0 && cpu < this.vcpus.length)) {
      throw guestError(
        "EVTCHN_GUEST_CPU",
        `cpu ${cpu} is not one of this guest's vCPUs (0..${this.vcpus.length - 1}).`,
      );
    }
  }

  /** Linux's bind_evtchn_to_irqhandler: an already-bound port. Returns the irq. */
  bindEvtchnToIrqHandler(port: number, handler: IrqHandler, cpu = 0): number {
    this.checkHandler(handler);
    this.checkCpu(cpu);
    return this.newIrq(port, cpu, handler);
  }

  /** Linux's bind_virq_to_irqhandler. Returns the irq or Xen's -errno. */
  bindVirqToIrqHandler(virq: number, cpu: number, handler: IrqHandler): number {
    this.checkHandler(handler);
    this.checkCpu(cpu);
    const a = { cmd: EVTCHNOP_bind_virq, virq, vcpu: cpu, port: 0 };
    const rc = this.op(cpu, a);
    if (rc < 0) return rc;
    const irq = this.newIrq(a.port, cpu, handler);
    if (irq >= 0 && virq >= 0 && virq < 24) this.virqIrq[cpu][virq] = irq;
    return irq;
  }

  /** Linux's bind_interdomain_evtchn_to_irqhandler. Returns the irq or -errno. */
  bindInterdomainEvtchnToIrqHandler(
    remoteDom: number,
    remotePort: number,
    handler: IrqHandler,
    cpu = 0,
  ): number {
    this.checkHandler(handler);
    this.checkCpu(cpu);
    const a = {
      cmd: EVTCHNOP_bind_interdomain,
      remote_dom: remoteDom,
      remote_port: remotePort,
      local_port: 0,
    };
    const rc = this.op(cpu, a);
    if (rc < 0) return rc;
    if (cpu !== 0) this.op(cpu, { cmd: EVTCHNOP_bind_vcpu, port: a.local_port, vcpu: cpu });
    return this.newIrq(a.local_port, cpu, handler);
  }

  /** xenbus's alloc_evtchn + bind: a port `remoteDom` may connect to. Returns the irq or -errno. */
  bindListeningPortToIrqHandler(remoteDom: number, handler: IrqHandler): number {
    this.checkHandler(handler);
    const a = { cmd: EVTCHNOP_alloc_unbound, dom: DOMID_SELF, remote_dom: remoteDom, port: 0 };
    const rc = this.op(0, a);
    if (rc < 0) return rc;
    return this.newIrq(a.port, 0, handler);
  }

  /** Linux's bind_pirq (xen_bind_pirq_gsi_to_irq's evtchn half). Returns the irq or -errno. */
  bindPirqToIrqHandler(pirq: number, handler: IrqHandler, willShare = false): number {
    this.checkHandler(handler);
    const a = { cmd: EVTCHNOP_bind_pirq, pirq, flags: willShare ? 1 : 0, port: 0 };
    const rc = this.op(0, a);
    if (rc < 0) return rc;
    return this.newIrq(a.port, 0, handler);
  }

  /** Linux's bind_ipi_to_irqhandler: IPI `ipi` arriving at vCPU `cpu`. Returns the irq or -errno. */
  bindIpiToIrqHandler(ipi: number, cpu: number, handler: IrqHandler): number {
    this.checkHandler(handler);
    this.checkCpu(cpu);
    const a = { cmd: EVTCHNOP_bind_ipi, vcpu: cpu, port: 0 };
    const rc = this.op(cpu, a);
    if (rc < 0) return rc;
    const irq = this.newIrq(a.port, cpu, handler);
    if (irq >= 0) this.ipiIrq[cpu].set(ipi, irq);
    return irq;
  }

  /** Linux's xen_send_IPI_one: raises IPI `ipi` on vCPU `cpu` from vCPU `from`. Returns 0 or -errno. */
  sendIpi(cpu: number, ipi: number, from = 0): number {
    this.checkCpu(cpu);
    this.checkCpu(from);
    const irq = this.ipiIrq[cpu].get(ipi);
    if (irq === undefined) {
      throw guestError(
        "EVTCHN_GUEST_NO_IPI",
        `IPI ${ipi} is not bound on cpu ${cpu}; bind it with bindIpiToIrqHandler first.`,
      );
    }
    return this.op(from, { cmd: EVTCHNOP_send, port: this.irqPort[irq] });
  }

  /** Linux's notify_remote_via_irq. Returns 0 or -errno. */
  notifyRemoteViaIrq(irq: number, from = 0): number {
    const port = this.evtchnFromIrq(irq);
    if (port < 0) {
      throw guestError("EVTCHN_GUEST_NO_IRQ", `irq ${irq} is not bound to an event channel.`);
    }
    return this.op(from, { cmd: EVTCHNOP_send, port });
  }

  /** Linux's rebind_irq_to_cpu (EVTCHNOP_bind_vcpu). Returns 0 or -errno. */
  rebindIrqToCpu(irq: number, cpu: number): number {
    this.checkCpu(cpu);
    const port = this.evtchnFromIrq(irq);
    if (port < 0)
      throw guestError("EVTCHN_GUEST_NO_IRQ", `irq ${irq} is not bound to an event channel.`);
    const rc = this.op(cpu, { cmd: EVTCHNOP_bind_vcpu, port, vcpu: cpu });
    if (rc === 0) this.bindToCpu(port, cpu);
    return rc;
  }

  /** Linux's unbind_from_irqhandler: masks and closes the port. Returns 0 or -errno. */
  unbindFromIrqHandler(irq: number): number {
    const port = this.evtchnFromIrq(irq);
    if (port < 0)
      throw guestError("EVTCHN_GUEST_NO_IRQ", `irq ${irq} is not bound to an event channel.`);
    this.maskEvtchn(port);
    const cpu = this.portCpu[port];
    const rc = this.op(cpu, { cmd: EVTCHNOP_close, port });
    this.bindToCpu(port, 0);
    this.portIrq[port] = -1;
    this.irqPort[irq] = -1;
    this.irqHandler[irq] = undefined;
    for (const t of this.virqIrq) for (let v = 0; v < t.length; v++) if (t[v] === irq) t[v] = -1;
    for (const m of this.ipiIrq) for (const [k, i] of m) if (i === irq) m.delete(k);
    return rc;
  }

  // ---- the upcall ----

  private handlePort(port: number, cpu: number): void {
    this.clearEvtchn(port);
    const irq = port < this.portIrq.length ? this.portIrq[port] : -1;
    if (irq < 0) return;
    this.handled[cpu]++;
    this.irqHandler[irq]!(irq, cpu);
  }

  /**
   * Linux's xen_evtchn_do_upcall for vCPU `cpu`: clears evtchn_upcall_pending, handles every
   * pending unmasked port bound to this vCPU, and repeats while Xen raised more.
   * Returns the number of events handled.
   */
  xenEvtchnDoUpcall(cpu: number): number {
    const before = this.handled[cpu];
    const view = this.viView[cpu];
    const vi = this.viWord[cpu];
    do {
      view[vi] &= ~0xff;
      if (this.abi === "fifo") this.handleFifo(cpu);
      else this.handle2l(cpu);
    } while ((view[vi] & 0xff) !== 0);
    return this.handled[cpu] - before;
  }

  private handle2l(cpu: number): void {
    const L = this.layout;
    const si = this.si;
    const pw = this.siBase + L.pendingW;
    const mw = this.siBase + L.maskW;
    const mask = this.cpuMask[cpu];
    // The timer first, as Linux does.
    const tirq = this.virqIrq[cpu][VIRQ_TIMER];
    if (tirq >= 0) {
      const p = this.irqPort[tirq];
      const c = p >>> 5;
      const bit = 1 << (p & 31);
      if (si[pw + c] & ~si[mw + c] & mask[c] & bit) this.handlePort(p, cpu);
    }
    // Take the selector (Linux's xchg), then scan its words round robin from where we stopped.
    const sw = this.viWord[cpu] + L.selW;
    const view = this.viView[cpu];
    const chunks = L.bitsPerWord / 32;
    const sel = this.selBuf;
    for (let i = 0; i < chunks; i++) {
      sel[i] = view[sw + i];
      view[sw + i] = 0;
    }
    const nWords = L.bitsPerWord;
    let w = this.curWord[cpu];
    for (let k = 0; k < nWords; k++, w = w + 1 === nWords ? 0 : w + 1) {
      if ((sel[w >>> 5] & (1 << (w & 31))) === 0) continue;
      for (let j = 0; j < chunks; j++) {
        const c = w * chunks + j;
        let bits = si[pw + c] & ~si[mw + c] & mask[c];
        while (bits !== 0) {
          const b = 31 - Math.clz32(bits & -bits);
          bits &= bits - 1;
          this.handlePort(c * 32 + b, cpu);
        }
      }
      this.curWord[cpu] = w + 1 === nWords ? 0 : w + 1;
    }
  }

  private handleFifo(cpu: number): void {
    const cb = this.cbView[cpu];
    const rw = this.cbBase[cpu];
    let ready = cb[rw];
    cb[rw] = 0;
    // A queue Xen built never holds a port twice; a bound keeps a corrupt one from looping.
    let budget = this.arrView.length * FIFO_PAGE_WORDS + 16;
    while (ready !== 0 && budget-- > 0) {
      const q = 31 - Math.clz32(ready & -ready);
      let head = this.qHead[cpu * 16 + q];
      if (head === 0) head = cb[rw + 2 + q];
      const port = head;
      const page = port >>> 10;
      let next = 0;
      if (port !== 0 && page < this.arrView.length) {
        const view = this.arrView[page];
        const wi = this.arrBase[page] + (port & 1023);
        const w = view[wi];
        next = w & EVTCHN_FIFO_LINK_MASK;
        view[wi] = (w & ~(LINKED | EVTCHN_FIFO_LINK_MASK)) >>> 0;
        const now = view[wi];
        if ((now & PENDING) !== 0 && (now & MASKED) === 0) this.handlePort(port, cpu);
      }
      if (next === 0) ready &= ~(1 << q);
      this.qHead[cpu * 16 + q] = next;
      ready |= cb[rw];
      cb[rw] = 0;
    }
  }
}
