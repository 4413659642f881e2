/*
 * Invariant checkers for the dom0 hardware path, over core's `irq`, `evtchn` and `iomem` slots
 * and the frame table alone, so any provider of those slots can be checked by the same code
 * (lifted from apic-hooks' and iomap's own tests).
 *
 * What they prove, after any hypercall:
 * Interrupt routing (checkIrqRoutingInvariants):
 * 1. A mapped pirq names an irq its domain's irq_caps hold, and pirq <-> irq is one to one.
 * 2. Every pirq port (EVTCHNOP_bind_pirq) is bound by the domain that mapped the pirq: its
 *    owner; no domain binds a pirq it has not mapped.
 * 3. An irq's sharers, as the irq slot counts them, are exactly the domains whose port for it
 *    is bound; more than one only when the slot reports it shared.
 * 4. A share is in flight (awaiting that domain's EOI) only while the domain is bound, so an
 *    EOI from anyone else has nothing to release.
 * I/O memory (checkIomemInvariants):
 * 5. Every present entry of every validated L1 table names RAM its owner may hold, or a
 *    non-RAM frame in the owner's iomem_caps, uncached, and read-only if the frame is in a
 *    read-only MMIO range. RAM is never mapped as I/O memory of another domain.
 */
import {
  _PAGE_PCD,
  _PAGE_PRESENT,
  _PAGE_RW,
  EVTCHNSTAT_pirq,
  XENIRQSTAT_shared,
} from "@hyperlab/abi";
import {
  type Domain,
  FRAME_FREE,
  type Hypervisor,
  PGT_count_mask,
  PGT_l1_page_table,
  PGT_type_mask,
} from "@hyperlab/core";
import { InvariantError } from "./errors";

/** Interrupt-routing violations among `domains` (default every domain of `hv`). */
export function checkIrqRoutingInvariants(hv: Hypervisor, domains?: readonly Domain[]): string[] {
  const bad: string[] = [];
  const irq = hv.slot("irq");
  const evtchn = hv.slot("evtchn");
  const doms = domains ?? hv.domains();
  /** irq -> domains bound to it (through a pirq port), as the ports say. */
  const boundBy = new Map<number, number[]>();
  for (const d of doms) {
    const nr = irq.nrPirqs(d);
    const seenIrq = new Map<number, number>();
    for (let pirq = 0; pirq < nr; pirq++) {
      const s = irq.pirqStatus(d, pirq);
      if (s.irq < 0) {
        if (s.inFlight) bad.push(`d${d.domid} pirq ${pirq} unmapped but in flight`);
        continue;
      }
      if (!irq.irqAccessPermitted(d, s.irq))
        bad.push(`d${d.domid} pirq ${pirq} -> irq ${s.irq} without irq_caps`);
      if (irq.irqToPirq(d, s.irq) !== pirq)
        bad.push(`d${d.domid} pirq ${pirq} and irq ${s.irq} are not inverse`);
      const other = seenIrq.get(s.irq);
      if (other !== undefined) bad.push(`d${d.domid} maps irq ${s.irq} twice (${other}, ${pirq})`);
      seenIrq.set(s.irq, pirq);
    }
    const ports = evtchn.maxPorts(d);
    const pirqPort = new Map<number, number>();
    for (let port = 1; port < ports; port++) {
      const info = evtchn.portInfo(d, port);
      if (info.status !== EVTCHNSTAT_pirq) continue;
      const twice = pirqPort.get(info.irq);
      if (twice !== undefined)
        bad.push(`d${d.domid} binds pirq ${info.irq} on ports ${twice} and ${port}`);
      pirqPort.set(info.irq, port);
      const s = irq.pirqStatus(d, info.irq);
      // A pirq unmapped under its port (force-unbound by unmap_pirq) stays a port with nothing behind it.
      if (s.irq < 0) continue;
      const list = boundBy.get(s.irq) ?? [];
      list.push(d.domid);
      boundBy.set(s.irq, list);
    }
    for (let pirq = 0; pirq < nr; pirq++) {
      const s = irq.pirqStatus(d, pirq);
      if (s.inFlight && !pirqPort.has(pirq))
        bad.push(`d${d.domid} pirq ${pirq} in flight without a bound port`);
    }
  }
  for (const d of doms) {
    const nr = irq.nrPirqs(d);
    for (let pirq = 0; pirq < nr; pirq++) {
      const s = irq.pirqStatus(d, pirq);
      if (s.irq < 0) continue;
      const bound = boundBy.get(s.irq) ?? [];
      if (!bound.includes(d.domid)) continue;
      if (s.sharers !== bound.length)
        bad.push(
          `irq ${s.irq}: ${s.sharers} sharers counted, ${bound.length} domains bound (${bound})`,
        );
      if (bound.length > 1 && (s.flags & XENIRQSTAT_shared) === 0)
        bad.push(`irq ${s.irq} bound by ${bound.length} domains but not reported shared`);
    }
  }
  return bad;
}

