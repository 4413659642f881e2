/*
 * The iomap plugin: fills core's `iomem` slot with Xen's per-domain I/O memory permission and
 * the machine's RAM/MMIO map, and `iomap` with the full service (the toolstack's
 * XEN_DOMCTL_iomem_permission). pv-mmu's get_page_from_l1e asks the `iomem` slot, when one
 * is composed, about a PTE naming a frame that is not RAM.
 */
import { definePlugin, type Plugin } from "@hyperlab/core";
import { Iomap, type IomapOptions } from "./service";

declare module "@hyperlab/core" {
  interface Slots {
    /** The iomap service: the `iomem` contract plus the toolstack's iomemPermission. */
    iomap: Iomap;
  }
}

/** Xen's I/O memory permission (iomem_caps, mmio_ro_ranges), as a plugin value. */
export function iomap(options: IomapOptions = {}): Plugin {
  return definePlugin({
    name: "iomap",
    description:
      "I/O memory permission per domain (iomem_caps), RAM vs MMIO, read-only MMIO ranges",
    provides: ["iomem", "iomap"],
    setup(ctx) {
      const svc = new Iomap(ctx.hv, options);
      const s = ctx.stats;
      s.gauge("permits", "ops", "I/O memory ranges granted", () => svc.counts.permits);
      s.gauge("denies", "ops", "I/O memory ranges revoked", () => svc.counts.denies);
      s.gauge("refused", "ptes", "PTEs to I/O memory refused", () => svc.counts.refused);
      ctx.provide("iomem", svc);
      ctx.provide("iomap", svc);
      ctx.onDomainCreate((d) => svc.domainCreated(d));
      ctx.onDomainDestroy((d) => svc.domainDestroyed(d));
    },
  });
}
