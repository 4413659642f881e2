import { readFileSync } from "node:fs";
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { expect, it } from "vitest";
import { EXIT_REASON_EXCEPTION_NMI, shadowMmu } from "../src/index";

it("runs the README example", () => {
  const machine = createMachine({ ramBytes: 64 * 2 ** 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [shadowMmu()] }).boot();
  const sh = hv.slot("shadow-mmu");
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
  const [l4, l3, l2, l1, a, b] = [0, 1, 2, 3, 4, 5].map(() => hv.allocDomainPages(d, 0));
  for (const f of [l4, l3, l2, l1]) machine.ram.clearFrame(f);
  const v = d.vcpus[0];

  // The guest kernel's page-table stores, all through guestStore (P | RW | US = 7).
  sh.guestStore(v, l4 * 4096, l3 * 4096 + 7, 0);
  sh.guestStore(v, l3 * 4096, l2 * 4096 + 7, 0);
  sh.guestStore(v, l2 * 4096, l1 * 4096 + 7, 0);
  sh.guestStore(v, l1 * 4096 + 8, a * 4096 + 7, 0); // va 0x1000 -> a
  sh.writeCr3(v, l4);

  expect(sh.translate(v, 0x1000, 0) === a * 4096).toBe(true);
  expect(sh.isWriteProtected(l1)).toBe(true);

  sh.guestStore(v, l1 * 4096 + 8, b * 4096 + 7, 0); // traps once: l1's shadow goes out of sync
  sh.guestStore(v, l1 * 4096 + 16, b * 4096 + 7, 0); // no exit: l1 is writable now
  expect(sh.counts.unsyncs).toBe(1);
  sh.flushLocal(v); // the guest's CR3 reload syncs l1 and protects it again
  expect(sh.translate(v, 0x1000, 0) === b * 4096).toBe(true);
  expect(sh.exitCount(EXIT_REASON_EXCEPTION_NMI)).toBe(3);
});

it("keeps the README's example in step with this test", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  for (const line of [
    "const hv = createHypervisor({ machine, plugins: [shadowMmu()] }).boot();",
    "sh.guestStore(v, l1 * 4096 + 8, b * 4096 + 7, 0); // traps once: l1's shadow goes out of sync",
    "sh.flushLocal(v); // the guest's CR3 reload syncs l1 and protects it again",
    "sh.writeCr3(v, l4);",
  ]) {
    expect(readme).toContain(line);
  }
});
