import {
  __HYPERVISOR_event_channel_op,
  DOMID_SELF,
  EFAULT,
  EINVAL,
  ENODEV,
  EPERM,
  ESRCH,
  EVTCHNOP_bind_pirq,
  MAP_PIRQ_TYPE_GSI,
  MAP_PIRQ_TYPE_MSI_SEG,
  PHYSDEVOP_alloc_irq_vector,
  PHYSDEVOP_apic_read,
  PHYSDEVOP_apic_write,
  PHYSDEVOP_eoi,
  PHYSDEVOP_map_pirq,
  PHYSDEVOP_pirq_eoi_gmfn_v2,
  PHYSDEVOP_setup_gsi,
  PHYSDEVOP_unmap_pirq,
} from "@hyperlab/abi";
import { IO_APIC_DEFAULT_BASE } from "@hyperlab/machine";
import fc from "fast-check";
import { expect, it } from "vitest";
import { bindPirq, boot, checkIrqRouting, dom0RegisterGsi, physdev } from "./helpers";

const LONG = process.env.HYPERLAB_LONG === "1";

const anyInt = fc.oneof(
  fc.integer({ min: -2, max: 300 }),
  fc.constantFrom(0x7ff0, 2 ** 31, -(2 ** 31), 65535),
);
const domid = fc.constantFrom(DOMID_SELF, 0, 1, 2, 9);

const op = fc.oneof(
  fc.record({ k: fc.constant("map"), domid, index: anyInt, pirq: anyInt, msi: fc.boolean() }),
  fc.record({ k: fc.constant("unmap"), domid, pirq: anyInt }),
  fc.record({ k: fc.constant("bind"), pirq: anyInt, share: fc.boolean() }),
  fc.record({ k: fc.constant("eoi"), pirq: anyInt }),
  fc.record({
    k: fc.constant("apic_write"),
    reg: fc.integer({ min: 0, max: 0x50 }),
    value: fc.integer({ min: 0, max: 0xffff_ffff }),
  }),
  fc.record({ k: fc.constant("apic_read"), reg: fc.integer({ min: 0, max: 0x50 }) }),
  fc.record({ k: fc.constant("setup_gsi"), gsi: anyInt, t: fc.nat(2), p: fc.nat(2) }),
  fc.record({ k: fc.constant("alloc_vector"), irq: anyInt }),
  fc.record({ k: fc.constant("eoi_gmfn"), gmfn: anyInt }),
  fc.record({ k: fc.constant("garbage"), cmd: fc.constantFrom(PHYSDEVOP_map_pirq, PHYSDEVOP_eoi) }),
);

it("a hostile domU without irq permission gets Xen's errno and changes nothing it does not own", () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), (ops) => {
      const { hv, machine, platform, irq, evtchn, dom0, us } = boot(2);
      const [victim, hostile] = us;
      dom0RegisterGsi(hv, dom0, 19, true);
      dom0RegisterGsi(hv, dom0, 4, false);
      const vp = physdev(hv, dom0, PHYSDEVOP_map_pirq, {
        domid: 1,
        type: MAP_PIRQ_TYPE_GSI,
        index: 19,
        pirq: -1,
      }).a.pirq as number;
      const ports = [
        [dom0, bindPirq(hv, dom0, 19, true).port],
        [dom0, bindPirq(hv, dom0, 4).port],
        [victim, bindPirq(hv, victim, vp, true).port],
      ] as const;
      machine.irqs.raise(19); // both sharers in flight
      const snapshot = () => ({
        rte: Array.from({ length: platform.ioapic.pins }, (_, p) => platform.ioapic.readRte(p)),
        maps: [dom0, victim].map((d) => irq.mappings(d)),
        sharers: Array.from({ length: irq.nrIrqs }, (_, x) => irq.sharersOf(x)),
        inFlight: Array.from({ length: irq.nrIrqs }, (_, x) => irq.inFlightOf(x)),
        pending: ports.map(([d, p]) => evtchn.isPending(d, p)),
        status: [irq.pirqStatus(dom0, 19), irq.pirqStatus(victim, vp)],
        caps: [dom0, victim].map((d) => irq.irqAccessPermitted(d, 19)),
        lines: [4, 19].map((g) => machine.irqs.state(g)),
      });
      const before = snapshot();
      const hostilePage = hv.allocDomainPages(hostile);
      for (const o of ops) {
        let rc: number;
        switch (o.k) {
          case "map":
            rc = physdev(hv, hostile, PHYSDEVOP_map_pirq, {
              domid: o.domid,
              type: o.msi ? MAP_PIRQ_TYPE_MSI_SEG : MAP_PIRQ_TYPE_GSI,
              index: o.msi ? -1 : o.index,
              pirq: o.pirq,
              bus: 0,
              devfn: 0,
            }).rc;
            expect([-EPERM, -EINVAL, -ESRCH, -ENODEV]).toContain(rc);
            break;
          case "unmap":
            rc = physdev(hv, hostile, PHYSDEVOP_unmap_pirq, { domid: o.domid, pirq: o.pirq }).rc;
            expect([-EPERM, -EINVAL, -ESRCH]).toContain(rc);
            break;
          case "bind":
            rc = bindPirq(hv, hostile, o.pirq, o.share).rc;
            expect([-EPERM, -EINVAL]).toContain(rc);
            break;
          case "eoi":
            rc = physdev(hv, hostile, PHYSDEVOP_eoi, { irq: o.pirq }).rc;
            expect(rc).toBe(-EINVAL);
            break;
          case "apic_write":
            rc = physdev(hv, hostile, PHYSDEVOP_apic_write, {
              apic_physbase: IO_APIC_DEFAULT_BASE,
              reg: o.reg,
              value: o.value,
            }).rc;
            expect(rc).toBe(-EPERM);
            break;
          case "apic_read":
            rc = physdev(hv, hostile, PHYSDEVOP_apic_read, {
              apic_physbase: IO_APIC_DEFAULT_BASE,
              reg: o.reg,
            }).rc;
            expect(rc).toBe(-EPERM);
            break;
          case "setup_gsi":
            rc = physdev(hv, hostile, PHYSDEVOP_setup_gsi, {
              gsi: o.gsi,
              triggering: o.t,
              polarity: o.p,
            }).rc;
            expect(rc).toBe(-EPERM);
            break;
          case "alloc_vector":
            rc = physdev(hv, hostile, PHYSDEVOP_alloc_irq_vector, { irq: o.irq }).rc;
            expect(rc).toBe(-EPERM);
            break;
          case "eoi_gmfn":
            if (o.gmfn === hostilePage) break;
            rc = physdev(hv, hostile, PHYSDEVOP_pirq_eoi_gmfn_v2, { gmfn: o.gmfn }).rc;
            expect(rc).toBe(-EINVAL);
            break;
          case "garbage":
            rc = hv.hypercall(hostile.vcpus[0], 33, { cmd: o.cmd, irq: "x", index: null });
            expect(rc).toBe(-EFAULT);
            break;
        }
      }
      // A stray event-channel op for good measure.
      hv.hypercall(hostile.vcpus[0], __HYPERVISOR_event_channel_op, {
        cmd: EVTCHNOP_bind_pirq,
        pirq: 19,
        flags: 1,
      });
      expect(snapshot()).toEqual(before);
      expect(irq.mappings(hostile)).toEqual([]);
      expect(checkIrqRouting(irq, [dom0, ...us])).toEqual([]);
    }),
    { seed: 1213, numRuns: LONG ? 400 : 40 },
  );
});
