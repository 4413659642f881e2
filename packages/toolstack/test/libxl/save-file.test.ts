// Save format 2: the file alone restores a running kernel (another Host object, nothing handed
// over), whose processes, console and disks keep working; a version 1 file restores as before
// (memory, no kernel); corrupt files, including a fast-check property over corruptions of a
// real file, fail with libxl's message and leave nothing behind.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HyperlabError, isHyperlabError } from "@hyperlab/core";
import { PROT_READ, PROT_WRITE, Process, spawnProcess } from "@hyperlab/guest";
import type { BlkFront } from "@hyperlab/split-drivers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type DomainRecord,
  destroyDomainRecord,
  deviceState,
  domainCreate,
  domainRestore,
  domainSave,
  freePages,
  type Host,
  settle,
} from "../../src/index";
import { config, dir, host, snapshot } from "./world";

const RUNS = process.env.HYPERLAB_LONG === "1" ? 120 : 14;

async function until(cond: () => boolean | Promise<boolean>, rounds = 2000): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (await cond()) return;
    await settle();
  }
  throw new Error("condition not reached");
}

async function diskOf(h: Host, r: DomainRecord) {
  await until(async () => (await deviceState(h, r, "vbd", 51712)) === 4);
  const disk = (r.frontends.get("vbd") as BlkFront).disk(51712)!;
  await disk.ready();
  return disk;
}

