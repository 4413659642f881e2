import {
  __HYPERVISOR_grant_table_op,
  __HYPERVISOR_multicall,
  GNTMAP_device_map,
  GNTST_okay,
  GNTTABOP_map_grant_ref,
  GNTTABOP_query_size,
} from "@hyperlab/abi";
import { createHypervisor, HyperlabError } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { grantTable } from "../src/index";
import { boot, check, dom, grantV1, M } from "./helpers";

describe("the grant-table plugin", () => {
  it("needs a grant-host-mapping provider, and says so", () => {
    const machine = createMachine({ ramBytes: 1 << 20, cpus: 1, seed: 1 });
    let err: unknown;
    try {
      createHypervisor({ machine, plugins: [grantTable()] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HyperlabError);
    expect((err as HyperlabError).code).toBe("SLOT_MISSING_PROVIDER");
    expect((err as HyperlabError).message).toMatch(/grant-host-mapping/);
  });

  it("shows its slots, sub-ops and stats, and works under multicall", () => {
    const w = boot();
    const desc = w.hv.describe();
    expect(desc.slots).toMatchObject({
      "grant-table": "grant-table",
      "grant-host-mapping": "grant-host-mapping",
    });
    const cmds = desc.hypercalls
      .filter((h) => h.op === __HYPERVISOR_grant_table_op)
      .map((h) => h.cmd);
    expect(cmds).toEqual([0, 1, 2, 5, 6, 7, 8, 9, 10]);
    const a = dom(w, { domid: 1 });
    const b = dom(w, { domid: 2 });
    const page = w.hv.allocDomainPages(a);
    grantV1(w, a, 1, 2, page);
    const map = M({ host_addr: 0, flags: GNTMAP_device_map, ref: 1, dom: 1 });
    const q = { dom: 1 };
    const entries = [
      {
        op: __HYPERVISOR_grant_table_op,
        args: { cmd: GNTTABOP_map_grant_ref, uops: [map], count: 1 },
        result: 99,
      },
      {
        op: __HYPERVISOR_grant_table_op,
        args: { cmd: GNTTABOP_query_size, uops: [q], count: 1 },
        result: 99,
      },
    ];
    expect(w.hv.hypercall(b.vcpus[0], __HYPERVISOR_multicall, { entries })).toBe(0);
    expect(entries.map((e) => e.result)).toEqual([0, 0]);
    expect(map.status).toBe(GNTST_okay);
    expect((q as { status?: number }).status).toBe(-8); // permission_denied: not b's table
    const stats = w.hv.stats.snapshot()["grant-table"];
    expect(stats.find((s) => s.name === "maps")).toMatchObject({ value: 1, unit: "mappings" });
    expect(stats.find((s) => s.name === "errors")?.value).toBe(0);
    check(w);
  });
});
