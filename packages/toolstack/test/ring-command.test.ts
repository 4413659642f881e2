import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../src/index";

const dir = mkdtempSync(join(tmpdir(), "hyperlab-ring-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const scripts = fileURLToPath(new URL("../../split-drivers/test/scripts/", import.meta.url));

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) }, out, err };
}

describe("hyperlab ring", () => {
  it("replays the reference's example and prints its output exactly", async () => {
    const c = capture();
    const rc = await runCli(["ring", "replay", join(scripts, "example.ring")], c.io);
    expect(rc).toBe(0);
    expect(c.out.join("")).toBe(readFileSync(join(scripts, "example.expected"), "utf8"));
    expect(c.err).toEqual([]);
  });

  it("exits 1 when a command of the script failed, still printing every line", async () => {
    const file = join(dir, "bad.ring");
    writeFileSync(file, "ring blkif\nf.req nosuch=1\nstate\n");
    const c = capture();
    expect(await runCli(["ring", "replay", file], c.io)).toBe(1);
    const lines = c.out.join("").split("\n");
    expect(lines[1]).toBe("2 f.req ERROR unknown field 'nosuch'");
    expect(lines[2]).toMatch(/^3 state \| req_prod=0 /);
  });

  it("prints the layout as NAME VALUE lines", async () => {
    const c = capture();
    expect(await runCli(["ring", "layout"], c.io)).toBe(0);
    const text = c.out.join("");
    expect(text).toContain("sizeof(struct blkif_sring) 176\n");
    expect(text).toContain("offsetof(struct blkif_sring,rsp_event) 12\n");
    expect(text).toContain("RING_SIZE(blkif,order=2) 128\n");
    expect(text).toContain("RING_SIZE(netif_tx,order=0) 256\n");
  });

  it("says what to do on an unreadable script or a wrong use", async () => {
    const c = capture();
    expect(await runCli(["ring", "replay", join(dir, "missing.ring")], c.io)).toBe(1);
    expect(c.err.join("")).toMatch(/cannot read the script .*missing\.ring' \(ENOENT\)/);
    const u = capture();
    expect(await runCli(["ring"], u.io)).toBe(2);
    expect(u.err.join("")).toContain("usage: hyperlab ring replay SCRIPT | hyperlab ring layout");
    const w = capture();
    expect(await runCli(["ring", "replay"], w.io)).toBe(2);
    expect(w.err.join("")).toContain("hyperlab ring --help");
    const h = capture();
    expect(await runCli(["ring", "--help"], h.io)).toBe(0);
    expect(h.out.join("")).toContain("replay SCRIPT");
  });

  it("runs as the hyperlab bin: the example's bytes on stdout, status 0", () => {
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "ring", "replay", join(scripts, "example.ring")],
      {
        cwd: pkgDir,
        env: { ...process.env, TSX_TSCONFIG_PATH: join(pkgDir, "test/tsconfig.cli.json") },
      },
    );
    expect(r.stderr.toString()).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toBe(readFileSync(join(scripts, "example.expected"), "utf8"));
  });
});
