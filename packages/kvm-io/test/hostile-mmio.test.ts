/*
 * A hostile guest against its VM's whole device space: random loads and stores of every width
 * to the ECAM window, the disk controller's and NIC's BARs (wherever the guest moved them),
 * virtio windows and unclaimed addresses, with ring bases and DMA buffers pointed anywhere.
 * Invariants after every access: nothing throws, no byte of another VM's frames (or of frames
 * no VM owns) changes, and every exit is counted once.
 */
import { LoopbackPort, MemoryDiskImage, NetBridge, VIRTIO_MMIO_SIZE } from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { VirtioBlk, VirtioNet } from "../src/index";
import { kvmBuild } from "./helpers";

const RUNS = process.env.HYPERLAB_LONG ? 300 : 30;
const PAGE = 4096;

function fnv(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

describe("a hostile guest against its VM's device space", () => {
  it("property: no throw, no frame the VM does not own touched, every exit counted", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            region: fc.constantFrom("ecam", "bar", "virtio", "anywhere"),
            off: fc.nat(0xfff),
            width: fc.constantFrom(1, 2, 4, 3, 8),
            write: fc.boolean(),
            value: fc.oneof(
              fc.nat(0xffff_ffff),
              fc.constantFrom(0, 1, 2, 3, 6, 0xffff_ffff),
              fc.constant("victim" as const),
              fc.constant("own" as const),
            ),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        (ops) => {
          const b = kvmBuild(17, 32);
          const victim = b.hv.createDomain({ maxVcpus: 1, maxPages: 16 });
          const theirs: number[] = [];
          const own: number[] = [];
          for (let i = 0; i < 4; i++) {
            own.push(b.hv.allocDomainPages(b.d, 0));
            theirs.push(b.hv.allocDomainPages(victim, 0));
          }
          const ram = b.hv.machine.ram;
          for (const f of theirs) ram.write32(f * PAGE + 8, 0xdead_0000 + f);
          const disk = b.vm.addDisk({ image: new MemoryDiskImage(32) });
          const nic = b.vm.addNic();
          nic.attach(new LoopbackPort(nic));
          b.vm.assignPciResources();
          const vblk = b.vm.addVirtio(
            new VirtioBlk({ image: new MemoryDiskImage(32), queueSize: 8 }),
          );
          const bridge = new NetBridge();
          const vnet = new VirtioNet({ mac: [2, 0, 0, 0, 0, 9], queueSize: 8 });
          vnet.attachPort(bridge.connect(vnet));
          b.vm.addVirtio(vnet);
          // Frames the VM does not own, spread over RAM (free, reserved, the host's): watched too.
          const hostFrames: number[] = [];
          const owner = Int32Array.from(b.hv.frames.ownerKeys, (k) => ~k);
          for (let f = 0; f < owner.length; f += Math.floor(owner.length / 64)) {
            if (owner[f] !== b.d.domid) hostFrames.push(f);
          }
          expect(hostFrames.length).toBeGreaterThan(0);
          const sums = () =>
            [...theirs, ...hostFrames].map((f) => fnv(ram.readBytes(f * PAGE, PAGE)));
          const before = sums();
          const v = b.d.vcpus[0];
          const bases = {
            ecam: b.vm.pci.ecamBase + ((disk.pci.bdf << 12) % (1 << 20)),
            bar: disk.pci.barAddress(0) >= 0 ? disk.pci.barAddress(0) : nic.pci.barAddress(0),
            virtio: vblk.base,
            anywhere: 0xe000_0000,
          };
          let exits = b.vm.counts.mmioExits;
          for (const o of ops) {
            const value =
              o.value === "victim"
                ? theirs[o.off % 4] * PAGE
                : o.value === "own"
                  ? own[o.off % 4] * PAGE
                  : o.value;
            const gpa =
              bases[o.region] + (o.region === "virtio" ? o.off % (2 * VIRTIO_MMIO_SIZE) : o.off);
            const rc = b.kvm.mmioExit(v, 49, gpa, o.width as 4, o.write, value);
            const valid = o.width === 1 || o.width === 2 || o.width === 4;
            if (valid) {
              expect(rc).toBeGreaterThanOrEqual(0);
              exits++;
            } else expect(rc).toBe(-1);
            expect(b.vm.counts.mmioExits).toBe(exits);
          }
          expect(sums()).toEqual(before);
        },
      ),
      { seed: 31, numRuns: RUNS },
    );
  });

  it("a disk ring placed in another VM's frame stops the controller with a ring error; nothing is read or written there", () => {
    const b = kvmBuild(19, 32);
    const victim = b.hv.createDomain({ maxVcpus: 1, maxPages: 16 });
    const f = b.hv.allocDomainPages(victim, 0);
    const ram = b.hv.machine.ram;
    for (let o = 0; o < PAGE; o += 4) ram.write32(f * PAGE + o, 0x0101_0101); // looks like descriptors
    const image = new MemoryDiskImage(32);
    image.bytes.fill(0x33);
    const disk = b.vm.addDisk({ image });
    b.vm.assignPciResources();
    const v = b.d.vcpus[0];
    const w = (gpa: number, width: 2 | 4, value: number) =>
      b.kvm.mmioExit(v, 49, gpa, width, true, value);
    const bar = disk.pci.barAddress(0);
    w(b.vm.pci.ecamBase + (disk.pci.bdf << 12) + 4, 2, 0x6); // memory + bus master
    w(bar + 0x10, 4, f * PAGE); // RING_BASE_LO: the victim's frame
    w(bar + 0x14, 4, 0);
    w(bar + 0x18, 4, 8); // RING_SIZE
    w(bar + 0x34, 4, 3); // INT_MASK
    w(bar + 0x38, 4, 1); // CONTROL: enable
    w(bar + 0x20, 4, 1); // TAIL
    w(bar + 0x24, 4, 1); // DOORBELL
    expect(b.kvm.mmioExit(v, 49, bar + 0x28, 4, false, 0) & 2).toBe(2); // STATUS.RING_ERROR
    expect(disk.stats.ringErrors).toBe(1);
    expect(disk.stats.requests).toBe(0);
    for (let o = 0; o < PAGE; o += 4) expect(ram.read32(f * PAGE + o)).toBe(0x0101_0101);
    expect(b.vm.memory.refused).toBeGreaterThan(0);
    expect(b.vm.ioApic.state(disk.pci.gsi).asserted).toBe(true); // the error interrupt is raised
  });
});
