// Devices through the split drivers: a console device (devid 1) runs the xenbus state machine
// between xenconsoled and the domU's hvc frontend to Connected and back; a device type plugged
// in as a DeviceDriverPair (as blkback/netback will be) is probed and connected the same way;
// a type with no pair keeps libxl's nodes in Initialising. Detach removes every node.
import { describe, expect, it } from "vitest";
import {
  attachDevice,
  consoleDevice,
  type DeviceDriverPair,
  destroyDomainRecord,
  detachDevice,
  deviceState,
  domainCreate,
  freePages,
  settle,
} from "../../src/index";
import { config, host, snapshot } from "./world";

async function until(cond: () => Promise<boolean>, rounds = 500): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (await cond()) return;
    await settle();
  }
  throw new Error("condition not reached");
}

/** A minimal driver pair: both ends connect with no transport, counting what they saw. */
function testPair(seen: string[]): DeviceDriverPair {
  return {
    type: "vtest",
    backend: () => ({
      type: "vtest",
      probe: () => 0,
      connect: () => {
        seen.push("back connect");
        return 0;
      },
      disconnect: () => {
        seen.push("back disconnect");
      },
    }),
    frontend: () => ({
      type: "vtest",
      probe: () => 0,
      initialise: () => 0,
      connect: () => {
        seen.push("front connect");
        return 0;
      },
      disconnect: () => {
        seen.push("front disconnect");
      },
    }),
  };
}

describe("devices through the split drivers", () => {
  it("a console device reaches Connected at both ends, and detach removes it", async () => {
    const h = await host();
    const r = await domainCreate(h, config("con"));
    const before = await snapshot(h);
    const spec = consoleDevice(r.domid, 1);
    await attachDevice(h, r, { spec, json: { devid: 1 } });
    await until(async () => (await deviceState(h, r, "console", 1)) === 4);
    const fe = await h.xsd!.xs.read(`/local/domain/${r.domid}/device/console/1/state`);
    expect(fe).toBe("4");
    // dom0's xenconsoled serves it: what the domain's hvc1 writes arrives in dom0.
    const stream = h.consoles!.console(r.domid, 1);
    expect(stream.connected).toBe(true);
    await detachDevice(h, r, "console", 1);
    await until(async () => !stream.connected);
    // Nodes, dom0's channels and grant mappings are back as they were; the ring page the
    // domU's hvc driver allocated stays the domain's (split-drivers keeps it for a re-attach)
    // and goes back to Xen with the domain.
    const after = await snapshot(h);
    expect({ ...after, owners: [] }).toEqual({ ...before, owners: [] });
    const moved = after.owners.flatMap((o, mfn) => (o !== before.owners[mfn] ? [o] : []));
    expect(new Set(moved)).toEqual(new Set([r.domid]));
    await destroyDomainRecord(h, r);
    expect(h.hv.domain(r.domid)).toBeUndefined();
  });

  it("a DeviceDriverPair plugs a device type in; without one, the nodes stay Initialising", async () => {
    const seen: string[] = [];
    const h = await host({ drivers: [testPair(seen)] });
    const free0 = freePages(h.hv);
    const r = await domainCreate(h, config("pair", 'disk = ["/x.img,raw,xvda,rw"]'));
    await attachDevice(h, r, { spec: { type: "vtest", domid: r.domid, devid: 0 }, json: {} });
    await until(async () => (await deviceState(h, r, "vtest", 0)) === 4);
    expect(seen).toContain("back connect");
    expect(seen).toContain("front connect");
    // vbd: blkback is not plugged in here, so both ends stay in state 1 as libxl wrote them.
    expect(await deviceState(h, r, "vbd", 51712)).toBe(1);
    await destroyDomainRecord(h, r);
    expect(freePages(h.hv)).toBe(free0);
  });
});
