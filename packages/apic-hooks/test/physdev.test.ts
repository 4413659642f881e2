import {
  DOMID_SELF,
  EBUSY,
  EEXIST,
  EFAULT,
  EINVAL,
  ENODEV,
  ENOSPC,
  EPERM,
  ESRCH,
  MAP_PIRQ_TYPE_GSI,
  MAP_PIRQ_TYPE_MSI,
  MAP_PIRQ_TYPE_MSI_SEG,
  MAP_PIRQ_TYPE_UNKNOWN,
  PHYSDEVOP_alloc_irq_vector,
  PHYSDEVOP_apic_read,
  PHYSDEVOP_apic_write,
  PHYSDEVOP_eoi,
  PHYSDEVOP_irq_status_query,
  PHYSDEVOP_map_pirq,
  PHYSDEVOP_pirq_eoi_gmfn_v1,
  PHYSDEVOP_pirq_eoi_gmfn_v2,
  PHYSDEVOP_setup_gsi,
  PHYSDEVOP_unmap_pirq,
  XENIRQSTAT_needs_eoi,
  XENIRQSTAT_shared,
} from "@hyperlab/abi";
import { isHyperlabError } from "@hyperlab/core";
import { IO_APIC_DEFAULT_BASE } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { bindPirq, boot, checkIrqRouting, dom0RegisterGsi, physdev } from "./helpers";

const gsiMap = (domid: number, index: unknown, pirq: unknown) => ({
  domid,
  type: MAP_PIRQ_TYPE_GSI,
  index,
  pirq,
});

describe("PHYSDEVOP_map_pirq (GSI)", () => {
  it("dom0 maps pirq = gsi, allocates from 16 up with pirq -1, and writes the pirq back", () => {
    const { hv, irq, dom0 } = boot(0);
    const m = physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(DOMID_SELF, 19, 19));
    expect(m.rc).toBe(0);
    expect(m.a.pirq).toBe(19);
    expect(irq.pirqStatus(dom0, 19).irq).toBe(19);
    const a = physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(DOMID_SELF, 5, -1));
    expect(a.rc).toBe(0);
    expect(a.a.pirq).toBe(16);
    // Mapping the same pair again is a no-op success.
    expect(physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(DOMID_SELF, 19, 19)).rc).toBe(0);
  });

  it("error paths: -EINVAL, -EEXIST, -EPERM, -ESRCH, -EFAULT and the 'already mapped' quirk", () => {
    const { hv, irq, dom0, us } = boot(1);
    const map = (d = dom0, args: Record<string, unknown> = {}) =>
      physdev(hv, d, PHYSDEVOP_map_pirq, { ...gsiMap(DOMID_SELF, 10, 10), ...args }).rc;
    expect(map(dom0, { index: 24 })).toBe(-EINVAL); // beyond nr_irqs_gsi
    expect(map(dom0, { index: -2 })).toBe(-EINVAL);
    expect(map(dom0, { pirq: 256 })).toBe(-EINVAL); // beyond nr_pirqs
    expect(map(dom0, { type: MAP_PIRQ_TYPE_UNKNOWN })).toBe(-EINVAL);
    expect(map(dom0, { type: 99 })).toBe(-EINVAL);
    expect(map(dom0, { index: "10" })).toBe(-EFAULT);
    expect(map(dom0, { domid: 77 })).toBe(-ESRCH);
    expect(map(dom0, { domid: 1.5 })).toBe(-EFAULT);
    expect(map()).toBe(0);
    // The irq is mapped to pirq 10: another pirq for it is -EEXIST, pirq -1 is Xen's -EPERM.
    expect(map(dom0, { pirq: 11 })).toBe(-EEXIST);
    expect(map(dom0, { pirq: -1 })).toBe(-EPERM);
    // Pirq 10 is taken by irq 10: mapping irq 12 to it returns 0 and changes nothing.
    expect(map(dom0, { index: 12, pirq: 10 })).toBe(0);
    expect(irq.pirqStatus(dom0, 10).irq).toBe(10);
    expect(irq.irqToPirq(dom0, 12)).toBe(-1);
    // A domU without irq_caps: itself -EPERM, another domain -EPERM (XSM_TARGET).
    expect(map(us[0], { index: 9, pirq: 9 })).toBe(-EPERM);
    expect(map(us[0], { domid: 0, index: 9, pirq: 9 })).toBe(-EPERM);
    expect(checkIrqRouting(irq, [dom0, ...us])).toEqual([]);
  });

  it("dom0 maps a GSI for a passthrough domU, which gains the irq in its irq_caps", () => {
    const { hv, irq, dom0, us } = boot(1);
    const m = physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(1, 11, -1));
    expect(m.rc).toBe(0);
    expect(m.a.pirq).toBe(16);
    expect(irq.irqAccessPermitted(us[0], 11)).toBe(true);
    expect(irq.irqToPirq(us[0], 11)).toBe(16);
    expect(bindPirq(hv, us[0], 16).rc).toBe(0);
    expect(checkIrqRouting(irq, [dom0, ...us])).toEqual([]);
  });

  it("-ENOSPC when no pirq is free", () => {
    // nr_pirqs = nr_irqs_gsi = 24: pirqs 16..23 for GSIs, no MSI range.
    const { hv, irq, dom0 } = boot(0, { nrPirqs: 24 });
    for (let gsi = 0; gsi < 8; gsi++)
      expect(physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(DOMID_SELF, gsi, -1)).a.pirq).toBe(
        16 + gsi,
      );
    expect(physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(DOMID_SELF, 8, -1)).rc).toBe(-ENOSPC);
    expect(irq.irqToPirq(dom0, 8)).toBe(-1);
  });
});

