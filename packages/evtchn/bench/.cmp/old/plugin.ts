/*
 * The event channel plugins: a build picks one. Both fill the `evtchn` slot and need a
 * scheduler (`sched`) to wake blocked and polling vCPUs.
 */
import {
  __HYPERVISOR_event_channel_op,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_ipi,
  EVTCHNOP_bind_pirq,
  EVTCHNOP_bind_vcpu,
  EVTCHNOP_bind_virq,
  EVTCHNOP_close,
  EVTCHNOP_expand_array,
  EVTCHNOP_init_control,
  EVTCHNOP_reset,
  EVTCHNOP_send,
  EVTCHNOP_set_priority,
  EVTCHNOP_status,
  EVTCHNOP_unmask,
} from "@hyperlab/abi";
import type { Plugin } from "@hyperlab/core";
import { EventChannels, type EvtchnOptions } from "./channels";

const COMMON = [
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_virq,
  EVTCHNOP_bind_pirq,
  EVTCHNOP_close,
  EVTCHNOP_send,
  EVTCHNOP_status,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_ipi,
  EVTCHNOP_bind_vcpu,
  EVTCHNOP_unmask,
  EVTCHNOP_reset,
];
const FIFO_ONLY = [EVTCHNOP_init_control, EVTCHNOP_expand_array, EVTCHNOP_set_priority];

/**
 * The 2-level ABI only: bitmaps in shared_info, 4096 channels for 64-bit guests and 1024
 * for 32-bit ones. EVTCHNOP_init_control and friends answer -ENOSYS.
 */
export function evtchn2l(options: EvtchnOptions = {}): Plugin {
  return {
    name: "evtchn-2l",
    description: "event channels, 2-level ABI",
    provides: ["evtchn"],
    requires: ["sched"],
    hypercalls: COMMON.map((cmd) => ({ op: __HYPERVISOR_event_channel_op, cmd })),
    setup(ctx) {
      ctx.provide("evtchn", new EventChannels(ctx, "2-level", options));
    },
  };
}

/**
 * The FIFO ABI, as Xen: each domain starts on 2-level and switches for good (until
 * EVTCHNOP_reset) when it registers its first control block with EVTCHNOP_init_control.
 */
export function evtchnFifo(options: EvtchnOptions = {}): Plugin {
  return {
    name: "evtchn-fifo",
    description: "event channels, FIFO ABI (2-level until EVTCHNOP_init_control)",
    provides: ["evtchn"],
    requires: ["sched"],
    hypercalls: [...COMMON, ...FIFO_ONLY].map((cmd) => ({
      op: __HYPERVISOR_event_channel_op,
      cmd,
    })),
    setup(ctx) {
      ctx.provide("evtchn", new EventChannels(ctx, "fifo", options));
    },
  };
}
