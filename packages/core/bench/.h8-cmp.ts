import { createMachine } from "@hyperlab/machine";
const which = process.argv[2]!;
const mod = await import(which === "old" ? "./.old-src/index" : "../src/index");
const { createHypervisor, schedulerByName } = mod;
function system(plugin: unknown, cpus: number, domains: number) {
  const machine = createMachine({ ramBytes: 32 << 20, cpus, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [plugin] }).boot();
  for (let i = 0; i < domains; i++) {
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 4 });
    hv.unpauseDomain(d);
  }
  machine.clock.runUntil(1_000_000);
  return { hv, clock: machine.clock, sched: hv.slot("sched") };
}
const N = 1_000_000;
const out: string[] = [which];
for (const name of ["credit", "credit2", "rr"]) {
  const { sched } = system(schedulerByName(name, { ratelimitUs: 0 }), 2, 16);
  for (let i = 0; i < N; i++) sched.schedule(i & 1);
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) sched.schedule(i & 1);
  const t = process.cpuUsage(t0);
  out.push(`${name} ${(N / (t.user + t.system)).toFixed(2)}`);
}
{
  const { hv, clock } = system(schedulerByName("credit"), 4, 32);
  const before = hv.stats.read("sched-credit", "decisions")!;
  const t0 = process.cpuUsage();
  clock.runUntil(30e9);
  const t = process.cpuUsage(t0);
  const n = hv.stats.read("sched-credit", "decisions")! - before;
  out.push(`sim ${(n / (t.user + t.system)).toFixed(3)}`);
}
console.log(out.join(" | "), "Mdecisions/CPU-s");
