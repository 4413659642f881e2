// Disks and vifs through the real split drivers on a Xen-style host: blkback serves the
// `disk=` image file to the domU's blkfront, netback puts each vif on the dom0 bridge its
// `vif=` line names; both reach Connected; block/network attach, detach and list work on
// them; a missing image is xl's error with nothing left; destroy leaves nothing behind.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BLKIF_RSP_ERROR } from "@hyperlab/abi";
import {
  type BlkFront,
  NETBACK_TX_STAGE_PAGES,
  type NetfrontDriver,
} from "@hyperlab/split-drivers";
import { describe, expect, it } from "vitest";
import {
  attachDevice,
  type DomainRecord,
  destroyDomainRecord,
  detachDevice,
  deviceState,
  diskDevice,
  domainCreate,
  type Host,
  nicDevice,
  settle,
} from "../../src/index";
import { config, dir, host, snapshot } from "./world";

async function until(cond: () => boolean | Promise<boolean>, rounds = 2000): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (await cond()) return;
    await settle();
  }
  throw new Error("condition not reached");
}

function image(name: string, sectors = 64): string {
  const p = join(dir, name);
  writeFileSync(p, new Uint8Array(sectors * 512));
  return p;
}

const connected = async (h: Host, r: DomainRecord, type: string, devid: number) =>
  (await deviceState(h, r, type, devid)) === 4;

function blkfront(r: DomainRecord): BlkFront {
  return r.frontends.get("vbd") as BlkFront;
}
function netfront(r: DomainRecord): NetfrontDriver {
  return r.frontends.get("vif") as NetfrontDriver;
}

function frame(dst: number[], src: number[], n: number): Uint8Array {
  const f = new Uint8Array(60);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5; // local experimental ethertype
  for (let i = 14; i < 60; i++) f[i] = (n + i) & 0xff;
  return f;
}

