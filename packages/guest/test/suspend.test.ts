// The kernel's suspend record: plain JSON naming pfns only, checked against its domain before
// a resume; resumeXenPvKernel brings the processes back (here on the same domain, as a
// checkpoint's cancelled suspend does; the toolstack's tests restore into new frames).
import { isHyperlabError } from "@hyperlab/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkKernelRecord,
  createGuestPort,
  type GuestKernelRecord,
  kernelSuspendRecord,
  PROT_READ,
  PROT_WRITE,
  type Process,
  resumeXenPvKernel,
  spawnProcess,
} from "../src/index";
import { nativeBuild, xenBuild } from "./helpers";

function busy() {
  const b = xenBuild(2048);
  const k = b.kernel;
  const p = spawnProcess(k);
  const buf = p.mmap(16 * 4096, PROT_READ | PROT_WRITE);
  for (let i = 0; i < 16; i++) p.store(buf + i * 4096, 0x300 + i);
  p.setFsBase(0x7fff_0000_1000);
  expect(p.modifyLdt(3, 0x1234, 0x00cf_9a00)).toBe(0);
  const c = p.fork() as Process;
  c.store(buf, 1);
  const dead = p.fork() as Process;
  dead.exit(3);
  return { ...b, p, c, dead, buf };
}

describe("the kernel's suspend record", () => {
  it("is plain JSON whose pfns are all the domain's, and passes its own check", () => {
    const { kernel: k } = busy();
    const rec = kernelSuspendRecord(k);
    expect(JSON.parse(JSON.stringify(rec))).toEqual(rec);
    const n = k.xen!.nrPages;
    expect(rec.nrPages).toBe(n);
    const pfns = [
      ...rec.free,
      ...rec.runs.flatMap(([a, b]) => [a, b - 1]),
      ...rec.pinned,
      ...rec.mapcount.map((e) => e[0]),
      ...rec.ptLevel.map((e) => e[0]),
      ...rec.mms.flatMap((m) => [m.pgd, m.userPgd, m.ldt?.[0] ?? -1]),
      ...rec.cpu!.runstatePfn,
      rec.cpu!.scratchPfn,
    ];
    for (const p of pfns) expect(p >= -1 && p < n).toBe(true);
    expect(rec.processes.map((p) => [p.pid, p.state])).toEqual([
      [1, "running"],
      [2, "running"],
      [3, "exited"],
    ]);
    expect(checkKernelRecord(rec, n)).toBeNull();
    expect(checkKernelRecord(rec, n + 1)).toMatch(/the domain has/);
  });

  it("a native kernel has none", () => {
    const { kernel } = nativeBuild(512);
    expect(() => kernelSuspendRecord(kernel)).toThrow(
      expect.objectContaining({ code: "GUEST_NOT_XEN_PV" }),
    );
  });

  it("property: a record with any pfn list naming a pfn beyond the domain is refused", () => {
    const { kernel: k } = busy();
    const rec = kernelSuspendRecord(k);
    const n = rec.nrPages;
    fc.assert(
      fc.property(
        fc.constantFrom(
          "free",
          "pinned",
          "unowned",
          "mapcount",
          "ptLevel",
          "pgd",
          "ldt",
          "runstate",
          "runs",
        ),
        fc.integer({ min: n, max: n * 4 }),
        (where, pfn) => {
          const r = structuredClone(rec) as GuestKernelRecord;
          if (where === "free" || where === "pinned" || where === "unowned") r[where].push(pfn);
          else if (where === "mapcount" || where === "ptLevel") r[where].push([pfn, 1]);
          else if (where === "pgd") r.mms[0]!.pgd = pfn;
          else if (where === "ldt") r.mms[1]!.ldt = [pfn, 4];
          else if (where === "runs") r.runs.push([n - 1, pfn + 1]);
          else r.cpu!.runstatePfn[0] = pfn;
          expect(checkKernelRecord(r, n)).not.toBeNull();
        },
      ),
      { seed: 77, numRuns: process.env.HYPERLAB_LONG === "1" ? 400 : 60 },
    );
    // And the structures themselves.
    const edits: [(r: GuestKernelRecord) => void, RegExp][] = [
      [(r) => r.free.push(r.free[0]!), /twice in the free list/],
      [(r) => r.runs.push([r.free[0]!, r.free[0]! + 1]), /twice among the free pages/],
      [(r) => r.runs.push([r.mms[1]!.pgd, r.mms[1]!.pgd + 1]), /also in use/],
      [(r) => r.free.push(r.mms[1]!.pgd), /also in use/],
      [(r) => (r.mms[1]!.vmas = [[8192, 4096, 3]]), /overlap/],
      [(r) => (r.processes[0]!.mm = r.processes[1]!.mm), /not its own/],
      [(r) => (r.processes[2]!.mm = r.mms[1]!.id), /does not fit its state/],
      [(r) => (r.loadedMm = [12345]), /not in the record/],
      [(r) => (r.version = 2 as 1), /version 2/],
    ];
    for (const [edit, why] of edits) {
      const r = structuredClone(rec);
      edit(r);
      expect(checkKernelRecord(r, n)).toMatch(why);
    }
  });

  it("resumes its processes: memory, areas, pids, the allocator's next page, and it keeps serving", () => {
    const { hv, kernel: k, p, c, buf } = busy();
    const rec = kernelSuspendRecord(k);
    // The next page: the last freed, else the lowest never-used one.
    const next = rec.free.length > 0 ? rec.free[rec.free.length - 1] : rec.runs[0]![0];
    const d = hv.domain(1)!;
    // The suspend that did not happen (Linux's cancelled suspend, xl save -c): the same domain.
    const k2 = resumeXenPvKernel(createGuestPort(hv, d), JSON.parse(JSON.stringify(rec)));
    expect(k2).not.toBe(k);
    const p2 = k2.processes.get(p.pid) as Process;
    const c2 = k2.processes.get(c.pid) as Process;
    expect(p2.snapshot()).toEqual(p.snapshot());
    expect(c2.snapshot()).toEqual(c.snapshot());
    expect(k2.processes.get(3)!.state).toBe("exited");
    for (let i = 0; i < 16; i++) expect(p2.load(buf + i * 4096)).toBe(0x300 + i);
    expect(c2.load(buf)).toBe(1);
    expect(k2.allocPage()).toBe(next);
    const q = p2.fork() as Process;
    expect(q.pid).toBe(4);
    expect(q.store(buf + 4096, 9)).toBe(true);
    expect(p2.load(buf + 4096)).toBe(0x301);
    expect(p2.mmap(4096, PROT_READ | PROT_WRITE)).toBeGreaterThan(0);
    expect(k2.counts.signals).toBe(0);
    expect(k2.events).not.toBeNull();
  });

  it("refuses a record that does not fit before it touches anything", () => {
    const { hv, kernel: k } = busy();
    const d = hv.domain(1)!;
    const bad = { ...kernelSuspendRecord(k), nrPages: 99 };
    for (const r of [null, 7, {}, bad]) {
      let e: unknown;
      try {
        resumeXenPvKernel(createGuestPort(hv, d), r);
      } catch (x) {
        e = x;
      }
      expect(isHyperlabError(e, ["GUEST_BAD_RECORD"])).toBe(true);
    }
  });
});
