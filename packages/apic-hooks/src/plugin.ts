/*
 * The apicHooks() plugin: fills the `irq` slot and handles HYPERVISOR_physdev_op's pirq and
 * IO-APIC commands as Xen 4.17's do_physdev_op does. Every argument is guest-controlled and
 * checked here; a bad one gets Xen's -errno, never a throw.
 */
import {
  __HYPERVISOR_physdev_op,
  DOMID_SELF,
  EFAULT,
  EINVAL,
  EPERM,
  ESRCH,
  MAP_PIRQ_TYPE_GSI,
  MAP_PIRQ_TYPE_MSI,
  MAP_PIRQ_TYPE_MSI_SEG,
  MAP_PIRQ_TYPE_MULTI_MSI,
  PHYSDEVOP_alloc_irq_vector,
  PHYSDEVOP_apic_read,
  PHYSDEVOP_apic_write,
  PHYSDEVOP_eoi,
  PHYSDEVOP_irq_status_query,
  PHYSDEVOP_map_pirq,
  PHYSDEVOP_pirq_eoi_gmfn_v1,
  PHYSDEVOP_pirq_eoi_gmfn_v2,
  PHYSDEVOP_setup_gsi,
  PHYSDEVOP_unmap_pirq,
} from "@hyperlab/abi";
import type { Domain, Plugin, SetupContext, Vcpu } from "@hyperlab/core";
import { createPlatform } from "@hyperlab/machine";
import { ApicHooks, type ApicHooksOptions } from "./pirqs";

type Args = Record<string, unknown>;

function int(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x);
}

const CMDS = [
  PHYSDEVOP_map_pirq,
  PHYSDEVOP_unmap_pirq,
  PHYSDEVOP_setup_gsi,
  PHYSDEVOP_eoi,
  PHYSDEVOP_irq_status_query,
  PHYSDEVOP_pirq_eoi_gmfn_v1,
  PHYSDEVOP_pirq_eoi_gmfn_v2,
  PHYSDEVOP_apic_read,
  PHYSDEVOP_apic_write,
  PHYSDEVOP_alloc_irq_vector,
];

/**
 * Xen's physical interrupt layer: PHYSDEVOP_map_pirq/unmap_pirq/setup_gsi/eoi/
 * irq_status_query/pirq_eoi_gmfn_v1/v2/apic_read/apic_write/alloc_irq_vector, and
 * EVTCHNOP_bind_pirq's pirq_guest_bind through the `evtchn` slot.
 */
export function apicHooks(options: ApicHooksOptions = {}): Plugin {
  return {
    name: "apic-hooks",
    description: "device interrupts into event channels: physdev_op, pirqs, the IO-APIC",
    provides: ["irq"],
    requires: ["evtchn"],
    hypercalls: CMDS.map((cmd) => ({ op: __HYPERVISOR_physdev_op, cmd })),
    setup(ctx) {
      const platform = options.platform ?? createPlatform(ctx.hv.machine);
      const hooks = new ApicHooks(ctx, platform, options);
      registerPhysdevOps(ctx, hooks);
      ctx.provide("irq", hooks);
    },
  };
}

