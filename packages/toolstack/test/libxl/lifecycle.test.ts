// Lifecycle on a created domain: pause/unpause, shutdown and reboot through control/shutdown
// and the guest's watcher, xl.cfg(5)'s actions, mem-set, vcpu-pin, sched-credit.
import { existsSync, readFileSync } from "node:fs";
import {
  __HYPERVISOR_memory_op,
  SHUTDOWN_crash,
  SHUTDOWN_poweroff,
  SHUTDOWN_reboot,
} from "@hyperlab/abi";
import { HyperlabError } from "@hyperlab/core";
import { PAGE_OFFSET, PROT_READ, PROT_WRITE, spawnProcess } from "@hyperlab/guest";
import { INVALID_P2M_ENTRY } from "@hyperlab/split-drivers";
import { describe, expect, it } from "vitest";
import {
  destroyDomainRecord,
  domainCreate,
  findDomain,
  freePages,
  libxlHost,
  memSet,
  pauseDomain,
  reapShutdowns,
  requestShutdown,
  schedCreditSet,
  settle,
  unpauseDomain,
  vcpuPin,
  waitShutdown,
} from "../../src/index";
import { coreDump } from "../../src/libxl/lifecycle";
import { config, dir, host, snapshot } from "./world";

describe("pause and unpause", () => {
  it("pause stops the domain, unpause resumes it; unpausing a running domain fails", async () => {
    const h = await host();
    const r = await domainCreate(h, config("p"));
    pauseDomain(h, r);
    expect(r.domain.state).toBe("paused");
    expect(unpauseDomain(h, r)).toBe(true);
    expect(r.domain.state).toBe("running");
    expect(unpauseDomain(h, r)).toBe(false);
  });
});

