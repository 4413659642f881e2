import { describe, expect, it } from "vitest";
import { destroyDomainRecord, domainCreate, freePages } from "../../src/index";
import { config, host } from "./world";

describe("domainCreate", () => {
  it("creates a running PV domain with libxl's nodes, and destroy gives everything back", async () => {
    const h = await host();
    const free0 = freePages(h.hv);
    const r = await domainCreate(h, config("alpha"));
    expect(r.domain.state).toBe("running");
    const xs = h.xsd!.xs;
    expect(await xs.read(`/local/domain/${r.domid}/name`)).toBe("alpha");
    expect(await xs.read(`/local/domain/${r.domid}/memory/target`)).toBe("8192");
    expect(await xs.read(`/local/domain/${r.domid}/cpu/0/availability`)).toBe("online");
    expect(await xs.read(`/local/domain/${r.domid}/control/feature-poweroff`)).toBe("1");
    await destroyDomainRecord(h, r);
    expect(h.hv.domain(r.domid)).toBeUndefined();
    expect(freePages(h.hv)).toBe(free0);
  });
});
