import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configFromXlCfg, createHost, domainCreate, domainRestore, domainSave, startHostServices } from "../src/index";
const dir = mkdtempSync(join(tmpdir(), "hl-h6-"));
const kernel = join(dir, "vmlinuz");
const image = new Uint8Array(8192);
image.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
writeFileSync(kernel, image);
const c = configFromXlCfg(`name = "sr"\nmemory = 64\nkernel = "${kernel}"\n`, "sr.cfg");
if (!c.ok) throw new Error(c.stderr);
const h = createHost({ ramMiB: 512, cpus: 2 });
await startHostServices(h);
let r = await domainCreate(h, c.config);
const file = join(dir, "sr.save");
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
for (let round = 0; round < 3; round++) {
  let save = 0, restore = 0;
  const runs = 3;
  for (let i = 0; i < runs; i++) {
    const t0 = cpu();
    await domainSave(h, r, file);
    const t1 = cpu();
    r = await domainRestore(h, file);
    const t2 = cpu();
    save += t1 - t0; restore += t2 - t1;
  }
  console.log(`cpu: save ${((64 * runs) / (save / 1000)).toFixed(0)} MiB/s, restore ${((64 * runs) / (restore / 1000)).toFixed(0)} MiB/s`);
}
process.exit(0);
