/*
 * The 2-level event channel ABI (Xen's xen/common/event_2l.c): pending and mask bitmaps in
 * shared_info, a selector word and the upcall flags in each vCPU's vcpu_info, all as bytes
 * of the shared_info frame.
 *
 * Invariant (Xen's ordering, kept by every path here): a port's pending bit is set before
 * its selector bit, and the selector bit before evtchn_upcall_pending, so a guest that scans
 * selector -> pending never misses an event; a masked port sets only its pending bit, and
 * unmasking it re-raises the selector and upcall if it is still pending. Every bit this file
 * touches is below the ABI's limit (layout.nrChannels), so it lies inside the domain's own
 * shared_info bitmaps whatever port it is handed.
 */
import { ENOSYS } from "@hyperlab/abi";
import type { EvtDomain, PortOps, PortOpsHost } from "./port-ops";

export function twoLevelOps(host: PortOpsHost): PortOps {
  return {
    kind: "2-level",
    maxPorts: (e) => e.layout.nrChannels,
    init() {},
    setPending(e, vcpuId, port) {
      if (port >= e.layout.nrChannels) return;
      const si = e.si;
      const w = (port >>> 5) + e.siBase;
      const bit = 1 << (port & 31);
      const pw = w + e.layout.pendingW;
      const p = si[pw];
      if (p & bit) return;
      si[pw] = p | bit;
      if ((si[w + e.layout.maskW] & bit) === 0) raiseSelector(e, vcpuId, port, host);
      host.checkPollers(e, port);
    },
    clearPending(e, port) {
      if (port >= e.layout.nrChannels) return;
      const pw = e.siBase + e.layout.pendingW + (port >>> 5);
      e.si[pw] &= ~(1 << (port & 31));
    },
    unmask(e, port) {
      if (port >= e.layout.nrChannels) return;
      const si = e.si;
      const w = (port >>> 5) + e.siBase;
      const bit = 1 << (port & 31);
      const mw = w + e.layout.maskW;
      const m = si[mw];
      if ((m & bit) === 0) return;
      si[mw] = m & ~bit;
      if (si[w + e.layout.pendingW] & bit) raiseSelector(e, e.notify[port], port, host);
    },
    isPending(e, port) {
      if (port >= e.layout.nrChannels) return false;
      return (e.si[e.siBase + e.layout.pendingW + (port >>> 5)] & (1 << (port & 31))) !== 0;
    },
    isMasked(e, port) {
      if (port >= e.layout.nrChannels) return true;
      return (e.si[e.siBase + e.layout.maskW + (port >>> 5)] & (1 << (port & 31))) !== 0;
    },
    isBusy: () => false,
    setPriority: () => -ENOSYS, // the 2-level ABI has no priorities
  };
}

function raiseSelector(e: EvtDomain, vcpuId: number, port: number, host: PortOpsHost): void {
  const vi = e.vcpuInfoW(vcpuId);
  if (vi < 0) return;
  const sel = port >>> (e.layout.bitsPerWord === 64 ? 6 : 5);
  const sw = vi + e.layout.selW + (sel >>> 5);
  const sbit = 1 << (sel & 31);
  const s = e.vi[sw];
  if (s & sbit) return;
  e.vi[sw] = s | sbit;
  host.markEventsPending(e, vcpuId);
}
