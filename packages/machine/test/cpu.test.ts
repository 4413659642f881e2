import { describe, expect, it } from "vitest";
import { createPcpus, MAX_PCPUS, onlinePcpus, PCPU_SCRATCH_SLOTS } from "../src/index";
import { expectMachineError } from "./helpers";

describe("pCPUs", () => {
  it("are plain data: ids, online, current and scratch", () => {
    const cpus = createPcpus(4);
    expect(cpus.map((c) => c.id)).toEqual([0, 1, 2, 3]);
    for (const c of cpus) {
      expect(c.online).toBe(true);
      expect(c.current).toBe(-1);
      expect(c.scratch.length).toBe(PCPU_SCRATCH_SLOTS);
      expect(c.scratch.every((x) => x === 0)).toBe(true);
    }
    cpus[2].online = false;
    cpus[1].current = 7;
    cpus[1].scratch[3] = 1.5;
    expect(onlinePcpus(cpus)).toEqual([0, 1, 3]);
    expect(cpus[0].scratch[3]).toBe(0);
    expect(JSON.parse(JSON.stringify({ ...cpus[1], scratch: [...cpus[1].scratch] })).current).toBe(
      7,
    );
  });

  it("refuses a bad count", () => {
    for (const n of [0, -1, 1.5, MAX_PCPUS + 1, Number.NaN]) {
      expectMachineError(() => createPcpus(n), "CPU_BAD_COUNT");
    }
    expect(createPcpus(MAX_PCPUS).length).toBe(MAX_PCPUS);
  });
});
