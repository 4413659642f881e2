// Hypercall dispatch rate: a trivial handler behind the full dispatcher, and a multicall batch.
import { __HYPERVISOR_multicall, __HYPERVISOR_xen_version } from "@hyperlab/abi";
import { createMachine } from "@hyperlab/machine";
import { createHypervisor, definePlugin } from "../src/index";

function rate(label: string, unit: string, count: number, fn: () => void): void {
  fn(); // warm up
  const t0 = process.hrtime.bigint();
  fn();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`${label}: ${((count / ns) * 1e3).toFixed(1)} M${unit}/s`);
}

const plugin = definePlugin({
  name: "bench",
  hypercalls: [{ op: __HYPERVISOR_xen_version }],
  setup(ctx) {
    ctx.hypercall(__HYPERVISOR_xen_version, (_v, a: { cmd: number }) => a.cmd);
  },
});
const hv = createHypervisor({
  machine: createMachine({ ramBytes: 16 << 20, cpus: 1, seed: 1 }),
  plugins: [plugin],
}).boot();
const v = hv.createDomain({ maxVcpus: 1, maxPages: 1 }).vcpus[0];
const N = 5_000_000;
const args = { cmd: 0 };
rate("core hypercall dispatch", "calls", N, () => {
  let acc = 0;
  for (let i = 0; i < N; i++) acc += hv.hypercall(v, __HYPERVISOR_xen_version, args);
  if (acc !== 0) throw new Error("unexpected");
});
const entries = Array.from({ length: 32 }, () => ({
  op: __HYPERVISOR_xen_version,
  args: { cmd: 1 },
  result: 0,
}));
const mc = { entries };
const M = N / 32;
rate("core multicall (32 entries) dispatch", "entries", M * 32, () => {
  for (let i = 0; i < M; i++) hv.hypercall(v, __HYPERVISOR_multicall, mc);
});

// Scheduling decisions per second (credit, credit2, rr).
await import("./sched");