describe("PHYSDEVOP_map_pirq (MSI)", () => {
  it("needs a PCI function with an MSI capability (-ENODEV), allocates the highest pirq", () => {
    const { hv, platform, irq, dom0, us } = boot(1);
    platform.pci.addFunction({
      name: "nic",
      bus: 0,
      device: 3,
      function: 0,
      vendorId: 0x8086,
      deviceId: 0x100e,
      classCode: 0x020000,
      msi: { is64: true, perVectorMask: false },
      dmaMaskBits: 64,
    });
    platform.pci.addFunction({
      name: "legacy",
      device: 5,
      vendorId: 0x8086,
      deviceId: 0x7010,
      classCode: 0x010100,
      dmaMaskBits: 32,
    });
    const msi = (d = dom0, args: Record<string, unknown> = {}) =>
      physdev(hv, d, PHYSDEVOP_map_pirq, {
        domid: DOMID_SELF,
        type: MAP_PIRQ_TYPE_MSI_SEG,
        index: -1,
        pirq: -1,
        bus: 0,
        devfn: 3 << 3,
        entry_nr: 0,
        table_base: 0,
        ...args,
      });
    expect(msi(dom0, { devfn: 4 << 3 }).rc).toBe(-ENODEV);
    expect(msi(dom0, { devfn: 5 << 3 }).rc).toBe(-ENODEV); // no MSI capability
    expect(msi(dom0, { bus: 1 << 16 }).rc).toBe(-ENODEV); // segment 1
    expect(msi(dom0, { index: 3 }).rc).toBe(-EINVAL);
    expect(msi(us[0]).rc).toBe(-EPERM);
    const ok = msi();
    expect(ok.rc).toBe(0);
    expect(ok.a.pirq).toBe(255);
    const x = irq.pirqStatus(dom0, 255).irq;
    expect(x).toBeGreaterThanOrEqual(irq.nrIrqsGsi);
    expect(
      physdev(hv, dom0, PHYSDEVOP_map_pirq, { ...ok.a, type: MAP_PIRQ_TYPE_MSI, pirq: -1 }).a.pirq,
    ).toBe(255);
    expect(physdev(hv, dom0, PHYSDEVOP_unmap_pirq, { domid: DOMID_SELF, pirq: 255 }).rc).toBe(0);
    expect(irq.pirqStatus(dom0, 255).irq).toBe(-1);
    expect(checkIrqRouting(irq, [dom0, ...us])).toEqual([]);
  });
});

