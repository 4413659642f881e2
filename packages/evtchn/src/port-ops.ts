/*
 * Per-domain event channel state (Xen's struct evtchn array and the per-domain fields of
 * struct domain), and the interface an ABI (2-level or FIFO) implements over it: Xen's
 * struct evtchn_port_ops.
 *
 * Invariants: port 0 is ECS_RESERVED for the domain's whole life; ports below `valid` exist
 * (they were allocated in buckets of EVTCHNS_PER_BUCKET), the rest do not; a port's
 * `remoteDom`/`remotePort` name the peer of an interdomain channel (and the peer names it
 * back), or the domain allowed to bind an unbound port; `virqPort[vcpu*NR_VIRQS+virq]` and
 * `pirqPort[pirq]` name exactly the ports bound to them (0 = none); `valid` never exceeds what
 * the domain's current ABI can name (ops.maxPorts), so it shrinks back when a reset returns a
 * FIFO domain to the 2-level ABI. `sends[port]` and `raised[port]` count since the port was
 * last bound (bindPort zeroes them); `vcpuRaised`/`vcpuUpcalls` since the domain was created.
 */
import {
  NR_VIRQS,
  type StructLayout,
  shared_info_x86_32,
  shared_info_x86_64,
  vcpu_info_x86_32,
  vcpu_info_x86_64,
} from "@hyperlab/abi";
import type { Domain, Vcpu } from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";

/** Where each vCPU's vcpu_info is now: core's VcpuAreas (the registered area, or shared_info's slot). */
export interface VcpuInfoSource {
  vcpuInfoMaddr(v: Vcpu): number;
}

export const ECS_FREE = 0;
export const ECS_RESERVED = 1;
export const ECS_UNBOUND = 2;
export const ECS_INTERDOMAIN = 3;
export const ECS_PIRQ = 4;
export const ECS_VIRQ = 5;
export const ECS_IPI = 6;

/** Ports are created in groups of this many, as Xen's buckets. */
export const EVTCHNS_PER_BUCKET = 64;

/** Word offsets of the 2-level fields in a shared_info frame, per guest width. */
export interface SharedLayout {
  readonly bitsPerWord: 32 | 64;
  /** Channels the 2-level ABI can name (bitsPerWord squared). */
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

/** The 2-level words of one guest width, read off abi's checked shared_info and vcpu_info. */
function sharedLayout(si: StructLayout, vi: StructLayout): SharedLayout {
  const pending = si.fields.evtchn_pending;
  return {
    bitsPerWord: (pending.size * 8) as 32 | 64,
    // The bitmap's size in bits: the most ports the 2-level ABI can name.
    nrChannels: pending.size * 8 * (pending.count ?? 1),
    pendingW: pending.offset / 4,
    maskW: si.fields.evtchn_mask.offset / 4,
    selW: vi.fields.evtchn_pending_sel.offset / 4,
    vcpuInfoW: vi.sizeof / 4,
    legacyVcpus: si.fields.vcpu_info.count ?? 0,
  };
}

export const LAYOUT_64: SharedLayout = sharedLayout(shared_info_x86_64, vcpu_info_x86_64);
export const LAYOUT_32: SharedLayout = sharedLayout(shared_info_x86_32, vcpu_info_x86_32);

/** One domain's ports. Arrays grow (by doubling) as ports are allocated. */
export class EvtDomain {
  readonly d: Domain;
  readonly layout: SharedLayout;
  /** The 32-bit word view holding the shared_info frame, and the frame's first word in it. */
  readonly si: Uint32Array;
  readonly siBase: number;
  /**
   * The frame view holding the vcpu_info that vcpuInfoW last found: shared_info's, or the
   * frame the vCPU registered with VCPUOP_register_vcpu_info. Read it right after vcpuInfoW.
   */
  vi: Uint32Array;
  private readonly areas: VcpuInfoSource | null;
  private readonly ram: Ram | null;
  ops: PortOps;
  /** Ports below this exist (allocated buckets). */
  valid = 0;
  /** Ports in use (not ECS_FREE), port 0 included. */
  active = 0;
  /** Highest port the toolstack allows (Xen's max_evtchn_port). */
  maxEvtchnPort: number;
  state = new Uint8Array(0);
  notify = new Uint16Array(0);
  remoteDom = new Int32Array(0);
  remotePort = new Int32Array(0);
  /** The VIRQ or PIRQ a port is bound to. */
  u = new Int32Array(0);
  /** FIFO: queue priority, pending-without-event-word, and the queue it was last linked on. */
  priority = new Uint8Array(0);
  fifoPending = new Uint8Array(0);
  lastqVcpu = new Uint16Array(0);
  lastqPrio = new Uint8Array(0);
  /** Traffic per port, for tools: this end's sends that raised an event, events raised here. */
  sends = new Float64Array(0);
  raised = new Float64Array(0);
  /** Per vCPU: events raised on ports bound to it, and upcalls (upcall_pending 0 -> 1). */
  readonly vcpuRaised: Float64Array;
  readonly vcpuUpcalls: Float64Array;
  readonly virqPort: Int32Array;
  readonly pirqPort: Int32Array;
  readonly pirqPermitted: Uint8Array;
  /** ABI-private state (the FIFO ABI keeps its control blocks here). */
  fifo: unknown = null;

