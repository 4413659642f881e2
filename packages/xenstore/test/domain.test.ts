import {
  XENSTORE_CONNECTED,
  XENSTORE_ERROR_NONE,
  XENSTORE_ERROR_PROTO,
  XENSTORE_ERROR_RINGIDX,
  XS_GET_PERMS,
  XS_INTRODUCE,
  XS_IS_DOMAIN_INTRODUCED,
  XS_MKDIR,
  XS_READ,
  XS_RELEASE,
  XS_RESUME,
  XS_SET_PERMS,
  XS_SET_TARGET,
  XS_TRANSACTION_START,
  XS_WATCH,
  XS_WRITE,
  xenstore_domain_interface,
} from "@hyperlab/abi";
import { Ram } from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { XenstoreError, XenstoreRing, XenstoreRingFrontend } from "../src/index";
import { Raw, RingHost, RingRaw, z } from "./helpers";

const IDX = [
  xenstore_domain_interface.fields.req_cons.offset,
  xenstore_domain_interface.fields.req_prod.offset,
  xenstore_domain_interface.fields.rsp_cons.offset,
  xenstore_domain_interface.fields.rsp_prod.offset,
];
const F = xenstore_domain_interface.fields;

function home(h: RingHost, domid: number) {
  const dom0 = new Raw(h.daemon);
  dom0.q(XS_MKDIR, z(`/local/domain/${domid}`));
  dom0.q(XS_SET_PERMS, z(`/local/domain/${domid}`, `n${domid}`));
  return dom0;
}