describe("PHYSDEVOP_unmap_pirq", () => {
  it("-EINVAL for a bad or unmapped pirq, -EPERM across domains, force-unbinds, revokes", () => {
    const { hv, irq, evtchn, dom0, us } = boot(1);
    const pirq = physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(1, 7, -1)).a.pirq as number;
    const b = bindPirq(hv, us[0], pirq);
    expect(b.rc).toBe(0);
    const unmap = (d: typeof dom0, domid: number, p: unknown) =>
      physdev(hv, d, PHYSDEVOP_unmap_pirq, { domid, pirq: p }).rc;
    expect(unmap(dom0, 1, 300)).toBe(-EINVAL);
    expect(unmap(dom0, 1, 40)).toBe(-EINVAL);
    expect(unmap(dom0, 1, "x")).toBe(-EFAULT);
    expect(unmap(dom0, 9, pirq)).toBe(-ESRCH);
    expect(unmap(us[0], 0, pirq)).toBe(-EPERM);
    expect(unmap(dom0, 1, pirq)).toBe(0);
    expect(irq.isBound(us[0], pirq)).toBe(false);
    expect(irq.sharersOf(7)).toEqual([]);
    expect(irq.irqAccessPermitted(us[0], 7)).toBe(false);
    // The port stays (as in Xen) but nothing reaches it, and closing it later is harmless.
    hv.machine.irqs.pulse(7);
    expect(evtchn.isPending(us[0], b.port)).toBe(false);
    expect(checkIrqRouting(irq, [dom0, ...us])).toEqual([]);
  });
});

describe("PHYSDEVOP_setup_gsi, apic_read/write, alloc_irq_vector", () => {
  it("setup_gsi programs trigger and polarity masked; -EPERM, -EINVAL, -EEXIST", () => {
    const { hv, platform, dom0, us } = boot(1);
    const setup = (d: typeof dom0, gsi: unknown, t = 1, p = 1) =>
      physdev(hv, d, PHYSDEVOP_setup_gsi, { gsi, triggering: t, polarity: p }).rc;
    expect(setup(us[0], 19)).toBe(-EPERM);
    expect(setup(dom0, 24)).toBe(-EINVAL);
    expect(setup(dom0, -1)).toBe(-EINVAL);
    expect(setup(dom0, null)).toBe(-EFAULT);
    expect(setup(dom0, 19)).toBe(0);
    const rte = platform.ioapic.readRte(19).lo;
    expect(rte & (1 << 15)).not.toBe(0); // level
    expect(rte & (1 << 13)).not.toBe(0); // active low
    expect(rte & (1 << 16)).not.toBe(0); // masked
    expect(setup(dom0, 19)).toBe(-EEXIST);
    expect(setup(dom0, 4, 0, 0)).toBe(0);
    expect(platform.ioapic.readRte(4).lo & (1 << 15)).toBe(0);
  });

  it("apic_read returns the real register; apic_write is interpreted, not passed through", () => {
    const { hv, platform, irq, dom0, us } = boot(1);
    const base = IO_APIC_DEFAULT_BASE;
    const rd = (d: typeof dom0, reg: number, physbase = base) =>
      physdev(hv, d, PHYSDEVOP_apic_read, { apic_physbase: physbase, reg, value: 0 });
    expect(rd(us[0], 1).rc).toBe(-EPERM);
    expect(rd(dom0, 1, 0xfec01000).rc).toBe(-EINVAL);
    const ver = rd(dom0, 1);
    expect(ver.rc).toBe(0);
    expect(ver.a.value).toBe(platform.ioapic.readRegister(1));
    const wr = (d: typeof dom0, reg: number, value: number) =>
      physdev(hv, d, PHYSDEVOP_apic_write, { apic_physbase: base, reg, value }).rc;
    // alloc_irq_vector is a dummy: vector = irq.
    const v = physdev(hv, dom0, PHYSDEVOP_alloc_irq_vector, { irq: 20, vector: 0 });
    expect(v.rc).toBe(0);
    expect(v.a.vector).toBe(20);
    expect(physdev(hv, us[0], PHYSDEVOP_alloc_irq_vector, { irq: 20 }).rc).toBe(-EPERM);
    expect(wr(us[0], 0x10 + 2 * 20, 20)).toBe(-EPERM);
    expect(wr(dom0, 0x11 + 2 * 20, 0xff000000)).toBe(0); // high word ignored
    expect(platform.ioapic.readRte(20).hi).toBe(0);
    expect(wr(dom0, 0x10 + 2 * 30, 0)).toBe(-EINVAL); // no pin 30
    // Unmasked, level, vector 20: maps pirq 20 to GSI 20; written masked with Xen's vector.
    expect(wr(dom0, 0x10 + 2 * 20, 20 | (1 << 15))).toBe(0);
    expect(irq.pirqStatus(dom0, 20).irq).toBe(20);
    const lo = platform.ioapic.readRte(20).lo;
    expect(lo & 0xff).not.toBe(20);
    expect(lo & (1 << 16)).not.toBe(0);
    // Edge: written unmasked.
    expect(wr(dom0, 0x10 + 2 * 21, 21)).toBe(0);
    expect(platform.ioapic.readRte(21).lo & (1 << 16)).toBe(0);
    // A pin whose irq is in use: only warns.
    expect(bindPirq(hv, dom0, 20).rc).toBe(0);
    const before = platform.ioapic.readRte(20);
    expect(wr(dom0, 0x10 + 2 * 20, 0x10000)).toBe(0);
    expect(platform.ioapic.readRte(20)).toEqual(before);
  });
});

