// The main job: compose a Xen-style hypervisor from plugins, boot it, build dom0 and a domU
// with the PV domain builder, boot a Linux-like guest kernel in the domU on Xen PV ops, run a
// small program in it, and print what was built and what it cost. Then the same program on a
// KVM-style build (nested paging), which differs only by the plugins passed in.
// Run with `pnpm demo` from the repository root.
import { createHypervisor, type Hypervisor, type Plugin, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import { grantTable } from "@hyperlab/grant-table";
import {
  bootNativeKernel,
  bootXenPvKernel,
  type GuestKernel,
  PROT_READ,
  PROT_WRITE,
  spawnProcess,
} from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { nptMmu } from "@hyperlab/npt-mmu";
import { pvCpu, readConsoleLog } from "@hyperlab/pv-cpu";
import { buildPvDomain, pvGrantMapping, pvMmu } from "@hyperlab/pv-mmu";

const MiB = 2 ** 20;

function compose(plugins: Plugin[]): Hypervisor {
  const machine = createMachine({ ramBytes: 256 * MiB, cpus: 2, seed: 2009 });
  return createHypervisor({ machine, plugins }).boot();
}

function describe(title: string, hv: Hypervisor): void {
  const built = hv.describe();
  console.log(`\n== ${title}`);
  console.log(
    `machine: ${hv.machine.ram.bytes / MiB} MiB RAM, ${hv.machine.cpus.length} pCPUs, seed ${hv.machine.config.seed}`,
  );
  console.log("plugins, in setup order:");
  for (const p of built.plugins) {
    console.log(
      `  ${p.name.padEnd(18)} provides [${p.provides.join(", ")}]  requires [${p.requires.join(", ")}]`,
    );
  }
  console.log(
    `slots: ${Object.entries(built.slots)
      .map(([s, p]) => `${s} <- ${p}`)
      .join(", ")}`,
  );
  const byOp = new Map<string, string[]>();
  for (const h of built.hypercalls) {
    const key = `${h.name} <- ${h.plugin}`;
    const cmds = byOp.get(key) ?? [];
    if (h.cmd !== undefined) cmds.push(String(h.cmd));
    byOp.set(key, cmds);
  }
  console.log(`hypercalls (${built.hypercalls.length} handlers):`);
  for (const [k, cmds] of byOp)
    console.log(`  ${k}${cmds.length ? ` (cmds ${cmds.join(",")})` : ""}`);
}

/** A small program: touch 1 MiB, fork, write in the child (copy-on-write), exit. */
function program(kernel: GuestKernel): { checksum: number } {
  const init = spawnProcess(kernel);
  const buf = init.mmap(256 * 4096, PROT_READ | PROT_WRITE);
  init.writeRange(buf, 256 * 4096, 0x2a);
  const child = init.fork();
  if (typeof child === "number") throw new Error(`fork failed: ${child}`);
  child.store(buf, 7);
  child.readRange(buf, 256 * 4096);
  init.readRange(buf, 256 * 4096);
  const checksum = (init.checksum + child.checksum) >>> 0;
  child.exit(0);
  return { checksum };
}

// A Xen-style build.
const xen = compose([pvMmu(), pvCpu(), evtchn2l(), schedCredit(), grantTable(), pvGrantMapping()]);
describe("Xen-style build", xen);
const dom0 = xen.createDomain({ domid: 0, maxVcpus: 2, maxPages: 8192 });
buildPvDomain(xen, xen.slot("pv-mmu"), { domain: dom0, nrPages: 4096 });
xen.unpauseDomain(dom0);
const domU = xen.createDomain({ maxVcpus: 1, maxPages: 4200 });
const built = buildPvDomain(xen, xen.slot("pv-mmu"), { domain: domU, nrPages: 4096 });
xen.unpauseDomain(domU);
const kernel = bootXenPvKernel(xen, domU, { startInfoVa: built.rsi, batching: true });
console.log("domains:");
for (const d of xen.domains()) {
  console.log(
    `  dom${d.domid}${d.isPrivileged ? " (privileged)" : ""}: ${d.state}, ${d.vcpus.length} vCPU(s), ${d.totPages}/${d.maxPages} pages, CR3 at mfn ${d.vcpus[0].cr3Mfn}`,
  );
}
const before = xen.describe().stats.core.find((s) => s.name === "hypercalls")?.value ?? 0;
const pv = program(kernel);
const after = xen.describe().stats.core.find((s) => s.name === "hypercalls")?.value ?? 0;
console.log(`program on Xen PV ops: checksum ${pv.checksum}, ${after - before} hypercalls`);
console.log("Xen's console (the guest's printk through console_io):");
for (const line of readConsoleLog(xen)
  .split("\n")
  .filter((l) => l.length > 0)) {
  console.log(`  ${line}`);
}

// A KVM-style build: the same kernel on native pv_ops over nested paging.
const kvm = compose([nptMmu({ hostPageSize: "4K" }), schedCredit()]);
describe("KVM-style build", kvm);
const vm = kvm.createDomain({ domid: 1, maxVcpus: 1, maxPages: 4200 });
kvm.unpauseDomain(vm);
const nested = program(bootNativeKernel(kvm, vm, { nrPages: 4096 }));
const exits = kvm.describe().stats["npt-mmu"] ?? [];
console.log(
  `program on native ops over nested paging: checksum ${nested.checksum}, ${exits
    .filter((s) => /exit|walk/i.test(s.name) && s.value > 0)
    .map((s) => `${s.name} ${s.value}`)
    .join(", ")}`,
);
console.log(`same result on both builds: ${pv.checksum === nested.checksum ? "yes" : "NO"}`);
if (pv.checksum !== nested.checksum) process.exit(1);
