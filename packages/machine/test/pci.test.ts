import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  createMachine,
  createPlatform,
  DMA_EACCES,
  DMA_ERANGE,
  DMA_OK,
  DmaPort,
  PCI_BASE_ADDRESS_0,
  PCI_CAP_ID_MSI,
  PCI_CAPABILITY_LIST,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_ECAM_BUS_SIZE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_MASK_64,
  PCI_MSI_PENDING_64,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PCI_VENDOR_ID,
  type PciFunctionSpec,
  pciBdf,
  pciName,
} from "../src/index";
import { MiB, rig } from "./device-helpers";
import { expectMachineError, fcParams } from "./helpers";

const regs = { read: () => 0x1234, write: () => {} };

function spec(over: Partial<PciFunctionSpec> = {}): PciFunctionSpec {
  return {
    name: "t",
    device: 4,
    vendorId: 0x8086,
    deviceId: 0x100e,
    classCode: 0x020000,
    dmaMaskBits: 32,
    interruptPin: 1,
    bars: [{ size: 0x2000, ops: regs }, undefined, { size: 0x4000, is64: true, ops: regs }],
    msi: { is64: true, perVectorMask: true },
    ...over,
  };
}

function bus(ramBytes = 16 * MiB) {
  const m = createMachine({ ramBytes, cpus: 2, seed: 1 });
  const p = createPlatform(m);
  return { m, p };
}

