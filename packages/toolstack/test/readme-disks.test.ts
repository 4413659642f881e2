// The README's "Disks and vifs" example, run as written.
import { readFileSync, writeFileSync } from "node:fs";
import type { BlkFront } from "@hyperlab/split-drivers";
import { expect, it } from "vitest";
import {
  configFromXlCfg,
  createHost,
  destroyDomainRecord,
  domainCreate,
  settle,
  startHostServices,
} from "../src/index";

it("README: a disk written through blkfront lands in its image file", async () => {
  const kernel = "/tmp/readme-vmlinuz";
  writeFileSync(
    kernel,
    new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, ...new Array(4089).fill(0)]),
  );
  writeFileSync("/tmp/readme-disk.img", new Uint8Array(64 * 512)); // a 32 KiB raw image
  const host = createHost({ ramMiB: 128, cpus: 2 });
  await startHostServices(host);
  const cfg = configFromXlCfg(
    `name = "db"\nmemory = 8\nkernel = "${kernel}"\ndisk = [ '/tmp/readme-disk.img,raw,xvda,rw' ]\nvif = [ 'bridge=xenbr0' ]\n`,
    "db.cfg",
  );
  if (!cfg.ok) throw new Error(cfg.stderr);
  const db = await domainCreate(host, cfg.config);
  const blkfront = db.frontends.get("vbd") as BlkFront;
  for (let i = 0; i < 500 && blkfront.disk(51712) === undefined; i++) await settle(); // probe
  const disk = blkfront.disk(51712)!; // xvda
  await disk.ready(); // blkfront and blkback Connected
  await disk.write(2, new Uint8Array(512).fill(0xab)); // sector 2, through the ring
  expect(readFileSync("/tmp/readme-disk.img")[2 * 512]).toBe(171);
  expect(host.split!.bridges.has("xenbr0")).toBe(true);
  await destroyDomainRecord(host, db);
});
