/*
 * Save and restore of a PV domain, as libxl_domain_suspend / libxl_domain_create_restore
 * with libxc's x86 PV stream do it (tools/libs/guest/xg_sr_save_x86_pv.c,
 * xg_sr_restore_x86_pv.c): the guest suspends itself (control/shutdown = suspend, its
 * watcher unmaps shared_info and issues SHUTDOWN_suspend); every page goes to the file in pfn
 * order, page-table pages "normalised" (each present entry's mfn replaced by its pfn; Xen's
 * private L4 slots cleared); restore allocates fresh frames, "localises" the tables back
 * (pfn -> the new mfn), pins them, loads CR3, rewrites the guest's P2M list and start_info,
 * and then the guest resumes (suspend.ts).
 *
 * File format (version 2): the line "HyperlabSave 2", one line of JSON (the header: config,
 * nrPages, the page-table pfns and levels, pinned pfns, vCPU CR3 pfns, the builder's
 * addresses, the ballooned pfns, and `kernel`: the guest kernel's suspend record, which
 * stands for the bookkeeping Linux keeps in its own RAM; see @hyperlab/guest's suspend.ts),
 * then nrPages pages of 4096 bytes in pfn order. A version 1 file (no kernel record) still
 * restores as it did: memory, page tables and vCPU state, no running kernel.
 *
 * Invariants: a saved page-table page and the kernel record name no mfn, only pfns of the
 * same domain; a page table entry that names a frame outside the domain makes the save fail
 * (libxc's "Bad mfn") and leaves the domain as it was (paused); restore checks every pfn the
 * header names before it uses one, and a failed restore (a bad header, a page table naming a
 * pfn the domain has no frame for, a kernel record that does not fit) leaves nothing behind
 * (the create path undoes it). Nothing of a saved domain stays in the host: the file alone
 * restores it, in this host process or another.
 */
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { SHUTDOWN_suspend, start_info_x86_64 } from "@hyperlab/abi";
import {
  PGT_l1_page_table,
  PGT_l2_page_table,
  PGT_l3_page_table,
  PGT_l4_page_table,
  PGT_type_mask,
} from "@hyperlab/core";
import {
  createGuestPort,
  type GuestKernelRecord,
  kernelSuspendRecord,
  resumeXenPvKernel,
} from "@hyperlab/guest";
import type { PvBuildResult } from "@hyperlab/pv-mmu";
import { configFromJson, type PlainJson } from "./config";
import { connectGuest, domainCreate } from "./create";
import { libxlError } from "./errors";
import { type DomainRecord, type Host, settle } from "./host";
import { destroyDomainRecord, requestShutdown, waitShutdown } from "./lifecycle";

const MAGIC = "HyperlabSave 2\n";
const MAGIC_V1 = "HyperlabSave 1\n";
const PAGE = 4096;
const TWO_20 = 0x10_0000;
/** Xen's private L4 slots in a 64-bit PV guest's tables (256..271). */
const XEN_L4_FIRST = 256;
const XEN_L4_LAST = 271;

interface SaveHeader {
  config: PlainJson;
  name: string;
  nrPages: number;
  /** [pfn, level] of every page-table page. */
  tables: [number, number][];
  /** pfns of pinned tables, with their level. */
  pinned: [number, number][];
  /** Per vCPU: the pfn of its CR3, or -1. */
  cr3: number[];
  /** vcpu_guest_context.vm_assist: the assists the guest enabled (VMASST_TYPE_*). */
  vmAssist: number[];
  build: Omit<PvBuildResult, "p2m" | "l4Mfn" | "startInfoMfn"> & {
    startInfoPfn: number;
    l4Pfn: number;
  };
  /** pfns with no page (ballooned out): restore gives them no frame. */
  holes: number[];
  /** The pfns holding the guest's P2M list (start_info.mfn_list). */
  p2mPfns: [number, number];
  /** Version 2: the guest kernel's suspend record, or null (no kernel ran). */
  kernel?: GuestKernelRecord | null;
  /** Version 2: the balloon driver's pfns, in its order (the holes, as it holds them). */
  ballooned?: number[];
}