describe("the ring transport", () => {
  it("INTRODUCE maps the page, marks it connected, notifies, and the domain talks over it", async () => {
    const h = new RingHost();
    const dom0 = home(h, 5);
    dom0.q(XS_WATCH, z("@introduceDomain", "intro"));
    dom0.takeEvents();
    expect(h.introduce(5, 10)).toBe("OK|");
    expect(dom0.takeEvents()).toEqual(["@introduceDomain|intro"]);
    expect(h.ram.read32(10 * 4096 + F.connection.offset)).toBe(XENSTORE_CONNECTED);
    expect(h.domainEvents.get(5)).toBe(1);
    expect(dom0.q(XS_IS_DOMAIN_INTRODUCED, z("5"))).toBe("T|");
    const c = h.client(5, 10);
    await c.write("name", "guest");
    expect(await c.read("/local/domain/5/name")).toBe("guest");
    expect(dom0.q(XS_READ, z("/local/domain/5/name"))).toBe("guest");
    expect(await c.getDomainPath(5)).toBe("/local/domain/5");
    await expect(c.read("/tool")).rejects.toMatchObject({ xsError: "EACCES" });
  });

  it("carries messages across the ring's wrap point and larger than the ring", async () => {
    const h = new RingHost();
    home(h, 6);
    h.introduce(6, 11);
    const c = h.client(6, 11);
    const big = "x".repeat(1900);
    for (let i = 0; i < 20; i++) {
      await c.write(`k${i}`, `${big}${i}`);
      expect(await c.read(`k${i}`)).toBe(`${big}${i}`);
    }
    const idx = h.ram.read32(11 * 4096 + F.req_prod.offset);
    expect(idx).toBeGreaterThan(20 * 1024);
  });

  it("watch events reach the domain through the ring", async () => {
    const h = new RingHost();
    const dom0 = home(h, 7);
    h.introduce(7, 12);
    const c = h.client(7, 12);
    const w = await c.watch("device");
    expect(await w.next()).toEqual({ path: "device", token: w.token });
    dom0.q(XS_WRITE, "/local/domain/7/device/vbd\0x");
    expect(await w.next()).toEqual({ path: "device/vbd", token: w.token });
  });

  it("a bad ring index marks the page RINGIDX and drops the domain's connection", () => {
    const h = new RingHost();
    home(h, 8);
    h.introduce(8, 13);
    const base = 13 * 4096;
    h.ram.write32(base + F.req_prod.offset, 5000);
    h.rings.get(8)!.onEvent();
    expect(h.ram.read32(base + F.error.offset)).toBe(XENSTORE_ERROR_RINGIDX);
    // The domain stays introduced until RELEASE, as in C.
    const dom0 = new Raw(h.daemon);
    expect(dom0.q(XS_IS_DOMAIN_INTRODUCED, z("8"))).toBe("T|");
    expect(dom0.q(XS_RELEASE, z("8"))).toBe("OK|");
    expect(dom0.q(XS_IS_DOMAIN_INTRODUCED, z("8"))).toBe("F|");
  });

  it("the domain's end resets impossible reply indices and goes on, as Linux's xb_read does", () => {
    const h = new RingHost();
    home(h, 6);
    h.introduce(6, 16);
    const raw = new RingRaw(h.frontend(6, 16));
    expect(raw.q(XS_WRITE, "a\u00001")).toBe("OK|");
    const base = 16 * 4096;
    const events = h.domainEvents.get(6) ?? 0;
    // Without the daemon running: the domain's end alone meets the bad pair.
    h.ram.write32(base + F.rsp_prod.offset, h.ram.read32(base + F.rsp_cons.offset) + 5000);
    h.fronts.get(6)!.onEvent();
    expect(h.ram.read32(base + F.rsp_prod.offset)).toBe(0);
    expect(h.ram.read32(base + F.rsp_cons.offset)).toBe(0);
    expect(raw.replies).toHaveLength(1);
    expect(h.domainEvents.get(6) ?? 0).toBe(events);
    // The next request and its reply go through the reset ring.
    expect(raw.q(XS_READ, z("a"))).toBe("1");
    expect(h.ram.read32(base + F.error.offset)).toBe(XENSTORE_ERROR_NONE);
  });

  it("both ends survive any indices a hostile page holds", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...IDX), fc.integer({ min: 0, max: 0xffffffff })), {
          maxLength: 8,
        }),
        (writes) => {
          const h = new RingHost();
          home(h, 5);
          h.introduce(5, 17);
          const raw = new RingRaw(h.frontend(5, 17));
          raw.send(XS_WRITE, z("k", "v"));
          for (const [off, v] of writes) h.ram.write32(17 * 4096 + off, v);
          raw.send(XS_READ, z("k"));
          h.rings.get(5)!.onEvent();
          h.fronts.get(5)!.onEvent();
          expect(h.daemon.checkInvariants()).toEqual([]);
        },
      ),
      { seed: 1115, numRuns: process.env.HYPERLAB_LONG ? 2000 : 150 },
    );
  });

  it("an oversized header from a domain marks the page PROTO", () => {
    const h = new RingHost();
    home(h, 9);
    h.introduce(9, 14);
    const f = h.frontend(9, 14);
    const hdr = new Uint8Array(16);
    new DataView(hdr.buffer).setUint32(12, 5000, true);
    f.send(hdr);
    expect(f.error).toBe(XENSTORE_ERROR_PROTO);
  });

  it("re-INTRODUCE of a live domain resets its watches and transactions and rebinds", () => {
    const h = new RingHost();
    home(h, 4);
    h.introduce(4, 15, 3);
    const raw = new RingRaw(h.frontend(4, 15));
    expect(raw.q(XS_WATCH, z("x", "t"))).toBe("OK|");
    expect(raw.q(XS_TRANSACTION_START, z(""))).toBe("1|");
    expect(h.introduce(4, 15, 9)).toBe("OK|");
    expect(h.rings.get(4)!.port).toBe(9);
    expect(h.daemon.watchCount).toBe(0);
  });

  it("RELEASE fires @releaseDomain, frees the connection and removes the domain's nodes", async () => {
    const h = new RingHost();
    const dom0 = home(h, 3);
    h.introduce(3, 16);
    const c = h.client(3, 16);
    await c.write("data/a", "1");
    await c.watch("data");
    dom0.q(XS_WATCH, z("@releaseDomain", "rel"));
    dom0.takeEvents();
    expect(dom0.q(XS_RESUME, z("3"))).toBe("OK|");
    expect(dom0.q(XS_RELEASE, z("3"))).toBe("OK|");
    expect(dom0.takeEvents()).toEqual(["@releaseDomain|rel"]);
    expect(dom0.q(XS_READ, z("/local/domain/3"))).toBe("E:ENOENT");
    expect(h.daemon.watchCount).toBe(1);
    expect(dom0.q(XS_RELEASE, z("3"))).toBe("E:ENOENT");
    expect(h.daemon.checkInvariants()).toEqual([]);
  });

  it("stale permissions of a destroyed domain grant nothing to a new domain with its domid (XSA-322)", () => {
    const h = new RingHost();
    const dom0 = home(h, 2);
    dom0.q(XS_WRITE, "/shared\0s");
    dom0.q(XS_SET_PERMS, z("/shared", "n0", "r2"));
    h.introduce(2, 17);
    const g = new RingRaw(h.frontend(2, 17));
    expect(g.q(XS_READ, z("/shared"))).toBe("s");
    dom0.q(XS_RELEASE, z("2"));
    // A new domain 2.
    h.rings.delete(2);
    h.fronts.delete(2);
    home(h, 2);
    h.introduce(2, 18);
    const g2 = new RingRaw(h.frontend(2, 18));
    expect(g2.q(XS_READ, z("/shared"))).toBe("E:EACCES");
    expect(dom0.q(XS_GET_PERMS, z("/shared"))).toBe("n0|r2|");
  });

  it("host events: shutdown fires @releaseDomain once until RESUME; destruction releases", () => {
    const h = new RingHost();
    const dom0 = home(h, 22);
    h.introduce(22, 22);
    dom0.q(XS_WATCH, z("@releaseDomain", "rel"));
    dom0.takeEvents();
    h.daemon.domainShutdown(22);
    h.daemon.domainShutdown(22);
    expect(dom0.takeEvents()).toEqual(["@releaseDomain|rel"]);
    expect(dom0.q(XS_RESUME, z("22"))).toBe("OK|");
    h.daemon.domainShutdown(22);
    expect(dom0.takeEvents()).toEqual(["@releaseDomain|rel"]);
    h.daemon.domainDestroyed(22);
    expect(dom0.takeEvents()).toEqual(["@releaseDomain|rel"]);
    expect(dom0.q(XS_IS_DOMAIN_INTRODUCED, z("22"))).toBe("F|");
    expect(dom0.q(XS_READ, z("/local/domain/22"))).toBe("E:ENOENT");
    h.daemon.domainShutdown(99);
    h.daemon.domainDestroyed(99);
    expect(dom0.takeEvents()).toEqual([]);
  });

  it("an unprivileged domain sees @releaseDomain only once granted by SET_PERMS", () => {
    const h = new RingHost();
    const dom0 = home(h, 23);
    home(h, 24);
    h.introduce(23, 23);
    h.introduce(24, 24);
    const g = new RingRaw(h.frontend(23, 23));
    expect(g.q(XS_WATCH, z("@releaseDomain", "r"))).toBe("OK|");
    g.events.length = 0;
    dom0.q(XS_RELEASE, z("24"));
    expect(g.events).toEqual([]);
    dom0.q(XS_SET_PERMS, z("@releaseDomain", "n0", "r23"));
    home(h, 24);
    h.fronts.delete(24);
    h.introduce(24, 25);
    dom0.q(XS_RELEASE, z("24"));
    expect(g.events.map((e) => e.text)).toEqual(["@releaseDomain|r|"]);
  });

  it("SET_TARGET lets a domain act with its target's rights", () => {
    const h = new RingHost();
    const dom0 = home(h, 20);
    home(h, 21);
    h.introduce(20, 20);
    h.introduce(21, 21);
    dom0.q(XS_WRITE, "/local/domain/21/x\0v");
    dom0.q(XS_SET_PERMS, z("/local/domain/21/x", "n21"));
    const dm = new RingRaw(h.frontend(20, 20));
    expect(dm.q(XS_READ, z("/local/domain/21/x"))).toBe("E:EACCES");
    expect(dom0.q(XS_SET_TARGET, z("20", "21"))).toBe("OK|");
    expect(dm.q(XS_READ, z("/local/domain/21/x"))).toBe("v");
    expect(dom0.q(XS_SET_TARGET, z("20", "99"))).toBe("E:ENOENT");
  });

  it("INTRODUCE of an unmappable page is EINVAL; bad frames are a typed error for the host", () => {
    const h = new RingHost();
    expect(new Raw(h.daemon).q(XS_INTRODUCE, z("5", "99999", "1"))).toBe("E:EINVAL");
    const ram = new Ram({ bytes: 4096 });
    expect(() => new XenstoreRing(ram, 5, { notify: () => {} })).toThrow(XenstoreError);
    expect(() => new XenstoreRingFrontend(ram, -1, { notify: () => {} })).toThrow(/frame/);
  });
});