/** A save file split into its parts, and put back together. */
function parts(file: string) {
  const bytes = readFileSync(file);
  const nl = bytes.indexOf(10, 15);
  return {
    magic: bytes.subarray(0, 15).toString("latin1"),
    header: JSON.parse(bytes.subarray(15, nl).toString("utf8")),
    data: new Uint8Array(bytes.subarray(nl + 1)),
  };
}
function join3(magic: string, header: unknown, data: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${magic}${JSON.stringify(header)}\n`), data]);
}

/** A domain with a process that wrote memory, and a disk with a block written. */
async function world(h: Host, name: string) {
  const img = join(dir, `${name}.img`);
  writeFileSync(img, new Uint8Array(64 * 512));
  const r = await domainCreate(h, config(name, `disk = ["${img},raw,xvda,rw"]`));
  const p = spawnProcess(r.kernel!);
  const buf = p.mmap(32 * 4096, PROT_READ | PROT_WRITE);
  for (let i = 0; i < 32; i++) p.store(buf + i * 4096 + 8 * (i % 5), 0x1000 + i * 91);
  p.setFsBase(0x7000_1234_0000);
  const disk = await diskOf(h, r);
  const block = new Uint8Array(4096).map((_, i) => (i * 13 + 1) & 0xff);
  expect(await disk.write(16, block)).toBe(0);
  return { r, p, buf, block };
}

describe("save format 2: the file alone", () => {
  it("another host restores a running kernel: memory, processes, fork, mmap, exec, console and disk", async () => {
    const a = await host();
    const { r, p, buf, block } = await world(a, "alone");
    const values = Array.from({ length: 32 }, (_, i) => p.load(buf + i * 4096 + 8 * (i % 5)));
    const pid = p.pid;
    const vmas = p.snapshot().vmas;
    const file = join(dir, "alone.save");
    await domainSave(a, r, file);
    expect(parts(file).magic).toBe("HyperlabSave 2\n");
    // A second host: nothing of the first is reachable from it, only the file.
    const b = await host();
    const back = await domainRestore(b, file);
    const k = back.kernel!;
    expect(k).not.toBeNull();
    const q = k.processes.get(pid) as Process;
    expect(q).toBeInstanceOf(Process);
    expect(q.snapshot().vmas).toEqual(vmas);
    expect(Array.from({ length: 32 }, (_, i) => q.load(buf + i * 4096 + 8 * (i % 5)))).toEqual(
      values,
    );
    // The kernel keeps serving: a new mapping, a fork whose child sees the parent's memory
    // (copy on write both ways), an exec, a new process.
    const more = q.mmap(8 * 4096, PROT_READ | PROT_WRITE);
    expect(more).toBeGreaterThan(0);
    expect(q.store(more, 0xabcd)).toBe(true);
    const child = q.fork() as Process;
    expect(child).toBeInstanceOf(Process);
    expect(child.load(buf)).toBe(values[0]);
    expect(child.store(buf, 5)).toBe(true);
    expect(q.load(buf)).toBe(values[0]);
    expect(child.exec()).toBe(0);
    child.exit(0);
    const fresh = spawnProcess(k);
    expect(fresh.pid).toBeGreaterThan(child.pid);
    expect(k.counts.signals).toBe(0);
    // The console: what is typed comes back (the tty echoes), as before the save.
    const stream = back.stream!;
    const seen: number[] = [];
    stream.onOutput((bytes) => seen.push(...bytes));
    stream.write("after restore\n");
    b.loop!.kick();
    await until(() => Buffer.from(seen).toString("latin1").includes("after restore\n"));
    // The disk: blkfront reconnected to the new blkback, and the block reads back.
    const disk = await diskOf(b, back);
    const got = await disk.read(16, 8);
    expect(got.status).toBe(0);
    expect(Array.from(got.data)).toEqual(Array.from(block));
    // And it saves and restores again.
    const file2 = join(dir, "alone2.save");
    await domainSave(b, back, file2);
    const again = await domainRestore(b, file2);
    const q2 = again.kernel!.processes.get(pid) as Process;
    expect(q2.load(more)).toBe(0xabcd);
  });

  it("a version 1 file restores as before: memory and page tables, no running kernel", async () => {
    const h = await host();
    const r = await domainCreate(h, config("old"));
    const file = join(dir, "old.save");
    await domainSave(h, r, file);
    const { header, data } = parts(file);
    delete header.kernel;
    delete header.ballooned;
    header.id = "4242-1-old";
    const v1 = join(dir, "old-v1.save");
    writeFileSync(v1, join3("HyperlabSave 1\n", header, data));
    const back = await domainRestore(h, v1);
    expect(back.kernel).toBeNull();
    expect(back.domain.state).toBe("running");
    // A page that is not a page table comes back byte for byte.
    const tables = new Set(header.tables.map((t: number[]) => t[0]));
    let pfn = 0;
    while (tables.has(pfn)) pfn++;
    const mfn = back.build!.p2m[pfn]!;
    expect(Array.from(h.hv.machine.ram.frameBytes(mfn))).toEqual(
      Array.from(data.subarray(pfn * 4096, (pfn + 1) * 4096)),
    );
  });

  it("a kernel record naming pfns out of range, or page tables naming frames the domain has not, is refused and leaves nothing", async () => {
    const h = await host();
    const r = await domainCreate(h, config("rec"));
    const file = join(dir, "rec.save");
    await domainSave(h, r, file);
    const { magic, header, data } = parts(file);
    const before = await snapshot(h);
    const free = freePages(h.hv);
    const bad = join(dir, "rec-bad.save");
    const refuse = async (
      edit: (hd: typeof header, d: Uint8Array) => void,
      message: RegExp,
    ): Promise<void> => {
      const hd = structuredClone(header);
      const d = data.slice();
      edit(hd, d);
      writeFileSync(bad, join3(magic, hd, d));
      const e = await domainRestore(h, bad).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(HyperlabError);
      expect((e as HyperlabError<string>).code).toBe("TOOLSTACK_SAVE_FILE");
      expect((e as Error).message).toMatch(message);
      expect(await snapshot(h)).toEqual(before);
      expect(freePages(h.hv)).toBe(free);
    };
    const n = header.nrPages as number;
    await refuse(
      (hd) => hd.kernel.free.push(n + 7),
      /restore of .* failed: the guest could not resume: .*free list names a pfn beyond the domain/,
    );
    await refuse((hd) => {
      hd.kernel.mms[0].pgd = n;
    }, /pgd is not an L4 table of the domain/);
    await refuse((hd) => {
      hd.kernel.cpu.runstatePfn[0] = n + 1;
    }, /CPU state names a pfn beyond the domain/);
    await refuse((hd) => {
      hd.kernel.version = 99;
    }, /version 99/);
    await refuse((hd) => {
      hd.tables.push([n + 3, 1]);
    }, /page-table pfn is beyond the domain/);
    // An L1 entry naming a pfn beyond the domain (a foreign frame, once localised).
    const l1 = (header.tables as number[][]).find((t) => t[1] === 1)![0]!;
    await refuse((_hd, d) => {
      const dv = new DataView(d.buffer, l1 * 4096, 4096);
      let i = 0;
      while ((dv.getUint32(i * 8, true) & 1) === 0) i++;
      dv.setUint32(i * 8, ((n + 50) * 4096 + (dv.getUint32(i * 8, true) & 0xfff)) >>> 0, true);
    }, /a page table \(pfn \d+\) names a pfn the domain has no page for/);
    // An entry naming a pfn the file says has no frame (a hole).
    await refuse((hd, d) => {
      const dv = new DataView(d.buffer, l1 * 4096, 4096);
      let i = 0;
      while ((dv.getUint32(i * 8, true) & 1) === 0) i++;
      const named = dv.getUint32(i * 8, true) >>> 12;
      hd.holes.push(named);
    }, /restore of .* failed/);
  });

  it(
    "property: a corrupted save file restores or fails with libxl's error, and a failure leaves nothing behind",
    async () => {
      const h = await host();
      const r = await domainCreate(h, config("fc"));
      const p = spawnProcess(r.kernel!);
      p.writeRange(p.mmap(16 * 4096, PROT_READ | PROT_WRITE), 16 * 4096, 7);
      const file = join(dir, "fc.save");
      await domainSave(h, r, file);
      const good = readFileSync(file);
      const { header } = parts(file);
      const headerEnd = good.indexOf(10, 15);
      const tables = (header.tables as number[][]).map((t) => t[0]!);
      const before = await snapshot(h);
      const free = freePages(h.hv);
      const bad = join(dir, "fc-bad.save");
      const corruption = fc.oneof(
        fc.record({ kind: fc.constant("truncate" as const), at: fc.nat(good.length - 1) }),
        fc.record({
          kind: fc.constant("header" as const),
          at: fc.nat(headerEnd - 1),
          byte: fc.integer({ min: 0x20, max: 0x7e }),
        }),
        fc.record({
          kind: fc.constant("table" as const),
          table: fc.nat(tables.length - 1),
          slot: fc.nat(511),
          lo: fc.nat(0xffff_ffff),
        }),
        fc.record({
          kind: fc.constant("record" as const),
          field: fc.constantFrom(
            "free",
            "mapcount",
            "ptLevel",
            "pinned",
            "mms",
            "processes",
            "loadedMm",
          ),
          value: fc.oneof(fc.integer({ min: -3, max: 1 << 22 }), fc.constant(null), fc.string()),
        }),
      );
      await fc.assert(
        fc.asyncProperty(corruption, async (c) => {
          let bytes: Buffer;
          if (c.kind === "truncate") bytes = good.subarray(0, c.at);
          else if (c.kind === "header") {
            bytes = Buffer.from(good);
            bytes[c.at] = c.byte;
          } else if (c.kind === "table") {
            bytes = Buffer.from(good);
            bytes.writeUInt32LE(c.lo, headerEnd + 1 + tables[c.table]! * 4096 + c.slot * 8);
          } else {
            const p = parts(file);
            const list = p.header.kernel[c.field] as unknown[];
            if (list.length > 0) list[list.length - 1] = c.value;
            else list.push(c.value);
            bytes = join3(p.magic, p.header, p.data);
          }
          writeFileSync(bad, bytes);
          let restored: DomainRecord | null = null;
          try {
            restored = await domainRestore(h, bad);
          } catch (e) {
            expect(
              isHyperlabError(e, [
                "TOOLSTACK_SAVE_FILE",
                "TOOLSTACK_NO_MEMORY",
                "TOOLSTACK_NAME_IN_USE",
              ]),
            ).toBe(true);
          }
          if (restored !== null) await destroyDomainRecord(h, restored);
          await settle();
          expect(await snapshot(h)).toEqual(before);
          expect(freePages(h.hv)).toBe(free);
        }),
        { seed: 614, numRuns: RUNS },
      );
    },
    30_000 + RUNS * 4000,
  );
});
