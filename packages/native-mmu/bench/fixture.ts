/*
 * The native-mmu bench's inputs, shared by bench/index.ts, the C reference
 * (bench/c/native-ref.c) and test/c-reference.test.ts: paging's bench fixture (its seeded
 * dense and sparse trees and access orders, ../../paging/bench/fixture.ts) copied into the
 * RAM of a booted one-vCPU machine whose vCPU's CR3 is the fixture's root, and the VA each
 * loop translates (native-ref.c's FAST_VA, RR_VA and MISS_VA say the same).
 */

import { fileURLToPath } from "node:url";
import { createHypervisor, type Vcpu } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { buildFixture, type PagingFixture } from "../../paging/bench/fixture";
import { type NativeMmu, nativeMmu } from "../src/index";

export interface NativeFixture {
  /** Paging's fixture over the machine's RAM (what the C reference is fed). */
  fx: PagingFixture;
  mmu: NativeMmu;
  v: Vcpu;
}

/**
 * Boots a machine with native-mmu and one domain, then writes paging's fixture tables into
 * frames 1 .. framesUsed-1 of its RAM (after boot and domain creation, so nothing the
 * hypervisor allocates overwrites them; nothing reads the domain's own pages here).
 */
export function buildNativeFixture(): NativeFixture {
  const src = buildFixture();
  const machine = createMachine({ ramBytes: src.ram.nrFrames * 4096, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
  for (let mfn = 1; mfn < src.framesUsed; mfn++)
    machine.ram.frameWords(mfn, true).set(src.ram.frameWords(mfn, false));
  const v = d.vcpus[0];
  v.cr3Mfn = src.root;
  return { fx: { ...src, ram: machine.ram }, mmu: hv.slot("mmu") as NativeMmu, v };
}

export const NATIVE_C_SOURCE = fileURLToPath(new URL("./c/native-ref.c", import.meta.url));

/** The loops' VAs (hot is a power of two; order's length too). */
export const fastVa = (fx: PagingFixture, i: number): number =>
  fx.vas[(i >>> 10) & (fx.hot - 1)] + (i & 511) * 8;
export const rrVa = (fx: PagingFixture, i: number): number => fx.vas[i & 15] + 8;
export const missVa = (fx: PagingFixture, i: number): number => fx.order[i & (fx.order.length - 1)];
