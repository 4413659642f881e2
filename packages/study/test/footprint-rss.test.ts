// Resident host memory of a study target whose guest has far more RAM than it touches (issue
// #16 item 3). Each target is built in a child node process (so nothing else this run holds
// is counted), touches the same 4 MiB at 256 MiB and at 16 GiB of guest, and reports its
// VmRSS once collections have settled. A large typed array costs no resident memory until it
// is written, so what may grow with the guest is only what is written per populated frame:
// the guest's RAM the model writes (natively, nested and shadowed one direct-map L2 entry per
// 2 MiB; under Xen PV a direct-map PTE per page and the M2P and P2M tables Xen and the guest
// keep in RAM), measured as RAM backing and bounded per frame, and per-frame metadata the
// model writes, bounded per frame below.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { BACKENDS } from "../src/backends";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const MiB = 2 ** 20;
const GiB = 2 ** 30;

interface Footprint {
  rss: number;
  backing: number;
  frames: number;
}

function footprint(backend: string, guestBytes: number): Footprint {
  const r = spawnSync(
    process.execPath,
    [
      "--expose-gc",
      "--import",
      "tsx",
      join("test", "support", "footprint-child.ts"),
      backend,
      String(guestBytes),
    ],
    {
      cwd: pkgDir,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(pkgDir, "tsconfig.source.json") },
      encoding: "utf8",
      timeout: 170_000,
    },
  );
  if (r.status !== 0) throw new Error(`footprint child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Footprint;
}

/**
 * Per added machine frame, at most: RAM backing, and resident memory other than backing.
 * Backing: natively, nested and shadowed the direct map is 2 MiB pages (h57), one L2 entry
 * (8 bytes) per 512 frames, 0.016 bytes a frame; under PV (no PSE) a 4 KiB PTE a frame (8)
 * and Xen's M2P and the guest's P2M (8 each). Other: natively, nested and shadowed nothing
 * per frame (h93: the frame table stores a free frame's owner as 0, so it is never filled, and
 * the study's domains are populated on demand, a 2 MiB block at its first owner check, so a
 * block never touched is never written); under PV the frame table's owner and count_info (8)
 * that populating the domain writes (Xen's page_info is written for every populated frame
 * too), the writable type every frame takes from its direct-map entry (typeInfo, 4), pv-mmu's
 * M2P entries (8), the guest's p2m and m2p mirrors (8 and 4).
 * Measured (docs/decisions.md, h57 and h93; 256 MiB -> 16 GiB, 4.19 M frames added): backing
 * native, nested, shadow 0 (was 8.0 with a 4 KiB direct-map PTE a frame), pv 24.0; other
 * native -1.0, nested 0.4, shadow 0.8 (7.2-8.5 before h93's populate on demand), pv 32.9-36.0:
 * the collector's timing moves it by a few MiB, about 2 bytes a frame here, which is why the
 * guest grows to 16 GiB (at 4 GiB the same slack is 8 bytes a frame). Every frame backed
 * would be 4096.
 */
const PER_FRAME: Record<string, { backing: number; other: number }> = {
  native: { backing: 0.05, other: 2 },
  pv: { backing: 25.5, other: 36 },
  nested: { backing: 0.05, other: 2 },
  shadow: { backing: 0.05, other: 2 },
};
/**
 * Independent of the guest's size: the heap V8 keeps after boot's transient work, code, and
 * the collector's timing (two runs of one size differ by up to a few MiB).
 */
const SLACK = 8 * MiB;
/** RAM is backed in 2 MiB chunks: a boot table that lands in a fresh chunk backs all of it. */
const CHUNK = 2 * MiB;

describe("resident host memory of a large guest that touches little (child processes)", () => {
  for (const backend of BACKENDS) {
    it(`${backend.name}: VmRSS grows by at most ${PER_FRAME[backend.name].other} bytes a frame besides RAM backing`, () => {
      const small = footprint(backend.name, 256 * MiB);
      const large = footprint(backend.name, 16 * GiB);
      const added = large.frames - small.frames;
      expect(added).toBeGreaterThan((15.5 * GiB) / 4096);
      // The 4 MiB written is backed, whatever the guest's size.
      expect(small.backing).toBeGreaterThanOrEqual(4 * MiB);
      const backing = large.backing - small.backing;
      expect(backing).toBeLessThanOrEqual(PER_FRAME[backend.name].backing * added + CHUNK);
      const other = large.rss - small.rss - backing;
      expect(other).toBeLessThanOrEqual(PER_FRAME[backend.name].other * added + SLACK);
    }, 400_000);
  }
});