export interface IomemCheckOptions {
  /** Whether `mapper` may map RAM frame `mfn` of another domain (grants). Default: never. */
  granted?: (mapperDomid: number, mfn: number) => boolean;
  /** Stop after this many violations (default 20). */
  limit?: number;
}

/** I/O-memory violations in every validated L1 page table of the machine. */
export function checkIomemInvariants(hv: Hypervisor, options: IomemCheckOptions = {}): string[] {
  const out: string[] = [];
  const limit = options.limit ?? 20;
  const io = hv.slot("iomem");
  const f = hv.frames;
  const ram = hv.machine.ram;
  for (let t = 0; t < f.nrFrames && out.length < limit; t++) {
    const ti = f.typeInfo[t];
    if ((ti & PGT_type_mask) >>> 0 !== PGT_l1_page_table || (ti & PGT_count_mask) === 0) continue;
    const d = hv.domain(f.ownerOf(t));
    if (d === undefined) continue;
    for (let i = 0; i < 512 && out.length < limit; i++) {
      const lo = ram.read32(t * 4096 + i * 8);
      if ((lo & _PAGE_PRESENT) === 0) continue;
      const hi = ram.read32(t * 4096 + i * 8 + 4);
      const mfn = (hi & 0xfffff) * 0x10_0000 + (lo >>> 12);
      if (io.isRam(mfn)) {
        const owner = f.ownerOf(mfn);
        if (owner === FRAME_FREE) out.push(`d${d.domid} L1 ${t}[${i}] maps free frame ${mfn}`);
        else if (
          owner !== d.domid &&
          !d.isPrivileged &&
          !(options.granted?.(d.domid, mfn) ?? false)
        )
          out.push(`d${d.domid} L1 ${t}[${i}] maps RAM frame ${mfn} of d${owner}`);
        continue;
      }
      if (!io.iomemAccessPermitted(d, mfn, mfn))
        out.push(`d${d.domid} L1 ${t}[${i}] maps I/O frame ${mfn} it was not given`);
      if ((lo & _PAGE_PCD) === 0)
        out.push(`d${d.domid} L1 ${t}[${i}] maps I/O frame ${mfn} cached`);
      if (io.isMmioReadOnly(mfn) && (lo & _PAGE_RW) !== 0)
        out.push(`d${d.domid} L1 ${t}[${i}] maps read-only I/O frame ${mfn} writable`);
    }
  }
  return out;
}

/** Throws InvariantError("IRQ_ROUTING_INVARIANTS_BROKEN") listing the violations, if any. */
export function assertIrqRoutingInvariants(hv: Hypervisor, domains?: readonly Domain[]): void {
  const bad = checkIrqRoutingInvariants(hv, domains);
  if (bad.length > 0)
    throw new InvariantError("IRQ_ROUTING_INVARIANTS_BROKEN", "interrupt routing", bad);
}

/** Throws InvariantError("IOMEM_INVARIANTS_BROKEN") listing the violations, if any. */
export function assertIomemInvariants(hv: Hypervisor, options: IomemCheckOptions = {}): void {
  const bad = checkIomemInvariants(hv, options);
  if (bad.length > 0) throw new InvariantError("IOMEM_INVARIANTS_BROKEN", "I/O memory", bad);
}
