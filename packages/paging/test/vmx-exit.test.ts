import { describe, expect, it } from "vitest";
import {
  EXIT_REASON_EPT_VIOLATION,
  EXIT_REASON_INVLPG,
  VMX_EXIT_REASON_NAMES,
  VMX_EXIT_REASONS_MAX,
  vmxExitReasonNames,
} from "../src/index";

describe("VM-exit reasons, defined once", () => {
  it("gives each reason one name, below VMX_EXIT_REASONS_MAX", () => {
    const numbers = Object.keys(VMX_EXIT_REASON_NAMES).map(Number);
    for (const n of numbers) expect(n).toBeLessThan(VMX_EXIT_REASONS_MAX);
    const names = Object.values(VMX_EXIT_REASON_NAMES);
    expect(new Set(names).size).toBe(names.length);
    expect(VMX_EXIT_REASON_NAMES[EXIT_REASON_EPT_VIOLATION]).toBe("EPT_VIOLATION");
  });

  it("picks the names of some reasons, naming unknown ones by number", () => {
    expect(vmxExitReasonNames([EXIT_REASON_INVLPG, 74])).toEqual({ 14: "INVLPG", 74: "EXIT_74" });
  });
});
