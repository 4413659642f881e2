// The README's "A host that keeps running" in-process example, run as written.
import { writeFileSync } from "node:fs";
import { expect, it } from "vitest";
import { configFromXlCfg, createHost, domainCreate, memSet, startHostServices } from "../src/index";

it("README: a domain created in process, and mem-set through its balloon", async () => {
  const kernel = "/tmp/readme-vmlinuz"; // any 64-bit ELF image: the kernel that runs is the project's guest
  writeFileSync(
    kernel,
    new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, ...new Array(4089).fill(0)]),
  );
  const host = createHost({ ramMiB: 128, cpus: 2 });
  await startHostServices(host);
  const cfg = configFromXlCfg(
    `name = "web"\nmemory = 8\nmaxmem = 8\nkernel = "${kernel}"\n`,
    "web.cfg",
  );
  if (!cfg.ok) throw new Error(cfg.stderr);
  const web = await domainCreate(host, cfg.config);
  await memSet(host, web, 6 * 1024); // the guest's balloon gives 512 pages back
  expect([web.domid, await host.xsd!.xs.read(`/local/domain/${web.domid}/name`)]).toEqual([
    1,
    "web",
  ]);
  for (let i = 0; i < 50 && web.balloon!.currentPages !== 6 * 256; i++)
    await new Promise((r) => setImmediate(r));
  expect(web.balloon!.currentPages).toBe(6 * 256);
});
