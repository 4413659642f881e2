// The xenbus device state machine: frontend and backend as independent actors that meet only
// through xenstore watches, over the project's xenstored, with libxl's paths and permissions.
// The console drivers stand in for any device type.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  GnttabGuest,
  parseXenbusState,
  parseXenbusUint,
  XenbusError,
  XenconsBack,
  XenconsFrontDriver,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
  xenbusStrstate,
} from "../src/index";
import { until, world } from "./world";

async function pair() {
  const w = world();
  const u = await w.bootDomU();
  const back = new XenconsBack(w.dom0Kernel);
  const backBus = xenbusRegisterBackend(w.dom0Kernel, back);
  const front = new XenconsFrontDriver(u.kernel, new GnttabGuest(w.hv, u.domain));
  const frontBus = xenbusRegisterFrontend(u.kernel, front);
  const { fe, be } = await w.addDevice(u.domain.domid, "console", 1);
  return { w, u, back, backBus, front, frontBus, fe, be };
}

const both = async (p: Awaited<ReturnType<typeof pair>>, fe: string, be: string) =>
  `${await p.w.state(fe)}/${await p.w.state(be)}`;

describe("xenbus device state machine", () => {
  it("parses states and keys as Linux does, never throwing", () => {
    expect(parseXenbusState(null)).toBe(0);
    expect(parseXenbusState("abc")).toBe(0);
    expect(parseXenbusState("4")).toBe(4);
    expect(parseXenbusState("42")).toBe(42);
    expect(xenbusStrstate(2)).toBe("InitWait");
    expect(xenbusStrstate(42)).toBe("INVALID");
    expect(parseXenbusUint("12")).toBe(12);
    expect(parseXenbusUint("-1")).toBe(-1);
    expect(parseXenbusUint("0x10")).toBe(-1);
    expect(parseXenbusUint("99999999999")).toBe(-1);
  });

  it("runs the full handshake with libxl's paths, keys and permissions", async () => {
    const p = await pair();
    const seen: number[] = [];
    const back = p.back;
    back.otherendChanged = (_d, s) => void seen.push(s);
    await p.backBus.start();
    await until(async () => (await p.w.state(p.be)) === "2");
    expect(await p.w.state(p.fe)).toBe("1"); // the backend waits; the frontend has not started
    await p.frontBus.start();
    await until(async () => (await both(p, p.fe, p.be)) === "4/4");
    expect(seen).toContain(3);
    const ref = await p.w.xs.read(`${p.fe}/ring-ref`);
    expect(Number(ref)).toBeGreaterThanOrEqual(8); // above GNTTAB_NR_RESERVED_ENTRIES
    expect(await p.w.xs.read(`${p.fe}/protocol`)).toBe("x86_64-abi");
    expect(await p.w.xs.getPerms(p.fe)).toEqual([`n${p.u.domain.domid}`, "r0"]);
    expect(await p.w.xs.getPerms(p.be)).toEqual(["n0", `r${p.u.domain.domid}`]);
    const dev = p.backBus.device(1, p.u.domain.domid)!;
    expect(dev.otherend).toBe(p.fe);
    expect(dev.otherendId).toBe(p.u.domain.domid);
    expect(p.frontBus.device(1)!.otherend).toBe(p.be);
    // The domU may not write the backend's directory.
    await expect(p.u.comms.client.write(`${p.be}/state`, "6")).rejects.toMatchObject({
      errno: 13,
    });
  });

  it("closes from the frontend: Closing, then both Closed", async () => {
    const p = await pair();
    await p.backBus.start();
    await p.frontBus.start();
    await until(async () => (await both(p, p.fe, p.be)) === "4/4");
    await p.frontBus.device(1)!.close();
    await until(async () => (await both(p, p.fe, p.be)) === "6/6");
    expect(p.back.console(p.u.domain.domid, 1).connected).toBe(false);
  });

  it("closes from the backend: the frontend follows to Closed", async () => {
    const p = await pair();
    await p.backBus.start();
    await p.frontBus.start();
    await until(async () => (await both(p, p.fe, p.be)) === "4/4");
    await p.backBus.device(1, p.u.domain.domid)!.fatal(-5, "device removed by test");
    await until(async () => (await p.w.state(p.fe)) === "6");
    await until(async () => (await p.w.state(p.be)) === "6");
    expect(
      await p.w.xs.read(`/local/domain/0/error/backend/console/${p.u.domain.domid}/1/error`),
    ).toBe("5 device removed by test");
  });

  it("a restarted backend goes Closed -> InitWait and the frontend reconnects", async () => {
    const p = await pair();
    await p.backBus.start();
    await p.frontBus.start();
    await until(async () => (await both(p, p.fe, p.be)) === "4/4");
    const firstRef = await p.w.xs.read(`${p.fe}/ring-ref`);
    await p.backBus.stop(); // the backend goes away: Closed
    await until(async () => (await both(p, p.fe, p.be)) === "6/6");
    const again = xenbusRegisterBackend(p.w.dom0Kernel, p.back);
    await again.start();
    await until(async () => (await both(p, p.fe, p.be)) === "4/4");
    expect(await p.w.xs.read(`${p.fe}/ring-ref`)).toBe(firstRef); // the old grant was revoked and reused
    const c = p.front.consoles.get(1)!;
    c.write("after restart\n");
    const s = p.back.console(p.u.domain.domid, 1);
    await until(() => s.text().endsWith("after restart\n"));
  });

  describe("a hostile frontend", () => {
    const hostile = async (writes: Record<string, string>, message: RegExp) => {
      const p = await pair();
      await p.backBus.start();
      await until(async () => (await p.w.state(p.be)) === "2");
      // No frontend driver: the domU writes its own nodes by hand.
      for (const [k, v] of Object.entries(writes)) {
        await p.u.comms.client.write(`${p.fe}/${k}`, v);
      }
      await until(async () => (await p.w.state(p.be)) === "5");
      const err = await p.w.xs.read(
        `/local/domain/0/error/backend/console/${p.u.domain.domid}/1/error`,
      );
      expect(err).toMatch(message);
      expect(p.back.console(p.u.domain.domid, 1).connected).toBe(false);
    };

    it("a ring-ref it never granted: the map fails, Closing with an error node", () =>
      hostile({ "ring-ref": "300", port: "5", state: "3" }, /mapping ring-ref 300/));

    it("a non-numeric port", () =>
      hostile({ "ring-ref": "8", port: "five", state: "3" }, /^22 reading .*\/port$/));

    it("a garbage ring-ref", () =>
      hostile({ "ring-ref": "-1x", port: "5", state: "3" }, /^22 reading .*\/ring-ref$/));

    it("a state out of range", () => hostile({ state: "42" }, /^22 saw state 42 at frontend$/));
  });

  it("a frontend whose key transaction conflicts (EAGAIN) starts its transport afresh and retries", async () => {
    const p = await pair();
    let calls = 0;
    const refs: number[] = [];
    const inner = p.front.initialise.bind(p.front);
    p.front.initialise = async (dev, tx) => {
      calls++;
      const rc = await inner(dev, tx);
      refs.push(Number(await tx.read(`${dev.nodename}/ring-ref`)));
      // Someone else touches a node this transaction wrote: its commit gets EAGAIN.
      if (calls === 1) await p.w.xs.write(`${dev.nodename}/ring-ref`, "0");
      return rc;
    };
    await p.backBus.start();
    await p.frontBus.start();
    await until(async () => (await both(p, p.fe, p.be)) === "4/4");
    expect(calls).toBe(2);
    // The first attempt's grant was revoked before the retry, so the same ref came back.
    expect(refs[1]).toBe(refs[0]);
    expect(await p.w.xs.read(`${p.fe}/ring-ref`)).toBe(String(refs[1]));
  });

  it("the toolstack's unplug (online=0, backend Closing) ends with both Closed and the device gone", async () => {
    const p = await pair();
    await p.backBus.start();
    await p.frontBus.start();
    await until(async () => (await both(p, p.fe, p.be)) === "4/4");
    // libxl__initiate_device_generic_remove: online=0 and state=Closing in the backend dir.
    await p.w.xs.transaction(async (tx) => {
      await tx.write(`${p.be}/online`, "0");
      await tx.write(`${p.be}/state`, "5");
    });
    await until(async () => (await both(p, p.fe, p.be)) === "6/6");
    const dev = p.backBus.device(1, p.u.domain.domid)!;
    await until(() => dev.removed);
    expect(p.back.console(p.u.domain.domid, 1).connected).toBe(false);
  });

  it("property: whatever a frontend writes into its nodes, the backend never throws and never connects", async () => {
    const value = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.integer({ min: -5, max: 70_000 }).map(String),
      fc.constantFrom("", "3", "4", "8", "0x8", "1e3", " 5", "4294967296"),
    );
    const writes = fc.record({ "ring-ref": value, port: value, state: value });
    await fc.assert(
      fc.asyncProperty(writes, async (ws) => {
        const p = await pair();
        await p.backBus.start();
        await until(async () => (await p.w.state(p.be)) === "2");
        for (const [k, v] of Object.entries(ws)) await p.u.comms.client.write(`${p.fe}/${k}`, v);
        const dev = p.backBus.device(1, p.u.domain.domid)!;
        await p.w.xs.read(`${p.fe}/state`);
        for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
        await dev.enqueue(async () => {});
        // Nothing was granted, so nothing may map; the backend waits, closes or gave up.
        expect(p.back.console(p.u.domain.domid, 1).connected).toBe(false);
        // The oracle: what blkback/netback's frontend_changed does with that state.
        const fs = parseXenbusState(ws.state);
        if (fs === 3 || fs === 4) {
          expect(dev.state).toBe(5); // nothing was granted: connecting fails
          expect(dev.lastError).toMatch(/^\d+ (reading|mapping) /);
        } else if (fs === 5) {
          expect([dev.state, dev.lastError]).toEqual([5, ""]);
        } else if (fs === 0) {
          expect(dev.state).toBe(6);
          expect(dev.removed).toBe(true);
        } else if (fs >= 0 && fs <= 8) {
          expect([dev.state, dev.lastError]).toEqual([2, ""]);
        } else {
          expect(dev.state).toBe(5);
          expect(dev.lastError).toBe(`22 saw state ${fs} at frontend`);
        }
      }),
      { seed: 13, numRuns: process.env.HYPERLAB_LONG !== undefined ? 60 : 8 },
    );
  });

  it("setup mistakes throw XenbusError", async () => {
    const w = world();
    expect(() => xenbusRegisterBackend(w.dom0Kernel, { type: "Bad Type" } as never)).toThrow(
      XenbusError,
    );
    expect(() => xenbusRegisterFrontend(undefined as never, new XenconsBack(w.dom0Kernel))).toThrow(
      expect.objectContaining({ code: "XENBUS_BAD_OPTION" }),
    );
  });
});
