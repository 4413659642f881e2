/*
 * `xl info [NAME]` as tools/xl/xl_info.c prints it (print_info without -n): uname, physinfo,
 * version info, each as "%-23s: value", memory in MiB from pages. With NAME only the values
 * of the lines whose text starts with NAME are printed (xl's maybe_printf filter).
 *
 * Invariant: pure; lines in xl's order.
 */
import { uint32 } from "../cfmt";
import type { LibxlScheduler, XlPhysInfo } from "../types";
import { schedulerName } from "./sched";

function hex8(n: number): string {
  return uint32(n).toString(16).padStart(8, "0");
}

/** The lines of `xl info`, each with its newline, before NAME filtering. */
export function infoLines(p: XlPhysInfo): string[] {
  const u = p.uname;
  const v = p.version;
  const pagesPerMib = Math.floor((1 << 20) / v.pagesize);
  const mib = (pages: number) => String(Math.floor(pages / pagesPerMib));
  const caps =
    (p.capPv ? " pv" : "") +
    (p.capHvm ? " hvm" : "") +
    (p.capHvm && p.capHvmDirectio ? " hvm_directio" : "") +
    (p.capPv && p.capHvmDirectio ? " pv_directio" : "") +
    (p.capHap ? " hap" : "") +
    (p.capShadow ? " shadow" : "") +
    (p.capIommuHapPtShare ? " iommu_hap_pt_share" : "") +
    (p.capVmtrace ? " vmtrace" : "") +
    (p.capVpmu ? " vpmu" : "") +
    (p.capGnttabV1 ? " gnttab-v1" : "") +
    (p.capGnttabV2 ? " gnttab-v2" : "");
  const khz = uint32(p.cpuKhz);
  const hw = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => hex8(p.hwCap[i] ?? 0)).join(":");
  // free_memory is (free - outstanding) in uint64_t: a negative difference wraps.
  const free = p.freePages - p.outstandingPages;
  const freeMib =
    free >= 0 ? mib(free) : ((2n ** 64n + BigInt(free)) / BigInt(pagesPerMib)).toString();
  const lines: [string, string][] = [
    ["host", u.nodename],
    ["release", u.release],
    ["version", u.version],
    ["machine", u.machine],
    ["nr_cpus", String(p.nrCpus | 0)],
    ["max_cpu_id", String(p.maxCpuId | 0)],
    ["nr_nodes", String(p.nrNodes | 0)],
    ["cores_per_socket", String(p.coresPerSocket | 0)],
    ["threads_per_core", String(p.threadsPerCore | 0)],
    ["cpu_mhz", `${Math.floor(khz / 1000)}.${String(khz % 1000).padStart(3, "0")}`],
    ["hw_caps", hw],
    ["virt_caps", caps],
    ["total_memory", mib(p.totalPages)],
    ["free_memory", freeMib],
    ["sharing_freed_memory", mib(p.sharingFreedPages)],
    ["sharing_used_memory", mib(p.sharingUsedFrames)],
    ["outstanding_claims", mib(p.outstandingPages)],
    ["free_cpus", String(p.freeCpus.length)],
    ["xen_major", String(v.xenVersionMajor)],
    ["xen_minor", String(v.xenVersionMinor)],
    ["xen_extra", v.xenVersionExtra],
    ["xen_version", `${v.xenVersionMajor}.${v.xenVersionMinor}${v.xenVersionExtra}`],
    ["xen_caps", v.capabilities],
    ["xen_scheduler", schedulerName(p.scheduler as LibxlScheduler)],
    ["xen_pagesize", String(uint32(v.pagesize))],
    ["platform_params", `virt_start=0x${v.virtStart}`],
    ["xen_changeset", v.changeset],
    ["xen_commandline", v.commandline],
    ["cc_compiler", v.compiler],
    ["cc_compile_by", v.compileBy],
    ["cc_compile_domain", v.compileDomain],
    ["cc_compile_date", v.compileDate],
    ["build_id", v.buildId],
    ["xend_config_format", "4"],
  ];
  // virt_caps is printed as "virt_caps              :%s" (the words bring their own space).
  return lines.map(([k, val]) =>
    k === "virt_caps" ? `${k.padEnd(23)}:${val}\n` : `${k.padEnd(23)}: ${val}\n`,
  );
}

/**
 * `xl info -n`'s tables for a host of one NUMA node (output_topologyinfo, output_numainfo):
 * every pCPU's core, socket and node (0), the PCI device topology (none known: Xen has no
 * node for a device without ACPI proximity data, so xl says "No device topology data
 * available"), and node 0 holding all memory at distance 10 from itself. Printed with
 * printf, so `xl info -n NAME` prints them whole.
 */
export function numaLines(p: XlPhysInfo): string[] {
  const out = ["cpu_topology           :\n", "cpu:    core    socket     node\n"];
  const threads = Math.max(1, p.threadsPerCore | 0);
  const cores = Math.max(1, p.coresPerSocket | 0);
  const cell = (n: number, w: number) => String(n).padStart(w);
  for (let cpu = 0; cpu <= (p.maxCpuId | 0); cpu++) {
    const core = Math.floor(cpu / threads) % cores;
    const socket = Math.floor(cpu / (threads * cores));
    out.push(`${cell(cpu, 3)}:    ${cell(core, 4)}     ${cell(socket, 4)}     ${cell(0, 4)}\n`);
  }
  out.push("device topology        :\n", "device           node\n");
  out.push("No device topology data available\n");
  out.push("numa_info              :\n", "node:    memsize    memfree    distances\n");
  // size and free are bytes (uint64_t) shifted right by 20.
  const mib = (pages: number) => Math.floor((pages * (p.version.pagesize || 4096)) / 2 ** 20);
  out.push(
    `${cell(0, 4)}:    ${cell(mib(p.totalPages), 6)}     ${cell(mib(p.freePages), 6)}      10\n`,
  );
  return out;
}

/**
 * `xl info` (name undefined) or `xl info NAME`: for NAME, the value (after ": ") of every
 * line that starts with NAME and has ": " after its first colon. `numa` (-n) adds the
 * topology and NUMA tables after the physinfo lines, unfiltered.
 */
export function formatInfo(p: XlPhysInfo, name?: string, numa = false): string {
  const lines = infoLines(p);
  const filter = (ls: string[]) => {
    if (name === undefined) return ls.join("");
    let out = "";
    for (const line of ls) {
      if (!line.startsWith(name)) continue;
      const colon = line.indexOf(":");
      if (colon >= 0 && line[colon + 1] === " ") out += line.slice(colon + 2);
    }
    return out;
  };
  if (!numa) return filter(lines);
  const split = lines.findIndex((l) => l.startsWith("xen_major"));
  return filter(lines.slice(0, split)) + numaLines(p).join("") + filter(lines.slice(split));
}