function levelOf(typeInfo: number): number {
  switch ((typeInfo & PGT_type_mask) >>> 0) {
    case PGT_l1_page_table:
      return 1;
    case PGT_l2_page_table:
      return 2;
    case PGT_l3_page_table:
      return 3;
    case PGT_l4_page_table:
      return 4;
    default:
      return 0;
  }
}

/** x86_pv_normalise_pagetable: entries' mfns to pfns, in a copy of the page. */
function normalise(page: Uint8Array, level: number, pfnOf: (mfn: number) => number): string | null {
  const dv = new DataView(page.buffer, page.byteOffset, PAGE);
  for (let i = 0; i < 512; i++) {
    const lo = dv.getUint32(i * 8, true);
    const hi = dv.getUint32(i * 8 + 4, true);
    if (level === 4 && i >= XEN_L4_FIRST && i <= XEN_L4_LAST) {
      dv.setUint32(i * 8, 0, true);
      dv.setUint32(i * 8 + 4, 0, true);
      continue;
    }
    if ((lo & 1) === 0) continue;
    const mfn = (hi & 0xfffff) * TWO_20 + (lo >>> 12);
    const pfn = pfnOf(mfn);
    if (pfn < 0) return `Bad mfn ${mfn} in slot ${i} of an L${level} table`;
    dv.setUint32(i * 8, ((pfn % TWO_20) * PAGE + (lo & 0xfff)) >>> 0, true);
    dv.setUint32(i * 8 + 4, ((hi & ~0xfffff) | Math.floor(pfn / TWO_20)) >>> 0, true);
  }
  return null;
}

/** x86_pv_localise_page: pfns back to the new mfns. */
function localise(page: Uint8Array, p2m: Float64Array): boolean {
  const dv = new DataView(page.buffer, page.byteOffset, PAGE);
  for (let i = 0; i < 512; i++) {
    const lo = dv.getUint32(i * 8, true);
    if ((lo & 1) === 0) continue;
    const hi = dv.getUint32(i * 8 + 4, true);
    const pfn = (hi & 0xfffff) * TWO_20 + (lo >>> 12);
    if (pfn >= p2m.length) return false;
    const mfn = p2m[pfn]!;
    if (mfn < 0) return false; // a hole: no frame to name
    dv.setUint32(i * 8, ((mfn % TWO_20) * PAGE + (lo & 0xfff)) >>> 0, true);
    dv.setUint32(i * 8 + 4, ((hi & ~0xfffff) | Math.floor(mfn / TWO_20)) >>> 0, true);
  }
  return true;
}

export interface SaveResult {
  domid: number;
  bytes: number;
  pages: number;
}

/**
 * libxl_domain_suspend to `file`, then destroy (xl save without -c). The guest suspends
 * itself when it runs a kernel; a domain without one is paused and saved as it is.
 */
