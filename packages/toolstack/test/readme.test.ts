// The README's example, run as written.
import { expect, it } from "vitest";
import { runCli } from "../src/index";

it("README example", async () => {
  const lines: string[] = [];
  const status = await runCli(["--help"], { out: (s) => lines.push(s), err: (s) => lines.push(s) });
  expect(status).toBe(0);
  expect(lines.join("")).toMatch(/xenstored/);
});
