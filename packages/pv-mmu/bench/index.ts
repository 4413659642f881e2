/*
 * pv-mmu benchmarks: validated mmu_update of L1 entries, and pinning a page-table tree that
 * maps 4 GiB in 4 KiB pages. Prints rates; numbers depend on the host.
 */
import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  DOMID_SELF,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_UNPIN_TABLE,
} from "@hyperlab/abi";
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, type PvMmu, pvMmu } from "../src/index";

function now(): number {
  return performance.now();
}

function benchMmuUpdate(): void {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const pv: PvMmu = hv.slot("pv-mmu");
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 4096 });
  const b = buildPvDomain(hv, pv, { domain: d, nrPages: 3072 });
  const v = d.vcpus[0];
  // The L1 that covers the first free 2 MiB after the bootstrap region.
  const loc = pv.guestL1Slot(b.l4Mfn, b.vEnd);
  const l1 = Math.floor(loc / 512);
  const spare = Array.from(b.p2m.slice(b.p2m.length - 1024));
  // Two batches of 512 requests mapping different frames into every slot, so that each
  // request validates a new mapping and releases the old one (no fast path).
  const batches = [0, 1].map((k) => {
    const u = new Uint32Array(512 * 4);
    for (let i = 0; i < 512; i++) {
      u[i * 4] = l1 * 4096 + i * 8;
      u[i * 4 + 1] = 0;
      u[i * 4 + 2] = (spare[k * 512 + i] * 4096 + (i % 2 === 0 ? 0x63 : 0x21)) >>> 0;
      u[i * 4 + 3] = 0;
    }
    return u;
  });
  const args = { ureqs: batches[0], count: 512, foreigndom: DOMID_SELF, pdone: 0 };
  const round = (n: number) => {
    for (let r = 0; r < n; r++) {
      args.ureqs = batches[r & 1];
      const rc = hv.hypercall(v, __HYPERVISOR_mmu_update, args);
      if (rc !== 0) throw new Error(`mmu_update failed: ${rc}`);
    }
  };
  round(200); // warm up
  // Best of five: the host is shared, so the fastest run is the least disturbed one.
  const rounds = 2000;
  let best = 0;
  for (let rep = 0; rep < 5; rep++) {
    const t0 = now();
    round(rounds);
    best = Math.max(best, (rounds * 512) / ((now() - t0) / 1000));
  }
  console.log(
    `mmu_update validated L1 entries (batches of 512, best of 5): ${(best / 1e6).toFixed(2)} M/s`,
  );
}

function benchGuestReads(): void {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const pv: PvMmu = hv.slot("pv-mmu");
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 4096 });
  const b = buildPvDomain(hv, pv, { domain: d, nrPages: 3072 });
  const v = d.vcpus[0];
  // Reads over the 4 MiB bootstrap region: 1024 pages, which paging's STLB holds.
  const span = b.vEnd - b.virtBase;
  const run = (n: number) => {
    let x = 0;
    for (let i = 0; i < n; i++) x ^= pv.read(v, b.virtBase + ((i * 4104) % span), 4);
    return x;
  };
  run(200_000);
  let best = 0;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = now();
    run(1_000_000);
    best = Math.max(best, 1_000_000 / ((now() - t0) / 1000));
  }
  console.log(
    `guest u32 reads through the TLB (a new page each read, 4 MiB working set, best of 3): ${(best / 1e6).toFixed(2)} M/s`,
  );
  const seq = (n: number) => {
    let x = 0;
    for (let i = 0; i < n; i++) x ^= pv.read(v, b.virtBase + ((i * 4) % span), 4);
    return x;
  };
  seq(200_000);
  best = 0;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = now();
    seq(4_000_000);
    best = Math.max(best, 4_000_000 / ((now() - t0) / 1000));
  }
  console.log(
    `guest u32 reads through the TLB (sequential, best of 3): ${(best / 1e6).toFixed(2)} M/s`,
  );
}

function benchPin4G(): void {
  const pages = 1 << 20; // 4 GiB of 4 KiB pages
  const machine = createMachine({ ramBytes: (pages + 8192) * 4096, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const d = hv.createDomain({ maxVcpus: 1, maxPages: pages + 4096 });
  const v = d.vcpus[0];
  const ram = machine.ram;
  const data = new Float64Array(pages);
  for (let i = 0; i < pages; i++) data[i] = hv.allocDomainPages(d, 0);
  const t = () => hv.allocDomainPages(d, 0);
  const l4 = t();
  const l3 = t();
  ram.write64(l4 * 4096, ((l3 * 4096) | 0x67) >>> 0, 0);
  for (let g = 0; g < 4; g++) {
    const l2 = t();
    ram.write64(l3 * 4096 + g * 8, (l2 * 4096 + 0x67) >>> 0, Math.floor(l2 / 0x10_0000));
    for (let j = 0; j < 512; j++) {
      const l1 = t();
      ram.write64(l2 * 4096 + j * 8, (l1 * 4096 + 0x67) >>> 0, Math.floor(l1 / 0x10_0000));
      const w = ram.frameWords(l1, true);
      for (let i = 0; i < 512; i++) {
        const m = data[(g * 512 + j) * 512 + i];
        w[i * 2] = ((m % 0x10_0000) * 4096 + 0x63) >>> 0;
        w[i * 2 + 1] = Math.floor(m / 0x10_0000);
      }
    }
  }
  const pin = {
    uops: [{ cmd: MMUEXT_PIN_L4_TABLE, arg1: { mfn: l4 } }],
    count: 1,
    foreigndom: DOMID_SELF,
  };
  const unpin = {
    uops: [{ cmd: MMUEXT_UNPIN_TABLE, arg1: { mfn: l4 } }],
    count: 1,
    foreigndom: DOMID_SELF,
  };
  // Pin (validating the whole tree) and unpin (demoting it) three times; best of three.
  let bestPin = Number.POSITIVE_INFINITY;
  let bestUnpin = Number.POSITIVE_INFINITY;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = now();
    const rc = hv.hypercall(v, __HYPERVISOR_mmuext_op, pin);
    const t1 = now();
    if (rc !== 0) throw new Error(`pin failed: ${rc}`);
    const rc2 = hv.hypercall(v, __HYPERVISOR_mmuext_op, unpin);
    const t2 = now();
    if (rc2 !== 0) throw new Error(`unpin failed: ${rc2}`);
    bestPin = Math.min(bestPin, t1 - t0);
    bestUnpin = Math.min(bestUnpin, t2 - t1);
  }
  console.log(
    `pin L4 mapping 4 GiB in 4 KiB pages (1 + 1 + 4 + 2048 tables, 1048576 entries, best of 3): ${bestPin.toFixed(1)} ms`,
  );
  console.log(`unpin (demote) the same tree: ${bestUnpin.toFixed(1)} ms`);
  console.log(
    `validated L1 entries during the pin: ${(((pages / bestPin) * 1000) / 1e6).toFixed(2)} M/s`,
  );
}

benchMmuUpdate();
benchGuestReads();
benchPin4G();
