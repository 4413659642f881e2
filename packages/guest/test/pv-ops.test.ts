import { EFAULT } from "@hyperlab/abi";
import { createHypervisor, definePlugin, HyperlabError, type Vcpu } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { NativeMmu } from "@hyperlab/native-mmu";
import { describe, expect, it } from "vitest";
import {
  bootNativeKernel,
  defineGuestPlugin,
  nativeCpuOps,
  PROT_READ,
  PROT_WRITE,
  spawnProcess,
  xenPvOps,
} from "../src/index";
import { nativeBuild, xenBuild } from "./helpers";

describe("pv_ops composition", () => {
  it("every group has a native default", () => {
    const { kernel } = nativeBuild(256);
    const out = new Uint32Array(4);
    kernel.ops.cpu.cpuid(0x4000_0000, out);
    expect([...out]).toEqual([0, 0, 0, 0]);
    kernel.ops.cpu.cpuid(0, out);
    expect(out[1]).toBe(0x756e6547);
    expect(kernel.ops.irq.saveFl(0)).toBe(0x200);
    kernel.ops.irq.irqDisable(0);
    expect(kernel.ops.irq.saveFl(0)).toBe(0);
    kernel.ops.irq.restoreFl(0, 0x200);
    expect(kernel.ops.irq.saveFl(0)).toBe(0x200);
    kernel.ops.irq.irqDisable(0);
    kernel.ops.irq.irqEnable(0);
    expect(kernel.ops.irq.saveFl(0)).toBe(0x200);
    expect(kernel.ops.time.schedClock(0)).toBe(kernel.port.clock.now);
    expect(kernel.ops.time.stealClock(0)).toBe(0);
    expect(kernel.ops.mmu.readCr3(0)).toBe(kernel.initMm.pgd);
    const desc = kernel.describe();
    expect(desc.platform).toBe("native");
    expect(desc.pvOps).toEqual({
      mmu: "native",
      cpu: "native",
      irq: "native",
      time: "native",
      dma: "native",
      apic: "native",
    });
    expect(desc.plugins).toEqual([]);
    expect(desc.stats.guest.find((s) => s.name === "freePages")!.unit).toBe("pages");
  });

  it("a plugin replaces one group and leaves the others native", () => {
    let seen = 0;
    const counting = defineGuestPlugin({
      name: "counting-cpuid",
      provides: ["cpu"],
      setup(ctx) {
        const native = ctx.group("cpu");
        const c = ctx.stats.counter("cpuid", "calls", "cpuid calls");
        // Everything but cpuid stays the native group's (delegated through the prototype).
        const wrapped = Object.create(native) as typeof native;
        wrapped.cpuid = (leaf, out) => {
          seen++;
          c.value++;
          native.cpuid(leaf, out);
        };
        ctx.provide("cpu", wrapped);
      },
    });
    const { hv } = nativeBuild(256);
    const d = hv.createDomain({ domid: 2, maxVcpus: 1, maxPages: 300 });
    const k = bootNativeKernel(hv, d, { nrPages: 256, plugins: [counting] });
    // Boot asked for leaf 1 once (the direct map's page size: PSE), through the plugin.
    expect(seen).toBe(1);
    k.ops.cpu.cpuid(0, new Uint32Array(4));
    expect(seen).toBe(2);
    expect(k.describe().pvOps.cpu).toBe("counting-cpuid");
    expect(k.describe().pvOps.mmu).toBe("native");
    expect(k.stats.read("counting-cpuid", "cpuid")).toBe(2);
    expect(() => ((k.ops as { cpu: unknown }).cpu = nativeCpuOps())).toThrow();
  });

  it("composition errors name the plugins and say what to do", () => {
    const { hv } = nativeBuild(256);
    const mk = (name: string, provides: ("mmu" | "cpu")[], extra = {}) =>
      defineGuestPlugin({
        name,
        provides,
        setup(ctx) {
          for (const g of provides) ctx.provide(g, ctx.group(g) as never);
        },
        ...extra,
      });
    const boot = (plugins: ReturnType<typeof mk>[], domid: number) =>
      bootNativeKernel(hv, hv.createDomain({ domid, maxVcpus: 1, maxPages: 300 }), {
        nrPages: 256,
        plugins,
      });
    expect(() => boot([mk("a", ["cpu"]), mk("b", ["cpu"])], 3)).toThrow(
      /provided by both "a" and "b"/,
    );
    expect(() => boot([mk("a", ["cpu"]), mk("a", ["mmu"])], 4)).toThrow(HyperlabError);
    const sneaky = defineGuestPlugin({
      name: "sneaky",
      provides: [],
      setup(ctx) {
        ctx.provide("irq", ctx.group("irq"));
      },
    });
    expect(() => boot([sneaky as never], 5)).toThrow(/without naming it in provides/);
    const broken = { name: "broken", provides: [] } as never;
    expect(() => boot([broken], 6)).toThrow(/no setup function/);
  });

  it("Xen PV ops refuse a kernel that did not boot as a Xen PV guest", () => {
    const { hv } = nativeBuild(256);
    const d = hv.createDomain({ domid: 7, maxVcpus: 1, maxPages: 300 });
    expect(() => bootNativeKernel(hv, d, { nrPages: 256, plugins: [xenPvOps()] })).toThrow(
      /needs a kernel booted as a Xen PV guest/,
    );
  });

  it("Xen PV cpu, irq and time go through shared memory", () => {
    const { kernel } = xenBuild(2048);
    const out = new Uint32Array(4);
    kernel.ops.cpu.cpuid(0x4000_0000, out);
    expect(kernel.describe().pvOps).toEqual({
      mmu: "xen-pv-ops",
      cpu: "xen-pv-ops",
      irq: "xen-pv-ops",
      time: "xen-pv-ops",
      dma: "native",
      apic: "native",
    });
    expect(kernel.describe().stats["xen-pv-ops"].map((s) => s.name)).toContain("ptwr_traps");
    const sig = new TextDecoder().decode(new Uint32Array([out[1], out[2], out[3]]));
    expect(sig).toBe("XenVMMXenVMM");
    kernel.ops.cpu.cpuid(1, out);
    expect([...out]).toEqual([0, 0, 0, 0]);
    const x = kernel.xen!;
    // Xen starts vCPUs with events masked: interrupts "disabled".
    expect(kernel.ops.irq.saveFl(0)).toBe(0);
    kernel.ops.irq.irqEnable(0);
    expect(kernel.ram.read8(x.sharedInfoMaddr + 1)).toBe(0);
    expect(kernel.ops.irq.saveFl(0)).toBe(0x200);
    kernel.ops.irq.irqDisable(0);
    expect(kernel.ram.read8(x.sharedInfoMaddr + 1)).toBe(1);
    kernel.ops.irq.restoreFl(0, 0x200);
    expect(kernel.ram.read8(x.sharedInfoMaddr + 1)).toBe(0);
    kernel.ram.write64n(x.sharedInfoMaddr + 48, 123456);
    expect(kernel.ops.time.schedClock(0)).toBe(123456);
    expect(kernel.ops.time.stealClock(0)).toBe(0);
  });

  it("the same program runs on a kernel with a replaced group", () => {
    const { kernel } = nativeBuild(512);
    const p = spawnProcess(kernel);
    const a = p.mmap(4096, PROT_READ | PROT_WRITE);
    expect(p.store(a, 5)).toBe(true);
    expect(p.load(a)).toBe(5);
  });
});

