// The guest's shutdown watcher (Linux's manage.c) on the test world's domU: requests written
// to control/shutdown by the toolstack shut the domain down with the matching reason, once.
import { SHUTDOWN_poweroff, SHUTDOWN_reboot } from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import { xenManage } from "../src/index";
import { until, world } from "./world";

describe("xenManage", () => {
  it("advertises the features, acts on poweroff once, and clears the request", async () => {
    const w = world();
    const u = await w.bootDomU();
    const h = `/local/domain/${u.domain.domid}`;
    const m = await xenManage(u.kernel);
    expect(await w.xs.read(`${h}/control/feature-poweroff`)).toBe("1");
    expect(await w.xs.read(`${h}/control/feature-suspend`)).toBe("1");
    await w.xs.write(`${h}/control/shutdown`, "poweroff");
    await until(() => u.domain.state === "shutdown");
    expect(u.domain.shutdownCode).toBe(SHUTDOWN_poweroff);
    await until(async () => (await w.xs.read(`${h}/control/shutdown`)) === "");
    expect(m.requests).toBe(1);
    expect(m.last).toBe("poweroff");
    await m.stop();
  });

  it("reboot gives SHUTDOWN_reboot; an unknown request is cleared and ignored; suspend runs its hook first", async () => {
    const w = world();
    const u = await w.bootDomU();
    const h = `/local/domain/${u.domain.domid}`;
    let hooked = 0;
    const m = await xenManage(u.kernel, { onSuspend: () => hooked++ });
    await w.xs.write(`${h}/control/shutdown`, "dance");
    await until(async () => (await w.xs.read(`${h}/control/shutdown`)) === "");
    expect(u.domain.state).toBe("running");
    expect(m.requests).toBe(0);
    await w.xs.write(`${h}/control/shutdown`, "reboot");
    await until(() => u.domain.state === "shutdown");
    expect(u.domain.shutdownCode).toBe(SHUTDOWN_reboot);
    expect(hooked).toBe(0);
    const v = await w.bootDomU();
    const mv = await xenManage(v.kernel, { onSuspend: () => hooked++ });
    await w.xs.write(`/local/domain/${v.domain.domid}/control/shutdown`, "suspend");
    await until(() => v.domain.state === "shutdown");
    expect(hooked).toBe(1);
    expect(mv.last).toBe("suspend");
  });
});
