/*
 * `xl vcpu-list` as tools/xl/xl_vcpu.c prints it: the header, then per vCPU the name, ids,
 * CPU and state (or "-  --p" offline), seconds as "%9.1f" of a single-precision value, and
 * the hard / soft affinity as xl_utils.c's print_bitmap writes a CPU mask.
 *
 * Invariant: pure.
 */
import { cpuSeconds, fixed1, padEnd, padStart, uint32 } from "../cfmt";
import type { XlVcpuInfo } from "../types";

export const VCPU_HEADER = `${padEnd("Name", 32)} ${padStart("ID", 5)} ${padStart("VCPU", 5)} ${padStart("CPU", 5)} ${padStart("State", 5)} ${padStart("Time(s)", 9)} Affinity (Hard / Soft)\n`;

/**
 * print_bitmap: the CPUs of `cpus` below `nrCpus` as "none", "all" (every one of them set,
 * starting at 0) or ranges "0-3,6".
 */
export function cpuRanges(cpus: readonly number[], nrCpus: number): string {
  const set = new Uint8Array(Math.max(nrCpus, 0));
  for (const c of cpus) if (c >= 0 && c < nrCpus) set[c] = 1;
  let out = "";
  let first = -1;
  let any = false;
  for (let i = 0; i <= nrCpus; i++) {
    const on = i < nrCpus && set[i] === 1;
    if (on && first < 0) first = i;
    else if (!on && first >= 0) {
      if (i === nrCpus && first === 0 && !any) return "all";
      out += `${any ? "," : ""}${first}${i - 1 > first ? `-${i - 1}` : ""}`;
      any = true;
      first = -1;
    }
  }
  return any ? out : "none";
}

/** One vCPU's row. */
export function vcpuRow(
  name: string | undefined,
  domid: number,
  v: XlVcpuInfo,
  nrCpus: number,
): string {
  let r = `${padEnd(name ?? "(null)", 32)} ${padStart(String(uint32(domid)), 5)} ${padStart(String(uint32(v.vcpuid)), 5)}`;
  if (!v.online) r += "    -   --p ";
  else
    r += `${padStart(String(uint32(v.cpu)), 5)}   ${v.running ? "r" : "-"}${v.blocked ? "b" : "-"}- `;
  r += `${padStart(fixed1(cpuSeconds(v.vcpuTime)), 9)}  `;
  r += `${cpuRanges(v.cpumap, nrCpus)} / ${cpuRanges(v.cpumapSoft, nrCpus)}\n`;
  return r;
}
