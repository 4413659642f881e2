// The "Block devices" example of README.md, run as written on the test world's two kernels.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BLKIF_RSP_OKAY } from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import {
  BlkBack,
  BlkFront,
  GnttabGuest,
  perRequest,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
} from "../src/index";
import { until, world } from "./world";

describe("README: Block devices", () => {
  it("runs the example", async () => {
    const w = world();
    const u = await w.bootDomU();
    const dom0 = w.dom0Kernel;
    const domU = u.kernel;
    const dir = mkdtempSync(join(tmpdir(), "hyperlab-readme-blk-"));
    const path = join(dir, "xvda.img");
    writeFileSync(path, new Uint8Array(1 << 20));
    try {
      const back = new BlkBack(dom0, { image: path, mode: "persistent" });
      await xenbusRegisterBackend(dom0, back).start();
      const front = new BlkFront(domU, {
        gnttab: new GnttabGuest(domU.hv, domU.domain),
        maxRingPageOrder: 2,
      });
      await xenbusRegisterFrontend(domU, front).start();
      const { fe, be } = await w.addDevice(domU.domain.domid, "vbd", 51712);
      await until(async () => (await w.state(fe)) === "4" && (await w.state(be)) === "4");
      const disk = front.disk(51712)!;
      await disk.ready();
      const block = new Uint8Array(4096).fill(0x42);
      expect(await disk.write(8, block)).toBe(0);
      const { status, data } = await disk.read(8, 8);
      expect([status === BLKIF_RSP_OKAY, data[0]]).toEqual([true, 66]);
      expect(await disk.flush()).toBe(0);
      expect(back.persistentGrants(domU.domain.domid, 51712)).toBe(1);
      expect(perRequest(back.stats.snapshot().blkback!).grantOps).toBeCloseTo(1 / 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
