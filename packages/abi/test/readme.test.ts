/*
 * Runs the README's example. The code between the markers is the README's code block
 * without its import; the first test keeps the two identical.
 */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import {
  EINVAL,
  EVTCHN_2L_NR_CHANNELS,
  shared_info_x86_64,
  vcpu_info_x86_64,
  XEN_ERRNO_NAMES,
} from "../src/index";

// README example start
// A shared_info page as bytes: raise vCPU 1's evtchn_upcall_pending, as Xen does before
// it sends the guest an upcall.
const page = new Uint8Array(4096);
const slots = shared_info_x86_64.fields.vcpu_info; // 32 slots of 64 bytes at offset 0
const vcpu = 1;
const pendingAt =
  slots.offset + vcpu * slots.size + vcpu_info_x86_64.fields.evtchn_upcall_pending.offset;
page[pendingAt] = 1; // byte 64

// A hypercall handler answers a guest's bad argument with Xen's negative errno.
function evtchnSend(port: number): number {
  if (port < 0 || port >= EVTCHN_2L_NR_CHANNELS) return -EINVAL;
  return 0;
}
const rc = evtchnSend(5000); // -22
const name = XEN_ERRNO_NAMES[-rc]; // "EINVAL"
// README example end

it("keeps the README's example and this test's copy identical", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
  const readmeBody = block.replace(/^import[\s\S]*?from "@hyperlab\/abi";\n\n/, "");
  const self = readFileSync(new URL(import.meta.url), "utf8");
  const ours = /\/\/ README example start\n([\s\S]*?)\/\/ README example end\n/.exec(self)?.[1];
  expect(ours).toBe(readmeBody);
});

it("runs the README example", () => {
  expect(pendingAt).toBe(64);
  expect(page[64]).toBe(1);
  expect(page.reduce((a, b) => a + b, 0)).toBe(1);
  expect(rc).toBe(-22);
  expect(name).toBe("EINVAL");
  expect(evtchnSend(7)).toBe(0);
  expect(evtchnSend(-1)).toBe(-EINVAL);
});
