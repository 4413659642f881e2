import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { createMachine, DMA_EFAULT, PAGE_SIZE } from "../src/index";

it("runs the README example", () => {
  // --- README example: begin ---
  const m = createMachine({ ramBytes: 256 * 2 ** 20, cpus: 2, seed: 42 });

  // Frames: one for a page table; a 64 KiB machine-contiguous DMA buffer below 4 GiB.
  const pt = m.frames.allocFrame();
  const buf = m.frames.allocPages(4, { below: 2 ** 32 });
  m.ram.write64(pt * PAGE_SIZE, 0x0000_1067, 0x8000_0000); // a PTE, as two 32-bit halves

  // A level-triggered interrupt line and a handler (apic-hooks installs the real one).
  const seen: number[] = [];
  m.irqs.configure(10, "level");
  m.irqs.setHandler(10, (gsi) => {
    seen.push(gsi);
    m.irqs.lower(gsi); // the handler services the device...
    m.irqs.eoi(gsi); // ...and acknowledges the line
  });
  m.irqs.unmask(10);

  // A device with one doorbell register: a write makes it DMA a message, then interrupt.
  m.mmio.register({
    name: "demo-nic",
    base: 0xfebf_0000,
    len: 0x1000,
    read: () => 0,
    write: () => {
      m.clock.scheduleAfter(1_000, () => {
        m.dma.write(buf * PAGE_SIZE, new TextEncoder().encode("hello"));
        m.irqs.raise(10);
      });
    },
  });
  m.mmio.write(0xfebf_0000, 4, 1);
  m.clock.runUntil(5_000);

  const message = new TextDecoder().decode(m.ram.readBytes(buf * PAGE_SIZE, 5)); // "hello"
  const badDma = m.dma.write(m.ram.bytes, new Uint8Array(1)); // DMA_EFAULT (-14), counted
  const nobody = m.mmio.read(0xdead_0000, 4); // 0xffffffff: no device there
  const roll = m.prng.fork("disk").nextInt(6); // same seed, same roll, every run
  // --- README example: end ---

  expect(pt).toBe(m.ram.nrFrames - 1);
  expect(buf % 16).toBe(0);
  expect(m.ram.read64hi(pt * PAGE_SIZE)).toBe(0x8000_0000);
  expect(seen).toEqual([10]);
  expect(m.clock.now).toBe(5_000);
  expect(message).toBe("hello");
  expect(badDma).toBe(DMA_EFAULT);
  expect(m.dma.faults).toBe(1);
  expect(nobody).toBe(0xffffffff);
  expect(m.mmio.unclaimedReads).toBe(1);
  expect(roll).toBe(
    createMachine({ ramBytes: 4096, cpus: 1, seed: 42 }).prng.fork("disk").nextInt(6),
  );
  expect(m.irqs.stats(10)).toMatchObject({ raised: 1, delivered: 1, eois: 1 });
});

it("the README shows the same example", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
  const test = readFileSync(new URL(import.meta.url), "utf8");
  const example =
    /--- README example: begin ---\n([\s\S]*?)\n\s*\/\/ --- README example: end/.exec(test)?.[1] ??
    "";
  const norm = (s: string) =>
    s
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("import "));
  expect(norm(block)).toEqual(norm(example));
});