describe("native ops on a backend that intercepts page-table stores (nested, shadow)", () => {
  it("every page-table store goes through the backend's guestStore", () => {
    const stores: number[] = [];
    let refuse = false;
    const recording = definePlugin({
      name: "store-recording-mmu",
      provides: ["mmu"],
      setup(ctx) {
        const mmu = new NativeMmu(ctx.hv) as NativeMmu & {
          guestStore?: (v: Vcpu, gpa: number, lo: number, hi: number) => number;
        };
        const ram = ctx.hv.machine.ram;
        mmu.guestStore = (_v, gpa, lo, hi) => {
          if (refuse) return -EFAULT;
          stores.push(gpa);
          ram.write64(gpa, lo, hi);
          return 0;
        };
        ctx.provide("mmu", mmu);
      },
    });
    const machine = createMachine({ ramBytes: 32 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [recording] }).boot();
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 600 });
    const k = bootNativeKernel(hv, d, { nrPages: 512 });
    expect(stores).toHaveLength(0); // boot tables are built before anything runs
    const p = spawnProcess(k);
    const a = p.mmap(8 * 4096, PROT_READ | PROT_WRITE);
    p.strided(a, 8, 4096, true, 5);
    const n = stores.length;
    expect(n).toBeGreaterThanOrEqual(8 + 3); // 8 PTEs and the pud, pmd and pte links
    const c = p.fork();
    if (typeof c === "number") throw new Error(`fork ${c}`);
    // The child's 8 PTEs and links, and the parent's 8 write-protects.
    expect(stores.length - n).toBeGreaterThanOrEqual(16 + 3);
    expect(c.store(a, 6)).toBe(true);
    expect(p.load(a)).toBe(5);
    refuse = true;
    expect(() => spawnProcess(k)).toThrow(/refused the new address space.*-14/);
    expect(k.lastXenError).toEqual({ op: -1, rc: -EFAULT });
    refuse = false;
    expect(spawnProcess(k).state).toBe("running");
  });
});
