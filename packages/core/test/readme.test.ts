import { __HYPERVISOR_xen_version, ENOSYS } from "@hyperlab/abi";
import { createMachine } from "@hyperlab/machine";
import { expect, it } from "vitest";
import { createHypervisor, definePlugin } from "../src/index";

it("runs the README example", () => {
  const version = definePlugin({
    name: "version",
    hypercalls: [{ op: __HYPERVISOR_xen_version }],
    setup(ctx) {
      const calls = ctx.stats.counter("calls", "calls", "xen_version hypercalls");
      ctx.hypercall(__HYPERVISOR_xen_version, (_vcpu, args: { cmd?: unknown }) => {
        calls.value++;
        return args.cmd === 0 ? (4 << 16) | 17 : -ENOSYS; // XENVER_version: 4.17
      });
    },
  });

  const machine = createMachine({ ramBytes: 64 * 2 ** 20, cpus: 2, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [version] }).boot();
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 1024 });
  const rc = hv.hypercall(dom0.vcpus[0], __HYPERVISOR_xen_version, { cmd: 0 });
  expect([rc >> 16, rc & 0xffff]).toEqual([4, 17]);
  expect(hv.describe().hypercalls.map((h) => h.name)).toEqual([
    "multicall",
    "xen_version",
    "vm_assist",
    "vcpu_op",
    "vcpu_op",
    "vcpu_op",
  ]);
  expect(hv.stats.read("version", "calls")).toBe(1);
});
