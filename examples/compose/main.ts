// Compose a Xen-style hypervisor from plugins, boot it, build dom0 and a domU, and print
// what it built. Run with `pnpm demo` from the repository root.
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";

const machine = createMachine({ ramBytes: 256 * 2 ** 20, cpus: 2, seed: 2009 });
const hv = createHypervisor({ machine, plugins: [] }).boot();

const dom0 = hv.createDomain({ domid: 0, maxVcpus: 2, maxPages: 16384 });
hv.unpauseDomain(dom0);
const domU = hv.createDomain({ maxVcpus: 1, maxPages: 8192 });
hv.unpauseDomain(domU);

const built = hv.describe();
console.log("Hyperlab: a hypervisor composed from plugins");
console.log(`machine: ${machine.ram.bytes / 2 ** 20} MiB RAM, ${machine.cpus.length} pCPUs`);
console.log("plugins (in setup order):");
for (const p of built.plugins) {
  console.log(
    `  ${p.name.padEnd(14)} provides [${p.provides.join(", ")}] requires [${p.requires.join(", ")}]`,
  );
}
console.log("slots:");
for (const [slot, plugin] of Object.entries(built.slots))
  console.log(`  ${slot.padEnd(14)} <- ${plugin}`);
console.log("hypercalls:");
for (const h of built.hypercalls) {
  console.log(
    `  ${String(h.op).padStart(2)} ${h.name}${h.cmd === undefined ? "" : ` cmd ${h.cmd}`} <- ${h.plugin}`,
  );
}
console.log("domains:");
for (const d of hv.domains()) {
  console.log(
    `  dom${d.domid}${d.isPrivileged ? " (privileged)" : ""}: ${d.state}, ${d.vcpus.length} vCPU(s), ${d.totPages}/${d.maxPages} pages, shared_info at mfn ${d.sharedInfoMfn}`,
  );
}
