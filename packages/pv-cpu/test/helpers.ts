import {
  createHypervisor,
  type Domain,
  definePlugin,
  type Hypervisor,
  type Plugin,
  schedCredit,
} from "@hyperlab/core";
import { createMachine, type Machine } from "@hyperlab/machine";
import { pvCpu } from "../src/index";

export const PAGE = 4096;

/**
 * A test MMU: a virtual address is the machine address of a frame the vCPU's domain owns (a
 * direct map), so a test names guest memory by machine address. Frames in `readOnly` fail a
 * write translation.
 */
export function directMmu(readOnly: Set<number> = new Set()): Plugin {
  return definePlugin({
    name: "test-mmu",
    provides: ["mmu"],
    setup(ctx) {
      const hv = ctx.hv;
      const fault = { errorCode: 0, va: 0 };
      ctx.provide("mmu", {
        kind: "pv",
        fault,
        translate(v, va, access) {
          const mfn = Math.floor(va / PAGE);
          const ok =
            hv.frames.validMfn(mfn) &&
            hv.frames.ownerOf(mfn) === v.domain.domid &&
            !((access & 2) !== 0 && readOnly.has(mfn));
          if (!ok) {
            fault.va = va;
            return -1;
          }
          return va;
        },
        flushLocal() {},
        flushOne() {},
      });
    },
  });
}

export interface Rig {
  machine: Machine;
  hv: Hypervisor;
  dom0: Domain;
  domU: Domain;
  /** A few frames of each domain. */
  f0: number[];
  fU: number[];
  readOnly: Set<number>;
}

export function rig(ramBytes = 8 << 20): Rig {
  const machine = createMachine({ ramBytes, cpus: 2, seed: 3 });
  const readOnly = new Set<number>();
  const hv = createHypervisor({
    machine,
    plugins: [schedCredit(), directMmu(readOnly), pvCpu({ commandLine: "dom0_mem=512M" })],
  }).boot();
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 16 });
  const domU = hv.createDomain({ maxVcpus: 2, maxPages: 16 });
  const f0 = [hv.allocDomainPages(dom0), hv.allocDomainPages(dom0)];
  // Two contiguous frames (a buffer may cross from one into the other), then one more.
  const pair = hv.allocDomainPages(domU, 1);
  const fU = [pair, pair + 1, hv.allocDomainPages(domU)];
  return { machine, hv, dom0, domU, f0, fU, readOnly };
}

/** A frame of `d` whose next frame is not `d`'s (a buffer at its end runs into foreign memory). */
export function edgeFrame(hv: Hypervisor, d: Domain): number {
  for (const mfn of hv.frames.framesOf(d.domid)) {
    if (hv.frames.ownerOf(mfn + 1) !== d.domid) return mfn;
  }
  throw new Error("no edge frame");
}

/** Writes `bytes` at machine address `ma`. */
export function poke(m: Machine, ma: number, bytes: ArrayLike<number>): void {
  for (let i = 0; i < bytes.length; i++) m.ram.write8(ma + i, bytes[i]);
}

/** Reads a NUL-terminated string at machine address `ma`. */
export function peekString(m: Machine, ma: number, max = 1024): string {
  let s = "";
  for (let i = 0; i < max; i++) {
    const c = m.ram.read8(ma + i);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** Little-endian u64 (below 2^53) as 8 bytes. */
export function u64le(x: number): number[] {
  const out: number[] = [];
  let lo = x % 2 ** 32;
  let hi = Math.floor(x / 2 ** 32);
  for (let i = 0; i < 4; i++, lo = Math.floor(lo / 256)) out.push(lo & 0xff);
  for (let i = 0; i < 4; i++, hi = Math.floor(hi / 256)) out.push(hi & 0xff);
  return out;
}

export function u16le(x: number): number[] {
  return [x & 0xff, (x >>> 8) & 0xff];
}
