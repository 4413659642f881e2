/*
 * The plugin example of docs/architecture.md, type-checked and run. The block between the
 * markers below is the doc's example with "@hyperlab/core" spelled "../src/index"; the last
 * test fails if the doc and this file drift apart.
 */
// biome-ignore-all assist/source/organizeImports: the example's imports stay in the doc's order
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";

// --- example start ---
import { __HYPERVISOR_xen_version, ENOSYS } from "@hyperlab/abi";
import { createHypervisor, definePlugin } from "../src/index";
import { createMachine } from "@hyperlab/machine";

// The slot's type, added to core's table by declaration merging.
declare module "../src/index" {
  interface Slots {
    greeter: { greet(name: string): string };
  }
}

const greeter = definePlugin({
  name: "greeter",
  provides: ["greeter"], // slots this plugin fills
  requires: [], // slots it needs (their providers set up first)
  hypercalls: [{ op: __HYPERVISOR_xen_version }],
  setup(ctx) {
    ctx.provide("greeter", { greet: (name) => `hello, ${name}` });
    ctx.hypercall(__HYPERVISOR_xen_version, (_vcpu, args: { cmd?: unknown }) =>
      args.cmd === 0 ? (4 << 16) | 17 : -ENOSYS,
    );
  },
});

const machine = createMachine({ ramBytes: 16 << 20, cpus: 1, seed: 1 });
const hv = createHypervisor({ machine, plugins: [greeter] }).boot();
const dom = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
const greeting = hv.slot("greeter").greet("dom1"); // "hello, dom1"
const version = hv.hypercall(dom.vcpus[0], __HYPERVISOR_xen_version, { cmd: 0 }); // 4.17
// --- example end ---

it("runs the architecture page's plugin example", () => {
  expect(greeting).toBe("hello, dom1");
  expect([version >> 16, version & 0xffff]).toEqual([4, 17]);
  expect(hv.hypercall(dom.vcpus[0], __HYPERVISOR_xen_version, { cmd: 1 })).toBe(-ENOSYS);
  expect(hv.describe().slots).toEqual({ greeter: "greeter" });
});

it("is the same code as the example in docs/architecture.md", () => {
  const doc = readFileSync(new URL("../../../docs/architecture.md", import.meta.url), "utf8");
  const block = /## The registry[\s\S]*?```ts\n([\s\S]*?)```/.exec(doc);
  expect(block).not.toBeNull();
  const ours = readFileSync(new URL(import.meta.url), "utf8");
  const example = /\/\/ --- example start ---\n([\s\S]*?)\/\/ --- example end ---/.exec(ours)!;
  const norm = (s: string) => s.replaceAll('"../src/index"', '"@hyperlab/core"').trim();
  expect(norm(example[1])).toBe(norm(block![1]));
});
