/*
 * virtio's shared format (src/virtio.ts) against Linux's uapi headers: test/c/virtio-ref.c
 * prints every constant and offset from <linux/virtio_*.h> and answers vring_need_event from
 * the header's own inline; this test builds it with gcc and requires the same numbers, and the
 * same answers for random index triples.
 *
 * Without gcc or the headers (Debian's gcc and linux-libc-dev) the test fails under CI
 * (CI=true) with what to install, and is skipped with that reason elsewhere.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as virtio from "../src/virtio";

const HEADER = "/usr/include/linux/virtio_ring.h";

function missingPeers(): string | undefined {
  const missing: string[] = [];
  if (!existsSync(HEADER))
    missing.push(`Linux's uapi headers (${HEADER}, Debian's linux-libc-dev)`);
  try {
    execFileSync("gcc", ["--version"], { stdio: "ignore" });
  } catch {
    missing.push("gcc");
  }
  if (missing.length === 0) return undefined;
  return `the virtio check against C needs ${missing.join(" and ")}; install them (apt-get install gcc linux-libc-dev) and run the test again`;
}

const missing = missingPeers();

describe("peers for the C reference", () => {
  it.skipIf(missing !== undefined && process.env.CI !== "true")(
    `gcc and Linux's virtio headers are installed${missing ? ` (skipped outside CI: ${missing})` : ""}`,
    () => {
      expect(missing, missing).toBeUndefined();
    },
  );
});

describe.skipIf(missing !== undefined)("virtio's format equals Linux's uapi headers", () => {
  let dir = "";
  let exe = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "hyperlab-virtio-ref-"));
    exe = join(dir, "virtio-ref");
    execFileSync("gcc", ["-O1", "-o", exe, join(import.meta.dirname, "c", "virtio-ref.c")]);
  });
  afterAll(() => {
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  it("every constant and offset", () => {
    const out = execFileSync(exe, { input: "" }).toString().trim().split("\n");
    const table = virtio as unknown as Record<string, number>;
    let n = 0;
    for (const line of out) {
      const [name, value] = line.split(" ");
      if (name === "END") break;
      expect(table[name], name).toBe(Number(value));
      n++;
    }
    expect(n).toBe(70);
  });

  it("vringNeedEvent answers as the header's vring_need_event", () => {
    const u16 = fc.nat(0xffff);
    const triples = fc.sample(fc.tuple(u16, u16, u16), { seed: 29, numRuns: 2000 });
    // Edges: equal indices, wrap-around, event just behind new.
    triples.push(
      [0, 0, 0],
      [0xffff, 0, 0xffff],
      [5, 6, 5],
      [6, 6, 5],
      [4, 6, 5],
      [0xfffe, 1, 0xfffd],
    );
    const input = triples.map((t) => t.join(" ")).join("\n");
    const lines = execFileSync(exe, { input: `${input}\n` })
      .toString()
      .trim()
      .split("\n");
    const answers = lines.slice(lines.indexOf("END 0") + 1);
    expect(answers.length).toBe(triples.length);
    triples.forEach(([e, nw, o], i) => {
      expect(virtio.vringNeedEvent(e, nw, o) ? "1" : "0", `${e} ${nw} ${o}`).toBe(answers[i]);
    });
  });

  it("ring sizes follow the layouts", () => {
    expect(virtio.virtqDescBytes(256)).toBe(4096);
    expect(virtio.virtqAvailBytes(256)).toBe(6 + 512);
    expect(virtio.virtqUsedBytes(256)).toBe(6 + 2048);
    expect(virtio.virtqUsedEventOffset(256)).toBe(4 + 512);
    expect(virtio.virtqAvailEventOffset(256)).toBe(4 + 2048);
  });
});
