/*
 * The FIFO event channel ABI (Xen's xen/common/event_fifo.c): one event word per port in
 * guest pages added by EVTCHNOP_expand_array, and per vCPU a control block (registered by
 * EVTCHNOP_init_control) holding the READY bits and the HEAD of 16 priority queues. Xen
 * keeps each queue's TAIL privately; the guest consumes from HEAD and follows LINK fields.
 *
 * Invariants: an event word is LINKED iff the port sits on some queue (Xen links it, the
 * guest unlinks it); `tail[v*16+p]` is 0 or the last port linked on that queue; a port
 * whose word page is missing keeps its pending state in `fifoPending` and is re-raised when
 * the page arrives; every mapped guest page holds a general and a writable type reference,
 * dropped by destroyFifo (reset or domain destruction).
 */
import {
  EINVAL,
  ENOENT,
  ENOSPC,
  EOPNOTSUPP,
  EVTCHN_FIFO_LINK_BITS,
  EVTCHN_FIFO_LINK_MASK,
  EVTCHN_FIFO_LINKED,
  EVTCHN_FIFO_MASKED,
  EVTCHN_FIFO_MAX_QUEUES,
  EVTCHN_FIFO_NR_CHANNELS,
  EVTCHN_FIFO_PENDING,
  EVTCHN_FIFO_PRIORITY_DEFAULT,
  EVTCHN_FIFO_PRIORITY_MIN,
  evtchn_fifo_control_block,
} from "@hyperlab/abi";
import { type Hypervisor, PGT_writable_page } from "@hyperlab/core";
import type { EvtDomain, PortOps, PortOpsHost } from "./port-ops";

const PENDING = 1 << EVTCHN_FIFO_PENDING;
const MASKED = 1 << EVTCHN_FIFO_MASKED;
const LINKED = 1 << EVTCHN_FIFO_LINKED;
/** Event words per 4 KiB page. */
export const EVTCHN_FIFO_EVENT_WORDS_PER_PAGE = 1024;
/** Pages an event array may have (2^17 ports / 1024 words). */
export const EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES = EVTCHN_FIFO_NR_CHANNELS / 1024;
/** sizeof(struct evtchn_fifo_control_block). */
export const EVTCHN_FIFO_CONTROL_BLOCK_SIZE = evtchn_fifo_control_block.sizeof;

/** The hypervisor side of one domain's FIFO state. */
export class FifoDomain {
  pages = 0;
  readonly arrMfn = new Int32Array(EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES).fill(-1);
  readonly arrView: Uint32Array[] = [];
  readonly arrBase = new Int32Array(EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES);
  readonly cbMfn: Int32Array;
  readonly cbView: (Uint32Array | undefined)[];
  /** Word index of each vCPU's control block in its view, or -1. */
  readonly cbBase: Int32Array;
  readonly tail: Int32Array;

  constructor(nrVcpus: number) {
    this.cbMfn = new Int32Array(nrVcpus).fill(-1);
    this.cbView = new Array(nrVcpus).fill(undefined);
    this.cbBase = new Int32Array(nrVcpus).fill(-1);
    this.tail = new Int32Array(nrVcpus * EVTCHN_FIFO_MAX_QUEUES);
  }
}

export function fifoOps(host: PortOpsHost): PortOps {
  const ops: PortOps = {
    kind: "fifo",
    maxPorts: () => EVTCHN_FIFO_NR_CHANNELS,
    init(e, port) {
      e.priority[port] = EVTCHN_FIFO_PRIORITY_DEFAULT;
    },
    setPending(e, vcpuId, port) {
      const f = e.fifo as FifoDomain;
      const page = port >>> 10;
      if (page >= f.pages) {
        e.fifoPending[port] = 1;
        return;
      }
      const cbv = f.cbView[vcpuId];
      if (cbv === undefined) return; // no control block: the guest cannot have unmasked it
      const view = f.arrView[page];
      const wi = f.arrBase[page] + (port & 1023);
      let w = view[wi];
      const wasPending = (w & PENDING) !== 0;
      w |= PENDING;
      view[wi] = w;
      let linked = true;
      const prio = e.priority[port];
      if ((w & (MASKED | LINKED)) === 0) {
        view[wi] = w | LINKED;
        const q = vcpuId * EVTCHN_FIFO_MAX_QUEUES + prio;
        const oq = e.lastqVcpu[port] * EVTCHN_FIFO_MAX_QUEUES + e.lastqPrio[port];
        if (f.tail[oq] === port) f.tail[oq] = 0;
        if (oq !== q) {
          e.lastqVcpu[port] = vcpuId;
          e.lastqPrio[port] = prio;
        }
        linked = false;
        const t = f.tail[q];
        if (t !== 0) linked = setLink(f, t, port);
        if (!linked) cbv[f.cbBase[vcpuId] + 2 + prio] = port;
        f.tail[q] = port;
      }
      if (!linked) {
        const rw = f.cbBase[vcpuId];
        const r = cbv[rw];
        if ((r & (1 << prio)) === 0) {
          cbv[rw] = r | (1 << prio);
          host.markEventsPending(e, vcpuId);
        }
      }
      if (!wasPending) host.checkPollers(e, port);
    },
    clearPending(e, port) {
      const f = e.fifo as FifoDomain;
      e.fifoPending[port] = 0;
      const page = port >>> 10;
      if (page >= f.pages) return;
      f.arrView[page][f.arrBase[page] + (port & 1023)] &= ~PENDING;
    },
    unmask(e, port) {
      const f = e.fifo as FifoDomain;
      const page = port >>> 10;
      if (page >= f.pages) return;
      const view = f.arrView[page];
      const wi = f.arrBase[page] + (port & 1023);
      view[wi] &= ~MASKED;
      if (view[wi] & PENDING) ops.setPending(e, e.notify[port], port);
    },
    isPending(e, port) {
      const f = e.fifo as FifoDomain;
      const page = port >>> 10;
      return page < f.pages && (f.arrView[page][f.arrBase[page] + (port & 1023)] & PENDING) !== 0;
    },
    isMasked(e, port) {
      const f = e.fifo as FifoDomain;
      const page = port >>> 10;
      return page >= f.pages || (f.arrView[page][f.arrBase[page] + (port & 1023)] & MASKED) !== 0;
    },
    isBusy(e, port) {
      const f = e.fifo as FifoDomain;
      const page = port >>> 10;
      return page < f.pages && (f.arrView[page][f.arrBase[page] + (port & 1023)] & LINKED) !== 0;
    },
    setPriority(e, port, priority) {
      if (!(Number.isInteger(priority) && priority >= 0 && priority <= EVTCHN_FIFO_PRIORITY_MIN)) {
        return -EINVAL;
      }
      e.priority[port] = priority;
      return 0;
    },
  };
  return ops;
}

