// libxl's device directories: paths, permissions, keys, removal, over the project's xenstored.
import { isHyperlabError } from "@hyperlab/core";
import { Xenstored, XsClient } from "@hyperlab/xenstore";
import { describe, expect, it } from "vitest";
import {
  consoleDevice,
  devicePaths,
  libxlDeviceDestroy,
  libxlDeviceGenericAdd,
  libxlDeviceRemove,
} from "../src/devices";

async function store() {
  const daemon = new Xenstored();
  const xs = XsClient.inMemory(daemon);
  for (const d of [1, 2]) {
    await xs.mkdir(`/local/domain/${d}`);
    await xs.setPerms(`/local/domain/${d}`, [`n${d}`]);
  }
  return { daemon, xs };
}

describe("libxl device directories", () => {
  it("adds both ends with libxl's paths, permissions and keys in one transaction", async () => {
    const { xs } = await store();
    const spec = consoleDevice(1, 1);
    const p = await libxlDeviceGenericAdd(xs, spec);
    expect(p).toEqual({
      frontend: "/local/domain/1/device/console/1",
      backend: "/local/domain/0/backend/console/1/1",
      libxl: "/libxl/1/device/console/1",
    });
    expect(await xs.getPerms(p.frontend)).toEqual(["n1", "r0"]);
    expect(await xs.getPerms(p.backend)).toEqual(["n0", "r1"]);
    expect(await xs.getPerms(p.libxl)).toEqual(["n0"]);
    expect(await xs.read(`${p.frontend}/backend`)).toBe(p.backend);
    expect(await xs.read(`${p.frontend}/backend-id`)).toBe("0");
    expect(await xs.read(`${p.frontend}/state`)).toBe("1");
    expect(await xs.read(`${p.frontend}/type`)).toBe("xenconsoled");
    expect(await xs.read(`${p.backend}/frontend`)).toBe(p.frontend);
    expect(await xs.read(`${p.backend}/frontend-id`)).toBe("1");
    expect(await xs.read(`${p.backend}/online`)).toBe("1");
    expect(await xs.read(`${p.backend}/state`)).toBe("1");
    expect(await xs.read(`${p.backend}/protocol`)).toBe("vt100");
    expect(await xs.read(`${p.libxl}/frontend`)).toBe(p.frontend);
  });

  it("the domU may write its frontend but only read the backend; other domUs see neither", async () => {
    const { daemon, xs } = await store();
    const p = await libxlDeviceGenericAdd(xs, { type: "vbd", domid: 1, devid: 51712 });
    const u1 = XsClient.inMemory(daemon, { domid: 1 });
    const u2 = XsClient.inMemory(daemon, { domid: 2 });
    await u1.write(`${p.frontend}/state`, "3");
    expect(await u1.read(`${p.backend}/state`)).toBe("1");
    await expect(u1.write(`${p.backend}/state`, "4")).rejects.toMatchObject({ errno: 13 });
    await expect(u2.read(`${p.frontend}/state`)).rejects.toMatchObject({ errno: 13 });
    await expect(u2.read(`${p.backend}/state`)).rejects.toMatchObject({ errno: 13 });
    await expect(u1.read(`${p.libxl}/online`)).rejects.toMatchObject({ errno: 13 });
  });

  it("remove asks the backend to close, destroy removes all three directories", async () => {
    const { xs } = await store();
    const spec = { type: "vif", domid: 2, devid: 0 };
    const p = await libxlDeviceGenericAdd(xs, spec);
    await libxlDeviceRemove(xs, spec);
    expect(await xs.read(`${p.backend}/online`)).toBe("0");
    expect(await xs.read(`${p.backend}/state`)).toBe("5");
    await libxlDeviceDestroy(xs, spec);
    for (const d of Object.values(p)) expect(await xs.exists(d)).toBe(false);
    await libxlDeviceDestroy(xs, spec); // removing what is gone is fine
  });

  it("user mistakes throw TOOLSTACK_BAD_DEVICE with a message that says what to do", () => {
    const bad = (s: object) => () => devicePaths(s as never);
    for (const s of [
      { type: "VBD", domid: 1, devid: 0 },
      { type: "vbd", domid: -1, devid: 0 },
      { type: "vbd", domid: 1, devid: 1.5 },
      { type: "vbd", domid: 1, devid: 0, backendDomid: 0x7ff0 },
      { type: "vbd", domid: 1, devid: 0, backend: { "../x": "1" } },
    ]) {
      expect(bad(s)).toThrow(expect.objectContaining({ code: "TOOLSTACK_BAD_DEVICE" }));
    }
    let caught: unknown;
    try {
      devicePaths({ type: "", domid: 1, devid: 0 });
    } catch (e) {
      caught = e;
    }
    expect(isHyperlabError(caught, ["TOOLSTACK_BAD_DEVICE"])).toBe(true);
  });
});
