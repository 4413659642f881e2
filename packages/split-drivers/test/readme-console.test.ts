// The "Consoles" example of README.md, run as written on the test world's two kernels.
import { describe, expect, it } from "vitest";
import {
  GnttabGuest,
  XenconsBack,
  XenconsFrontDriver,
  XenconsStream,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
  xenconsConsole0,
} from "../src/index";
import { until, world } from "./world";

describe("README: Consoles", () => {
  it("runs the example", async () => {
    const w = world();
    const u = await w.bootDomU();
    const dom0 = w.dom0Kernel;
    const domU = u.kernel;
    const startInfoMfn = u.build.startInfoMfn;

    // Console 0: the domU writes through start_info's page, dom0's daemon reads it.
    const hvc0 = xenconsConsole0(domU, startInfoMfn);
    const daemon = new XenconsBack(dom0);
    const stream = await daemon.attachConsole0(domU.domain.domid); // a XenconsStream, or -errno
    hvc0.write("Linux version 6.1\n");
    expect(stream).toBeInstanceOf(XenconsStream);
    await until(() => (stream as XenconsStream).text() === "Linux version 6.1\n");

    // Console 1 over xenbus: both buses watch; the toolstack writes the two directories.
    await xenbusRegisterBackend(dom0, daemon).start();
    const hvc = new XenconsFrontDriver(domU, new GnttabGuest(domU.hv, domU.domain));
    await xenbusRegisterFrontend(domU, hvc).start();
    const { fe, be } = await w.addDevice(domU.domain.domid, "console", 1);
    await until(async () => (await w.state(fe)) === "4" && (await w.state(be)) === "4");
    const got: number[] = [];
    hvc.consoles.get(1)!.onInput((b) => got.push(...b));
    daemon.console(domU.domain.domid, 1).write("input\n");
    await until(() => got.length === 6);
    expect(new TextDecoder().decode(new Uint8Array(got))).toBe("input\n");
  });
});
