// readb..writel through the GuestPort: on bare metal they reach the machine's MMIO decoder;
// without a mapping they fault (-1 / false, a kernel error) and never throw. (Under nested
// paging they exit to the host: kvm-io's tests.)
import { describe, expect, it } from "vitest";
import { ioremap, readb, readl, readw, writeb, writel, writew } from "../src/index";
import { nativeBuild } from "./helpers";

const DEV = 0xd000_0000;

describe("MMIO accessors through the port", () => {
  it("reach a device's registers on bare metal, at every width", () => {
    const { hv, kernel: k } = nativeBuild(256, 64 << 20);
    const regs = new Uint8Array(16);
    const writes: [number, number, number][] = [];
    hv.machine.mmio.register({
      name: "test",
      base: DEV,
      len: 4096,
      read: (off, w) => {
        let v = 0;
        for (let i = w - 1; i >= 0; i--) v = v * 256 + regs[(off + i) % 16];
        return v;
      },
      write: (off, w, v) => {
        writes.push([off, w, v]);
        for (let i = 0; i < w; i++) regs[(off + i) % 16] = (v >>> (8 * i)) & 0xff;
      },
    });
    const va = ioremap(k, DEV, 4096);
    expect(writel(k, va, 0x8765_4321)).toBe(true);
    expect(readl(k, va)).toBe(0x8765_4321);
    expect(readw(k, va + 2)).toBe(0x8765);
    expect(readb(k, va + 1)).toBe(0x43);
    expect(writew(k, va + 4, 0xbeef)).toBe(true);
    expect(writeb(k, va + 6, 0x7f)).toBe(true);
    expect(writes).toEqual([
      [0, 4, 0x8765_4321],
      [4, 2, 0xbeef],
      [6, 1, 0x7f],
    ]);
    expect(k.counts.kernelErrors).toBe(0);
  });

  it("fault without a mapping or across a page, counting a kernel error, never throwing", () => {
    const { kernel: k } = nativeBuild(256, 64 << 20);
    expect(readl(k, 0x7777_0000_0000)).toBe(-1);
    expect(writel(k, 0x7777_0000_0000, 1)).toBe(false);
    const va = ioremap(k, DEV, 8192);
    expect(readl(k, va + 4094)).toBe(-1); // straddles two pages
    expect(readl(k, va, 99)).toBe(-1); // no such cpu
    expect(k.counts.kernelErrors).toBe(4);
  });
});
