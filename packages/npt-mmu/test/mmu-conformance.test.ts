// The MMU conformance suite from @hyperlab/testkit on nested paging: the guest writes its
// own tables in guest-physical memory, the host backs them through the nested tables.
import {
  defineMmuConformance,
  GuestTables,
  type MmuBuildFactory,
  tablesMmuBuild,
} from "@hyperlab/testkit";
import { describe, it } from "vitest";
import type { NptMmuOptions } from "../src/index";
import { boot, GuestMem } from "./helpers";

function factory(options: NptMmuOptions): MmuBuildFactory {
  return () => {
    const mem = new GuestMem(boot(options), { pages: 32, vcpus: 1 });
    return tablesMmuBuild(mem.w.npt, mem.d.vcpus[0], new GuestTables(mem), 0x40_0000);
  };
}

defineMmuConformance({ describe, it }, [
  ["nested paging, 4 KiB host pages", factory({ hostPageSize: "4K" })],
  ["nested paging, 2 MiB host pages", factory({ hostPageSize: "2M" })],
  ["nested paging without a combined TLB", factory({ tlb: false })],
]);