export async function domainSave(host: Host, r: DomainRecord, file: string): Promise<SaveResult> {
  if (host.kind !== "xen" || r.build === null) {
    throw libxlError(
      "TOOLSTACK_NOT_XEN",
      "Save needs a Xen-style host and a PV domain built by it.",
    );
  }
  const { hv } = host;
  const d = r.domain;
  if (r.manage !== null) {
    await requestShutdown(host, r, "suspend");
    if (!(await waitShutdown(host, r, 100_000)) || d.shutdownCode !== SHUTDOWN_suspend) {
      throw libxlError(
        "TOOLSTACK_SAVE_FILE",
        `libxl: error: guest did not suspend (domain ${r.domid})`,
      );
    }
  } else if (d.state === "running") {
    hv.pauseDomain(d);
  }
  const p2m = r.kernel?.xen?.p2m ?? r.build.p2m;
  const nrPages = p2m.length;
  const m2p = new Int32Array(hv.frames.nrFrames).fill(-1);
  for (let pfn = 0; pfn < nrPages; pfn++) {
    const mfn = p2m[pfn]!;
    if (mfn >= 0 && mfn < m2p.length) m2p[mfn] = pfn;
  }
  const pfnOf = (mfn: number) => (mfn >= 0 && mfn < m2p.length ? m2p[mfn]! : -1);
  const f = hv.frames;
  const tables: [number, number][] = [];
  const pinned: [number, number][] = [];
  const out = new Uint8Array(nrPages * PAGE);
  const holes: number[] = [];
  for (let pfn = 0; pfn < nrPages; pfn++) {
    const mfn = p2m[pfn]!;
    const page = out.subarray(pfn * PAGE, (pfn + 1) * PAGE);
    if (!(f.validMfn(mfn) && f.ownedBy(mfn, r.domid))) {
      holes.push(pfn); // ballooned out
      continue;
    }
    page.set(hv.machine.ram.frameBytes(mfn));
    const level = levelOf(f.typeInfo[mfn]!);
    if (level === 0) continue;
    tables.push([pfn, level]);
    if (f.isPinned(mfn)) pinned.push([pfn, level]);
    const bad = normalise(page, level, pfnOf);
    if (bad !== null) throw libxlError("TOOLSTACK_SAVE_FILE", `xc: error: ${bad} (pfn ${pfn})`);
  }
  const cr3 = d.vcpus.map((v) => (v.cr3Mfn >= 0 ? pfnOf(v.cr3Mfn) : -1));
  const b = r.build;
  const startInfoPfn = pfnOf(b.startInfoMfn);
  const l4Pfn = pfnOf(b.l4Mfn);
  const p2mFirst = (b.p2mVa - b.virtBase) / PAGE;
  const { p2m: _p, l4Mfn: _l, startInfoMfn: _s, ...va } = b;
  const header: SaveHeader = {
    config: r.config.json,
    name: r.name,
    nrPages,
    tables,
    pinned,
    cr3,
    vmAssist: [...d.vmAssist],
    holes,
    build: { ...va, startInfoPfn, l4Pfn },
    p2mPfns: [p2mFirst, Math.ceil((nrPages * 8) / PAGE)],
    kernel: r.kernel !== null ? kernelSuspendRecord(r.kernel) : null,
    ballooned: [...(r.balloon?.ballooned ?? [])],
  };
  (header.config as { c_info?: PlainJson }).c_info = {
    ...((header.config.c_info as PlainJson) ?? {}),
    name: r.name,
    uuid: r.config.uuid,
  };
  const head = Buffer.from(`${MAGIC}${JSON.stringify(header)}\n`, "utf8");
  try {
    const fd = openSync(file, "w");
    try {
      writeSync(fd, head);
      for (let off = 0; off < out.length; ) off += writeSync(fd, out, off, out.length - off);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw libxlError(
      "TOOLSTACK_SAVE_FILE",
      `Failed to open temp file ${file} for writing: ${(e as NodeJS.ErrnoException).code ?? e}`,
    );
  }
  r.kernel = null;
  await destroyDomainRecord(host, r);
  return { domid: r.domid, bytes: head.length + out.length, pages: nrPages };
}

/**
 * The reason a header cannot be restored on this host, or null: every pfn it names must be
 * below nrPages and have a frame (not a hole), and the sizes must be ones this host can hold.
 */
function checkHeader(h: SaveHeader, nrFrames: number): string | null {
  const isInt = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x);
  if (h === null || typeof h !== "object") return "the header is not an object";
  const n = h.nrPages;
  if (!isInt(n) || n < 1 || n > nrFrames) return `nrPages ${String(n)} does not fit this host`;
  if (h.config === null || typeof h.config !== "object") return "no domain configuration";
  const b = (h.config as { b_info?: { max_vcpus?: unknown } }).b_info;
  const mv = b?.max_vcpus;
  if (mv !== undefined && !(isInt(mv) && mv >= 1 && mv <= 128)) return "bad max_vcpus";
  const hole = new Uint8Array(n);
  if (!Array.isArray(h.holes)) return "no hole list";
  for (const p of h.holes) {
    if (!isInt(p) || p < 0 || p >= n) return `hole ${String(p)} is beyond the domain`;
    hole[p] = 1;
  }
  const page = (p: unknown) => isInt(p) && p >= 0 && p < n && hole[p] === 0;
  const leveled = (a: unknown) =>
    Array.isArray(a) &&
    a.every(
      (e) =>
        Array.isArray(e) && e.length === 2 && page(e[0]) && isInt(e[1]) && e[1] >= 1 && e[1] <= 4,
    );
  if (!leveled(h.tables)) return "a page-table pfn is beyond the domain or has no page";
  if (!leveled(h.pinned)) return "a pinned pfn is beyond the domain or has no page";
  const tables = new Map(h.tables.map(([p, l]) => [p, l]));
  for (const [p, l] of h.pinned)
    if (tables.get(p) !== l) return `pinned pfn ${p} is not a table of its level`;
  if (!Array.isArray(h.cr3) || h.cr3.length > 128 || !h.cr3.every((p) => p === -1 || page(p)))
    return "a vCPU's CR3 names a pfn the domain has no page for";
  if (!Array.isArray(h.vmAssist) || !h.vmAssist.every((a) => isInt(a) && a >= 0 && a < 32))
    return "bad vm_assist list";
  const bd = h.build;
  if (bd === null || typeof bd !== "object" || !page(bd.startInfoPfn) || !page(bd.l4Pfn))
    return "start_info or the L4 names a pfn the domain has no page for";
  for (const k of [
    "virtBase",
    "vEnd",
    "kernelVa",
    "p2mVa",
    "startInfoVa",
    "ptBaseVa",
    "nrPtFrames",
    "stackTop",
    "sharedInfoVa",
    "entry",
    "rsi",
  ] as const)
    if (!isInt(bd[k])) return `bad builder field ${k}`;
  const pp = h.p2mPfns;
  if (
    !Array.isArray(pp) ||
    pp.length !== 2 ||
    !isInt(pp[0]) ||
    !isInt(pp[1]) ||
    pp[0] < 0 ||
    pp[1] < 0 ||
    pp[0] + pp[1] > n
  )
    return "the P2M list is beyond the domain";
  for (let p = pp[0]; p < pp[0] + pp[1]; p++) if (hole[p] !== 0) return "the P2M list has a hole";
  if (h.ballooned !== undefined) {
    if (
      !Array.isArray(h.ballooned) ||
      !h.ballooned.every((p) => isInt(p) && p >= 0 && p < n && hole[p] === 1)
    )
      return "the balloon holds a pfn that is not a hole";
  }
  return null;
}

