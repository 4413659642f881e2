// pageTableTree over synthetic tables: present entries only, PSE leaves at L2/L3, addresses
// sign-extended above 2^47, access bits, a loop named rather than followed, and a hostile
// table set bounded by maxNodes.
import { _PAGE_NX_HI, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _PAGE_USER } from "@hyperlab/abi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type PageTableNode, type PteHalves, pageTableTree } from "../../src/dashboard/index";

/** Tables as a map "mfn:index" -> entry; absent entries are not present. */
function tables(entries: Record<string, [number, number, number?]>) {
  return (mfn: number, i: number): PteHalves => {
    const e = entries[`${mfn}:${i}`];
    if (e === undefined) return { lo: 0, hi: 0 };
    const [frame, flags, hi = 0] = e;
    return { lo: ((frame % 2 ** 20) * 4096 + flags) >>> 0, hi: Math.floor(frame / 2 ** 20) | hi };
  };
}

const labels = (n: PageTableNode): string[] => [n.label, ...(n.children ?? []).flatMap(labels)];

describe("pageTableTree", () => {
  it("walks L4 to L1, with 2 MiB and 1 GiB leaves and access bits", () => {
    const P = _PAGE_PRESENT;
    const t = tables({
      "100:0": [101, P | _PAGE_RW | _PAGE_USER],
      "101:1": [102, P | _PAGE_RW],
      "102:3": [103, P],
      "103:5": [0x300, P | _PAGE_RW, _PAGE_NX_HI],
      "102:4": [0x400, P | _PAGE_PSE | _PAGE_RW],
      "101:2": [0x40000, P | _PAGE_PSE],
      "100:273": [104, P | _PAGE_RW],
      "104:0": [105, P],
      "105:0": [106, P],
      "106:0": [0x2_0000_0, P], // a frame above 2^20: the high half holds its top bits
    });
    const tree = pageTableTree(100, t);
    expect(labels(tree)).toEqual([
      "L4 mfn 0x64",
      "L4[0] 0x0 -> L3 mfn 0x65 rw user",
      "L3[1] 0x40000000 -> L2 mfn 0x66 rw",
      "L2[3] 0x40600000 -> L1 mfn 0x67 ro",
      "L1[5] 0x40605000 -> mfn 0x300 rw nx (4 KiB)",
      "L2[4] 0x40800000 -> mfn 0x400 rw (2 MiB)",
      "L3[2] 0x80000000 -> mfn 0x40000 ro (1 GiB)",
      "L4[273] 0xffff888000000000 -> L3 mfn 0x68 rw",
      "L3[0] 0xffff888000000000 -> L2 mfn 0x69 ro",
      "L2[0] 0xffff888000000000 -> L1 mfn 0x6a ro",
      "L1[0] 0xffff888000000000 -> mfn 0x200000 ro (4 KiB)",
    ]);
  });

  it("names a loop instead of following it", () => {
    const P = _PAGE_PRESENT;
    const tree = pageTableTree(100, tables({ "100:0": [101, P], "101:0": [100, P] }));
    expect(labels(tree)).toContain("L3[0] -> L2 mfn 0x64 (already on this path: a loop)");
  });

  it("stays within maxNodes on any hostile table set, and says how many it left out", () => {
    fc.assert(
      fc.property(fc.nat(40), fc.integer({ min: 1, max: 50 }), (seed, max) => {
        // every entry of every table present and pointing at one of a few frames
        const read = (mfn: number, i: number): PteHalves => ({
          lo: (((mfn * 31 + i * 7 + seed) % 5) * 4096 + _PAGE_PRESENT) >>> 0,
          hi: 0,
        });
        const tree = pageTableTree(0, read, { maxNodes: max });
        const all = labels(tree);
        const more = all.find((l) => l.startsWith("... "));
        expect(all.length - 1 - (more ? 1 : 0)).toBe(max);
        expect(more).toMatch(/^\.\.\. \d+ more present entries/);
      }),
      { seed: 7, numRuns: process.env.HYPERLAB_LONG === "1" ? 500 : 40 },
    );
  });
});
