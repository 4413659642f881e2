// A removed vif is released: netback unbinds and unmaps it, takes its port off the bridge and
// gives its rx staging pages back to Xen; a closed bridge port neither receives nor sends.
import { describe, expect, it } from "vitest";
import { VifBridge } from "../src/index";
import { ethFrame, netWorld, until } from "./net-world";

const MAC_A = "00:16:3e:00:00:0a";
const MAC_B = "00:16:3e:00:00:0b";

describe("netback release and bridge port close", () => {
  it("release frees the vif: no grant mapping, staging pages back to Xen, no frames", async () => {
    const w = await netWorld();
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B);
    const dom0 = w.dom0Kernel.domain;
    const owned = () =>
      Array.from(w.hv.frames.ownerKeys, (k) => ~k).filter((o) => o === dom0.domid).length;
    const vifB = w.back.vif(b.u.domain.domid, 0)!;
    expect(vifB.txMap).not.toBeNull();
    const before = owned();
    w.back.release(b.u.domain.domid, 0);
    expect(w.back.vif(b.u.domain.domid, 0)).toBeUndefined();
    expect(owned()).toBe(before - vifB.rxStagePages);
    const mapped: number[] = [];
    w.hv.slot("grant-table").forEachMapping((m) => {
      if (m.granterDomid === b.u.domain.domid) mapped.push(m.ref);
    });
    expect(mapped).toEqual([]);
    // b's port is off the bridge: a broadcast from a reaches no one, and a release twice is a no-op.
    const frames = w.bridge.frames;
    expect(a.dev.send(ethFrame("ff:ff:ff:ff:ff:ff", MAC_A, 60))).toBe(0);
    await until(() => w.bridge.frames === frames + 1);
    expect(b.got).toEqual([]);
    w.back.release(b.u.domain.domid, 0);
    expect(owned()).toBe(before - vifB.rxStagePages);
  });

  it("a closed VifBridgePort drops what it sends and receives nothing", () => {
    const br = new VifBridge();
    const got: number[] = [];
    const p1 = br.connect({ receive: () => got.push(1) });
    const p2 = br.connect({ receive: () => got.push(2) });
    const bcast = new Uint8Array(60).fill(0xff, 0, 6);
    p1.transmit(bcast);
    expect(got).toEqual([2]);
    p2.close();
    p1.transmit(bcast);
    expect(got).toEqual([2]);
    p2.transmit(bcast);
    expect(got).toEqual([2]);
    expect(br.frames).toBe(2); // the closed port's frame never entered the bridge
  });
});