describe("PHYSDEVOP_eoi, irq_status_query, pirq_eoi_gmfn", () => {
  it("eoi and irq_status_query: -EINVAL for bad, unmapped or unbound pirqs; needs_eoi always", () => {
    const { hv, dom0, us } = boot(1);
    dom0RegisterGsi(hv, dom0, 19, true);
    const eoi = (d: typeof dom0, p: unknown) => physdev(hv, d, PHYSDEVOP_eoi, { irq: p }).rc;
    const q = (d: typeof dom0, p: unknown) =>
      physdev(hv, d, PHYSDEVOP_irq_status_query, { irq: p });
    expect(eoi(dom0, 256)).toBe(-EINVAL);
    expect(eoi(dom0, -1)).toBe(-EINVAL);
    expect(eoi(dom0, 18)).toBe(-EINVAL);
    expect(eoi(dom0, 19)).toBe(-EINVAL); // mapped, not bound
    expect(eoi(dom0, {})).toBe(-EFAULT);
    expect(eoi(us[0], 19)).toBe(-EINVAL); // not its pirq
    expect(q(dom0, 256).rc).toBe(-EINVAL);
    const s = q(dom0, 3);
    expect(s.rc).toBe(0);
    expect(s.a.flags).toBe(XENIRQSTAT_needs_eoi);
    expect(bindPirq(hv, dom0, 19, true).rc).toBe(0);
    expect(eoi(dom0, 19)).toBe(0);
  });

  it("pirq_eoi_gmfn: -EINVAL for a frame not the domain's, -EBUSY for a second; bits by ack type", () => {
    const { hv, irq, dom0, us } = boot(1);
    const page = hv.allocDomainPages(dom0);
    const reg = (d: typeof dom0, gmfn: unknown, v1 = false) =>
      physdev(hv, d, v1 ? PHYSDEVOP_pirq_eoi_gmfn_v1 : PHYSDEVOP_pirq_eoi_gmfn_v2, { gmfn }).rc;
    expect(reg(us[0], page)).toBe(-EINVAL);
    expect(reg(dom0, 1 << 30)).toBe(-EINVAL);
    expect(reg(dom0, -1)).toBe(-EINVAL);
    expect(reg(dom0, "1")).toBe(-EFAULT);
    dom0RegisterGsi(hv, dom0, 19, true);
    dom0RegisterGsi(hv, dom0, 4, false);
    expect(bindPirq(hv, dom0, 19, true).rc).toBe(0);
    expect(reg(dom0, page)).toBe(0);
    expect(reg(dom0, page)).toBe(-EBUSY);
    expect(irq.autoUnmask(dom0)).toBe(false);
    const words = hv.machine.ram.frameWords(page, false);
    const base = hv.machine.ram.frameWordBase(page);
    const bit = (p: number) => (words[base + (p >>> 5)] >>> (p & 31)) & 1;
    expect(bit(19)).toBe(1); // level: needs EOI
    expect(bindPirq(hv, dom0, 4).rc).toBe(0);
    expect(bit(4)).toBe(0); // edge: no EOI
    const other = hv.allocDomainPages(us[0]);
    expect(reg(us[0], other, true)).toBe(0);
    expect(irq.autoUnmask(us[0])).toBe(true);
  });

  it("irq_status_query reports XENIRQSTAT_shared with two sharers", () => {
    const { hv, dom0, us } = boot(1);
    dom0RegisterGsi(hv, dom0, 19, true);
    const p = physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(1, 19, -1)).a.pirq as number;
    expect(bindPirq(hv, dom0, 19, true).rc).toBe(0);
    expect(bindPirq(hv, us[0], p, true).rc).toBe(0);
    const s = physdev(hv, us[0], PHYSDEVOP_irq_status_query, { irq: p });
    expect(s.a.flags).toBe(XENIRQSTAT_needs_eoi | XENIRQSTAT_shared);
  });
});