describe("shutdown, reboot and the on_* actions", () => {
  it("shutdown: the guest sees control/shutdown, shuts down with SHUTDOWN_poweroff, on_poweroff=destroy destroys it", async () => {
    const h = await host();
    const before = await snapshot(h);
    const r = await domainCreate(h, config("s"));
    await requestShutdown(h, r, "poweroff");
    expect(await waitShutdown(h, r)).toBe(true);
    expect(r.domain.shutdownCode).toBe(SHUTDOWN_poweroff);
    expect(r.manage?.last).toBe("poweroff");
    expect(await h.xsd!.xs.read(`/local/domain/${r.domid}/control/shutdown`)).toBe("");
    const ev = await reapShutdowns(h);
    expect(ev).toEqual([
      { domid: r.domid, name: "s", reason: SHUTDOWN_poweroff, action: "destroy" },
    ]);
    expect(h.domains.size).toBe(0);
    expect(await snapshot(h)).toEqual(before);
  });

  it("reboot: on_reboot=restart makes a new domain with the same name and uuid", async () => {
    const h = await host();
    const r = await domainCreate(h, config("rb"));
    await requestShutdown(h, r, "reboot");
    expect(await waitShutdown(h, r)).toBe(true);
    expect(r.domain.shutdownCode).toBe(SHUTDOWN_reboot);
    const [ev] = await reapShutdowns(h);
    expect(ev).toMatchObject({ action: "restart", domid: r.domid });
    const again = findDomain(h, "rb")!;
    expect(again.domid).toBe(ev!.newDomid);
    expect(again.domid).not.toBe(r.domid);
    expect(again.config.uuid).toBe(r.config.uuid);
    expect(again.domain.state).toBe("running");
    expect(h.hv.domain(r.domid)).toBeUndefined();
  });

  it("on_poweroff=preserve leaves it shut down; destroy then frees it", async () => {
    const h = await host();
    const r = await domainCreate(h, config("keep", 'on_poweroff = "preserve"'));
    await requestShutdown(h, r, "poweroff");
    await waitShutdown(h, r);
    expect((await reapShutdowns(h))[0]?.action).toBe("preserve");
    expect(r.domain.state).toBe("shutdown");
    expect(await reapShutdowns(h)).toEqual([]);
    await destroyDomainRecord(h, r);
    expect(h.hv.domain(r.domid)).toBeUndefined();
  });

  it("on_crash=coredump-restart writes the domain's memory and restarts it", async () => {
    const h = await host();
    coreDump.dir = dir;
    const r = await domainCreate(h, config("cr", 'on_crash = "coredump-restart"'));
    await requestShutdown(h, r, "crash");
    await waitShutdown(h, r);
    expect(r.domain.shutdownCode).toBe(SHUTDOWN_crash);
    const [ev] = await reapShutdowns(h);
    expect(ev?.action).toBe("coredump-restart");
    expect(existsSync(ev!.core!)).toBe(true);
    // The core holds the kernel image at pfn 0 (the builder put it at virtBase).
    expect([...readFileSync(ev!.core!).subarray(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]);
    expect(findDomain(h, "cr")?.domid).toBe(ev!.newDomid);
  });

  it("on_reboot=rename-restart preserves the old domain as NAME-%Y%m%dT%H%MZ and starts a fresh one", async () => {
    const h = await host();
    const r = await domainCreate(h, config("rr", 'on_reboot = "rename-restart"'));
    await requestShutdown(h, r, "reboot");
    await waitShutdown(h, r);
    const [ev] = await reapShutdowns(h);
    expect(ev?.action).toBe("rename-restart");
    expect(r.name).toBe("rr-19700101T0000Z");
    expect(r.domain.state).toBe("shutdown");
    expect(await h.xsd!.xs.read(`/local/domain/${r.domid}/name`)).toBe("rr-19700101T0000Z");
    expect(r.config.uuid).not.toBe(findDomain(h, "rr")!.config.uuid);
    expect(findDomain(h, "rr")?.domid).toBe(ev!.newDomid);
  });

  it("a domain whose kernel does not watch control/shutdown: PV control interface not available", async () => {
    const h = await host({ bootGuests: false });
    const r = await domainCreate(h, config("nok"));
    await expect(requestShutdown(h, r, "poweroff")).rejects.toThrow(
      /PV control interface not available/,
    );
  });
});

describe("mem-set, vcpu-pin, sched-credit", () => {
  it("mem-set writes memory/target; above static-max is refused", async () => {
    const h = await host();
    const r = await domainCreate(h, config("m", "maxmem = 16"));
    await memSet(h, r, 6 * 1024);
    expect(await h.xsd!.xs.read(`/local/domain/${r.domid}/memory/target`)).toBe("6144");
    await expect(memSet(h, r, 32 * 1024)).rejects.toThrow(
      /memory_dynamic_max must be less than or equal to memory_static_max/,
    );
  });

  it("vcpu-pin records the hard affinity and moves the vCPU onto it; a vCPU that does not exist is refused", async () => {
    const h = await host();
    const r = await domainCreate(h, config("v", "vcpus = 2"));
    vcpuPin(h, r, 1, [1]);
    expect(r.hardAffinity[1]).toEqual([1]);
    expect(r.domain.vcpus[1]!.processor).toBe(1);
    vcpuPin(h, r, -1, [0]);
    expect(r.domain.vcpus.map((v) => v.processor)).toEqual([0, 0]);
    expect(() => vcpuPin(h, r, 5, [0])).toThrow(HyperlabError);
    expect(() => vcpuPin(h, r, 0, [7])).toThrow(/no valid cpu/);
  });

  it("vcpus=3, maxvcpus=4: the guest brings vCPUs 1 and 2 up as xen_pv_cpu_up does; 3 stays offline", async () => {
    const h = await host();
    const r = await domainCreate(h, config("smp", "vcpus = 3\nmaxvcpus = 4"));
    const home = `/local/domain/${r.domid}`;
    const avail = [];
    for (let i = 0; i < 4; i++) avail.push(await h.xsd!.xs.read(`${home}/cpu/${i}/availability`));
    expect(avail).toEqual(["online", "online", "online", "offline"]);
    const list = (await libxlHost(h).vcpuList(r.domid))!;
    expect(list.vcpus.map((v) => v.online)).toEqual([true, true, true, false]);
    // Two pCPUs shared with dom0: the scheduler runs some of the three at once.
    const running = list.vcpus.filter((v) => v.running).length;
    expect(running).toBeGreaterThanOrEqual(1);
    expect(running).toBeLessThanOrEqual(2);
    const sched = h.hv.slot("sched");
    const clock = h.hv.machine.clock;
    clock.runUntil(clock.now + 300_000_000);
    for (const v of r.domain.vcpus.slice(0, 3)) {
      expect(sched.vcpuRuntime(v)).toBeGreaterThan(0);
      expect(r.kernel!.registeredVcpuInfo[v.vcpuId]! > 0 || v.vcpuId === 0).toBe(true);
    }
    expect(r.domain.vcpus[3]!.state).toBe("offline");
    expect(r.domain.vcpus.map((v) => v.state).filter((s) => s === "offline")).toHaveLength(1);
    let text = "";
    for (let i = 0; i < 200 && !text.includes("Brought up"); i++) {
      await settle();
      text = new TextDecoder().decode(r.stream!.output());
    }
    expect(text).toContain("smp: Bringing up secondary CPUs ...\nsmp: Brought up 1 node, 3 CPUs\n");
    // xl list counts the online vCPUs.
    const info = (await libxlHost(h).listDomains()).find((d) => d.domid === r.domid)!;
    expect(info.vcpuOnline).toBe(3);
  });

  it("cpus= pins vCPUs so the scheduler never runs them elsewhere; vcpu-pin moves them, soft included", async () => {
    const h = await host();
    const r = await domainCreate(h, config("pin", 'vcpus = 2\ncpus = "1"'));
    const sched = h.hv.slot("sched");
    const clock = h.hv.machine.clock;
    const ranOn = (cpu: number) => {
      const cur = sched.curr(cpu);
      return cur !== null && cur.domain === r.domain;
    };
    let seen0 = 0;
    let seen1 = 0;
    for (let t = 0; t < 200; t++) {
      clock.runUntil(clock.now + 1_000_000);
      if (ranOn(0)) seen0++;
      if (ranOn(1)) seen1++;
    }
    expect(seen0).toBe(0);
    expect(seen1).toBeGreaterThan(150);
    for (const v of r.domain.vcpus) expect(sched.vcpuRuntime(v)).toBeGreaterThan(40_000_000);
    let list = (await libxlHost(h).vcpuList(r.domid))!;
    expect(list.vcpus.map((v) => v.cpumap)).toEqual([[1], [1]]);
    // Pinned to pCPU 0: the running one leaves pCPU 1 at once.
    vcpuPin(h, r, -1, [0], [0]);
    expect(ranOn(1)).toBe(false);
    expect(ranOn(0)).toBe(true);
    list = (await libxlHost(h).vcpuList(r.domid))!;
    expect(list.vcpus.map((v) => [v.cpumap, v.cpumapSoft])).toEqual([
      [[0], [0]],
      [[0], [0]],
    ]);
    // Only the soft mask: the hard one stays.
    vcpuPin(h, r, 1, null, [1]);
    expect(sched.affinity(r.domain.vcpus[1]!)).toEqual({ hard: [0], soft: [1] });
    expect(() => vcpuPin(h, r, 0, [2, 9])).toThrow(/no valid cpu in the affinity mask/);
    expect(() => vcpuPin(h, r, 0, null, [-1])).toThrow(/Setting vcpu affinity: Invalid argument/);
    expect(sched.affinity(r.domain.vcpus[0]!).hard).toEqual([0]);
  });

  it("cpus= and cpu_weight/cap from the config reach the scheduler; sched-credit changes them", async () => {
    const h = await host();
    const r = await domainCreate(
      h,
      config("w", 'vcpus = 2\ncpus = "1"\ncpu_weight = 512\ncap = 50'),
    );
    expect(h.hv.slot("sched").getParams(r.domain)).toEqual({ weight: 512, cap: 50 });
    expect(r.domain.vcpus.map((v) => v.processor)).toEqual([1, 1]);
    schedCreditSet(h, r, { weight: 128 });
    expect(h.hv.slot("sched").getParams(r.domain).weight).toBe(128);
    expect(() => schedCreditSet(h, r, { weight: 0 })).toThrow(HyperlabError);
  });
});

describe("the balloon", () => {
  it("mem-set down: the guest gives pages back with decrease_reservation; up: takes them with populate_physmap", async () => {
    const h = await host();
    const r = await domainCreate(h, config("b", "maxmem = 8"));
    const k = r.kernel!;
    const pages0 = r.domain.totPages;
    const free0 = freePages(h.hv);
    const decrease0 = h.hv.hypercallCount(__HYPERVISOR_memory_op);
    await memSet(h, r, 6 * 1024);
    for (let i = 0; i < 50 && r.balloon!.currentPages !== 6 * 256; i++)
      await new Promise((res) => setImmediate(res));
    expect(r.balloon!.currentPages).toBe(6 * 256);
    expect(r.domain.totPages).toBe(pages0 - 512);
    expect(freePages(h.hv)).toBe(free0 + 512);
    expect(h.hv.hypercallCount(__HYPERVISOR_memory_op)).toBeGreaterThan(decrease0);
    // Ballooned pfns have no frame and no direct-map entry.
    const pfn = r.balloon!.ballooned[0]!;
    expect(k.xen!.p2m[pfn]).toBe(INVALID_P2M_ENTRY);
    expect(
      h.hv.slot("mmu").translate(r.domain.vcpus[0]!, PAGE_OFFSET + pfn * 4096, 0),
    ).toBeLessThan(0);
    // A program still runs in what is left.
    const p = spawnProcess(k);
    const buf = p.mmap(64 * 4096, PROT_READ | PROT_WRITE);
    p.writeRange(buf, 64 * 4096, 5);
    await memSet(h, r, 8 * 1024);
    for (let i = 0; i < 50 && r.balloon!.currentPages !== 8 * 256; i++)
      await new Promise((res) => setImmediate(res));
    expect(r.balloon!.currentPages).toBe(8 * 256);
    expect(r.domain.totPages).toBe(pages0);
    expect(k.xen!.p2m[pfn]).toBeGreaterThanOrEqual(0);
    expect(k.xen!.m2p[k.xen!.p2m[pfn]!]).toBe(pfn);
    await destroyDomainRecord(h, r);
    expect(h.hv.domain(r.domid)).toBeUndefined();
  });
});

describe("the KVM-style host", () => {
  it("creates a nested-paging domain running the native kernel, pauses and destroys it; xenstore verbs are refused", async () => {
    const h = await host({ kind: "kvm" });
    const free0 = freePages(h.hv);
    const r = await domainCreate(h, config("vm"));
    expect(r.domain.state).toBe("running");
    expect(r.kernel?.platform.kind).toBe("native");
    const p = spawnProcess(r.kernel!);
    const buf = p.mmap(16 * 4096, PROT_READ | PROT_WRITE);
    p.store(buf, 99);
    expect(p.load(buf)).toBe(99);
    pauseDomain(h, r);
    expect(r.domain.state).toBe("paused");
    await expect(memSet(h, r, 4096)).rejects.toThrow(/KVM-style host: it has no xenstore/);
    await destroyDomainRecord(h, r);
    expect(freePages(h.hv)).toBe(free0);
  });
});
