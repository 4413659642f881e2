import {
  __HYPERVISOR_console_io,
  __HYPERVISOR_xen_version,
  CONSOLEIO_write,
  XENVER_version,
} from "@hyperlab/abi";
import { createHypervisor, definePlugin, schedCredit } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { expect, it } from "vitest";
import { pvCpu, readConsoleLog } from "../src/index";

it("runs the README example", () => {
  const directMmu = definePlugin({
    name: "direct-mmu",
    provides: ["mmu"],
    setup(ctx) {
      const fault = { errorCode: 0, va: 0 };
      ctx.provide("mmu", {
        kind: "pv",
        fault,
        translate: (v, va) =>
          ctx.hv.frames.ownedBy(Math.floor(va / 4096), v.domain.domid) ? va : -1,
        flushLocal() {},
        flushOne() {},
      });
    },
  });
  const machine = createMachine({ ramBytes: 8 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({
    machine,
    plugins: [schedCredit(), directMmu, pvCpu()],
  }).boot();
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 4 });
  const v = d.vcpus[0];

  const version = hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: XENVER_version });
  expect(`Xen ${version >> 16}.${version & 0xffff}`).toBe("Xen 4.17");

  const buf = hv.allocDomainPages(d) * 4096;
  const line = "Booting Linux on Xen\n";
  for (let i = 0; i < line.length; i++) machine.ram.write8(buf + i, line.charCodeAt(i));
  const rc = hv.hypercall(v, __HYPERVISOR_console_io, {
    cmd: CONSOLEIO_write,
    count: line.length,
    buffer: buf,
  });
  expect(rc).toBe(0);
  expect(readConsoleLog(hv)).toBe(`(d${d.domid}) Booting Linux on Xen\n`);
});
