import { createHypervisor, type Hypervisor } from "@hyperlab/core";
import {
  bootXenPvKernel,
  DMA_MIN_MASK_BITS,
  type DmaDevice,
  type GuestKernel,
  type GuestPlugin,
} from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { type SwiotlbOptions, swiotlbDma } from "../src/index";

export interface Built {
  hv: Hypervisor;
  kernel: GuestKernel;
}

export interface BuildOptions {
  nrPages?: number;
  ramBytes?: number;
  /** pv_ops plugins; default [swiotlbDma(swiotlb)]. */
  plugins?: GuestPlugin[];
  swiotlb?: SwiotlbOptions;
}

/** A Xen machine with one PV domU built by pv-mmu's builder, booted with swiotlbDma(). */
export function xenBuild(o: BuildOptions = {}): Built {
  const nrPages = o.nrPages ?? 4096;
  const machine = createMachine({ ramBytes: o.ramBytes ?? 128 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: nrPages + 16 });
  const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages });
  const kernel = bootXenPvKernel(hv, d, {
    startInfoVa: b.rsi,
    plugins: o.plugins ?? [swiotlbDma(o.swiotlb)],
  });
  return { hv, kernel };
}

/** A device that drives `bits` address bits. */
export function device(bits = 32, name = "dev"): DmaDevice {
  return { name, dmaMaskBits: Math.max(bits, DMA_MIN_MASK_BITS), coherentDmaMaskBits: bits };
}

/** Two pfns next to each other whose machine frames are not (or -1). */
export function nonContiguousPair(k: GuestKernel, free: (pfn: number) => boolean): number {
  const p2m = k.xen!.p2m;
  for (let pfn = 0; pfn + 1 < p2m.length; pfn++) {
    if (free(pfn) && free(pfn + 1) && p2m[pfn + 1] !== p2m[pfn] + 1) return pfn;
  }
  return -1;
}