/** Sets the tail's LINK to `port` if the tail is still LINKED (the guest has not consumed it). */
function setLink(f: FifoDomain, tailPort: number, port: number): boolean {
  const page = tailPort >>> 10;
  const view = f.arrView[page];
  const wi = f.arrBase[page] + (tailPort & 1023);
  const w = view[wi];
  if ((w & LINKED) === 0) return false;
  view[wi] = ((w & ~EVTCHN_FIFO_LINK_MASK) | port) >>> 0;
  return true;
}

/** Takes a writable reference on a guest frame (PV: the gfn is the mfn). */
function mapGuestPage(hv: Hypervisor, e: EvtDomain, gfn: unknown): number {
  if (typeof gfn !== "number" || !Number.isInteger(gfn) || gfn < 0) return -EINVAL;
  if (!hv.frames.validMfn(gfn)) return -EINVAL;
  const rc = hv.frames.getPageAndType(gfn, e.d.domid, PGT_writable_page);
  return rc === 0 ? gfn : -EINVAL;
}

/** EVTCHNOP_init_control. `twoLevelPending` reads a port's 2-level pending bit before the switch. */
export function initControl(
  hv: Hypervisor,
  e: EvtDomain,
  a: { control_gfn?: unknown; offset?: unknown; vcpu?: unknown; link_bits?: number },
  fifo: PortOps,
): number {
  const { control_gfn: gfn, offset, vcpu } = a;
  a.link_bits = EVTCHN_FIFO_LINK_BITS;
  if (typeof vcpu !== "number" || !Number.isInteger(vcpu)) return -EINVAL;
  if (vcpu < 0 || vcpu >= e.d.vcpus.length) return -ENOENT;
  if (typeof offset !== "number" || !Number.isInteger(offset) || offset < 0) return -EINVAL;
  if (offset > 4096 - EVTCHN_FIFO_CONTROL_BLOCK_SIZE) return -EINVAL;
  if (offset & 7) return -EINVAL;
  const first = e.fifo === null;
  const f = first ? new FifoDomain(e.d.vcpus.length) : (e.fifo as FifoDomain);
  if (f.cbMfn[vcpu] >= 0) return -EINVAL;
  const mfn = mapGuestPage(hv, e, gfn);
  if (mfn < 0) return mfn;
  f.cbMfn[vcpu] = mfn;
  f.cbView[vcpu] = hv.machine.ram.frameWords(mfn, true);
  f.cbBase[vcpu] = offset / 4; // the view is the control block's frame alone
  if (first) {
    const old = e.ops;
    for (let port = 1; port < e.valid; port++) {
      e.fifoPending[port] = old.isPending(e, port) ? 1 : 0;
      e.priority[port] = EVTCHN_FIFO_PRIORITY_DEFAULT;
    }
    e.fifo = f;
    e.ops = fifo;
  }
  return 0;
}

/** EVTCHNOP_expand_array. */
export function expandArray(
  hv: Hypervisor,
  e: EvtDomain,
  a: { array_gfn?: unknown },
  fifo: PortOps,
): number {
  if (e.fifo === null) return -EOPNOTSUPP;
  const f = e.fifo as FifoDomain;
  const slot = f.pages;
  if (slot >= EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES) return -ENOSPC;
  const mfn = mapGuestPage(hv, e, a.array_gfn);
  if (mfn < 0) return mfn;
  f.arrMfn[slot] = mfn;
  f.arrView[slot] = hv.machine.ram.frameWords(mfn, true);
  f.arrBase[slot] = 0; // the view is the event array's frame alone
  f.pages++;
  const end = Math.min(e.valid, f.pages * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE);
  for (let port = slot * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE; port < end; port++) {
    if (e.fifoPending[port]) {
      e.fifoPending[port] = 0;
      fifo.setPending(e, e.notify[port], port);
    }
  }
  return 0;
}

/** Drops every page the FIFO ABI holds for a domain (Xen's evtchn_fifo_destroy). */
export function destroyFifo(hv: Hypervisor, e: EvtDomain): void {
  const f = e.fifo as FifoDomain | null;
  if (f === null) return;
  for (let i = 0; i < f.pages; i++) hv.frames.putPageAndType(f.arrMfn[i]);
  for (const mfn of f.cbMfn) if (mfn >= 0) hv.frames.putPageAndType(mfn);
  e.fifo = null;
}