describe("EVTCHNOP_bind_pirq through the evtchn slot", () => {
  it("-EPERM unmapped, -EEXIST twice, -EBUSY without WILL_SHARE on either side", () => {
    const { hv, irq, dom0, us } = boot(2);
    expect(bindPirq(hv, dom0, 19).rc).toBe(-EPERM); // not mapped
    expect(bindPirq(hv, dom0, 999).rc).toBe(-EINVAL);
    dom0RegisterGsi(hv, dom0, 19, true);
    const p1 = physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(1, 19, -1)).a.pirq as number;
    const p2 = physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(2, 19, -1)).a.pirq as number;
    expect(bindPirq(hv, dom0, 19, false).rc).toBe(0);
    expect(bindPirq(hv, dom0, 19, true).rc).toBe(-EEXIST);
    expect(bindPirq(hv, us[0], p1, true).rc).toBe(-EBUSY); // first did not share
    expect(irq.sharersOf(19)).toEqual([0]);
    const dom0Port = irq.isBound(dom0, 19);
    expect(dom0Port).toBe(true);
    // Close dom0's port, rebind shareable: now a WILL_SHARE binder joins, a non-sharer cannot.
    const port = hv.slot("evtchn").portInfo(dom0, 1);
    expect(port.irq).toBe(19);
    expect(hv.hypercall(dom0.vcpus[0], 32, { cmd: 3, port: 1 })).toBe(0);
    expect(irq.sharersOf(19)).toEqual([]);
    expect(bindPirq(hv, dom0, 19, true).rc).toBe(0);
    expect(bindPirq(hv, us[1], p2, false).rc).toBe(-EBUSY);
    expect(bindPirq(hv, us[0], p1, true).rc).toBe(0);
    expect(irq.sharersOf(19)).toEqual([0, 1]);
    expect(checkIrqRouting(irq, [dom0, ...us])).toEqual([]);
  });
});

describe("irq_caps (toolstack API)", () => {
  it("grant lets a domU map its GSI itself; deny unmaps first; bad irqs throw typed errors", () => {
    const { hv, irq, dom0, us } = boot(1);
    irq.irqPermitAccess(us[0], 9);
    expect(irq.irqAccessPermitted(us[0], 9)).toBe(true);
    // A domU names the GSI only through a pirq it already holds (as in Xen): -EPERM.
    expect(physdev(hv, us[0], PHYSDEVOP_map_pirq, gsiMap(DOMID_SELF, 9, 9)).rc).toBe(-EPERM);
    expect(physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(1, 9, 9)).rc).toBe(0);
    expect(bindPirq(hv, us[0], 9).rc).toBe(0);
    irq.irqDenyAccess(us[0], 9);
    expect(irq.irqToPirq(us[0], 9)).toBe(-1);
    expect(irq.isBound(us[0], 9)).toBe(false);
    expect(irq.irqAccessPermitted(us[0], 9)).toBe(false);
    let err: unknown;
    try {
      irq.irqPermitAccess(us[0], 100000);
    } catch (e) {
      err = e;
    }
    expect(isHyperlabError(err, ["APIC_HOOKS_BAD_IRQ"])).toBe(true);
    expect(String((err as Error).message)).toMatch(/irqs here are/);
    expect(checkIrqRouting(irq, [dom0, ...us])).toEqual([]);
  });

  it("a destroyed domain's pirqs are unbound and unmapped", () => {
    const { hv, irq, dom0, us } = boot(1);
    dom0RegisterGsi(hv, dom0, 19, true);
    const p = physdev(hv, dom0, PHYSDEVOP_map_pirq, gsiMap(1, 19, -1)).a.pirq as number;
    expect(bindPirq(hv, dom0, 19, true).rc).toBe(0);
    expect(bindPirq(hv, us[0], p, true).rc).toBe(0);
    hv.destroyDomain(us[0]);
    expect(irq.sharersOf(19)).toEqual([0]);
    expect(checkIrqRouting(irq, [dom0])).toEqual([]);
  });
});
