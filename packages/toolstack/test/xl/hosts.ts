// A host described once and given to both sides: as the xl shim's text file (for the real
// xl) and as a MemoryXlHost answering exactly what the shim's stubs answer. fast-check
// generates hostile ones: long names, huge memory, CPU times on exact halves, odd reasons.
import fc from "fast-check";
import { defaultPhysInfo, domInfo, MemoryXlHost } from "../../src/xl/memory-host";
import { LIBXL_SCHEDULER } from "../../src/xl/types";

export interface SpecDomain {
  domid: number;
  name: string;
  cur: number;
  max: number;
  vcpus: number;
  flags: string;
  cpu: number;
  reason: number;
  weight: number;
  cap: number;
  hard?: number[];
  soft?: number[];
  offline: number;
}

export interface HostSpec {
  sched: "credit" | "credit2";
  nrCpus: number;
  cpuKhz: number;
  totalPages: number;
  freePages: number;
  domains: SpecDomain[];
}

/** "0-3,6" for a set of CPUs; "99999" (out of range: none) for the empty set. */
function ranges(cpus: readonly number[]): string {
  if (cpus.length === 0) return "99999";
  const s = [...new Set(cpus)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    out.push(j > i ? `${s[i]}-${s[j]}` : `${s[i]}`);
    i = j + 1;
  }
  return out.join(",");
}

/** The shim's XLSHIM_DOMAINS text for `h`. */
export function shimText(h: HostSpec): string {
  const lines = [
    `@sched ${h.sched}`,
    `@physinfo nr_cpus=${h.nrCpus} max_cpu_id=${h.nrCpus - 1} cpu_khz=${h.cpuKhz} total_pages=${h.totalPages} free_pages=${h.freePages}`,
  ];
  // libxl_list_domain answers in domid order, as Xen's getdomaininfo walk does.
  for (const d of [...h.domains].sort((a, b) => a.domid - b.domid)) {
    let l = `${d.domid} ${d.name} ${d.cur} ${d.max} ${d.vcpus} ${d.flags || "-"} ${d.cpu} reason=${d.reason} weight=${d.weight} cap=${d.cap} offline=${d.offline}`;
    if (d.hard) l += ` hard=${ranges(d.hard)}`;
    if (d.soft) l += ` soft=${ranges(d.soft)}`;
    lines.push(l);
  }
  return `${lines.join("\n")}\n`;
}

/** A MemoryXlHost answering what the shim's stubs answer for `h`. */
export function memoryHost(h: HostSpec): MemoryXlHost {
  const phys = defaultPhysInfo({
    nrCpus: h.nrCpus,
    maxCpuId: h.nrCpus - 1,
    cpuKhz: h.cpuKhz,
    totalPages: h.totalPages,
    freePages: h.freePages,
    scheduler: h.sched === "credit" ? LIBXL_SCHEDULER.CREDIT : LIBXL_SCHEDULER.CREDIT2,
  });
  phys.version = {
    ...phys.version,
    xenVersionExtra: ".7",
    compiler: "gcc",
    compileBy: "xlshim",
    compileDomain: "localdomain",
  };
  phys.uname = {
    sysname: "Linux",
    nodename: "xlshim",
    release: "6.1.0-xlshim",
    version: "#1 SMP",
    machine: "x86_64",
  };
  const host = new MemoryXlHost(phys);
  const nr = h.nrCpus;
  const all = Array.from({ length: nr }, (_, i) => i);
  const inRange = (c: number[] | undefined) => (c === undefined ? all : c.filter((x) => x < nr));
  for (const d of [...h.domains].sort((a, b) => a.domid - b.domid)) {
    const has = (f: string) => d.flags.includes(f);
    const off = Math.min(d.offline, d.vcpus);
    host.add({
      name: d.name,
      info: domInfo(d.domid, {
        running: has("r"),
        blocked: has("b"),
        paused: has("p"),
        shutdown: has("s"),
        dying: has("d"),
        shutdownReason: d.reason,
        currentMemkb: d.cur,
        maxMemkb: d.max,
        cpuTime: d.cpu,
        vcpuOnline: d.vcpus,
        vcpuMaxId: d.vcpus ? d.vcpus - 1 : 0,
      }),
      vcpus: Array.from({ length: d.vcpus }, (_, i) => {
        const online = i < d.vcpus - off;
        return {
          vcpuid: i,
          online,
          cpu: (d.domid + i) % nr,
          running: online && i === 0 && has("r"),
          blocked: online && has("b"),
          vcpuTime: Math.floor(d.cpu / d.vcpus),
          cpumap: inRange(d.hard),
          cpumapSoft: inRange(d.soft),
        };
      }),
      weight: d.weight,
      cap: d.cap,
      disks: [],
      nics: [],
    });
  }
  return host;
}

const nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
const name = fc
  .string({ unit: fc.constantFrom(...nameChars.split("")), minLength: 1, maxLength: 48 })
  .filter((s) => !/^[0-9]+$/.test(s));

/** CPU nanoseconds: often an exact multiple of 0.05 s (the ties of %.1f), sometimes huge. */
const cpuNs = fc.oneof(
  fc.nat(2000).map((k) => k * 50_000_000),
  fc.nat(2000).map((k) => k * 250_000_000),
  fc.nat({ max: 2 ** 40 }),
  fc.constantFrom(0, 1_250_000_000, 2_250_000_000, 2_750_000_000, 999_999_999, 2 ** 50),
);

const cpuSet = (nr: number) =>
  fc.option(fc.uniqueArray(fc.nat(nr + 1), { maxLength: nr + 1 }), { nil: undefined });

export const hostSpec: fc.Arbitrary<HostSpec> = fc
  .record({
    sched: fc.constantFrom("credit" as const, "credit2" as const),
    nrCpus: fc.integer({ min: 1, max: 20 }),
    cpuKhz: fc.integer({ min: 0, max: 5_000_000 }),
    totalPages: fc.integer({ min: 0, max: 2 ** 36 }),
    freePages: fc.integer({ min: 0, max: 2 ** 30 }),
    n: fc.integer({ min: 1, max: 6 }),
  })
  .chain((h) =>
    fc
      .uniqueArray(
        fc.record({
          domid: fc.oneof(fc.nat(40), fc.integer({ min: 0, max: 32767 })),
          name,
          cur: fc.oneof(fc.nat(1 << 22), fc.nat({ max: 2 ** 42 })),
          max: fc.oneof(fc.nat(1 << 22), fc.nat({ max: 2 ** 42 })),
          vcpus: fc.integer({ min: 0, max: 9 }),
          flags: fc.subarray(["r", "b", "p", "s", "d"]).map((a) => a.join("")),
          cpu: cpuNs,
          reason: fc.integer({ min: -1, max: 7 }),
          weight: fc.integer({ min: 1, max: 65535 }),
          cap: fc.integer({ min: 0, max: 900 }),
          hard: cpuSet(h.nrCpus),
          soft: cpuSet(h.nrCpus),
          offline: fc.nat(4),
        }),
        { minLength: h.n, maxLength: h.n, selector: (d) => d.domid },
      )
      .filter((ds) => new Set(ds.map((d) => d.name)).size === ds.length)
      .map((domains) => ({
        sched: h.sched,
        nrCpus: h.nrCpus,
        cpuKhz: h.cpuKhz,
        totalPages: h.totalPages,
        freePages: h.freePages,
        domains,
      })),
  );