function registerPhysdevOps(ctx: SetupContext, hooks: ApicHooks): void {
  const op = __HYPERVISOR_physdev_op;
  const h = (cmd: number, fn: (v: Vcpu, a: Args) => number) =>
    ctx.hypercall(
      op,
      (v, a) => (a === null || typeof a !== "object" ? -EFAULT : fn(v, a as Args)),
      cmd,
    );
  const lookup = (cur: Domain, domid: unknown): Domain | number => {
    if (!int(domid)) return -EFAULT;
    if (domid === DOMID_SELF) return cur;
    const d = domid >= 0 && domid < DOMID_SELF ? ctx.hv.domain(domid) : undefined;
    return d === undefined || !hooks.known(d) ? -ESRCH : d;
  };

  h(PHYSDEVOP_map_pirq, (v, a) => {
    const { type, index, pirq, bus, devfn, entry_nr, table_base } = a;
    if (!int(type) || !int(index) || !int(pirq)) return -EFAULT;
    const t = lookup(v.domain, a.domid);
    if (typeof t === "number") return t;
    let rc: number;
    if (type === MAP_PIRQ_TYPE_GSI) {
      rc = hooks.mapPirq(v.domain, t, { type: "gsi", gsi: index }, pirq);
    } else if (
      type === MAP_PIRQ_TYPE_MSI ||
      type === MAP_PIRQ_TYPE_MSI_SEG ||
      type === MAP_PIRQ_TYPE_MULTI_MSI
    ) {
      if (!int(bus) || !int(devfn)) return -EFAULT;
      const entryNr = entry_nr === undefined ? 0 : entry_nr;
      const base = table_base === undefined ? 0 : table_base;
      if (!int(entryNr) || !int(base)) return -EFAULT;
      // Only one vector per function without interrupt remapping.
      if (type === MAP_PIRQ_TYPE_MULTI_MSI && entryNr !== 1) return -EINVAL;
      // -1 lets Xen allocate the irq; naming one is for restoring a mapping it made.
      if (index !== -1) return -EINVAL;
      const seg = type === MAP_PIRQ_TYPE_MSI ? 0 : (bus >>> 16) & 0xffff;
      rc = hooks.mapPirq(
        v.domain,
        t,
        { type: "msi", seg, bus: bus & 0xffff, devfn, entryNr, tableBase: base },
        pirq,
      );
    } else {
      return -EINVAL;
    }
    if (rc < 0) return rc;
    a.pirq = rc;
    if (type === MAP_PIRQ_TYPE_MULTI_MSI) a.entry_nr = 1;
    return 0;
  });

  h(PHYSDEVOP_unmap_pirq, (v, a) => {
    if (!int(a.pirq)) return -EFAULT;
    const t = lookup(v.domain, a.domid);
    if (typeof t === "number") return t;
    return hooks.unmapPirq(v.domain, t, a.pirq);
  });

  h(PHYSDEVOP_setup_gsi, (v, a) => {
    if (!int(a.gsi) || !int(a.triggering) || !int(a.polarity)) return -EFAULT;
    return hooks.setupGsi(v.domain, a.gsi, a.triggering, a.polarity);
  });

  h(PHYSDEVOP_eoi, (v, a) => (int(a.irq) ? hooks.eoi(v.domain, a.irq) : -EFAULT));

  h(PHYSDEVOP_irq_status_query, (v, a) => {
    if (!int(a.irq)) return -EFAULT;
    const flags = hooks.irqStatusQuery(v.domain, a.irq);
    if (flags < 0) return flags;
    a.flags = flags;
    return 0;
  });

  const eoiMap = (v1: boolean) => (v: Vcpu, a: Args) =>
    int(a.gmfn) ? hooks.registerEoiMap(v.domain, a.gmfn, v1) : -EFAULT;
  h(PHYSDEVOP_pirq_eoi_gmfn_v1, eoiMap(true));
  h(PHYSDEVOP_pirq_eoi_gmfn_v2, eoiMap(false));

  h(PHYSDEVOP_apic_read, (v, a) => {
    if (!int(a.apic_physbase) || !int(a.reg)) return -EFAULT;
    const value = hooks.apicRead(v.domain, a.apic_physbase, a.reg);
    if (value < 0) return value;
    a.value = value;
    return 0;
  });

  h(PHYSDEVOP_apic_write, (v, a) => {
    if (!int(a.apic_physbase) || !int(a.reg) || !int(a.value)) return -EFAULT;
    return hooks.apicWrite(v.domain, a.apic_physbase, a.reg, a.value >>> 0);
  });

  h(PHYSDEVOP_alloc_irq_vector, (v, a) => {
    if (!v.domain.isPrivileged) return -EPERM;
    if (!int(a.irq)) return -EFAULT;
    if (a.irq < 0) return -EINVAL;
    // A dummy in Xen: the "vector" is the irq, which apic_write later takes as the pirq.
    a.vector = a.irq;
    return 0;
  });
}