  constructor(
    d: Domain,
    si: Uint32Array,
    siBase: number,
    ops: PortOps,
    nrPirqs: number,
    maxPort: number,
    areas: VcpuInfoSource | null = null,
    ram: Ram | null = null,
  ) {
    this.d = d;
    this.layout = d.addressSize === 32 ? LAYOUT_32 : LAYOUT_64;
    this.si = si;
    this.siBase = siBase;
    this.vi = si;
    this.areas = areas;
    this.ram = ram;
    this.ops = ops;
    this.maxEvtchnPort = maxPort;
    this.virqPort = new Int32Array(d.vcpus.length * NR_VIRQS);
    this.vcpuRaised = new Float64Array(d.vcpus.length);
    this.vcpuUpcalls = new Float64Array(d.vcpus.length);
    this.pirqPort = new Int32Array(nrPirqs);
    this.pirqPermitted = new Uint8Array(nrPirqs);
  }

  /** Makes ports below `n` exist (rounded up to whole buckets). */
  growTo(n: number): void {
    const want = Math.ceil(n / EVTCHNS_PER_BUCKET) * EVTCHNS_PER_BUCKET;
    if (want <= this.valid) return;
    if (want > this.state.length) {
      let cap = Math.max(EVTCHNS_PER_BUCKET, this.state.length);
      while (cap < want) cap *= 2;
      const grow = <T extends Uint8Array | Uint16Array | Int32Array | Float64Array>(
        a: T,
        make: (n: number) => T,
      ): T => {
        const b = make(cap);
        b.set(a);
        return b;
      };
      this.state = grow(this.state, (k) => new Uint8Array(k));
      this.notify = grow(this.notify, (k) => new Uint16Array(k));
      this.remoteDom = grow(this.remoteDom, (k) => new Int32Array(k));
      this.remotePort = grow(this.remotePort, (k) => new Int32Array(k));
      this.u = grow(this.u, (k) => new Int32Array(k));
      this.priority = grow(this.priority, (k) => new Uint8Array(k));
      this.fifoPending = grow(this.fifoPending, (k) => new Uint8Array(k));
      this.lastqVcpu = grow(this.lastqVcpu, (k) => new Uint16Array(k));
      this.lastqPrio = grow(this.lastqPrio, (k) => new Uint8Array(k));
      this.sends = grow(this.sends, (k) => new Float64Array(k));
      this.raised = grow(this.raised, (k) => new Float64Array(k));
    }
    this.valid = want;
  }

  /**
   * Forgets the buckets at and above `n` (rounded up to a whole bucket). Every port there must
   * already be free; Xen's evtchn_reset closes them all before the ABI changes.
   */
  shrinkTo(n: number): void {
    const want = Math.ceil(n / EVTCHNS_PER_BUCKET) * EVTCHNS_PER_BUCKET;
    if (want < this.valid) this.valid = want;
  }

  /** Xen's port_is_valid: the port exists (its bucket was allocated). */
  portValid(port: number): boolean {
    return port >= 0 && port < this.valid && Number.isInteger(port);
  }

  /** The port exists and is bound to something (not ECS_FREE): what EVTCHNOP_unmask needs. */
  portInUse(port: number): boolean {
    return this.portValid(port) && this.state[port] !== ECS_FREE;
  }

  /**
   * Word index (in `vi`, which this sets) of the vCPU's vcpu_info, or -1 if it has none: the
   * area it registered (VCPUOP_register_vcpu_info) when it did, else its slot in shared_info
   * (none for vCPUs from 32 on), as Xen's vcpu_info(v, field) reads through v->vcpu_info.
   */
  vcpuInfoW(vcpuId: number): number {
    const v = this.d.vcpus[vcpuId];
    if (this.areas !== null && this.ram !== null && v !== undefined) {
      const ma = this.areas.vcpuInfoMaddr(v);
      if (ma < 0) return -1;
      const mfn = Math.floor(ma / 4096);
      if (mfn !== this.d.sharedInfoMfn) {
        this.vi = this.ram.frameWords(mfn, true);
        return (ma % 4096) >>> 2;
      }
    }
    this.vi = this.si;
    return vcpuId < this.layout.legacyVcpus ? this.siBase + vcpuId * this.layout.vcpuInfoW : -1;
  }
}

/** What an event channel ABI does to ports (Xen's evtchn_port_ops). */
export interface PortOps {
  readonly kind: "2-level" | "fifo";
  /** Channels the ABI can name for this domain. */
  maxPorts(e: EvtDomain): number;
  /** A port was just bound: reset its ABI state. */
  init(e: EvtDomain, port: number): void;
  setPending(e: EvtDomain, vcpuId: number, port: number): void;
  clearPending(e: EvtDomain, port: number): void;
  unmask(e: EvtDomain, port: number): void;
  isPending(e: EvtDomain, port: number): boolean;
  isMasked(e: EvtDomain, port: number): boolean;
  /** Still linked on a FIFO queue: the port cannot be reused yet. */
  isBusy(e: EvtDomain, port: number): boolean;
  setPriority(e: EvtDomain, port: number, priority: number): number;
}

/** What the port ops need from the rest of the plugin. */
export interface PortOpsHost {
  /** Xen's vcpu_mark_events_pending: sets evtchn_upcall_pending, kicks the vCPU on 0 -> 1. */
  markEventsPending(e: EvtDomain, vcpuId: number): void;
  /** Xen's evtchn_check_pollers. */
  checkPollers(e: EvtDomain, port: number): void;
}
