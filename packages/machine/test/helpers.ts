import { expect } from "vitest";
import { MachineError, type MachineErrorCode } from "../src/index";

/** Runs fn, which must throw a MachineError with `code`; returns it. */
export function expectMachineError(fn: () => unknown, code: MachineErrorCode): MachineError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(MachineError);
  const err = caught as MachineError;
  expect(err.code).toBe(code);
  expect(err.name).toBe("MachineError");
  expect(err.message.length).toBeGreaterThan(20);
  return err;
}

/** fast-check settings: fixed seed; HYPERLAB_LONG raises the run count. */
export function fcParams(runs = 100): { seed: number; numRuns: number } {
  return { seed: 0x5eed, numRuns: process.env.HYPERLAB_LONG ? runs * 20 : runs };
}