describe("PCI config space", () => {
  it("lays out the type-0 header: IDs, class, pin, capability list", () => {
    const { p } = bus();
    const f = p.pci.addFunction(spec());
    expect(f.readConfig(PCI_VENDOR_ID, 2)).toBe(0x8086);
    expect(f.readConfig(PCI_DEVICE_ID, 2)).toBe(0x100e);
    expect(f.readConfig(0, 4)).toBe(0x100e8086);
    expect(f.readConfig(0x08, 4) >>> 8).toBe(0x020000);
    expect(f.readConfig(PCI_INTERRUPT_PIN, 1)).toBe(1);
    expect(f.readConfig(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST).toBe(PCI_STATUS_CAP_LIST);
    const cap = f.readConfig(PCI_CAPABILITY_LIST, 1);
    expect(f.readConfig(cap, 1)).toBe(PCI_CAP_ID_MSI);
    expect(f.readConfig(cap + 1, 1)).toBe(0);
    const flags = f.readConfig(cap + PCI_MSI_FLAGS, 2);
    expect(flags & PCI_MSI_FLAGS_64BIT).toBe(PCI_MSI_FLAGS_64BIT);
    expect(flags & PCI_MSI_FLAGS_MASKBIT).toBe(PCI_MSI_FLAGS_MASKBIT);
    expect(flags & PCI_MSI_FLAGS_ENABLE).toBe(0);
    expect(f.readConfig(0x100, 4)).toBe(0); // no extended capabilities
    expect(f.bdf).toBe(pciBdf(0, 4, 0));
    expect(pciName(f.bdf)).toBe("0000:00:04.0");
  });

  it("keeps read-only fields and takes writable bits only", () => {
    const { p } = bus();
    const f = p.pci.addFunction(spec());
    f.writeConfig(PCI_VENDOR_ID, 4, 0xdeadbeef);
    expect(f.readConfig(0, 4)).toBe(0x100e8086);
    f.writeConfig(PCI_COMMAND, 2, 0xffff);
    expect(f.readConfig(PCI_COMMAND, 2)).toBe(
      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE,
    );
    f.writeConfig(PCI_INTERRUPT_PIN, 1, 3);
    expect(f.readConfig(PCI_INTERRUPT_PIN, 1)).toBe(1);
    f.writeConfig(PCI_INTERRUPT_LINE, 1, 11);
    expect(f.readConfig(PCI_INTERRUPT_LINE, 1)).toBe(11);
  });

  it("answers bad config accesses with all ones or drops them, never throws", () => {
    const { p } = bus();
    const f = p.pci.addFunction(spec());
    expect(f.readConfig(1, 2)).toBe(0xffffffff); // misaligned
    expect(f.readConfig(0, 3)).toBe(0xffffffff);
    expect(f.readConfig(-4, 4)).toBe(0xffffffff);
    expect(f.readConfig(4096, 4)).toBe(0xffffffff);
    expect(f.readConfig(0.5, 1)).toBe(0xffffffff);
    f.writeConfig(PCI_COMMAND + 1, 2, 0xffff);
    f.writeConfig(300, 4, 1);
    expect(f.readConfig(PCI_COMMAND, 2)).toBe(0);
    expect(p.pci.configRead(pciBdf(0, 9, 0), 0, 4)).toBe(0xffffffff);
    expect(p.pci.configRead(pciBdf(0, 9, 0), 0, 2)).toBe(0xffff);
    p.pci.configWrite(pciBdf(0, 9, 0), 4, 2, 7);
  });

  it("reaches config space through ECAM, absent functions reading all ones", () => {
    const { m, p } = bus();
    const f = p.pci.addFunction(spec({ device: 5, function: 2 }));
    const at = p.pci.ecamBase + (5 << 15) + (2 << 12);
    expect(m.mmio.read(at, 4)).toBe(0x100e8086);
    expect(m.mmio.read(at + 2, 2)).toBe(0x100e);
    expect(m.mmio.read(at, 8)).toBe(0x100e8086);
    expect(m.mmio.hi).toBe(f.readConfig(4, 4));
    m.mmio.write(at + PCI_INTERRUPT_LINE, 1, 9);
    expect(f.readConfig(PCI_INTERRUPT_LINE, 1)).toBe(9);
    expect(m.mmio.read(p.pci.ecamBase + (6 << 15), 4)).toBe(0xffffffff);
    expect(p.pci.ecamBase).toBeGreaterThanOrEqual(m.ram.bytes);
    expect(m.mmio.lookup(p.pci.ecamBase)?.len).toBe(PCI_ECAM_BUS_SIZE);
  });

  it("sizes BARs the PCI way: write all ones, read back the mask", () => {
    const { p } = bus();
    const f = p.pci.addFunction(spec());
    f.writeConfig(PCI_BASE_ADDRESS_0, 4, 0xffffffff);
    expect(f.readConfig(PCI_BASE_ADDRESS_0, 4)).toBe(0xffffe000);
    f.writeConfig(PCI_BASE_ADDRESS_0 + 8, 4, 0xffffffff);
    expect(f.readConfig(PCI_BASE_ADDRESS_0 + 8, 4)).toBe(0xffffc004); // 64-bit type
    f.writeConfig(PCI_BASE_ADDRESS_0 + 12, 4, 0xffffffff);
    expect(f.readConfig(PCI_BASE_ADDRESS_0 + 12, 4)).toBe(0xffffffff);
    expect(f.readConfig(PCI_BASE_ADDRESS_0 + 4, 4)).toBe(0); // no BAR1
    f.writeConfig(PCI_BASE_ADDRESS_0 + 4, 4, 0xffffffff);
    expect(f.readConfig(PCI_BASE_ADDRESS_0 + 4, 4)).toBe(0);
  });

  it("sizes a BAR of 8 GiB through its high dword", () => {
    const { p } = bus();
    const f = p.pci.addFunction(
      spec({
        bars: [{ size: 2 ** 33, is64: true, prefetchable: true, ops: regs }],
        msi: undefined,
      }),
    );
    f.writeConfig(PCI_BASE_ADDRESS_0, 4, 0xffffffff);
    f.writeConfig(PCI_BASE_ADDRESS_0 + 4, 4, 0xffffffff);
    expect(f.readConfig(PCI_BASE_ADDRESS_0, 4)).toBe(0x0000000c);
    expect(f.readConfig(PCI_BASE_ADDRESS_0 + 4, 4)).toBe(0xfffffffe);
    p.pci.assignResources();
    expect(f.barAddress(0) % 2 ** 33).toBe(0);
    expect(f.barRegion(0)?.len).toBe(2 ** 33);
  });

  it("firmware places BARs above RAM, aligned, and decodes them only with memory space on", () => {
    const { m, p } = bus();
    const f = p.pci.addFunction(spec());
    p.pci.assignResources();
    const a0 = f.barAddress(0);
    const a2 = f.barAddress(2);
    expect(a0).toBeGreaterThanOrEqual(m.ram.bytes);
    expect(a0 % 0x2000).toBe(0);
    expect(a2 % 0x4000).toBe(0);
    expect(f.readConfig(PCI_INTERRUPT_LINE, 1)).toBe(f.gsi);
    expect(f.readConfig(PCI_COMMAND, 2) & PCI_COMMAND_MASTER).toBe(0);
    expect(m.mmio.read(a0 + 4, 4)).toBe(0x1234);
    expect(m.ram.validRange(a0, 1)).toBe(false); // the MMIO region is not RAM
    f.writeConfig(PCI_COMMAND, 2, 0);
    expect(f.barRegion(0)).toBeNull();
    expect(m.mmio.read(a0 + 4, 4)).toBe(0xffffffff);
    // Moving a BAR moves its region.
    f.setBarAddress(0, 0xd000_0000);
    f.writeConfig(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    expect(f.barRegion(0)?.base).toBe(0xd000_0000);
    expect(m.mmio.read(0xd000_0000, 4)).toBe(0x1234);
  });

  it("refuses to decode a BAR placed over RAM or over another region, counting it", () => {
    const { m, p } = bus();
    const f = p.pci.addFunction(spec());
    p.pci.assignResources();
    f.writeConfig(PCI_COMMAND, 2, 0);
    f.setBarAddress(0, 0x10_0000); // inside RAM
    f.writeConfig(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    expect(f.barRegion(0)).toBeNull();
    expect(f.barConflicts).toBe(1);
    expect(m.ram.read32(0x10_0000)).toBe(0);
    f.writeConfig(PCI_COMMAND, 2, 0);
    f.setBarAddress(0, p.pci.ecamBase); // over the ECAM
    f.writeConfig(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    expect(f.barRegion(0)).toBeNull();
    expect(f.barConflicts).toBe(2);
  });

  it("places 64-bit BARs of a big machine above 4 GiB and refuses 32-bit ones there", () => {
    const big = bus(5 * 2 ** 30);
    const f = big.p.pci.addFunction(spec({ bars: [{ size: 0x1000, is64: true, ops: regs }] }));
    big.p.pci.assignResources();
    expect(f.barAddress(0)).toBeGreaterThanOrEqual(5 * 2 ** 30);
    const big2 = bus(5 * 2 ** 30);
    big2.p.pci.addFunction(spec({ bars: [{ size: 0x1000, ops: regs }] }));
    expectMachineError(() => big2.p.pci.assignResources(), "PCI_NO_SPACE");
  });

  it("keeps BARs out of the IO-APIC and MSI range", () => {
    const { p } = bus();
    const f = p.pci.addFunction(spec({ bars: [{ size: 2 ** 28, is64: true, ops: regs }] }));
    const g = p.pci.addFunction(
      spec({ device: 6, bars: [{ size: 2 ** 28, is64: true, ops: regs }] }),
    );
    const h = p.pci.addFunction(
      spec({ device: 7, bars: [{ size: 2 ** 28, is64: true, ops: regs }] }),
    );
    p.pci.assignResources();
    for (const x of [f, g, h]) {
      const a = x.barAddress(0);
      expect(a + 2 ** 28 <= 0xfec0_0000 || a >= 2 ** 32).toBe(true);
      expect(x.barRegion(0)).not.toBeNull();
    }
  });

  it("throws typed errors for bad function specs", () => {
    const { p } = bus();
    p.pci.addFunction(spec());
    expectMachineError(() => p.pci.addFunction(spec()), "PCI_SLOT_BUSY");
    expectMachineError(() => p.pci.addFunction(spec({ device: 32 })), "PCI_BAD_CONFIG");
    expectMachineError(() => p.pci.addFunction(spec({ device: 1, function: 8 })), "PCI_BAD_CONFIG");
    expectMachineError(
      () => p.pci.addFunction(spec({ device: 1, bars: [{ size: 3000, ops: regs }] })),
      "PCI_BAD_CONFIG",
    );
    expectMachineError(
      () =>
        p.pci.addFunction(
          spec({
            device: 1,
            bars: [
              { size: 4096, is64: true, ops: regs },
              { size: 4096, ops: regs },
            ],
          }),
        ),
      "PCI_BAD_CONFIG",
    );
    expectMachineError(
      () => p.pci.addFunction(spec({ device: 1, interruptPin: 5 })),
      "PCI_BAD_CONFIG",
    );
    expectMachineError(
      () => p.pci.addFunction(spec({ device: 1, vendorId: 0xffff })),
      "PCI_BAD_CONFIG",
    );
    expectMachineError(
      () => p.pci.addFunction(spec({ device: 1, dmaMaskBits: 12 })),
      "DMA_BAD_MASK",
    );
  });
});

describe("PCI interrupts", () => {
  it("swizzles INTx pins onto GSIs 16-19: the NIC at 00:03.0 INTA# is GSI 19", () => {
    const { nic, disk } = rig();
    expect(nic.pci.gsi).toBe(19);
    expect(disk.pci.gsi).toBe(18);
  });

  it("drives INTx while the condition holds, honours INTx disable, sets the status bit", () => {
    const { m, p } = bus();
    const f = p.pci.addFunction(spec());
    f.setInterrupt(true);
    expect(m.irqs.state(f.gsi).asserted).toBe(true);
    expect(f.readConfig(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT);
    f.writeConfig(PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    expect(m.irqs.state(f.gsi).asserted).toBe(false);
    expect(f.readConfig(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT);
    f.writeConfig(PCI_COMMAND, 2, 0);
    expect(m.irqs.state(f.gsi).asserted).toBe(true);
    f.setInterrupt(false);
    expect(m.irqs.state(f.gsi).asserted).toBe(false);
    expect(f.readConfig(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0);
  });

  it("wires functions that share a GSI as an OR", () => {
    const { m, p } = bus();
    const a = p.pci.addFunction(spec({ device: 4 }));
    const b = p.pci.addFunction(spec({ device: 8 })); // (8 + 1 - 1) & 3 = (4 + 1 - 1) & 3
    expect(a.gsi).toBe(b.gsi);
    a.setInterrupt(true);
    b.setInterrupt(true);
    a.setInterrupt(false);
    expect(m.irqs.state(a.gsi).asserted).toBe(true);
    b.setInterrupt(false);
    expect(m.irqs.state(a.gsi).asserted).toBe(false);
  });

  it("sends an MSI on each rising edge, holds it pending while masked, sends it on unmask", () => {
    const { m, p } = bus();
    const f = p.pci.addFunction(spec());
    const cap = f.msiCap;
    const seen: number[] = [];
    p.apics.lapics[1].onDeliver = (v, apic) => {
      seen.push(v);
      apic.eoi();
    };
    f.writeConfig(PCI_COMMAND, 2, PCI_COMMAND_MASTER);
    f.writeConfig(cap + PCI_MSI_ADDRESS_LO, 4, 0xfee0_1000); // APIC ID 1
    f.writeConfig(cap + PCI_MSI_ADDRESS_HI, 4, 0);
    f.writeConfig(cap + PCI_MSI_DATA_64, 2, 0x41);
    f.writeConfig(cap + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
    f.setInterrupt(true);
    expect(seen).toEqual([0x41]);
    expect(m.irqs.state(f.gsi).asserted).toBe(false); // MSI on: no INTx
    f.setInterrupt(true); // no new edge
    expect(seen).toEqual([0x41]);
    f.setInterrupt(false);
    f.writeConfig(cap + PCI_MSI_MASK_64, 4, 1);
    f.setInterrupt(true);
    expect(seen).toEqual([0x41]);
    expect(f.readConfig(cap + PCI_MSI_PENDING_64, 4)).toBe(1);
    expect(f.msiPended).toBe(1);
    f.writeConfig(cap + PCI_MSI_MASK_64, 4, 0);
    expect(seen).toEqual([0x41, 0x41]);
    expect(f.readConfig(cap + PCI_MSI_PENDING_64, 4)).toBe(0);
    // MSI off again: the held condition now drives INTx.
    f.writeConfig(cap + PCI_MSI_FLAGS, 2, 0);
    expect(m.irqs.state(f.gsi).asserted).toBe(true);
  });

  it("drops an MSI when bus mastering is off or its address is outside the window", () => {
    const { p } = bus();
    const f = p.pci.addFunction(spec());
    const cap = f.msiCap;
    let n = 0;
    p.apics.lapics[0].onDeliver = () => {
      n++;
    };
    f.writeConfig(cap + PCI_MSI_ADDRESS_LO, 4, 0xfee0_0000);
    f.writeConfig(cap + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
    f.setInterrupt(true);
    expect(n).toBe(0);
    expect(f.dma.accessFaults).toBe(1);
    f.setInterrupt(false);
    f.writeConfig(PCI_COMMAND, 2, PCI_COMMAND_MASTER);
    f.writeConfig(cap + PCI_MSI_ADDRESS_HI, 4, 1);
    f.setInterrupt(true);
    expect(n).toBe(0);
    expect(f.dma.faults).toBe(1);
  });

  it("random config writes never throw and never change read-only fields", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            off: fc.integer({ min: -8, max: 4200 }),
            width: fc.constantFrom(1, 2, 3, 4, 8),
            value: fc.integer({ min: 0, max: 0xffffffff }),
          }),
          { maxLength: 60 },
        ),
        (writes) => {
          const { p } = bus();
          const f = p.pci.addFunction(spec());
          for (const w of writes) f.writeConfig(w.off, w.width, w.value);
          for (const w of writes) p.pci.configWrite(f.bdf, w.off, w.width, w.value);
          expect(f.readConfig(0, 4)).toBe(0x100e8086);
          expect(f.readConfig(PCI_INTERRUPT_PIN, 1)).toBe(1);
          expect(f.readConfig(f.msiCap, 1)).toBe(PCI_CAP_ID_MSI);
          expect(f.readConfig(PCI_BASE_ADDRESS_0, 4) & 0xfff).toBe(0);
          expect(f.readConfig(PCI_BASE_ADDRESS_0 + 8, 4) & 0xfff).toBe(4);
        },
      ),
      fcParams(),
    );
  });
});

describe("DmaPort", () => {
  it("refuses with a status: mastering off, above the mask, not RAM; all or nothing", () => {
    const m = createMachine({ ramBytes: 5 * 2 ** 30, cpus: 1, seed: 1 });
    const port = new DmaPort(m.dma, { maskBits: 32 });
    const buf = new Uint8Array([1, 2, 3, 4, 5]);
    expect(port.write(0x1000, buf)).toBe(DMA_OK);
    expect(m.ram.read8(0x1004)).toBe(5);
    expect(port.write(2 ** 32 + 0x1000, buf)).toBe(DMA_ERANGE);
    expect(port.write(2 ** 32 - 2, buf)).toBe(DMA_ERANGE); // straddles the mask
    expect(m.ram.read8(2 ** 32 - 2)).toBe(0);
    expect(port.maskFaults).toBe(2);
    const wide = new DmaPort(m.dma, { maskBits: 64 });
    expect(wide.write(2 ** 32 + 0x1000, buf)).toBe(DMA_OK);
    expect(wide.write(m.ram.bytes - 2, buf)).toBe(-14);
    expect(wide.read(-1, buf)).toBe(DMA_ERANGE);
    expect(wide.read(0.5, buf)).toBe(DMA_ERANGE);
    wide.busMaster = false;
    expect(wide.read(0, buf)).toBe(DMA_EACCES);
    expect(wide.accessFaults).toBe(1);
    expectMachineError(() => new DmaPort(m.dma, { maskBits: 65 }), "DMA_BAD_MASK");
  });

  it("goes through a translator page by page, refusing wholly if one page is refused", () => {
    const m = createMachine({ ramBytes: 16 * MiB, cpus: 1, seed: 1 });
    const port = new DmaPort(m.dma, { maskBits: 64 });
    // Bus pages 0x100000 and 0x101000 map to machine 0x300000 and 0x200000; others refused.
    const map = new Map([
      [0x10_0000, 0x30_0000],
      [0x10_1000, 0x20_0000],
    ]);
    port.translator = { translate: (page) => map.get(page) ?? -1 };
    const data = new Uint8Array(8).fill(7);
    expect(port.write(0x10_0ffc, data)).toBe(DMA_OK);
    expect(m.ram.read32(0x30_0ffc)).toBe(0x07070707);
    expect(m.ram.read32(0x20_0000)).toBe(0x07070707);
    const back = new Uint8Array(8);
    expect(port.read(0x10_0ffc, back)).toBe(DMA_OK);
    expect([...back]).toEqual([...data]);
    expect(port.write(0x10_1ffc, data)).toBe(-14);
    expect(m.ram.read32(0x20_0ffc)).toBe(0);
  });
});
