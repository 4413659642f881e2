// Populate on demand (frame-table.ts, hypervisor.ts's reserveDomainPages): a domain's whole
// 2 MiB blocks reserved at creation cost no per-frame write, are populated a block at a time
// at the first check that the domain owns one of their frames, count within max_pages, and go
// back to the machine when the domain is destroyed. Every error path refuses without a throw
// for guest-supplied numbers.
import { describe, expect, it } from "vitest";
import { definePlugin, FRAME_FREE, HyperlabError, POD_BLOCK_FRAMES } from "../src/index";
import { bootWith } from "./helpers";

function world(maxPages = 4096, ramBytes = 64 << 20) {
  const hv = bootWith([], ramBytes);
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages });
  const e = hv.createDomain({ domid: 2, maxVcpus: 1, maxPages });
  return { hv, d, e, alloc: hv.machine.frames };
}

describe("populate on demand", () => {
  it("reserves the frames allocDomainPages would give, writing no frame", () => {
    const a = world();
    const b = world();
    const reserved = [a.hv.reserveDomainPages(a.d, 9), a.hv.reserveDomainPages(a.d, 9)];
    const allocated = [b.hv.allocDomainPages(b.d, 9), b.hv.allocDomainPages(b.d, 9)];
    expect(reserved).toEqual(allocated);
    expect(a.alloc.nrFreeFrames).toBe(b.alloc.nrFreeFrames);
    expect(a.d.podPages).toBe(1024);
    expect(a.d.totPages).toBe(0);
    for (const m of reserved) {
      for (let i = 0; i < POD_BLOCK_FRAMES; i++) {
        expect(a.hv.frames.isFree(m + i)).toBe(true);
        expect(a.hv.frames.podOwnerOf(m + i)).toBe(1);
        expect(a.hv.frames.countInfo[m + i]).toBe(0);
      }
    }
    expect(a.hv.frames.podFrames).toBe(1024);
  });

  it("populates the whole block at the first ownership check, once", () => {
    const { hv, d } = world();
    const m = hv.reserveDomainPages(d, 10);
    expect(hv.frames.ownerOf(m + 700)).toBe(FRAME_FREE); // ownerOf never populates
    expect(hv.frames.ownedBy(m + 700, d.domid)).toBe(true);
    expect(d.totPages).toBe(512);
    expect(d.podPages).toBe(512);
    for (let i = 512; i < 1024; i++) {
      expect(hv.frames.ownerOf(m + i)).toBe(1);
      expect(hv.frames.refCount(m + i)).toBe(1);
    }
    expect(hv.frames.ownerOf(m)).toBe(FRAME_FREE); // the other block is still PoD
    expect(hv.frames.ownedBy(m + 701, d.domid)).toBe(true);
    expect(d.totPages).toBe(512);
    // get_page populates too, and takes its reference on the populated frame.
    expect(hv.frames.getPage(m + 3, d.domid)).toBe(true);
    expect(d.totPages).toBe(1024);
    expect(d.podPages).toBe(0);
    expect(hv.frames.refCount(m + 3)).toBe(2);
    hv.frames.putPage(m + 3);
  });

  it("answers no, populating nothing, for another domain, free frames and non-frames", () => {
    const { hv, d, e } = world();
    const m = hv.reserveDomainPages(d, 9);
    const n = hv.frames.nrFrames;
    for (const x of [m, m + 511]) {
      expect(hv.frames.ownedBy(x, e.domid)).toBe(false);
      expect(hv.frames.getPage(x, e.domid)).toBe(false);
    }
    for (const x of [-1, 1.5, Number.NaN, n, 2 ** 53, 2 ** 31, -(2 ** 31), Infinity]) {
      expect(hv.frames.ownedBy(x, d.domid)).toBe(false);
      expect(hv.frames.getPage(x, d.domid)).toBe(false);
      expect(hv.frames.populateRun(x, 512, d.domid)).toBe(false);
      expect(hv.frames.isPod(x, d.domid)).toBe(false);
    }
    // A free frame outside any PoD block.
    let free = 1;
    while (!hv.machine.frames.isFree(free)) free++;
    expect(hv.frames.ownedBy(free, d.domid)).toBe(false);
    expect(d.podPages).toBe(512);
    expect(d.totPages).toBe(0);
  });

  it("maps a run whole or populates nothing (populateRun)", () => {
    const { hv, d } = world();
    const m = hv.reserveDomainPages(d, 10);
    // The run reaches past the domain's blocks: nothing populated.
    expect(hv.frames.populateRun(m, 2048, d.domid)).toBe(false);
    expect(d.podPages).toBe(1024);
    expect(hv.frames.populateRun(m, 1024, d.domid)).toBe(true);
    expect(d.podPages).toBe(0);
    expect(d.totPages).toBe(1024);
    expect(hv.frames.populateRun(m, 1024, d.domid)).toBe(true); // owned already
  });

  it("counts PoD entries within max_pages", () => {
    const { hv, d } = world(1024 + 8);
    expect(hv.reserveDomainPages(d, 10)).toBeGreaterThanOrEqual(0);
    expect(hv.reserveDomainPages(d, 9)).toBe(-1); // 1024 + 512 > 1032
    expect(hv.allocDomainPages(d, 4)).toBe(-1); // 1024 + 16 > 1032
    expect(hv.allocDomainPages(d, 3)).toBeGreaterThanOrEqual(0);
    expect(hv.allocDomainPages(d, 0)).toBe(-1);
    expect(d.totPages + d.podPages).toBe(1032);
    // The 8 frames and shared_info; the reserved blocks are nobody's yet.
    expect(hv.frames.framesOf(d.domid).length).toBe(9);
  });

  it("refuses an order below a block, and a machine without such a run, changing nothing", () => {
    const { hv, d, alloc } = world(1 << 20, 16 << 20);
    expect(() => hv.reserveDomainPages(d, 8)).toThrow(HyperlabError);
    expect(() => hv.reserveDomainPages(d, 0)).toThrow(HyperlabError);
    const free = alloc.nrFreeFrames;
    expect(hv.reserveDomainPages(d, 18)).toBe(-1); // 1 GiB on a 16 MiB machine
    expect(alloc.nrFreeFrames).toBe(free);
    expect(d.podPages).toBe(0);
    expect(hv.frames.podFrames).toBe(0);
  });

  it("refuses a dying or dead domain", () => {
    const { hv, d } = world();
    hv.destroyDomain(d);
    expect(hv.reserveDomainPages(d, 9)).toBe(-1);
  });

  it("gives blocks back at destroy, populates none while dying, and the domain dies", () => {
    let seen: boolean[] = [];
    let probe = -1;
    const hv = bootWith([
      definePlugin({
        name: "probe",
        setup(ctx) {
          ctx.onDomainDestroy((x) => {
            // A plugin asking during teardown: a dying domain's block is not populated.
            seen = [ctx.hv.frames.ownedBy(probe, x.domid), ctx.hv.frames.getPage(probe, x.domid)];
          });
        },
      }),
    ]);
    const alloc = hv.machine.frames;
    const before = alloc.nrFreeFrames;
    const frees = alloc.nrFrees;
    const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 4096 });
    const m = hv.reserveDomainPages(d, 11);
    probe = m + 1024;
    expect(hv.frames.ownedBy(m, d.domid)).toBe(true); // one block populated
    hv.allocDomainPages(d, 0);
    hv.destroyDomain(d);
    expect(seen).toEqual([false, false]);
    expect(d.state).toBe("dead");
    expect(d.podPages).toBe(0);
    expect(d.totPages).toBe(0);
    expect(hv.frames.podFrames).toBe(0);
    expect(alloc.nrFreeFrames).toBe(before);
    // One free per frame, as when every frame was populated and released.
    expect(alloc.nrFrees - frees).toBe(2048 + 1 + 1);
    expect(hv.frames.podOwnerOf(m)).toBe(FRAME_FREE);
  });

  it("keeps a dying domain alive while another holds a populated frame", () => {
    const { hv, d } = world();
    const m = hv.reserveDomainPages(d, 9);
    expect(hv.frames.getPage(m, d.domid)).toBe(true);
    hv.destroyDomain(d);
    expect(d.state).toBe("dying");
    expect(d.podPages).toBe(0);
    hv.frames.putPage(m);
    expect(d.state).toBe("dead");
  });
});