/** libxl_domain_create_restore from `file`: a new domain (new domid, new frames) that resumes. */
export async function domainRestore(host: Host, file: string): Promise<DomainRecord> {
  if (host.kind !== "xen") throw libxlError("TOOLSTACK_NOT_XEN", "Restore needs a Xen-style host.");
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw libxlError(
      "TOOLSTACK_SAVE_FILE",
      `cannot open restore file ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`,
    );
  }
  const bad = () =>
    libxlError(
      "TOOLSTACK_SAVE_FILE",
      `File has wrong magic number - corrupt or for a different tool? (${file})`,
    );
  const magic = bytes.subarray(0, MAGIC.length).toString("latin1");
  if (magic !== MAGIC && magic !== MAGIC_V1) throw bad();
  const v1 = magic === MAGIC_V1;
  const nl = bytes.indexOf(10, MAGIC.length);
  if (nl < 0)
    throw libxlError(
      "TOOLSTACK_SAVE_FILE",
      `restore file ${file} is truncated or corrupt: its header has no end`,
    );
  let header: SaveHeader;
  try {
    header = JSON.parse(bytes.subarray(MAGIC.length, nl).toString("utf8")) as SaveHeader;
  } catch {
    throw bad();
  }
  const data = bytes.subarray(nl + 1);
  const nr = header?.nrPages;
  if (!Number.isSafeInteger(nr) || data.length !== nr * PAGE) {
    throw libxlError(
      "TOOLSTACK_SAVE_FILE",
      `restore file ${file} is truncated or corrupt: ${data.length} bytes of pages, expected ${Number(nr) * PAGE}`,
    );
  }
  const { hv } = host;
  const corrupt = (why: string) =>
    libxlError("TOOLSTACK_SAVE_FILE", `libxl: error: restore of ${file} failed: ${why}`);
  const why = checkHeader(header, hv.frames.nrFrames);
  if (why !== null) throw corrupt(why);
  const config = configFromJson(header.config);
  const pv = hv.slot("pv-mmu");
  const record = v1 ? null : (header.kernel ?? null);
  const r = await domainCreate(host, config, {
    populate: (rec) => {
      const d = rec.domain;
      const n = header.nrPages;
      const p2m = new Float64Array(n);
      const hole = new Uint8Array(n);
      for (const pfn of header.holes) hole[pfn] = 1;
      for (let pfn = 0; pfn < n; pfn++) {
        if (hole[pfn] === 1) {
          p2m[pfn] = -1;
          continue;
        }
        const mfn = hv.allocDomainPages(d);
        if (mfn < 0)
          throw libxlError("TOOLSTACK_NO_MEMORY", "failed to free memory for the domain");
        p2m[pfn] = mfn;
        pv.m2p.set(mfn, pfn, 0);
      }
      const ram = hv.machine.ram;
      for (let pfn = 0; pfn < n; pfn++) {
        if (hole[pfn] === 0)
          ram.writeBytes(p2m[pfn]! * PAGE, data.subarray(pfn * PAGE, (pfn + 1) * PAGE));
      }
      for (const [pfn] of header.tables) {
        const page = ram.frameBytes(p2m[pfn]!);
        if (!localise(page, p2m))
          throw corrupt(`a page table (pfn ${pfn}) names a pfn the domain has no page for`);
      }
      // The guest's P2M list (start_info.mfn_list) now lists the new frames.
      const [first, count] = header.p2mPfns;
      for (let pfn = 0; pfn < n; pfn++) {
        const at = first + Math.floor((pfn * 8) / PAGE);
        if (at >= first + count) break;
        const e = p2m[pfn]!;
        if (e < 0) ram.write64(p2m[at]! * PAGE + ((pfn * 8) % PAGE), 0xffff_ffff, 0xffff_ffff);
        else ram.write64n(p2m[at]! * PAGE + ((pfn * 8) % PAGE), e);
      }
      // arch_set_info_guest: the vm_assist bits come with the vCPU context.
      for (const a of header.vmAssist) d.vmAssist.add(a);
      // Pin what was pinned (validating each tree), then load each vCPU's CR3.
      const types = [0, PGT_l1_page_table, PGT_l2_page_table, PGT_l3_page_table, PGT_l4_page_table];
      const f = hv.frames;
      for (const [pfn, level] of [...header.pinned].sort((a, b) => b[1] - a[1])) {
        const mfn = p2m[pfn]!;
        if (!f.getPage(mfn, d.domid)) throw corrupt(`pfn ${pfn} is not the domain's`);
        const rc = f.getPageType(mfn, types[level]!);
        if (rc !== 0) {
          f.putPage(mfn);
          throw corrupt(`pinning the L${level} table at pfn ${pfn} failed (${rc})`);
        }
        f.setPinned(mfn, true);
      }
      header.cr3.forEach((pfn, i) => {
        const v = d.vcpus[i];
        if (pfn >= 0 && v !== undefined) {
          const rc = pv.newGuestCr3(v, p2m[pfn]!);
          if (rc !== 0) throw corrupt(`loading vCPU ${i}'s CR3 failed (${rc})`);
        }
      });
      const si = p2m[header.build.startInfoPfn]!;
      const { startInfoPfn: _s, l4Pfn, ...va } = header.build;
      rec.build = { ...va, p2m, l4Mfn: p2m[l4Pfn]!, startInfoMfn: si };
      // start_info's machine addresses (shared_info, mfn_list stays a va): the new ones.
      ram.write64n(si * PAGE + start_info_x86_64.fields.shared_info.offset, d.sharedInfoMfn * PAGE);
    },
    adopt: async (rec, undo) => {
      if (record === null || !host.options.bootGuests) return;
      // The guest wakes up (its SCHEDOP_shutdown returns): xen_post_suspend from its record.
      try {
        rec.kernel = resumeXenPvKernel(createGuestPort(hv, rec.domain), record);
      } catch (e) {
        throw corrupt(`the guest could not resume: ${(e as Error).message}`);
      }
      await connectGuest(host, rec, undo, header.ballooned ?? []);
    },
  });
  await settle();
  return r;
}
