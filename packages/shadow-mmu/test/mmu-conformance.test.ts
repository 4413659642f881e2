// The MMU conformance suite from @hyperlab/testkit on shadow paging: the guest writes its
// tables through guestStore (the trapping store), the host propagates them into shadows.
import { defineMmuConformance, type MmuBuildFactory, tablesMmuBuild } from "@hyperlab/testkit";
import { describe, it } from "vitest";
import type { ShadowMmuOptions } from "../src/index";
import { boot, GuestMem, GuestTables } from "./helpers";

function factory(options: ShadowMmuOptions): MmuBuildFactory {
  return () => {
    const mem = new GuestMem(boot(options), { pages: 32, vcpus: 1 });
    const v = mem.d.vcpus[0];
    return tablesMmuBuild(mem.w.sh, v, new GuestTables(mem, v), 0x40_0000);
  };
}

defineMmuConformance({ describe, it }, [
  ["shadow paging", factory({})],
  ["shadow paging without a TLB", factory({ tlb: false })],
]);
