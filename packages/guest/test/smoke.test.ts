import { describe, expect, it } from "vitest";
import { PROT_READ, PROT_WRITE, spawnProcess } from "../src/index";
import { nativeBuild, xenBuild } from "./helpers";

for (const [name, build] of [
  ["native", () => nativeBuild()],
  ["xen", () => xenBuild()],
  ["xen-nobatch", () => xenBuild(4096, false)],
] as const) {
  describe(name, () => {
    it("runs a process, forks, COW, exits", () => {
      const { kernel } = build();
      const p = spawnProcess(kernel);
      const a = p.mmap(64 * 4096, PROT_READ | PROT_WRITE);
      expect(a).toBeGreaterThan(0);
      expect(p.writeRange(a, 64 * 4096, 7)).toBe(65536);
      expect(p.load(a + 8)).toBe(7);
      const c = p.fork();
      if (typeof c === "number") throw new Error(`fork ${c}`);
      expect(c.load(a + 8)).toBe(7);
      expect(c.store(a + 8, 9)).toBe(true);
      expect(c.load(a + 8)).toBe(9);
      expect(p.load(a + 8)).toBe(7);
      c.exit(3);
      expect(p.load(0x1000)).toBe(-1);
      expect(p.state).toBe("killed");
      expect(kernel.freePages).toBeGreaterThan(0);
    });
  });
}
