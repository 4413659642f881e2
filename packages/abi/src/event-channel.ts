/*
 * Xen 4.17 public/event_channel.h: event channel operations, their argument structs, the
 * channel states, and the FIFO ABI's constants and control block.
 *
 * Invariant: every value equals the header's; layouts are x86_64's (these structs have the
 * same layout on x86_32).
 */
import type { StructLayout } from "./layout";

// Operations of HYPERVISOR_event_channel_op (EVTCHNOP_*).
export const EVTCHNOP_bind_interdomain = 0;
export const EVTCHNOP_bind_virq = 1;
export const EVTCHNOP_bind_pirq = 2;
export const EVTCHNOP_close = 3;
export const EVTCHNOP_send = 4;
export const EVTCHNOP_status = 5;
export const EVTCHNOP_alloc_unbound = 6;
export const EVTCHNOP_bind_ipi = 7;
export const EVTCHNOP_bind_vcpu = 8;
export const EVTCHNOP_unmask = 9;
export const EVTCHNOP_reset = 10;
export const EVTCHNOP_init_control = 11;
export const EVTCHNOP_expand_array = 12;
export const EVTCHNOP_set_priority = 13;

// evtchn_bind_pirq.flags.
/** The guest will share this PIRQ with other domains. */
export const BIND_PIRQ__WILL_SHARE = 1;

// evtchn_status.status values (EVTCHNSTAT_*).
export const EVTCHNSTAT_closed = 0;
export const EVTCHNSTAT_unbound = 1;
export const EVTCHNSTAT_interdomain = 2;
export const EVTCHNSTAT_pirq = 3;
export const EVTCHNSTAT_virq = 4;
export const EVTCHNSTAT_ipi = 5;

// The 2-level ABI's channel count on x86_64 (64 selector bits x 64 pending bits).
export const EVTCHN_2L_NR_CHANNELS = 4096;

// FIFO ABI: priorities (0 is highest), event word bits, link field.
export const EVTCHN_FIFO_PRIORITY_MAX = 0;
export const EVTCHN_FIFO_PRIORITY_DEFAULT = 7;
export const EVTCHN_FIFO_PRIORITY_MIN = 15;
export const EVTCHN_FIFO_MAX_QUEUES = 16;
/** Bit number of the pending bit in an event word. */
export const EVTCHN_FIFO_PENDING = 31;
/** Bit number of the masked bit. */
export const EVTCHN_FIFO_MASKED = 30;
/** Bit number of the linked bit. */
export const EVTCHN_FIFO_LINKED = 29;
/** Bit number of the busy bit. */
export const EVTCHN_FIFO_BUSY = 28;
export const EVTCHN_FIFO_LINK_BITS = 17;
export const EVTCHN_FIFO_LINK_MASK = 0x1ffff;
export const EVTCHN_FIFO_NR_CHANNELS = 131072;

/** EVTCHNOP_alloc_unbound: a port that remote_dom may later bind to. */
export const evtchn_alloc_unbound: StructLayout = {
  cName: "struct evtchn_alloc_unbound",
  sizeof: 8,
  fields: {
    dom: { offset: 0, size: 2 },
    remote_dom: { offset: 2, size: 2 },
    port: { offset: 4, size: 4 },
  },
};

/** EVTCHNOP_bind_interdomain: connect a local port to a remote domain's unbound port. */
export const evtchn_bind_interdomain: StructLayout = {
  cName: "struct evtchn_bind_interdomain",
  sizeof: 12,
  fields: {
    remote_dom: { offset: 0, size: 2 },
    remote_port: { offset: 4, size: 4 },
    local_port: { offset: 8, size: 4 },
  },
};

/** EVTCHNOP_bind_virq: a port that receives a VIRQ on one vCPU. */
export const evtchn_bind_virq: StructLayout = {
  cName: "struct evtchn_bind_virq",
  sizeof: 12,
  fields: {
    virq: { offset: 0, size: 4 },
    vcpu: { offset: 4, size: 4 },
    port: { offset: 8, size: 4 },
  },
};

