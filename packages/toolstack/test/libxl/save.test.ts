// Save and restore: a program's memory survives into a new domain with different machine
// frames; page tables go to the file as pfns; bad files are refused and leave nothing behind.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HyperlabError } from "@hyperlab/core";
import { type GuestKernel, PROT_READ, PROT_WRITE, Process, spawnProcess } from "@hyperlab/guest";
import { describe, expect, it } from "vitest";
import {
  domainCreate,
  domainRestore,
  domainSave,
  findDomain,
  freePages,
  libxlHost,
  memSet,
} from "../../src/index";
import { config, dir, host, snapshot } from "./world";

describe("save and restore", () => {
  it("a guest program continues after restore into different frames, with the same checksum", async () => {
    const h = await host();
    // Another domain first, so the restored one cannot land on the same frames.
    const r = await domainCreate(h, config("sr", "", ["memory=10"]));
    const k = r.kernel!;
    const init = spawnProcess(k);
    const len = 64 * 4096;
    const buf = init.mmap(len, PROT_READ | PROT_WRITE);
    for (let i = 0; i < 64; i++) init.store(buf + i * 4096 + (i % 7) * 8, 1000 + i * 37);
    // The checksum of one pass over the range (reads add to it).
    const pass = (p: Process) => {
      const c0 = p.checksum;
      p.readRange(buf, len);
      return (p.checksum - c0) >>> 0;
    };
    const before = pass(init);
    expect(before).not.toBe(0);
    const checksum = init.checksum;
    const oldFrames = new Set(Array.from(r.kernel!.xen!.p2m));
    const file = join(dir, "sr.save");
    const s = await domainSave(h, r, file);
    expect(s.pages).toBe(10 * 256);
    expect(h.hv.domain(r.domid)).toBeUndefined();
    const filler = await domainCreate(h, config("filler"));
    const back = await domainRestore(h, file);
    expect(back.domid).not.toBe(r.domid);
    expect(back.name).toBe("sr");
    expect(back.config.uuid).toBe(r.config.uuid);
    // Nothing of the saved kernel object is handed over: the kernel comes from the file.
    const k2 = back.kernel!;
    expect(k2).not.toBe(k);
    const again = k2.processes.get(init.pid) as Process;
    expect(again).toBeInstanceOf(Process);
    expect(again.checksum).toBe(checksum);
    expect(again.snapshot().vmas).toEqual(init.snapshot().vmas);
    const newFrames = Array.from(k2.xen!.p2m);
    expect(newFrames.some((m) => oldFrames.has(m))).toBe(false);
    // The same pass over the same memory, now in other frames, gives the same checksum.
    expect(pass(again)).toBe(before);
    // It keeps running: new stores, a fork (page tables made after the restore).
    again.store(buf, 77);
    expect(again.load(buf)).toBe(77);
    const child = again.fork();
    expect(child).not.toBeTypeOf("number");
    expect(await h.xsd!.xs.read(`/local/domain/${back.domid}/control/feature-suspend`)).toBe("1");
    expect(filler.domain.state).toBe("running");
  });

  it("vcpus=2: the secondary vCPU comes back up after restore, on the same vcpu_info page", async () => {
    const h = await host();
    const r = await domainCreate(h, config("smp", "vcpus = 2"));
    const pfnOf = (k: GuestKernel, vi: number) =>
      k.xen!.m2p[Math.floor(k.registeredVcpuInfo[vi]! / 4096)];
    const infoPfn = pfnOf(r.kernel!, 1);
    expect(infoPfn).toBeGreaterThan(0);
    const file = join(dir, "smp.save");
    await domainSave(h, r, file);
    const back = await domainRestore(h, file);
    // The resumed kernel is rebuilt from the file's record: a new object on the new domain.
    const k = back.kernel!;
    const list = (await libxlHost(h).vcpuList(back.domid))!;
    expect(list.vcpus.map((v) => v.online)).toEqual([true, true]);
    expect(back.domain.vcpus[1]!.state).not.toBe("offline");
    expect(pfnOf(k, 1)).toBe(infoPfn);
    expect(Math.floor(k.registeredVcpuInfo[1]! / 4096)).toBe(k.xen!.p2m[infoPfn!]);
    // The restored vCPU 1 takes IPIs: a call on it from vCPU 0 runs.
    let ran = -1;
    expect(k.smp.callFunctionSingle(0, 1, (cpu) => (ran = cpu))).toBe(0);
    expect(ran).toBe(1);
  });

  it("a ballooned domain: its holes stay holes, and the resumed balloon can give the pages back", async () => {
    const h = await host();
    const r = await domainCreate(h, config("bal"));
    const settle = async (want: number) => {
      for (let i = 0; i < 50 && r.balloon!.currentPages !== want; i++)
        await new Promise((res) => setImmediate(res));
    };
    await memSet(h, r, 6 * 1024);
    await settle(6 * 256);
    const pages = r.domain.totPages;
    const file = join(dir, "bal.save");
    await domainSave(h, r, file);
    const back = await domainRestore(h, file);
    expect(back.domain.totPages).toBe(pages);
    expect(back.balloon!.currentPages).toBe(6 * 256);
    await memSet(h, back, 8 * 1024);
    for (let i = 0; i < 50 && back.balloon!.currentPages !== 8 * 256; i++)
      await new Promise((res) => setImmediate(res));
    expect(back.domain.totPages).toBe(pages + 512);
  });

  it("page-table pages are in the file as pfns, not mfns", async () => {
    const h = await host();
    const r = await domainCreate(h, config("pt"));
    const l4Mfn = r.build!.l4Mfn;
    const l4Pfn = r.kernel!.xen!.m2p[l4Mfn]!;
    const file = join(dir, "pt.save");
    await domainSave(h, r, file);
    const bytes = readFileSync(file);
    const data = bytes.subarray(bytes.indexOf(10, 15) + 1);
    const header = JSON.parse(bytes.subarray(15, bytes.indexOf(10, 15)).toString());
    expect(header.pinned.map((p: number[]) => p[0])).toContain(l4Pfn);
    const l4 = new DataView(data.buffer, data.byteOffset + l4Pfn * 4096, 4096);
    let present = 0;
    for (let i = 0; i < 512; i++) {
      const lo = l4.getUint32(i * 8, true);
      if ((lo & 1) === 0) continue;
      present++;
      expect(i < 256 || i > 271).toBe(true); // Xen's slots are cleared
      expect(lo >>> 12).toBeLessThan(header.nrPages); // a pfn of the guest
    }
    expect(present).toBeGreaterThan(0);
  });

  it("a corrupt or truncated file is refused, and nothing is left behind", async () => {
    const h = await host();
    const r = await domainCreate(h, config("c"));
    const file = join(dir, "c.save");
    await domainSave(h, r, file);
    const before = await snapshot(h);
    const free = freePages(h.hv);
    const bad = join(dir, "bad.save");
    writeFileSync(bad, "not a save file");
    await expect(domainRestore(h, bad)).rejects.toThrow(/wrong magic number/);
    writeFileSync(bad, readFileSync(file).subarray(0, 5000));
    await expect(domainRestore(h, bad)).rejects.toThrow(/truncated or corrupt/);
    await expect(domainRestore(h, join(dir, "missing.save"))).rejects.toThrow(HyperlabError);
    expect(await snapshot(h)).toEqual(before);
    expect(freePages(h.hv)).toBe(free);
    // Restoring the good file twice: the second finds the name taken and takes nothing.
    await domainRestore(h, file);
    const mid = await snapshot(h);
    await expect(domainRestore(h, file)).rejects.toThrow(/already exists/);
    expect(await snapshot(h)).toEqual(mid);
    expect(findDomain(h, "c")?.domain.state).toBe("running");
  });
});
