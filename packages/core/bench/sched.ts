// Scheduling decision rate (run with `tsx bench/sched.ts`; bench/index.ts may import it).
// Each decision is a full do_schedule on a busy pCPU: charge the runner, requeue it, pick the
// next vCPU, switch, and arm its slice timer on the machine clock.
import { createMachine } from "@hyperlab/machine";
import { createHypervisor, type Plugin, schedulerByName } from "../src/index";

function rate(label: string, unit: string, count: number, fn: () => void): void {
  fn(); // warm up
  const t0 = process.hrtime.bigint();
  fn();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`${label}: ${((count / ns) * 1e3).toFixed(1)} M${unit}/s`);
}

function system(plugin: Plugin, cpus: number, domains: number) {
  const machine = createMachine({ ramBytes: 32 << 20, cpus, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [plugin] }).boot();
  for (let i = 0; i < domains; i++) {
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 4 });
    hv.unpauseDomain(d);
  }
  machine.clock.runUntil(1_000_000);
  return { hv, clock: machine.clock, sched: hv.slot("sched") };
}

const N = 2_000_000;
for (const name of ["credit", "credit2", "rr"]) {
  const { sched } = system(schedulerByName(name, { ratelimitUs: 0 }), 2, 16);
  rate(`sched ${name} decisions (2 pCPUs, 16 vCPUs)`, "decisions", N, () => {
    for (let i = 0; i < N; i++) sched.schedule(i & 1);
  });
}
// A whole simulation: 4 pCPUs, 32 burners, 60 virtual seconds, every tick, slice and switch.
{
  const { hv, clock } = system(schedulerByName("credit"), 4, 32);
  const before = hv.stats.read("sched-credit", "decisions")!;
  const t0 = process.hrtime.bigint();
  clock.runUntil(60e9);
  const ns = Number(process.hrtime.bigint() - t0);
  const n = hv.stats.read("sched-credit", "decisions")! - before;
  console.log(
    `sched credit simulated 60 s (4 pCPUs, 32 vCPUs): ${((n / ns) * 1e3).toFixed(2)} Mdecisions/s, ${(60e9 / ns).toFixed(0)}x real time`,
  );
}