/** EVTCHNOP_bind_pirq: a port that receives a physical IRQ. */
export const evtchn_bind_pirq: StructLayout = {
  cName: "struct evtchn_bind_pirq",
  sizeof: 12,
  fields: {
    pirq: { offset: 0, size: 4 },
    flags: { offset: 4, size: 4 },
    port: { offset: 8, size: 4 },
  },
};

/** EVTCHNOP_bind_ipi: a port for inter-vCPU notifications within the domain. */
export const evtchn_bind_ipi: StructLayout = {
  cName: "struct evtchn_bind_ipi",
  sizeof: 8,
  fields: {
    vcpu: { offset: 0, size: 4 },
    port: { offset: 4, size: 4 },
  },
};

/** EVTCHNOP_close: close a port. */
export const evtchn_close: StructLayout = {
  cName: "struct evtchn_close",
  sizeof: 4,
  fields: {
    port: { offset: 0, size: 4 },
  },
};

/** EVTCHNOP_send: notify the other end of a port. */
export const evtchn_send: StructLayout = {
  cName: "struct evtchn_send",
  sizeof: 4,
  fields: {
    port: { offset: 0, size: 4 },
  },
};

/** EVTCHNOP_status: a port's state (EVTCHNSTAT_*) and what it is bound to. */
export const evtchn_status: StructLayout = {
  cName: "struct evtchn_status",
  sizeof: 24,
  fields: {
    dom: { offset: 0, size: 2 },
    port: { offset: 4, size: 4 },
    status: { offset: 8, size: 4 },
    vcpu: { offset: 12, size: 4 },
    u: { offset: 16, size: 8 },
    "u.unbound": { offset: 16, size: 2 },
    "u.unbound.dom": { offset: 16, size: 2 },
    "u.interdomain": { offset: 16, size: 8 },
    "u.interdomain.dom": { offset: 16, size: 2 },
    "u.interdomain.port": { offset: 20, size: 4 },
    "u.pirq": { offset: 16, size: 4 },
    "u.virq": { offset: 16, size: 4 },
  },
};

/** EVTCHNOP_bind_vcpu: choose the vCPU that a port notifies. */
export const evtchn_bind_vcpu: StructLayout = {
  cName: "struct evtchn_bind_vcpu",
  sizeof: 8,
  fields: {
    port: { offset: 0, size: 4 },
    vcpu: { offset: 4, size: 4 },
  },
};

/** EVTCHNOP_unmask: unmask a port and deliver a pending event. */
export const evtchn_unmask: StructLayout = {
  cName: "struct evtchn_unmask",
  sizeof: 4,
  fields: {
    port: { offset: 0, size: 4 },
  },
};

/** EVTCHNOP_reset: close every port of a domain. */
export const evtchn_reset: StructLayout = {
  cName: "struct evtchn_reset",
  sizeof: 2,
  fields: {
    dom: { offset: 0, size: 2 },
  },
};

/** EVTCHNOP_init_control: register a vCPU's FIFO control block (switches to the FIFO ABI). */
export const evtchn_init_control: StructLayout = {
  cName: "struct evtchn_init_control",
  sizeof: 24,
  fields: {
    control_gfn: { offset: 0, size: 8 },
    offset: { offset: 8, size: 4 },
    vcpu: { offset: 12, size: 4 },
    link_bits: { offset: 16, size: 1 },
    _pad: { offset: 17, size: 1, count: 7 },
  },
};

/** EVTCHNOP_expand_array: add one page of FIFO event words. */
export const evtchn_expand_array: StructLayout = {
  cName: "struct evtchn_expand_array",
  sizeof: 8,
  fields: {
    array_gfn: { offset: 0, size: 8 },
  },
};

/** EVTCHNOP_set_priority: a port's FIFO queue priority. */
export const evtchn_set_priority: StructLayout = {
  cName: "struct evtchn_set_priority",
  sizeof: 8,
  fields: {
    port: { offset: 0, size: 4 },
    priority: { offset: 4, size: 4 },
  },
};

/** Per-vCPU FIFO control block: ready bitmap and one queue head per priority. */
export const evtchn_fifo_control_block: StructLayout = {
  cName: "struct evtchn_fifo_control_block",
  sizeof: 72,
  fields: {
    ready: { offset: 0, size: 4 },
    _rsvd: { offset: 4, size: 4 },
    head: { offset: 8, size: 4, count: 16 },
  },
};
