/*
 * issue 12's hostile domU, with testkit's checkers after every call: a domU with no device
 * of its own maps a BAR frame, maps dom0's RAM as I/O memory, binds another domain's pirq,
 * maps pirqs for others, programs the IO-APIC and EOIs pirqs it does not own. Each gets Xen's
 * errno; the devices see no access, and dom0 and a passthrough domU are untouched.
 */
import {
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_mmu_update,
  _PAGE_IOMAP,
  _PAGE_PCD,
  _PAGE_PRESENT,
  _PAGE_RW,
  DOMID_SELF,
  EBUSY,
  EINVAL,
  ENODEV,
  EPERM,
  ESRCH,
  EVTCHNOP_bind_pirq,
  MAP_PIRQ_TYPE_GSI,
  MAP_PIRQ_TYPE_MSI_SEG,
  PHYSDEVOP_apic_write,
  PHYSDEVOP_eoi,
  PHYSDEVOP_map_pirq,
  PHYSDEVOP_setup_gsi,
  PHYSDEVOP_unmap_pirq,
} from "@hyperlab/abi";
import { createHypervisor, pciPassthroughPermission, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import { iomap } from "@hyperlab/iomap";
import {
  createMachine,
  createPlatform,
  DiskController,
  IO_APIC_DEFAULT_BASE,
  MemoryDiskImage,
  Nic,
} from "@hyperlab/machine";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import {
  checkFrameInvariants,
  checkIomemInvariants,
  checkIrqRoutingInvariants,
} from "@hyperlab/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { apicHooks } from "../src/index";
import { bindPirq, dom0RegisterGsi, physdev } from "./helpers";

const LONG = process.env.HYPERLAB_LONG === "1";

function host() {
  const machine = createMachine({ ramBytes: 96 << 20, cpus: 1, seed: 21 });
  const platform = createPlatform(machine);
  const disk = new DiskController(platform.pci, { image: new MemoryDiskImage(8) });
  const nic = new Nic(platform.pci);
  platform.pci.assignResources();
  const hv = createHypervisor({
    machine,
    plugins: [pvMmu(), evtchn2l(), schedCredit(), apicHooks({ platform }), iomap()],
  }).boot();
  const pv = hv.slot("pv-mmu");
  const mk = (domid: number) => {
    const d = hv.createDomain({ domid, maxVcpus: 1, maxPages: 1024 + 64 });
    const b = buildPvDomain(hv, pv, { domain: d, nrPages: 1024 });
    hv.unpauseDomain(d);
    return { d, b };
  };
  const dom0 = mk(0);
  const victim = mk(1); // the NIC is passed through to it
  const hostile = mk(2);
  // dom0 drives the disk on its GSI; the victim gets the NIC (xl.cfg pci=['00:03.0']).
  dom0RegisterGsi(hv, dom0.d, disk.pci.gsi, true);
  const dom0Port = bindPirq(hv, dom0.d, disk.pci.gsi, true).port;
  dom0RegisterGsi(hv, dom0.d, nic.pci.gsi, true);
  pciPassthroughPermission(hv, victim.d, nic.pci, true);
  const vp = physdev(hv, dom0.d, PHYSDEVOP_map_pirq, {
    domid: 1,
    type: MAP_PIRQ_TYPE_GSI,
    index: nic.pci.gsi,
    pirq: -1,
  }).a.pirq as number;
  const victimPort = bindPirq(hv, victim.d, vp, true).port;
  return { machine, platform, disk, nic, hv, pv, dom0, victim, hostile, vp, dom0Port, victimPort };
}

type Host = ReturnType<typeof host>;

/** mmu_update of the hostile domU's L1 entry for a free VA of its bootstrap area. */
function setL1(h: Host, mfn: number, flags: number, k: number): number {
  const { hv, pv, hostile } = h;
  const va = hostile.b.vEnd + (8 + k) * 4096;
  const loc = pv.guestL1Slot(hostile.b.l4Mfn, va);
  const ptr = Math.floor(loc / 512) * 4096 + (loc % 512) * 8;
  return hv.hypercall(hostile.d.vcpus[0], __HYPERVISOR_mmu_update, {
    ureqs: [{ ptr, val: mfn * 4096 + flags }],
    count: 1,
    foreigndom: DOMID_SELF,
  });
}

const flagsArb = fc
  .subarray([_PAGE_RW, _PAGE_PCD, _PAGE_IOMAP])
  .map((bits) => bits.reduce((a, b) => a | b, _PAGE_PRESENT));

const op = fc.oneof(
  fc.record({ k: fc.constant("map-bar"), which: fc.nat(3), page: fc.nat(3), flags: flagsArb }),
  fc.record({ k: fc.constant("map-dom0-ram"), at: fc.nat(511), flags: flagsArb }),
  fc.record({
    k: fc.constant("bind"),
    pirq: fc.integer({ min: -1, max: 260 }),
    share: fc.boolean(),
  }),
  fc.record({
    k: fc.constant("map-pirq"),
    domid: fc.constantFrom(DOMID_SELF, 0, 1),
    index: fc.integer({ min: -1, max: 30 }),
    msi: fc.boolean(),
  }),
  fc.record({
    k: fc.constant("unmap"),
    domid: fc.constantFrom(DOMID_SELF, 0, 1),
    pirq: fc.integer({ min: -1, max: 260 }),
  }),
  fc.record({ k: fc.constant("eoi"), pirq: fc.integer({ min: -1, max: 260 }) }),
  fc.record({ k: fc.constant("apic"), pin: fc.nat(23), value: fc.nat(0x1ffff) }),
  fc.record({ k: fc.constant("setup-gsi"), gsi: fc.nat(23) }),
);

describe("a hostile domU on the dom0 hardware path", () => {
  it("gets Xen's errno for every attack; devices, dom0 and the passthrough domU are untouched", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 20 }), (ops) => {
        const h = host();
        const { hv, machine, platform, disk, nic, dom0, victim, hostile } = h;
        const evtchn = hv.slot("evtchn");
        const irq = hv.slot("irq");
        const bars = [
          disk.pci.barAddress(0) / 4096,
          nic.pci.barAddress(0) / 4096,
          platform.pci.ecamBase / 4096,
          platform.ioapic.base / 4096,
        ];
        const snapshot = () => ({
          mmio: [machine.mmio.reads, machine.mmio.writes],
          disk: { ...disk.stats },
          nic: { ...nic.stats },
          rte: Array.from({ length: platform.ioapic.pins }, (_, p) => platform.ioapic.readRte(p)),
          dom0: [irq.pirqStatus(dom0.d, disk.pci.gsi), evtchn.portInfo(dom0.d, h.dom0Port)],
          victim: [irq.pirqStatus(victim.d, h.vp), evtchn.portInfo(victim.d, h.victimPort)],
          caps: [
            irq.irqAccessPermitted(victim.d, nic.pci.gsi),
            irq.irqAccessPermitted(hostile.d, nic.pci.gsi),
          ],
        });
        const before = snapshot();
        const dom0Frames: number[] = [];
        for (let m = 0; m < hv.frames.nrFrames && dom0Frames.length < 512; m++)
          if (hv.frames.ownerOf(m) === 0) dom0Frames.push(m);
        let k = 0;
        for (const o of ops) {
          let rc = 0;
          switch (o.k) {
            case "map-bar":
              rc = setL1(h, bars[o.which] + (o.which === 2 ? o.page : 0), o.flags, k++ % 64);
              // -EINVAL when a cache bit is set: l1_disallow_mask keeps PCD/PWT from a domain
              // with no I/O capabilities at all, before the frame is looked at.
              expect(rc).toBe((o.flags & _PAGE_PCD) !== 0 ? -EINVAL : -EPERM);
              break;
            case "map-dom0-ram":
              rc = setL1(h, dom0Frames[o.at % dom0Frames.length], o.flags, k++ % 64);
              expect([-EPERM, -EINVAL, -EBUSY]).toContain(rc);
              break;
            case "bind":
              rc = bindPirq(hv, hostile.d, o.pirq, o.share).rc;
              expect([-EPERM, -EINVAL]).toContain(rc);
              break;
            case "map-pirq":
              rc = physdev(hv, hostile.d, PHYSDEVOP_map_pirq, {
                domid: o.domid,
                type: o.msi ? MAP_PIRQ_TYPE_MSI_SEG : MAP_PIRQ_TYPE_GSI,
                index: o.msi ? -1 : o.index,
                pirq: -1,
                bus: 0,
                devfn: (o.index & 31) << 3,
              }).rc;
              expect([-EPERM, -EINVAL, -ESRCH, -ENODEV]).toContain(rc);
              break;
            case "unmap":
              rc = physdev(hv, hostile.d, PHYSDEVOP_unmap_pirq, {
                domid: o.domid,
                pirq: o.pirq,
              }).rc;
              expect([-EPERM, -EINVAL, -ESRCH]).toContain(rc);
              break;
            case "eoi":
              expect(physdev(hv, hostile.d, PHYSDEVOP_eoi, { irq: o.pirq }).rc).toBe(-EINVAL);
              break;
            case "apic":
              rc = physdev(hv, hostile.d, PHYSDEVOP_apic_write, {
                apic_physbase: IO_APIC_DEFAULT_BASE,
                reg: 0x10 + 2 * o.pin,
                value: o.value,
              }).rc;
              expect(rc).toBe(-EPERM);
              break;
            case "setup-gsi":
              rc = physdev(hv, hostile.d, PHYSDEVOP_setup_gsi, {
                gsi: o.gsi,
                triggering: 1,
                polarity: 1,
              }).rc;
              expect(rc).toBe(-EPERM);
              break;
          }
          expect(checkIrqRoutingInvariants(hv)).toEqual([]);
          expect(checkIomemInvariants(hv)).toEqual([]);
        }
        // A stray bind of the victim's pirq number through the raw hypercall.
        hv.hypercall(hostile.d.vcpus[0], __HYPERVISOR_event_channel_op, {
          cmd: EVTCHNOP_bind_pirq,
          pirq: h.vp,
          flags: 1,
        });
        expect(snapshot()).toEqual(before);
        expect(checkFrameInvariants(hv)).toEqual([]);
      }),
      { seed: 1212, numRuns: LONG ? 200 : 12 },
    );
  });

  it("the checkers see what the attacks would have done: a granted BAR maps, a passthrough irq binds", () => {
    // So the property cannot pass by refusing everything: with permission the same calls work.
    const h = host();
    const { hv, nic, hostile } = h;
    pciPassthroughPermission(hv, hostile.d, nic.pci, true);
    expect(setL1(h, nic.pci.barAddress(0) / 4096, _PAGE_PRESENT | _PAGE_RW | _PAGE_IOMAP, 0)).toBe(
      0,
    );
    expect(checkIomemInvariants(hv)).toEqual([]);
    // Taking the permission back while the entry exists is what the checker reports.
    hv.slot("iomem").iomemDenyAccess(
      hostile.d,
      nic.pci.barAddress(0) / 4096,
      nic.pci.barAddress(0) / 4096,
    );
    expect(checkIomemInvariants(hv).some((s) => s.includes("it was not given"))).toBe(true);
    expect(checkIrqRoutingInvariants(hv)).toEqual([]);
  });
});
