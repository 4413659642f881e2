/*
 * The ring code against C built on Xen's real headers: test/c/ring-ref.c implements the
 * same replay commands with io/ring.h's and console.h's macros and prints the same layout
 * lines from offsetof/sizeof; this test builds it with gcc against /usr/include/xen and
 * requires byte-identical output for the committed scripts and for random scripts.
 *
 * Without gcc or the headers the test fails under CI (CI=true) with what to install, and is
 * skipped with that reason elsewhere.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ringLayout, ringReplay } from "../src/index";

const HERE = import.meta.dirname;
const SCRIPTS = join(HERE, "scripts");
const RING_H = "/usr/include/xen/io/ring.h";
const LONG = process.env.HYPERLAB_LONG !== undefined;

function missingPeers(): string | undefined {
  const missing: string[] = [];
  if (!existsSync(RING_H)) missing.push(`Xen's public headers (${RING_H}, Debian's libxen-dev)`);
  try {
    execFileSync("gcc", ["--version"], { stdio: "ignore" });
  } catch {
    missing.push("gcc");
  }
  if (missing.length === 0) return undefined;
  return (
    `the ring check against C needs ${missing.join(" and ")}; ` +
    "install them with `node scripts/peers.mjs` from the repository root (as root), then run the test again"
  );
}

const missing = missingPeers();

describe("peers for the C reference", () => {
  // Runs wherever the peers are present and in CI (where their absence fails with what to do).
  it.skipIf(missing !== undefined && process.env.CI !== "true")(
    `gcc and Xen's headers are installed${missing ? ` (skipped outside CI: ${missing})` : ""}`,
    () => {
      expect(missing, missing).toBeUndefined();
    },
  );
});

describe.skipIf(missing !== undefined)(
  `ring replay and layout equal C on the real headers${missing ? ` (skipped: ${missing})` : ""}`,
  () => {
    let dir = "";
    let exe = "";

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "hyperlab-ring-ref-"));
      exe = join(dir, "ring-ref");
      execFileSync(
        "gcc",
        ["-std=c11", "-O1", "-Wall", "-Werror", "-o", exe, join(HERE, "c", "ring-ref.c")],
        {
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
    });
    afterAll(() => {
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    });

    function runC(args: string[]): { out: Buffer; status: number } {
      const r = spawnSync(exe, args, { maxBuffer: 256 << 20 });
      if (r.error) throw r.error;
      return { out: r.stdout, status: r.status ?? -1 };
    }

    function compare(script: Uint8Array, name: string): void {
      const file = join(dir, name);
      writeFileSync(file, script);
      const c = runC(["replay", file]);
      const ts = ringReplay(script);
      expect(Buffer.from(ts.outputBytes).toString("latin1")).toBe(c.out.toString("latin1"));
      expect(ts.status).toBe(c.status);
    }

    it("prints the same layout, line for line", () => {
      const c = runC(["layout"]);
      expect(c.status).toBe(0);
      expect(ringLayout()).toBe(c.out.toString("utf8"));
      expect(ringLayout()).toContain("sizeof(struct blkif_sring) 176\n");
      expect(ringLayout()).toContain("RING_SIZE(netif_tx,order=0) 256\n");
    });

    const scripts = readdirSync(SCRIPTS).filter((f) => f.endsWith(".ring"));
    it("has scripts for every command, wrap-around, every order, suppression, overflow and the console", () => {
      const all = scripts.map((f) => readFileSync(join(SCRIPTS, f), "utf8")).join("\n");
      for (const op of [
        "ring",
        "f.req",
        "f.push",
        "f.push_notify",
        "f.free",
        "f.has_rsp",
        "f.final_check",
        "f.get_rsp",
        "b.has_req",
        "b.final_check",
        "b.prod_overflow",
        "b.get_req",
        "b.rsp",
        "b.push",
        "b.push_notify",
        "s.set",
        "hexdump",
        "state",
        "cons.init",
        "cons.set",
        "cons.write_out",
        "cons.write_in",
        "cons.read_out",
        "cons.read_in",
      ]) {
        expect(all).toMatch(new RegExp(`^${op.replace(".", "\\.")}(\\s|$)`, "m"));
      }
      expect(all).toContain("start=0xfffffff0");
      for (let o = 0; o <= 4; o++) expect(all).toContain(`order=${o}`);
    });

    for (const f of scripts) {
      it(`replays ${f} byte for byte as C does`, () => {
        compare(readFileSync(join(SCRIPTS, f)), f);
      });
    }

    it("replays random command sequences as C does (fast-check)", () => {
      fc.assert(
        fc.property(scriptArb, (script) => {
          compare(new TextEncoder().encode(script), "random.ring");
        }),
        { seed: 0x5eed13, numRuns: LONG ? 1500 : 100 },
      );
    });
  },
);

// ---- random scripts ----

const u32near = fc.oneof(
  fc.integer({ min: 0, max: 70 }),
  fc.integer({ min: 0xffffff00, max: 0xffffffff }),
  fc.integer({ min: 0, max: 0xffffffff }),
);

/** A number in one of the spellings strtoull/strtoll accept, or now and then a bad one. */
const numTok = fc.oneof(
  { weight: 6, arbitrary: u32near.map(String) },
  { weight: 2, arbitrary: u32near.map((n) => `0x${n.toString(16)}`) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0o777 }).map((n) => `0${n.toString(8)}`) },
  { weight: 2, arbitrary: fc.integer({ min: -70000, max: -1 }).map(String) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String) },
  {
    weight: 1,
    arbitrary: fc.bigInt({ min: -(1n << 63n), max: 0n }).map((v) => `-0x${(-v).toString(16)}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "08",
      "0x",
      "1x",
      "+",
      "-",
      "",
      "99999999999999999999",
      "0b1",
      "+0X1f",
    ),
  },
);

const FIELD_NAMES: Record<string, string[]> = {
  blkif: [
    "operation",
    "nr_segments",
    "handle",
    "id",
    "sector_number",
    "seg0.gref",
    "seg0.first_sect",
    "seg0.last_sect",
    "seg1.gref",
    "seg10.last_sect",
    "seg11.gref",
  ],
  discard: ["operation", "flag", "handle", "id", "sector_number", "nr_sectors"],
  indirect: [
    "operation",
    "indirect_op",
    "nr_segments",
    "id",
    "sector_number",
    "handle",
    "indirect_grefs0",
    "indirect_grefs7",
  ],
  blkif_rsp: ["id", "operation", "status"],
  netif_tx: ["gref", "offset", "flags", "id", "size"],
  extra: ["type", "flags", "gso.size", "gso.type", "gso.pad", "gso.features"],
  netif_tx_rsp: ["id", "status"],
  netif_rx: ["id", "pad", "gref"],
  netif_rx_rsp: ["id", "offset", "flags", "status"],
  any: ["operation", "status", "gref", "bogus", "id"],
};

const assigns = (names: string[]) =>
  fc.array(
    fc.oneof(
      {
        weight: 12,
        arbitrary: fc.tuple(fc.constantFrom(...names), numTok).map(([k, v]) => `${k}=${v}`),
      },
      { weight: 1, arbitrary: fc.constantFrom("noequals", "=1", "bogus=1") },
    ),
    { maxLength: 6 },
  );

const viewed = (op: string, views: [string, string[]][]) =>
  fc
    .tuple(fc.constantFrom(...views), fc.nat())
    .chain(([[view, names]]) =>
      assigns(names).map((as) => [op, view, ...as].filter((t) => t !== "").join(" ")),
    );

const ringCmd = fc
  .tuple(
    fc.constantFrom("blkif", "netif_tx", "netif_rx"),
    fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    fc.option(u32near, { nil: undefined }),
  )
  .map(
    ([t, o, s]) =>
      `ring ${t}${o === undefined ? "" : ` order=${o}`}${s === undefined ? "" : ` start=${s}`}`,
  );

const dataTok = fc
  .array(
    fc.constantFrom(
      "a",
      "Z",
      "0",
      "\\s",
      "\\n",
      "\\t",
      "\\\\",
      "\\x0",
      "\\xff",
      "\\x4",
      "\\q",
      "~",
      "!",
      "é",
    ),
    {
      minLength: 1,
      maxLength: 40,
    },
  )
  .map((p) => p.join(""));

const command = fc.oneof(
  { weight: 1, arbitrary: ringCmd },
  // Whole protocol steps, so event indices meet producers as they do on a live ring.
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.integer({ min: 0, max: 3 }), fc.constantFrom("f.push_notify", "f.push"))
      .map(([n, push]) => `${"f.req\n".repeat(n)}${push}`),
  },
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom("b.push_notify", "b.push"),
        fc.boolean(),
      )
      .map(
        ([n, push, check]) =>
          `${"b.get_req\nb.rsp\n".repeat(n)}${push}${check ? "\nb.final_check" : ""}`,
      ),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.integer({ min: 0, max: 3 }), fc.boolean())
      .map(([n, check]) => `${"f.get_rsp\n".repeat(n)}${check ? "f.final_check" : "f.has_rsp"}`),
  },
  {
    weight: 10,
    arbitrary: viewed("f.req", [
      ["", FIELD_NAMES.blkif!],
      ["", FIELD_NAMES.netif_tx!],
      ["", FIELD_NAMES.netif_rx!],
      ["discard", FIELD_NAMES.discard!],
      ["indirect", FIELD_NAMES.indirect!],
      ["extra", FIELD_NAMES.extra!],
    ]),
  },
  {
    weight: 6,
    arbitrary: viewed("b.rsp", [
      ["", FIELD_NAMES.blkif_rsp!],
      ["", FIELD_NAMES.netif_tx_rsp!],
      ["", FIELD_NAMES.netif_rx_rsp!],
      ["extra", FIELD_NAMES.extra!],
      ["", FIELD_NAMES.any!],
    ]),
  },
  ...[
    "f.push",
    "f.push_notify",
    "f.free",
    "f.has_rsp",
    "f.final_check",
    "f.get_rsp",
    "b.has_req",
    "b.final_check",
    "b.prod_overflow",
    "b.get_req",
    "b.push",
    "b.push_notify",
  ].map((c) => ({ weight: 4, arbitrary: fc.constant(c) })),
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "f.get_rsp extra",
      "b.get_req discard",
      "b.get_req indirect",
      "b.get_req extra",
      "state",
      "cons.init",
      "f.push now",
      "bogus",
      "cons.bogus",
    ),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.constantFrom("req_prod", "req_event", "rsp_prod", "rsp_event", "other"), numTok)
      .map(([k, v]) => `s.set ${k} ${v}`),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.integer({ min: 0, max: 0x10000 }), fc.integer({ min: 0, max: 0x400 }))
      .map(([a, l]) => `hexdump ${a} ${a + l}`),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom("in_cons", "in_prod", "out_cons", "out_prod", "nope"), u32near)
      .map(([k, v]) => `cons.set ${k} ${v}`),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.constantFrom("cons.write_out", "cons.write_in"), dataTok)
      .map((p) => p.join(" ")),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.constantFrom("cons.read_out", "cons.read_in"), fc.integer({ min: 0, max: 3000 }))
      .map(([op, n]) => `${op} ${n}`),
  },
  { weight: 1, arbitrary: fc.constantFrom("", "# a comment", "   \t", "state # trailing comment") },
  // Noise: any printable line, or a known op with random words.
  {
    weight: 2,
    arbitrary: fc.string({
      unit: fc.constantFrom(..." \t=.#\\-+0123456789xabfqrsz_"),
      maxLength: 30,
    }),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom(
          "ring",
          "f.req",
          "b.rsp",
          "b.get_req",
          "f.get_rsp",
          "s.set",
          "cons.set",
          "hexdump",
        ),
        fc.array(
          fc.string({ unit: fc.constantFrom(..."=.-+0123456789xabdfgioprsteqz_"), maxLength: 12 }),
          {
            maxLength: 4,
          },
        ),
      )
      .map(([op, words]) => [op, ...words].join(" ")),
  },
);

const scriptArb = fc
  .tuple(ringCmd, fc.array(command, { minLength: 1, maxLength: 60 }))
  .map(([first, rest]) => `${[first, ...rest].join("\n")}\n`);