describe("disks and vifs through blkback/blkfront and netback/netfront", () => {
  it("a disk reaches Connected and a block written through blkfront lands in the image file", async () => {
    const h = await host();
    const img = image("d1.img");
    const r = await domainCreate(h, config("disk", `disk = ["${img},raw,xvda,rw"]`));
    await until(() => connected(h, r, "vbd", 51712));
    const disk = blkfront(r).disk(51712)!;
    await disk.ready();
    const data = new Uint8Array(4096).map((_, i) => (i * 7 + 3) & 0xff);
    expect(await disk.write(8, data)).toBe(0);
    const file = readFileSync(img);
    expect(Array.from(file.subarray(8 * 512, 8 * 512 + 4096))).toEqual(Array.from(data));
    // and back through the ring
    const back = await disk.read(8, 8);
    expect(back.status).toBe(0);
    expect(Array.from(back.data)).toEqual(Array.from(data));
    expect(h.split!.blkback!.connected(r.domid, 51712)).toBe(true);
    await destroyDomainRecord(h, r);
    expect(h.split!.blkback!.connected(r.domid, 51712)).toBe(false);
    expect(h.split!.images.size).toBe(0);
  });

  it("two domUs on one bridge exchange a frame; a second bridge is made on demand", async () => {
    const h = await host();
    const a = await domainCreate(h, config("a", `vif = ["mac=00:16:3e:00:00:0a,bridge=xenbr0"]`));
    const b = await domainCreate(h, config("b", `vif = ["mac=00:16:3e:00:00:0b,bridge=xenbr0"]`));
    const c = await domainCreate(h, config("c", `vif = ["mac=00:16:3e:00:00:0c,bridge=xenbr1"]`));
    for (const r of [a, b, c]) await until(() => connected(h, r, "vif", 0));
    expect([...h.split!.bridges.keys()].sort()).toEqual(["xenbr0", "xenbr1"]);
    const devA = netfront(a).devices.get(0)!;
    const devB = netfront(b).devices.get(0)!;
    const devC = netfront(c).devices.get(0)!;
    await until(() => devA.rxPosted > 0 && devB.rxPosted > 0 && devC.rxPosted > 0);
    const gotB: Uint8Array[] = [];
    const gotC: Uint8Array[] = [];
    devB.onReceive((f) => gotB.push(f.slice()));
    devC.onReceive((f) => gotC.push(f.slice()));
    const f = frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0, 0x16, 0x3e, 0, 0, 0x0a], 1);
    expect(devA.send(f)).toBe(0);
    await until(() => gotB.length > 0);
    expect(Array.from(gotB[0]!)).toEqual(Array.from(f));
    for (let i = 0; i < 50; i++) await settle();
    expect(gotC).toEqual([]); // another bridge
    for (const r of [a, b, c]) await destroyDomainRecord(h, r);
  });

  it("block-attach/-detach and network-attach/-detach run the drivers; lists follow", async () => {
    const h = await host();
    const r = await domainCreate(h, config("hot"));
    const img = image("hot.img");
    const d = await attachDevice(
      h,
      r,
      diskDevice(r, {
        target: img,
        vdev: "xvdb",
        format: "raw",
        readwrite: true,
        backendDomid: 0,
      }),
    );
    await until(() => connected(h, r, "vbd", d.devid));
    const n = await attachDevice(
      h,
      r,
      nicDevice(r, { devid: 0, mac: "", bridge: "xenbr0", backendDomid: 0 }),
    );
    await until(() => connected(h, r, "vif", n.devid));
    expect(r.devices.map((x) => x.type).sort()).toEqual(["vbd", "vif"]);
    const disk = blkfront(r).disk(d.devid)!;
    await disk.ready();
    expect(await disk.write(0, new Uint8Array(512).fill(0x5a))).toBe(0);
    expect(readFileSync(img)[0]).toBe(0x5a);
    expect(await detachDevice(h, r, "vbd", d.devid)).toBe(true);
    expect(h.split!.blkback!.connected(r.domid, d.devid)).toBe(false);
    expect(await detachDevice(h, r, "vif", 0)).toBe(true);
    expect(h.split!.vifBackend!.netback(r.domid, 0)).toBeUndefined();
    expect(r.devices).toEqual([]);
    expect(await deviceState(h, r, "vbd", d.devid)).toBe(-1);
    await destroyDomainRecord(h, r);
  });

  it("a disk whose image file is missing fails the create with xl's error, nothing left", async () => {
    const h = await host();
    const before = await snapshot(h);
    await expect(
      domainCreate(
        h,
        config(
          "miss",
          `disk = ["${join(dir, "absent.img")},raw,xvda,rw"]\nvif = ["bridge=xenbr0"]`,
        ),
      ),
    ).rejects.toThrow(/Disk vdev=xvda failed to stat: .*absent\.img: No such file or directory/);
    expect(await snapshot(h)).toEqual(before);
    expect(h.split!.images.size).toBe(0);
  });

  it("access=ro / positional r: blkback gets mode = r and serves the disk read-only", async () => {
    const h = await host();
    for (const [name, spec] of [
      ["ro1", (p: string) => `format=raw, vdev=xvda, access=ro, target=${p}`],
      ["ro2", (p: string) => `phy:${p},xvda,r`],
    ] as const) {
      const img = image(`${name}.img`);
      const before = readFileSync(img);
      const r = await domainCreate(h, config(name, `disk = ["${spec(img)}"]`));
      const be = `/local/domain/0/backend/vbd/${r.domid}/51712`;
      expect(await h.xsd!.xs.read(`${be}/mode`)).toBe("r");
      await until(() => connected(h, r, "vbd", 51712));
      const disk = blkfront(r).disk(51712)!;
      await disk.ready();
      expect(disk.readOnly).toBe(true);
      expect(await disk.write(0, new Uint8Array(512).fill(0x77))).toBe(BLKIF_RSP_ERROR);
      expect(await disk.flush()).toBe(BLKIF_RSP_ERROR);
      const rd = await disk.read(0, 1);
      expect(rd.status).toBe(0);
      expect(Buffer.from(rd.data).equals(before.subarray(0, 512))).toBe(true);
      expect(readFileSync(img).equals(before)).toBe(true);
      await destroyDomainRecord(h, r);
    }
  });

  it("phy: and target= on a regular file are served as the image; a path that is neither a block device nor a file is refused", async () => {
    const h = await host();
    const img = image("phy.img");
    const r = await domainCreate(h, config("phy", `disk = ["phy:${img},xvda,w"]`));
    await until(() => connected(h, r, "vbd", 51712));
    const disk = blkfront(r).disk(51712)!;
    await disk.ready();
    expect(disk.readOnly).toBe(false);
    expect(await disk.write(1, new Uint8Array(512).fill(0x42))).toBe(0);
    expect(readFileSync(img)[512]).toBe(0x42);
    await destroyDomainRecord(h, r);
    const before = await snapshot(h);
    for (const [target, msg] of [
      ["/dev/null", /Disk vdev=xvda phys path is not a block dev or file: \/dev\/null$/],
      [dir, /Disk vdev=xvda phys path is not a block dev or file: /],
      [
        "/dev/hyperlab-none",
        /Disk vdev=xvda failed to stat: \/dev\/hyperlab-none: No such file or directory$/,
      ],
    ] as const) {
      await expect(
        domainCreate(h, config("bad", `disk = ["format=raw,vdev=xvda,target=${target}"]`)),
      ).rejects.toThrow(msg);
    }
    expect(await snapshot(h)).toEqual(before);
  });

  it("destroying domUs with disks and vifs leaves nothing behind", async () => {
    const h = await host();
    const cfg = (n: string) =>
      config(n, `disk = ["${image(`${n}.img`)},raw,xvda,rw"]\nvif = ["bridge=xenbr0"]`);
    // The bridge and its netback (tx staging) stay once made, as dom0's xenbr0 does; the
    // vif's rx staging pages go back to Xen.
    const dom0Frames = () =>
      Array.from(h.hv.frames.ownerKeys, (k) => ~k).filter((o) => o === 0).length;
    const frames0 = dom0Frames();
    const warm = await domainCreate(h, cfg("warm"));
    await until(() => connected(h, warm, "vif", 0));
    await destroyDomainRecord(h, warm);
    expect(dom0Frames()).toBe(frames0 + NETBACK_TX_STAGE_PAGES);
    const before = await snapshot(h);
    const r = await domainCreate(h, cfg("leak"));
    await until(async () => (await connected(h, r, "vbd", 51712)) && connected(h, r, "vif", 0));
    expect((await snapshot(h)).maps.length).toBeGreaterThan(0); // rings mapped by dom0
    await destroyDomainRecord(h, r);
    expect(await snapshot(h)).toEqual(before);
  });
});
