/*
 * Test helpers: a booted Xen-style host with pv-mmu and iomap, a device with a register file
 * in the MMIO map above RAM, PV domains built on it, mmu_update by hand, and the I/O memory
 * invariant checker (no domain maps I/O memory or RAM it was not given).
 */
import {
  __HYPERVISOR_mmu_update,
  _PAGE_PCD,
  _PAGE_PRESENT,
  _PAGE_RW,
  DOMID_SELF,
} from "@hyperlab/abi";
import {
  createHypervisor,
  type Domain,
  FRAME_FREE,
  type Hypervisor,
  PGT_count_mask,
  PGT_l1_page_table,
  PGT_type_mask,
  type Plugin,
} from "@hyperlab/core";
import { createMachine, type MmioWidth } from "@hyperlab/machine";
import { buildPvDomain, type PvBuildResult, type PvMmu, pvMmu } from "@hyperlab/pv-mmu";
import { type Iomap, type IomapOptions, iomap } from "../src/index";

/** The device's register window: one frame at 3.75 GiB, far above the 64 MiB of RAM. */
export const DEV_BASE = 0xf000_0000;
export const DEV_MFN = DEV_BASE / 4096;
/** A second device frame, for read-only tests. */
export const DEV2_MFN = DEV_MFN + 1;
/** A frame above RAM no device answers for. */
export const HOLE_MFN = DEV_MFN + 16;

/** A device with 16 32-bit registers per frame over two frames; it records every access. */
export class RegisterDevice {
  readonly regs = new Uint32Array(2048);
  writes = 0;
  reads = 0;
  read(offset: number, width: MmioWidth): number {
    this.reads++;
    const v = this.regs[offset >>> 2];
    return width === 4 || width === 8 ? v : v & (width === 2 ? 0xffff : 0xff);
  }
  write(offset: number, width: MmioWidth, value: number): void {
    this.writes++;
    this.regs[offset >>> 2] =
      width === 4 || width === 8 ? value : value & (width === 2 ? 0xffff : 0xff);
  }
}

export interface World {
  hv: Hypervisor;
  pv: PvMmu;
  io: Iomap;
  dev: RegisterDevice;
}

export function boot(opts: IomapOptions & { withIomap?: boolean } = {}): World {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 1 });
  const dev = new RegisterDevice();
  machine.mmio.register({
    name: "test regs",
    base: DEV_BASE,
    len: 2 * 4096,
    read: (o, w) => dev.read(o, w),
    write: (o, w, v) => dev.write(o, w, v),
  });
  const plugins: Plugin[] = [pvMmu()];
  if (opts.withIomap !== false) plugins.push(iomap(opts));
  const hv = createHypervisor({ machine, plugins }).boot();
  const io = (opts.withIomap !== false ? hv.slot("iomap") : undefined) as Iomap;
  return { hv, pv: hv.slot("pv-mmu"), io, dev };
}

export interface Guest {
  d: Domain;
  b: PvBuildResult;
}

export function guest(w: World, domid: number, nrPages = 1024): Guest {
  const d = w.hv.createDomain({ domid, maxVcpus: 1, maxPages: nrPages + 256 });
  const b = buildPvDomain(w.hv, w.pv, { domain: d, nrPages });
  return { d, b };
}

/** A VA in g's bootstrap region whose L1 slot is free. */
export function freeVa(g: Guest, k = 0): number {
  return g.b.vEnd + (8 + k) * 4096;
}

/** The L1 slot mapping `va` in g's kernel tables, as a machine address of the entry. */
export function slotOf(w: World, g: Guest, va: number): number {
  const loc = w.pv.guestL1Slot(g.b.l4Mfn, va);
  return Math.floor(loc / 512) * 4096 + (loc % 512) * 8;
}

/** One mmu_update of an L1 entry from g's vCPU 0; Xen's rc. */
export function setL1(
  w: World,
  g: Guest,
  va: number,
  mfn: number,
  flags: number,
  foreign = DOMID_SELF,
): number {
  const args = {
    ureqs: [{ ptr: slotOf(w, g, va), val: mfn * 4096 + flags }],
    count: 1,
    foreigndom: foreign,
  };
  return w.hv.hypercall(g.d.vcpus[0], __HYPERVISOR_mmu_update, args);
}

/** The (lo) flags of the entry mapping `va`. */
export function l1Lo(w: World, g: Guest, va: number): number {
  const loc = w.pv.guestL1Slot(g.b.l4Mfn, va);
  return w.pv.pt.readLo(Math.floor(loc / 512), loc % 512);
}

/**
 * The I/O memory invariant: every present entry of every validated L1 page table owned by `d`
 * names either RAM that `d` may hold a mapping of (its own frame, or a frame of a domain `d`
 * is privileged over), or a non-RAM frame in d's iomem_caps, installed uncached (PCD) and
 * read-only when the frame is in a read-only MMIO range. Returns the violations.
 */
export function iomemViolations(w: World, d: Domain): string[] {
  const out: string[] = [];
  const f = w.hv.frames;
  for (let t = 0; t < f.nrFrames; t++) {
    if (f.ownerOf(t) !== d.domid) continue;
    const ti = f.typeInfo[t];
    if ((ti & PGT_type_mask) >>> 0 !== PGT_l1_page_table || (ti & PGT_count_mask) === 0) continue;
    for (let i = 0; i < 512; i++) {
      const lo = w.pv.pt.readLo(t, i);
      if ((lo & _PAGE_PRESENT) === 0) continue;
      const hi = w.pv.pt.readHi(t, i);
      const mfn = (hi & 0xfffff) * 0x10_0000 + (lo >>> 12);
      if (mfn < f.nrFrames) {
        const owner = f.ownerOf(mfn);
        if (owner === FRAME_FREE) out.push(`L1 ${t}[${i}] maps free frame ${mfn}`);
        else if (owner !== d.domid && !d.isPrivileged) {
          out.push(`d${d.domid} L1 ${t}[${i}] maps RAM frame ${mfn} of d${owner}`);
        }
        continue;
      }
      if (!w.io.iomemAccessPermitted(d, mfn, mfn)) {
        out.push(`d${d.domid} L1 ${t}[${i}] maps I/O frame ${mfn} it was not given`);
      }
      if ((lo & _PAGE_PCD) === 0)
        out.push(`d${d.domid} L1 ${t}[${i}] maps I/O frame ${mfn} cached`);
      if (w.io.isMmioReadOnly(mfn) && (lo & _PAGE_RW) !== 0) {
        out.push(`d${d.domid} L1 ${t}[${i}] maps read-only I/O frame ${mfn} writable`);
      }
    }
  }
  return out;
}
