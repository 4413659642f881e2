import { describe, expect, it } from "vitest";
import { runDom0Demo } from "../dom0";

const find = (lines: string[], prefix: string) => lines.find((l) => l.startsWith(prefix)) ?? "";

describe("examples/dom0: the trace of the dom0 hardware path", () => {
  it("Xen: BAR untranslated with _PAGE_IOMAP, a bounced DMA by machine address, GSI -> pirq -> event -> the same irq", () => {
    const lines = runDom0Demo("xen");
    expect(find(lines, "pci: 0000:00:02.0")).toContain("0x4859:0xd15");
    expect(find(lines, "iomap:")).toMatch(
      /= the BAR's frame, untranslated, _PAGE_IOMAP set; magic 0x4b444c48/,
    );
    const gsi = /GSI (\d+) -> Linux irq (\d+)/.exec(find(lines, "irq:"));
    expect(gsi).not.toBeNull();
    expect(gsi?.[1]).toBe(gsi?.[2]); // the Linux irq of a GSI is the GSI
    expect(find(lines, "irq:")).toContain(`pirq ${gsi?.[1]}`);
    expect(find(lines, "dma:")).toContain(
      "bounced through swiotlb-xen, device gets machine address",
    );
    expect(find(lines, "xen:")).toMatch(
      /-> event channel port \d+, pending true; line in flight until dom0's EOI: true/,
    );
    expect(find(lines, "dom0:")).toBe(
      `dom0: upcall handled 1 event: port ${/port (\d+)/.exec(find(lines, "xen:"))?.[1]} -> irq ${gsi?.[1]} handler`,
    );
    expect(find(lines, "eoi:")).toContain("line in flight false, IO-APIC remote IRR false");
    expect(find(lines, "driver:")).toContain(
      'status OK; buffer holds sectors 7-8: "sector 7: hello from the disk, by DMA."',
    );
    expect(find(lines, "device:")).toMatch(
      /read 2 sectors by DMA to 0x[0-9a-f]+ and raised GSI 18/,
    );
    expect(find(lines, "nic:")).toMatch(
      /MSI irq \d+ \(Xen wrote the message.*sent 1, received 1 frame back/,
    );
  });

  it("native: the same program, physical addresses, the IO-APIC, the same irq number", () => {
    const xen = runDom0Demo("xen");
    const lines = runDom0Demo("native");
    expect(find(lines, "iomap:")).toContain("= the BAR's frame, untranslated; magic 0x4b444c48");
    expect(find(lines, "iomap:")).not.toContain("_PAGE_IOMAP");
    expect(find(lines, "dma:")).toContain("direct, device gets physical address");
    expect(find(lines, "irq:").split(" (")[0]).toBe(find(xen, "irq:").split(" (")[0]);
    expect(find(lines, "cpu:")).toMatch(
      /-> IO-APIC -> irq (\d+) handler; IO-APIC EOI, remote IRR false/,
    );
    expect(find(lines, "driver:")).toContain("status OK; buffer holds sectors 7-8");
    expect(find(lines, "device:")).toMatch(
      /read 2 sectors by DMA to 0x[0-9a-f]+ and raised GSI 18/,
    );
    expect(find(lines, "nic:")).toContain(
      "the kernel wrote the message); sent 1, received 1 frame back",
    );
    expect(lines.some((l) => l.startsWith("xen:"))).toBe(false);
  });
});
