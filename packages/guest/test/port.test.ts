import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { EINVAL } from "@hyperlab/abi";
import { createHypervisor, isHyperlabError } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { describe, expect, it } from "vitest";
import {
  createGuestPort,
  type GuestErrorCode,
  PROT_READ,
  PROT_WRITE,
  spawnProcess,
  startNativeKernel,
  startXenPvKernel,
} from "../src/index";

const SRC = join(__dirname, "../src");

function imports(file: string): string[] {
  const text = readFileSync(join(SRC, file), "utf8");
  return [...text.matchAll(/from "([^"]+)"/g)].map((m) => m[1]);
}

function xenHost() {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 2100 });
  const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 2048 });
  return { hv, d, b, port: createGuestPort(hv, d) };
}

const CODES: GuestErrorCode[] = [
  "GUEST_UPCALL_TWICE",
  "GUEST_BAD_PORT",
  "GUEST_BAD_START_INFO",
  "GUEST_BAD_FRAMES",
];

/** The GuestErrorCode `fn` throws ("no error" if it returns). */
function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isHyperlabError(e, CODES)) return e.code;
    throw e;
  }
  return "no error";
}

describe("the guest holds a GuestPort, not the hypervisor", () => {
  it("only host.ts names the Hypervisor; the kernel's modules see the port", () => {
    for (const f of readdirSync(SRC).filter((x) => x.endsWith(".ts"))) {
      const text = readFileSync(join(SRC, f), "utf8");
      const namesHv = /\bHypervisor\b/.test(text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, ""));
      expect(namesHv ? f : "", `${f} names Hypervisor`).toBe(f === "host.ts" ? "host.ts" : "");
    }
  });

  it("no module of the package imports another in a circle", () => {
    const files = readdirSync(SRC).filter((x) => x.endsWith(".ts"));
    const graph = new Map<string, string[]>();
    for (const f of files) {
      graph.set(
        f.replace(/\.ts$/, ""),
        imports(f)
          .filter((s) => s.startsWith("./"))
          .map((s) => s.slice(2)),
      );
    }
    const state = new Map<string, 1 | 2>();
    const cycles: string[] = [];
    const visit = (n: string, path: string[]) => {
      if (state.get(n) === 2) return;
      if (state.get(n) === 1) {
        cycles.push([...path.slice(path.indexOf(n)), n].join(" -> "));
        return;
      }
      state.set(n, 1);
      for (const d of graph.get(n) ?? []) visit(d, [...path, n]);
      state.set(n, 2);
    };
    for (const n of graph.keys()) visit(n, []);
    expect(cycles).toEqual([]);
    expect(graph.get("kernel")).not.toContain("process");
    expect(graph.get("pv-ops")).not.toContain("kernel");
  });

  it("a kernel has no hv or domain, only its port", () => {
    const { port, b } = xenHost();
    const k = startXenPvKernel(port, { startInfoVa: b.rsi });
    expect(k.port).toBe(port);
    expect("hv" in k).toBe(false);
    expect("domain" in k).toBe(false);
  });

  it("hypercalls run only on the guest's own vCPUs: another cpu number is -EINVAL", () => {
    const { port } = xenHost();
    expect(port.hypercall(1, 12, { cmd: 0 })).toBe(-EINVAL);
    expect(port.hypercall(-1, 12, { cmd: 0 })).toBe(-EINVAL);
    expect(port.hypercall(0.5, 12, { cmd: 0 })).toBe(-EINVAL);
    expect(port.vcpuInfoMaddr(0)).toBe(port.sharedInfoMfn * 4096);
    expect(port.vcpuInfoMaddr(32)).toBe(-1);
    expect(port.ioApic).toBeNull(); // a Xen PV guest does not own the IO-APIC
  });

  it("a Xen PV kernel registers its upcall entry once; the host enters it", () => {
    const { port, b } = xenHost();
    expect(port.deliverUpcall(0)).toBe(-1); // nothing registered yet: Xen delivers nothing
    const k = startXenPvKernel(port, { startInfoVa: b.rsi });
    expect(port.deliverUpcall(0)).toBe(0); // entered xen_evtchn_do_upcall: nothing pending
    expect(k.events!.handled[0]).toBe(0);
    expect(port.deliverUpcall(1)).toBe(-1); // not a vCPU of this guest
    expect(code(() => port.registerUpcall(() => 0))).toBe("GUEST_UPCALL_TWICE");
  });

  it("a port is made only for a domain of that hypervisor", () => {
    const { hv } = xenHost();
    const other = xenHost();
    expect(code(() => createGuestPort(hv, other.d))).toBe("GUEST_BAD_PORT");
  });

  it("start_info must name the shared_info page the port has", () => {
    const { port, b } = xenHost();
    // A port whose shared_info is elsewhere than start_info says.
    const lying = { ...port, sharedInfoMfn: port.sharedInfoMfn + 1 };
    expect(code(() => startXenPvKernel(lying, { startInfoVa: b.rsi }))).toBe(
      "GUEST_BAD_START_INFO",
    );
  });

  it("a native kernel runs on the frames its builder gives it, and checks them", () => {
    const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
    const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 600 });
    const port = createGuestPort(hv, d);
    expect(port.ioApic).toBe(machine.irqs);
    expect(code(() => startNativeKernel(port, [1, 2, 3]))).toBe("GUEST_BAD_FRAMES");
    const frames: number[] = [];
    for (let i = 0; i < 512; i++) frames.push(hv.allocDomainPages(d, 0));
    expect(code(() => startNativeKernel(port, [...frames.slice(1), frames[0], frames[0]]))).toBe(
      "GUEST_BAD_FRAMES",
    );
    expect(code(() => startNativeKernel(port, [...frames.slice(1), -1]))).toBe("GUEST_BAD_FRAMES");
    const k = startNativeKernel(port, frames);
    expect(k.totalPages).toBe(512);
    const p = spawnProcess(k);
    const a = p.mmap(8 * 4096, PROT_READ | PROT_WRITE);
    expect(p.store(a, 42)).toBe(true);
    expect(p.load(a)).toBe(42);
    // Every page it used is one of the builder's frames.
    const given = new Set(frames);
    for (let pfn = 0; pfn < k.nrPfns; pfn++) {
      if (k.ptLevel[pfn] !== 0 || k.mapcount[pfn] !== 0) expect(given.has(pfn)).toBe(true);
    }
  });
});
