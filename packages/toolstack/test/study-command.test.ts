import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../src/index";

const dir = mkdtempSync(join(tmpdir(), "hyperlab-study-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) }, out, err };
}

const SMALL = ["--workloads", "random", "--working-set", "1M", "--ops", "500", "--workers", "0"];

describe("hyperlab study", () => {
  it("is listed in the top-level help", async () => {
    const c = capture();
    expect(await runCli(["--help"], c.io)).toBe(0);
    expect(c.out.join("")).toMatch(/study \[options\]/);
  });

  it("--help shows its options", async () => {
    const c = capture();
    expect(await runCli(["study", "--help"], c.io)).toBe(0);
    expect(c.out.join("")).toMatch(/--working-set <LIST>/);
    expect(c.out.join("")).toMatch(/--cost <NAME=CYCLES>/);
  });

  it("--list lists workloads and backends", async () => {
    const c = capture();
    expect(await runCli(["study", "--list"], c.io)).toBe(0);
    const text = c.out.join("");
    for (const name of ["fork-exec", "mmap-churn", "random", "stream", "pointer-chase", "kbuild"]) {
      expect(text).toContain(`  ${name} `);
    }
    for (const name of ["native", "pv", "nested"])
      expect(text).toMatch(new RegExp(`\\n  ${name} `));
  });

  it("runs a matrix from flags, prints the summary and writes the report", async () => {
    const c = capture();
    const out = join(dir, "flags");
    const args = ["study", ...SMALL, "--seed", "3", "--cost", "vmExits=800", "--out", out];
    args.push("--progress");
    expect(await runCli(args, c.io)).toBe(0);
    const text = c.out.join("");
    expect(text).toMatch(/random ws=1MiB page=4K\/4K procs=1 ops=500 +native/);
    expect(text).toContain("est. vs native");
    expect(text).toContain(`wrote ${join(out, "report.html")}`);
    // Progress (asked for): one plain line per run on a non-terminal stderr.
    expect(c.err).toHaveLength(4);
    expect(c.err[3]).toMatch(/^study: 4\/4 done: /);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(config.seed).toBe(3);
    expect(config.costs.vmExits).toBe(800);
    expect(config.workingSetBytes).toEqual([2 ** 20]);
    expect(readFileSync(join(out, "results.csv"), "utf8").split("\n")[0]).toMatch(/^key,workload/);
  });

  it("runs a matrix from a config file, with flags on top", async () => {
    const file = join(dir, "study.json");
    writeFileSync(
      file,
      JSON.stringify({ seed: 9, workloads: ["stream"], backends: ["native", "pv"], workers: 0 }),
    );
    const c = capture();
    const args = ["study", "--config", file, "--ops=100", "--working-set=512K", "--backends=pv"];
    expect(await runCli(args, c.io)).toBe(0);
    const text = c.out.join("");
    expect(text).toMatch(/stream ws=512KiB page=4K\/4K procs=1 ops=100 +pv/);
    expect(text).not.toMatch(/ native +[0-9a-f]{8}/);
  });

  it("runs 2 MiB guest pages on the guest kernel (Xen PV has none)", async () => {
    const c = capture();
    const args = ["study", ...SMALL, "--guest-pages", "2M", "--backends", "native,pv"];
    expect(await runCli(args, c.io)).toBe(0);
    const text = c.out.join("");
    expect(text).toMatch(/random ws=1MiB page=2M\/4K procs=1 ops=500 +native/);
    expect(text).not.toMatch(/page=2M\/4K procs=1 ops=500 +pv +[0-9a-f]{8}/);
    expect(text).toMatch(/skipped: .* pv: Xen PV guests have no superpages/);
  });

  it("--default starts from the default study, flags on top", async () => {
    const c = capture();
    const args = ["study", "--default", "--workloads", "stream", "--ops", "50", "--workers", "0"];
    expect(await runCli(args, c.io)).toBe(0);
    expect(c.out.join("")).toMatch(/stream ws=8MiB page=4K\/4K procs=2 ops=50 +shadow/);
  });

  it("says what to do about each mistake, with status 2", async () => {
    const cases: [string[], RegExp][] = [
      [["--bogus"], /unknown option '--bogus'/],
      [["--out"], /--out needs a value/],
      [["--working-set", "12Q"], /sizes such as 64K/],
      [["--ops", "many"], /whole numbers/],
      [["--cost", "vmExits"], /NAME=CYCLES/],
      [["--cost", "nope=3"], /no cost "nope"/],
      [["--workloads", "nope"], /no workload "nope"/],
      [["--backends", "xen"], /no backend "xen"/],
      [["--guest-pages", "8K"], /guestPageSizes/],
      [["--kernel", "guest"], /unknown option '--kernel'/],
      [["--config", join(dir, "missing.json")], /Cannot read study config/],
    ];
    for (const [args, re] of cases) {
      const c = capture();
      expect(await runCli(["study", ...args], c.io), args.join(" ")).toBe(2);
      expect(c.err.join(""), args.join(" ")).toMatch(re);
    }
    const bad = join(dir, "bad.json");
    writeFileSync(bad, "{");
    const c = capture();
    expect(await runCli(["study", "--config", bad], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/not valid JSON/);
  });

  it("names the flag as the user typed it in every value error", async () => {
    const cases: [string[], string][] = [
      [["--working-set=12Q"], "--working-set takes sizes such as 64K, 16M or 1G; got '12Q'"],
      [["--ops", "1,x"], "--ops takes whole numbers; got 'x'"],
      [["--workloads", "random,nope"], '--workloads There is no workload "nope"'],
      [["--backends=xen"], '--backends There is no backend "xen"'],
      [["--host-pages", "3M"], "--host-pages takes 4K, 2M, 1G (the config field hostPageSizes)"],
      [["--cost", "nope=3"], '--cost There is no cost "nope"'],
      [["--out", "--json"], "--out needs a value; got the flag '--json'"],
      [["--seed"], "--seed needs a value"],
      [["extra"], "unexpected argument 'extra'"],
    ];
    for (const [args, text] of cases) {
      const c = capture();
      expect(await runCli(["study", ...args], c.io), args.join(" ")).toBe(2);
      expect(c.err.join(""), args.join(" ")).toContain(`hyperlab study: ${text}`);
      expect(c.out).toEqual([]);
    }
  });

  it("--json prints the results as JSON; --quiet prints nothing; no progress off a terminal", async () => {
    let c = capture();
    expect(await runCli(["study", ...SMALL, "--backends", "native,pv", "--json"], c.io)).toBe(0);
    const j = JSON.parse(c.out.join(""));
    expect(j.files).toEqual([]);
    expect(j.results.runs.map((r: { backend: string }) => r.backend)).toEqual(["native", "pv"]);
    expect(c.err).toEqual([]);
    c = capture();
    expect(await runCli(["study", ...SMALL, "--backends", "native", "--quiet"], c.io)).toBe(0);
    expect(c.out).toEqual([]);
    expect(c.err).toEqual([]);
  });

  it("runs the split-driver cases of io.split: the table in text, io.split in --json, nothing with --quiet", async () => {
    const file = join(dir, "split.json");
    const split = {
      modes: ["map", "persistent"],
      requests: 2,
      warmup: 1,
      disk: [{ name: "r4k", op: "read", bytes: 4096, access: "random" }],
      nic: [],
    };
    writeFileSync(
      file,
      JSON.stringify({
        seed: 3,
        backends: ["native"],
        io: { platforms: ["native"], requests: 1, split },
      }),
    );
    const base = ["study", "--config", file, ...SMALL];
    let c = capture();
    expect(await runCli(base, c.io)).toBe(0);
    const text = c.out.join("");
    expect(text).toContain("Split-driver I/O (2 requests per pattern, one at a time):");
    expect(text).toContain("| xen-split-map | r4k | 2 | 4 | 2 | 2 | 2 | 0 | 0 | 0 | 13000 |");
    expect(text).toContain(
      "| xen-split-persistent | r4k | 2 | 2 | 0 | 0 | 2 | 0 | 1 | 4096 | 7024 |",
    );
    c = capture();
    expect(await runCli([...base, "--json"], c.io)).toBe(0);
    const j = JSON.parse(c.out.join(""));
    expect(j.results.io.split.format).toBe("hyperlab-study-io-split/1");
    expect(j.results.io.split.config.seed).toBe(3);
    expect(
      j.results.io.split.rows.map((r: { platform: string; perRequest: { hypercalls: number } }) => [
        r.platform,
        r.perRequest.hypercalls,
      ]),
    ).toEqual([
      ["xen-split-map", 4],
      ["xen-split-persistent", 2],
    ]);
    c = capture();
    expect(await runCli([...base, "--quiet"], c.io)).toBe(0);
    expect(c.out).toEqual([]);
    writeFileSync(file, JSON.stringify({ io: { split: { ...split, requests: 0 } } }));
    c = capture();
    expect(await runCli(base, c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/hyperlab study: .*io\.split\.requests/);
  });

  it("refuses a study bigger than the host's memory before running, naming the flags", async () => {
    const c = capture();
    const args = ["study", "--workloads", "fork-exec", "--working-set", "64G", "--workers", "16"];
    expect(await runCli([...args, "--processes", "1,2,3,4,5,6,7,8"], c.io)).toBe(1);
    expect(c.err.join("")).toMatch(
      /needs about .* GiB .*--working-set.*--workers.*--skip-memory-check/,
    );
    expect(c.out).toEqual([]);
  });

  it("compare: two results side by side as B/A ratios, matched by run key", async () => {
    const a = join(dir, "cmp-a");
    const b = join(dir, "cmp-b");
    const base = ["study", ...SMALL, "--backends", "native,nested", "--quiet"];
    expect(await runCli([...base, "--out", a], capture().io)).toBe(0);
    expect(await runCli([...base, "--cost", "vmExits=5000", "--out", b], capture().io)).toBe(0);
    let c = capture();
    expect(await runCli(["study", "compare", a, join(b, "results.json")], c.io)).toBe(0);
    const lines = c.out.join("").split("\n");
    expect(lines[0]).toMatch(
      /^run +A est\. cycles +B est\. cycles +est\. cycles B\/A +TLB misses B\/A/,
    );
    // Native has no exits: same cycles. Nested pays more per exit: more cycles, same counts.
    expect(lines[2]).toMatch(/native +([\d,]+) +\1 +1 +1 +1 +1 +1 +1$/);
    expect(lines[3]).toMatch(/nested +[\d,]+ +[\d,]+ +\d+(\.\d+)? +1 +1 +1 +1 +1$/);
    expect(Number(lines[3].trim().split(/ +/).at(-6))).toBeGreaterThan(1);
    c = capture();
    expect(await runCli(["study", "compare", a, b, "--json"], c.io)).toBe(0);
    expect(JSON.parse(c.out.join("")).rows).toHaveLength(2);
    // Mistakes: a missing operand, a file that is not results.
    c = capture();
    expect(await runCli(["study", "compare", a], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/missing required argument 'B'.*hyperlab study compare --help/);
    c = capture();
    expect(await runCli(["study", "compare", a, join(a, "config.json")], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/is not a study's results\.json/);
    c = capture();
    expect(await runCli(["study", "compare", a, join(dir, "none")], c.io)).toBe(2);
    expect(c.err.join("")).toMatch(/Cannot read study results/);
  });

  it("reports an unwritable output directory with status 1", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    const c = capture();
    expect(
      await runCli(["study", ...SMALL, "--backends", "native", "--out", join(file, "sub")], c.io),
    ).toBe(1);
    expect(c.err.join("")).toMatch(/cannot write the results.*choose another --out/i);
    // Checked before any run: no summary was printed.
    expect(c.out).toEqual([]);
  });
});
