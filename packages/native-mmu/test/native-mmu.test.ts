import {
  createHypervisor,
  PFEC_page_present,
  PFEC_user_mode,
  PFEC_write_access,
} from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { createPagingMode, tlbGrants } from "@hyperlab/paging";
import { describe, expect, it } from "vitest";
import { type NativeMmu, nativeMmu } from "../src/index";
import { GRANT_PERMS, grantMasks } from "../src/native-mmu";

const P = 1;
const RW = 2;
const US = 4;
const BASE = 0x7f00_0000_0000;

/** A domain whose vCPU 0 runs on hand-written tables mapping 16 pages at BASE to frames 200.. */
function world(leafFlags = P | RW | US) {
  const machine = createMachine({ ramBytes: 8 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
  const d = hv.createDomain({ maxVcpus: 2, maxPages: 64 });
  const ram = machine.ram;
  const idx = (shift: number) => Math.floor(BASE / 2 ** shift) % 512;
  ram.write64(100 * 4096 + idx(39) * 8, 101 * 4096 + (P | RW | US), 0);
  ram.write64(101 * 4096 + idx(30) * 8, 102 * 4096 + (P | RW | US), 0);
  ram.write64(102 * 4096 + idx(21) * 8, 103 * 4096 + (P | RW | US), 0);
  for (let i = 0; i < 16; i++) ram.write64(103 * 4096 + i * 8, (200 + i) * 4096 + leafFlags, 0);
  const v = d.vcpus[0];
  v.cr3Mfn = 100;
  const mmu = hv.slot("mmu") as NativeMmu;
  return { hv, d, v, ram, mmu };
}

describe("native-mmu", () => {
  it("fills core's mmu slot and translates through the kernel's own tables", () => {
    const { mmu, v, hv } = world();
    expect(mmu.kind).toBe("native");
    expect(mmu.translate(v, BASE + 5 * 4096 + 12, PFEC_user_mode)).toBe(205 * 4096 + 12);
    expect(mmu.counts.walks).toBe(1);
    expect(mmu.counts.walkReads).toBe(4);
    expect(mmu.translate(v, BASE + 5 * 4096 + 16, PFEC_user_mode)).toBe(205 * 4096 + 16);
    expect(mmu.counts.tlbHits).toBe(1);
    expect(hv.stats.read("native-mmu", "walk_reads")).toBe(4);
    expect(hv.describe().slots.mmu).toBe("native-mmu");
  });

  it("sets A and D as the walk goes, and a write through a clean entry walks again", () => {
    const { mmu, v, ram } = world();
    mmu.translate(v, BASE, PFEC_user_mode);
    expect(ram.read32(103 * 4096) & 0x60).toBe(0x20);
    mmu.translate(v, BASE, PFEC_user_mode | PFEC_write_access);
    expect(ram.read32(103 * 4096) & 0x60).toBe(0x60);
    expect(mmu.counts.walks).toBe(2);
    mmu.translate(v, BASE + 8, PFEC_user_mode | PFEC_write_access);
    expect(mmu.counts.walks).toBe(2);
  });

  it("faults with the x86 error code: not present, protection, no CR3", () => {
    const { mmu, v, d } = world(P | US);
    expect(mmu.translate(v, BASE + 20 * 4096, PFEC_user_mode)).toBe(-1);
    expect(mmu.fault).toEqual({ va: BASE + 20 * 4096, errorCode: PFEC_user_mode });
    expect(mmu.translate(v, BASE, PFEC_user_mode | PFEC_write_access)).toBe(-1);
    expect(mmu.fault.errorCode).toBe(PFEC_page_present | PFEC_user_mode | PFEC_write_access);
    expect(mmu.translate(d.vcpus[1], BASE, 0)).toBe(-1);
    expect(mmu.counts.faults).toBe(3);
  });

  it("nothing validates: the tables may point anywhere in RAM", () => {
    const { mmu, v, ram } = world();
    ram.write64(103 * 4096, 1000 * 4096 + (P | RW | US), 0);
    mmu.flushLocal(v);
    expect(mmu.translate(v, BASE, PFEC_user_mode)).toBe(1000 * 4096);
  });

  it("keeps stale entries until a flush, as hardware does", () => {
    const { mmu, v, ram } = world();
    expect(mmu.translate(v, BASE, PFEC_user_mode)).toBe(200 * 4096);
    ram.write64(103 * 4096, 300 * 4096 + (P | RW | US), 0);
    expect(mmu.translate(v, BASE, PFEC_user_mode)).toBe(200 * 4096);
    mmu.flushOne(v, BASE);
    expect(mmu.translate(v, BASE, PFEC_user_mode)).toBe(300 * 4096);
    ram.write64(103 * 4096, 301 * 4096 + (P | RW | US), 0);
    mmu.translate(v, BASE + 4096, PFEC_user_mode);
    expect(mmu.translate(v, BASE, PFEC_user_mode)).toBe(300 * 4096);
    mmu.flushLocal(v);
    expect(mmu.translate(v, BASE, PFEC_user_mode)).toBe(301 * 4096);
    expect(mmu.counts.flushes).toBe(1);
    expect(mmu.counts.invlpgs).toBe(1);
  });

  it("counts every access in the TLB model, fast path included", () => {
    const { mmu, v } = world();
    for (let i = 0; i < 1000; i++)
      mmu.translate(v, BASE + (i % 16) * 4096 + (i % 1024) * 4, PFEC_user_mode);
    const c = mmu.tlbOf(v).counters;
    expect(c[0]).toBe(1000); // first-level lookups
    expect(c[1] + 16).toBe(1000); // hits, plus the 16 cold misses
    expect(mmu.counts.tlbHits + mmu.counts.tlbMisses).toBe(1000);
    // Same page over and over: the fast path, still counted as first-level hits.
    for (let i = 0; i < 1000; i++) mmu.translate(v, BASE + i * 4, PFEC_user_mode);
    expect(c[0]).toBe(2000);
    expect(c[1]).toBe(1984);
  });

  it("the fast path never outlives a flush or changes rights", () => {
    const { mmu, v, d, ram } = world(P | US);
    expect(mmu.translate(v, BASE, PFEC_user_mode)).toBe(200 * 4096);
    expect(mmu.translate(v, BASE + 4, PFEC_user_mode | PFEC_write_access)).toBe(-1);
    // A refused write leaves no page behind that would grant the next one (or a read).
    expect(mmu.translate(v, BASE + 4, PFEC_user_mode | PFEC_write_access)).toBe(-1);
    expect(mmu.translate(v, BASE + 4, PFEC_user_mode)).toBe(200 * 4096 + 4);
    expect(mmu.translate(v, BASE + 6, PFEC_user_mode | PFEC_write_access)).toBe(-1);
    expect(mmu.translate(v, BASE + 6, PFEC_user_mode)).toBe(200 * 4096 + 6);
    ram.write64(103 * 4096, 201 * 4096 + (P | RW | US), 0);
    mmu.flushOne(v, BASE);
    expect(mmu.translate(v, BASE + 8, PFEC_user_mode)).toBe(201 * 4096 + 8);
    const w = d.vcpus[1];
    expect(mmu.translate(w, BASE + 12, PFEC_user_mode)).toBe(-1);
  });

  it("takes a TLB shape", () => {
    const machine = createMachine({ ramBytes: 4 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({
      machine,
      plugins: [nativeMmu({ tlb: { levels: [{ size4k: { sets: 1, ways: 2 } }], pwc: false } })],
    }).boot();
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 4 });
    expect((hv.slot("mmu") as NativeMmu).tlbOf(d.vcpus[0]).nrLevels).toBe(1);
  });
});

describe("walkRefSink", () => {
  it("hears the machine address of every entry a walk reads, top level first", () => {
    const machine = createMachine({ ramBytes: 8 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
    const ram = machine.ram;
    ram.write64(100 * 4096, 101 * 4096 + 7, 0);
    ram.write64(101 * 4096, 102 * 4096 + 7, 0);
    ram.write64(102 * 4096, 103 * 4096 + 7, 0);
    for (let i = 0; i < 512; i++) ram.write64(103 * 4096 + i * 8, i * 4096 + 7, 0);
    const v = d.vcpus[0];
    v.cr3Mfn = 100;
    const mmu = hv.slot("mmu") as NativeMmu;
    const heard: number[] = [];
    mmu.walkRefSink = (ma) => heard.push(ma);
    expect(mmu.translate(v, 0x5123, 0)).toBe(0x5123);
    expect(heard).toEqual([100 * 4096, 101 * 4096, 102 * 4096, 103 * 4096 + 5 * 8]);
    // A page-walk-cache hit starts lower: only the entries really read are heard.
    heard.length = 0;
    mmu.translate(v, 0x6000, 0);
    expect(heard).toEqual([103 * 4096 + 6 * 8]);
    expect(hv.stats.read("native-mmu", "walk_reads")).toBe(5);
  });

  it("never answers an address below 4096 from a forgotten fast path (after a fault or a flush)", () => {
    const { mmu, v } = world();
    expect(mmu.translate(v, BASE + 3 * 4096, PFEC_user_mode)).toBe(203 * 4096);
    // A faulting walk forgets the fast path; the null page is not mapped, so it faults too.
    expect(mmu.translate(v, BASE + 20 * 4096, PFEC_user_mode)).toBe(-1);
    expect(mmu.translate(v, 0x10, PFEC_user_mode)).toBe(-1);
    expect(mmu.fault.va).toBe(0x10);
    expect(mmu.translate(v, BASE + 3 * 4096, PFEC_user_mode)).toBe(203 * 4096);
    mmu.flushLocal(v);
    expect(mmu.translate(v, 0, PFEC_user_mode)).toBe(-1);
    expect(mmu.translate(v, 4094, PFEC_user_mode)).toBe(-1);
  });
});

describe("grantMasks", () => {
  it("answers as paging's tlbGrants for every rights and access, in every mode", () => {
    const accesses = [-1, -4, 4.5, 2 ** 31, 2 ** 32 + 6, 2 ** 53, Number.NaN];
    for (let a = 0; a < 64; a++) accesses.push(a);
    for (const wp of [true, false]) {
      for (const nxe of [true, false]) {
        const mode = createPagingMode({ wp, nxe });
        const masks = grantMasks(mode);
        for (let perms = 0; perms < 0x400; perms++) {
          for (const access of accesses) {
            const granted = ((masks[perms & GRANT_PERMS] >> access) & 1) !== 0;
            if (granted !== tlbGrants(perms, access, mode)) {
              expect({ wp, nxe, perms, access, granted }).toBe("tlbGrants' answer");
            }
          }
        }
      }
    }
  });
});
