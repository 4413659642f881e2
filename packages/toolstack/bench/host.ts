// The toolstack's rates: domain create + destroy per second (libxl's whole path: build,
// xenstore, console, guest kernel boot), `xl list` latency over the control socket with 1,000
// domains, and save / restore throughput. Run: pnpm bench (tsx bench/index.ts).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ControlClient,
  configFromXlCfg,
  createHost,
  destroyDomainRecord,
  domainCreate,
  domainRestore,
  domainSave,
  runDaemon,
  startHostServices,
  xlHostOverSocket,
} from "../src/index";

const dir = mkdtempSync(join(tmpdir(), "hl-bench-"));
const kernel = join(dir, "vmlinuz");
const image = new Uint8Array(8192);
image.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
writeFileSync(kernel, image);

function config(name: string, memory = 8) {
  const c = configFromXlCfg(
    `name = "${name}"\nmemory = ${memory}\nkernel = "${kernel}"\n`,
    `${name}.cfg`,
  );
  if (!c.ok) throw new Error(c.stderr);
  return c.config;
}

const now = () => performance.now();

async function createDestroy(): Promise<void> {
  const h = createHost({ ramMiB: 256, cpus: 2 });
  await startHostServices(h);
  const n = 40;
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const r = await domainCreate(h, config(`cd${i}`));
    await destroyDomainRecord(h, r);
  }
  const s = (now() - t0) / 1000;
  console.log(
    `create+destroy (8 MiB PV guest, kernel booted): ${(n / s).toFixed(1)} domains/s (${n} in ${s.toFixed(2)} s)`,
  );
}

async function listLatency(): Promise<void> {
  const run = mkdtempSync("/tmp/hl-b-");
  const d = await runDaemon({
    runDir: run,
    ramMiB: 8192,
    cpus: 4,
    bootGuests: false,
    handleSignals: false,
  });
  const t0 = now();
  for (let i = 0; i < 1000; i++) await domainCreate(d.host, config(`l${i}`, 5));
  console.log(
    `  (1,000 domains created without guest kernels in ${((now() - t0) / 1000).toFixed(1)} s)`,
  );
  const c = await ControlClient.connect(d.paths.control);
  const xl = xlHostOverSocket(c);
  const runs = 20;
  await xl.listDomains();
  const t1 = now();
  let rows = 0;
  for (let i = 0; i < runs; i++) rows = (await xl.listDomains()).length;
  const ms = (now() - t1) / runs;
  console.log(
    `xl list over the control socket with ${rows} domains: ${ms.toFixed(2)} ms per list (${(1000 / ms).toFixed(0)} lists/s)`,
  );
  c.close();
  await d.stop();
  rmSync(run, { recursive: true, force: true });
}

async function saveRestore(): Promise<void> {
  const h = createHost({ ramMiB: 512, cpus: 2 });
  await startHostServices(h);
  const mib = 64;
  let r = await domainCreate(h, config("sr", mib));
  const file = join(dir, "sr.save");
  const runs = 3;
  let save = 0;
  let restore = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = now();
    await domainSave(h, r, file);
    const t1 = now();
    r = await domainRestore(h, file);
    const t2 = now();
    save += t1 - t0;
    restore += t2 - t1;
  }
  console.log(
    `save: ${((mib * runs) / (save / 1000)).toFixed(0)} MiB/s, restore: ${((mib * runs) / (restore / 1000)).toFixed(0)} MiB/s (${mib} MiB guest, ${runs} rounds)`,
  );
}

await createDestroy();
await listLatency();
await saveRestore();
rmSync(dir, { recursive: true, force: true });
