// PV consoles end to end: console 0 from start_info and a xenconsoled-like backend in dom0,
// an extra console through xenbus, input and output, wrap-around, and hostile indices.
import { GNTTAB_RESERVED_CONSOLE } from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import {
  GnttabGuest,
  XENCONS_OUT_BYTES,
  XenbusError,
  XenconsBack,
  XenconsFrontDriver,
  XenconsStream,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
  xenconsConsole0,
} from "../src/index";
import { until, world } from "./world";

async function console0(seed: boolean) {
  const w = world();
  const u = await w.bootDomU();
  // xc_dom_gnttab_seed: the toolstack fills the domain's reserved console grant for dom0.
  if (seed)
    new GnttabGuest(w.hv, u.domain).grantForeignAccessRef(GNTTAB_RESERVED_CONSOLE, 0, u.consoleMfn);
  const front = xenconsConsole0(u.kernel, u.build.startInfoMfn);
  const back = new XenconsBack(w.dom0Kernel);
  const stream = await back.attachConsole0(u.domain.domid);
  if (!(stream instanceof XenconsStream)) throw new Error(`attach failed: ${stream}`);
  return { w, u, front, back, stream };
}

describe("console 0 (start_info)", () => {
  it("a domU prints a line and dom0's backend receives it (mapped by the reserved grant)", async () => {
    const c = await console0(true);
    expect(c.back.mappedBy(c.u.domain.domid)).toBe("grant");
    const seen: string[] = [];
    c.stream.onOutput((b) => seen.push(new TextDecoder().decode(b)));
    c.front.write("Linux version 6.1 (hyperlab)\n");
    await until(() => c.stream.text() === "Linux version 6.1 (hyperlab)\n");
    expect(seen.join("")).toBe("Linux version 6.1 (hyperlab)\n");
    expect(c.front.page.outCons).toBe(c.front.page.outProd);
  });

  it("without the seeded grant, privileged dom0 maps the page by frame", async () => {
    const c = await console0(false);
    expect(c.back.mappedBy(c.u.domain.domid)).toBe("mfn");
    c.front.write("hello\n");
    await until(() => c.stream.text() === "hello\n");
  });

  it("output written before the backend attached is read when it attaches", async () => {
    const w = world();
    const u = await w.bootDomU();
    const front = xenconsConsole0(u.kernel, u.build.startInfoMfn);
    front.write("early boot\n");
    const back = new XenconsBack(w.dom0Kernel);
    const s = await back.attachConsole0(u.domain.domid);
    expect(s).toBeInstanceOf(XenconsStream);
    await until(() => (s as XenconsStream).text() === "early boot\n");
  });

  it("dom0 types input and the domU reads it", async () => {
    const c = await console0(true);
    const got: number[] = [];
    c.front.onInput((b) => got.push(...b));
    expect(c.stream.write("root\n")).toBe(5);
    await until(() => got.length === 5);
    expect(new TextDecoder().decode(new Uint8Array(got))).toBe("root\n");
    expect(c.stream.pendingInput).toBe(0);
  });

  it("10,000 bytes go through the 2,048-byte ring in order, wrapping it", async () => {
    const c = await console0(true);
    const data = new Uint8Array(10_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
    expect(c.front.write(data)).toBe(10_000);
    expect(c.front.queued).toBeGreaterThan(0); // more than the ring holds had to wait
    await until(() => c.stream.outputBytes === 10_000);
    expect(c.stream.output()).toEqual(data);
    expect(c.front.page.outProd).toBe(10_000);
    expect(c.front.queued).toBe(0);
    // Input the other way, more than sizeof(in) at once.
    const got: number[] = [];
    c.front.onInput((b) => got.push(...b));
    c.stream.write(data.subarray(0, 3000));
    await until(() => got.length === 3000);
    expect(new Uint8Array(got)).toEqual(data.subarray(0, 3000));
  });

  it("a hostile domU with out_prod far beyond out_cons gets its stream clamped, no throw", async () => {
    const c = await console0(true);
    c.front.write("ok\n");
    await until(() => c.stream.text() === "ok\n");
    // The domU writes its own indices: out_prod a million bytes ahead, then kicks dom0.
    c.front.page.outProd = (c.front.page.outCons + 1_000_000) >>> 0;
    c.front.notify();
    await until(() => c.stream.badIndices === 1);
    expect(c.stream.outputBytes).toBeLessThanOrEqual(3 + XENCONS_OUT_BYTES);
    expect(c.front.page.outCons).toBe(c.front.page.outProd);
    // The console still works afterwards.
    c.front.write("after\n");
    await until(() => c.stream.text().endsWith("after\n"));
  });

  it("a hostile backend's in_prod never makes the frontend read past in", async () => {
    const c = await console0(true);
    const got: Uint8Array[] = [];
    c.front.onInput((b) => got.push(b));
    c.front.page.inProd = (c.front.page.inCons + 70_000) >>> 0;
    c.stream.notify();
    await until(() => c.front.badIndices === 1);
    expect(got.every((b) => b.length <= 1024)).toBe(true);
  });

  it("a domU whose start_info names no console gets a typed error", async () => {
    const w = world();
    const u = await w.bootDomU();
    u.kernel.hv.machine.ram.write32(u.build.startInfoMfn * 4096 + 80, 0); // console.domU.evtchn
    expect(() => xenconsConsole0(u.kernel, u.build.startInfoMfn)).toThrow(XenbusError);
  });

  it("a domU that points its console ring-ref at another domain's frame gets -EINVAL", async () => {
    const w = world();
    const u = await w.bootDomU();
    // The domU owns its home, so it can rewrite console/ring-ref: point it at dom0's frame.
    await u.comms.client.write("console/ring-ref", String(w.dom0.sharedInfoMfn));
    const back = new XenconsBack(w.dom0Kernel);
    expect(await back.attachConsole0(u.domain.domid)).toBe(-22);
    expect(back.mappedBy(u.domain.domid)).toBe(null);
    // Its real frame, with the reserved grant seeded, still works.
    await u.comms.client.write("console/ring-ref", String(u.consoleMfn));
    new GnttabGuest(w.hv, u.domain).grantForeignAccessRef(GNTTAB_RESERVED_CONSOLE, 0, u.consoleMfn);
    expect(await back.attachConsole0(u.domain.domid)).toBeInstanceOf(XenconsStream);
    expect(back.mappedBy(u.domain.domid)).toBe("grant");
  });

  it("attachConsole0 answers -errno for a domain without console nodes", async () => {
    const w = world();
    const back = new XenconsBack(w.dom0Kernel);
    expect(await back.attachConsole0(7)).toBe(-2);
    await w.xs.write("/local/domain/7/console/ring-ref", "banana");
    await w.xs.write("/local/domain/7/console/port", "3");
    expect(await back.attachConsole0(7)).toBe(-2);
  });
});

describe("extra consoles (device/console/<n>)", () => {
  it("connect through xenbus and carry output and input both ways", async () => {
    const w = world();
    const u = await w.bootDomU();
    const back = new XenconsBack(w.dom0Kernel);
    const front = new XenconsFrontDriver(u.kernel, new GnttabGuest(w.hv, u.domain));
    await xenbusRegisterBackend(w.dom0Kernel, back).start();
    await xenbusRegisterFrontend(u.kernel, front).start();
    const { fe, be } = await w.addDevice(u.domain.domid, "console", 1);
    await until(async () => (await w.state(fe)) === "4" && (await w.state(be)) === "4");
    expect(back.mappedBy(u.domain.domid, 1)).toBe("grant");
    const c = front.consoles.get(1)!;
    const s = back.console(u.domain.domid, 1);
    c.write("console 1\n");
    await until(() => s.text() === "console 1\n");
    const got: number[] = [];
    c.onInput((b) => got.push(...b));
    s.write("in\n");
    await until(() => got.length === 3);
    expect(await w.xs.read(`${fe}/port`)).toBe(String(u.kernel.evtchn.evtchnFromIrq(c.irq)));
  });
});
