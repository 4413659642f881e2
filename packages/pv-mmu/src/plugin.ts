/*
 * The pv-mmu plugin: fills core's `mmu` slot (and `pvMmu`, the full service), owns the
 * page-table types' validation hooks and registers Xen's PV memory hypercalls. Its companion
 * `pvGrantMapping` fills core's `grant-host-mapping` slot with entries in PV page tables, so
 * the grant table reaches them through the slot and never imports this package.
 */
import {
  __HYPERVISOR_memory_op,
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_update_va_mapping,
  __HYPERVISOR_update_va_mapping_otherdomain,
  XENMEM_current_reservation,
  XENMEM_decrease_reservation,
  XENMEM_exchange,
  XENMEM_increase_reservation,
  XENMEM_machphys_mapping,
  XENMEM_maximum_ram_page,
  XENMEM_maximum_reservation,
  XENMEM_populate_physmap,
} from "@hyperlab/abi";
import { definePlugin, type Plugin } from "@hyperlab/core";
import { PvGrantMapping } from "./grant-mapping";
import {
  type MemoryOpArgs,
  type MmuextOpArgs,
  type MmuUpdateArgs,
  PvMmu,
  type PvMmuOptions,
  type UpdateVaMappingArgs,
} from "./service";

declare module "@hyperlab/core" {
  interface Slots {
    /** The Xen PV MMU service: hypercalls, M2P, guest memory access, the domain builder's tools. */
    "pv-mmu": PvMmu;
  }
  interface HypercallArgs {
    [__HYPERVISOR_mmu_update]: MmuUpdateArgs;
    [__HYPERVISOR_mmuext_op]: MmuextOpArgs;
    [__HYPERVISOR_update_va_mapping]: UpdateVaMappingArgs;
    [__HYPERVISOR_update_va_mapping_otherdomain]: UpdateVaMappingArgs;
    [__HYPERVISOR_memory_op]: MemoryOpArgs;
  }
}

const MEMORY_OPS = [
  XENMEM_increase_reservation,
  XENMEM_decrease_reservation,
  XENMEM_maximum_ram_page,
  XENMEM_current_reservation,
  XENMEM_maximum_reservation,
  XENMEM_populate_physmap,
  XENMEM_exchange,
  XENMEM_machphys_mapping,
];

/** The Xen PV direct-paging MMU, as a plugin value. */
export function pvMmu(options: PvMmuOptions = {}): Plugin {
  return definePlugin({
    name: "pv-mmu",
    description:
      "Xen PV direct paging: page types, validation, mmu_update, mmuext_op, P2M/M2P, ptwr",
    provides: ["mmu", "pv-mmu"],
    hypercalls: [
      { op: __HYPERVISOR_mmu_update },
      { op: __HYPERVISOR_mmuext_op },
      { op: __HYPERVISOR_update_va_mapping },
      { op: __HYPERVISOR_update_va_mapping_otherdomain },
      ...MEMORY_OPS.map((cmd) => ({ op: __HYPERVISOR_memory_op, cmd })),
    ],
    setup(ctx) {
      const pv = new PvMmu(ctx.hv, options);
      const s = ctx.stats;
      pv.counters = {
        mmuUpdates: s.counter("mmu_updates", "updates", "mmu_update requests done"),
        ptwrEmulations: s.counter(
          "ptwr_emulations",
          "writes",
          "guest writes to L1 page tables emulated (ptwr)",
        ),
        tlbFlushes: s.counter("tlb_flushes", "flushes", "vCPU TLB flushes"),
        pageFaults: s.counter("page_faults", "faults", "translations that faulted to the guest"),
        remoteFlushes: s.counter(
          "remote_flushes",
          "IPIs",
          "flushes Xen made on another vCPU for MMUEXT_*_MULTI/_ALL (flush_tlb_mask: an IPI to its pCPU)",
        ),
      };
      s.gauge(
        "promotions",
        "tables",
        "page-table validations (promotions)",
        () => pv.pt.counts.promotions,
      );
      s.gauge(
        "demotions",
        "tables",
        "page-table devalidations (demotions)",
        () => pv.pt.counts.demotions,
      );
      s.gauge(
        "type_change_flushes",
        "flushes",
        "full flushes forced by a writable frame becoming a page table",
        () => pv.pt.counts.typeChangeFlushes,
      );
      ctx.provide("mmu", pv);
      ctx.provide("pv-mmu", pv);
      ctx.hypercall(__HYPERVISOR_mmu_update, (v, a) => pv.mmuUpdate(v, a));
      ctx.hypercall(__HYPERVISOR_mmuext_op, (v, a) => pv.mmuextOp(v, a));
      ctx.hypercall(__HYPERVISOR_update_va_mapping, (v, a) => pv.updateVaMapping(v, a));
      ctx.hypercall(__HYPERVISOR_update_va_mapping_otherdomain, (v, a) =>
        pv.updateVaMappingOtherdomain(v, a),
      );
      ctx.hypercall(
        __HYPERVISOR_memory_op,
        (v, a) => pv.increaseReservation(v, a),
        XENMEM_increase_reservation,
      );
      ctx.hypercall(
        __HYPERVISOR_memory_op,
        (v, a) => pv.decreaseReservation(v, a),
        XENMEM_decrease_reservation,
      );
      ctx.hypercall(
        __HYPERVISOR_memory_op,
        (v, a) => pv.populatePhysmap(v, a),
        XENMEM_populate_physmap,
      );
      ctx.hypercall(__HYPERVISOR_memory_op, (v, a) => pv.exchange(v, a), XENMEM_exchange);
      ctx.hypercall(__HYPERVISOR_memory_op, () => pv.maximumRamPage(), XENMEM_maximum_ram_page);
      ctx.hypercall(
        __HYPERVISOR_memory_op,
        (v, a) => pv.machphysMapping(v, a),
        XENMEM_machphys_mapping,
      );
      ctx.hypercall(
        __HYPERVISOR_memory_op,
        (v, a) => pv.reservationOf(v, a, false),
        XENMEM_current_reservation,
      );
      ctx.hypercall(
        __HYPERVISOR_memory_op,
        (v, a) => pv.reservationOf(v, a, true),
        XENMEM_maximum_reservation,
      );
      ctx.onDomainCreate((d) => pv.domainCreated(d));
      ctx.onDomainDestroy((d) => pv.domainDestroyed(d));
    },
  });
}

/**
 * Grant host mappings in Xen PV page tables (Xen's create_grant_pv_mapping and
 * replace_grant_pv_mapping): fills core's `grant-host-mapping` slot for builds with the
 * `pv-mmu` plugin, e.g. `[pvMmu(), pvGrantMapping(), grantTable()]`.
 */
export function pvGrantMapping(): Plugin {
  return definePlugin({
    name: "pv-grant-mapping",
    description: "grant host mappings in Xen PV page tables",
    provides: ["grant-host-mapping"],
    requires: ["pv-mmu"],
    setup(ctx) {
      ctx.provide("grant-host-mapping", new PvGrantMapping(ctx.slot("pv-mmu")));
    },
  });
}
