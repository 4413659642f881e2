/*
 * swiotlb-dma benchmarks (pnpm bench): DMA throughput through the Xen DMA ops, direct (the
 * buffer's own machine frames) and bounced (through the swiotlb pool), for 4 KiB and 64 KiB
 * maps; and the time to exchange a 256 KiB pool segment (xen_create_contiguous_region of
 * order 6 below 4 GiB). Each DMA round is map (copy in), a device read of the whole buffer,
 * unmap (copy out), DMA_BIDIRECTIONAL. Times depend on the host; the counts are facts.
 */
import { createHypervisor } from "@hyperlab/core";
import { bootXenPvKernel, DMA_BIDIRECTIONAL, type GuestKernel } from "@hyperlab/guest";
import { createMachine, DmaEngine } from "@hyperlab/machine";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import {
  type ContigCounts,
  IO_TLB_SEGMENT_ORDER,
  swiotlbDma,
  swiotlbOf,
  xenCreateContiguousRegion,
  xenDestroyContiguousRegion,
} from "../src/index";

const NR_PAGES = 16384;

function boot(): GuestKernel {
  const machine = createMachine({ ramBytes: 256 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: NR_PAGES + 64 });
  const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: NR_PAGES });
  return bootXenPvKernel(hv, d, {
    startInfoVa: b.rsi,
    plugins: [swiotlbDma({ poolBytes: 4 << 20 })],
  });
}

const k = boot();
const s = swiotlbOf(k);
const dev = { name: "bench", dmaMaskBits: 32, coherentDmaMaskBits: 32 };
const eng = new DmaEngine(k.ram);
s.initPool();

function rounds(label: string, pfn: number, offset: number, size: number, expectBounce: boolean) {
  const dma = k.ops.dma;
  const buf = new Uint8Array(size);
  const b0 = s.counts.bounces;
  // Warm up, then measure for about 300 ms.
  for (let i = 0; i < 2000; i++) {
    const bus = dma.mapPage(dev, pfn, offset, size, DMA_BIDIRECTIONAL);
    eng.read(bus, buf);
    dma.unmapPage(dev, bus, size, DMA_BIDIRECTIONAL);
  }
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < 300) {
    for (let i = 0; i < 100; i++) {
      const bus = dma.mapPage(dev, pfn, offset, size, DMA_BIDIRECTIONAL);
      eng.read(bus, buf);
      dma.unmapPage(dev, bus, size, DMA_BIDIRECTIONAL);
    }
    n += 100;
    t = performance.now();
  }
  const bounced = s.counts.bounces - b0 > 0;
  if (bounced !== expectBounce) throw new Error(`${label}: expected bounce=${expectBounce}`);
  const mbs = (n * size) / (1 << 20) / ((t - t0) / 1000);
  console.log(
    `${label.padEnd(28)} ${mbs.toFixed(0).padStart(7)} MB/s  ${(((t - t0) / n) * 1000).toFixed(2).padStart(8)} us/round  ${n} rounds`,
  );
}

console.log("swiotlb-dma: DMA through swiotlb-xen (map + device read + unmap, BIDIRECTIONAL)");
// Direct: one frame for 4 KiB; 64 KiB from a coherent allocation (machine-contiguous).
const one = k.allocPage();
rounds("direct 4 KiB", one, 0, 4096, false);
const coherent = k.ops.dma.allocCoherent(dev, 64 << 10);
if (coherent === null) throw new Error("no coherent 64 KiB");
rounds("direct 64 KiB", coherent.pfn, 0, 64 << 10, false);
// Bounced: pages whose frames are not contiguous (the builder's descending P2M).
const run = k.allocHugePage();
rounds("bounced 4 KiB (straddling)", run, 2048, 4096, true);
rounds("bounced 64 KiB", run + 32, 0, 64 << 10, true);

// Exchange of one 256 KiB pool segment below 4 GiB, and back.
const counts: ContigCounts = { exchanges: 0, exchangeFailures: 0 };
const seg = run + 128;
let create = 0;
let destroy = 0;
const N = 200;
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  const rc = xenCreateContiguousRegion(k, seg, IO_TLB_SEGMENT_ORDER, 32, counts);
  const t1 = performance.now();
  if (rc < 0) throw new Error(`exchange failed: ${rc}`);
  if (xenDestroyContiguousRegion(k, seg, IO_TLB_SEGMENT_ORDER, counts) !== 0)
    throw new Error("destroy failed");
  destroy += performance.now() - t1;
  create += t1 - t0;
}
console.log(
  `exchange 256 KiB pool segment  ${((create / N) * 1000).toFixed(1)} us (xen_create_contiguous_region, 64 frames in, one order-6 extent out); back ${((destroy / N) * 1000).toFixed(1)} us; ${counts.exchanges} exchanges, ${counts.exchangeFailures} failed`,
);
const t0 = performance.now();
const k2 = boot();
const s2 = swiotlbOf(k2);
const tb = performance.now();
s2.initPool();
console.log(
  `pool build (4 MiB, 16 segments)  ${(performance.now() - tb).toFixed(1)} ms, ${s2.counts.exchanges} exchanges (${s2.counts.exchangeFailures} at too narrow a width, final width ${s2.poolDmaBits} bits); boot ${(tb - t0).toFixed(0)} ms`,
);

import "./interrupts";
