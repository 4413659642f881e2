/*
 * The 2-level words come from @hyperlab/abi's checked shared_info and vcpu_info layouts: the
 * limits and offsets evtchn uses equal Xen's for both guest widths.
 */
import { EVTCHN_2L_NR_CHANNELS, shared_info_x86_64, vcpu_info_x86_32 } from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import { LAYOUT_32, LAYOUT_64 } from "../src/port-ops";

describe("2-level layouts from abi", () => {
  it("name EVTCHN_2L_NR_CHANNELS ports for 64-bit guests and 1024 for 32-bit ones", () => {
    expect(LAYOUT_64.nrChannels).toBe(EVTCHN_2L_NR_CHANNELS);
    expect(LAYOUT_32.nrChannels).toBe(32 * 32);
  });

  it("find the bitmaps and selector words where Xen puts them", () => {
    expect(LAYOUT_64.pendingW * 4).toBe(shared_info_x86_64.fields.evtchn_pending.offset);
    expect(LAYOUT_64.maskW * 4).toBe(2560);
    expect(LAYOUT_32.maskW * 4).toBe(2176);
    expect(LAYOUT_64.selW * 4).toBe(8);
    expect(LAYOUT_32.selW * 4).toBe(vcpu_info_x86_32.fields.evtchn_pending_sel.offset);
    expect(LAYOUT_64.vcpuInfoW).toBe(16);
    expect(LAYOUT_64.legacyVcpus).toBe(32);
  });
});
