/*
 * The grant-table plugin: registers GNTTABOP_* of HYPERVISOR_grant_table_op, keeps a grant
 * table per domain from creation to destruction, and fills the `grantTable` slot with its
 * service. Host mappings go through the `grant-host-mapping` slot (its contract is in
 * @hyperlab/core), which an MMU plugin fills: pv-mmu's `pvGrantMapping` for Xen PV page
 * tables. This package imports no sibling plugin.
 */
import {
  __HYPERVISOR_grant_table_op,
  GNTTABOP_copy,
  GNTTABOP_get_status_frames,
  GNTTABOP_get_version,
  GNTTABOP_map_grant_ref,
  GNTTABOP_query_size,
  GNTTABOP_set_version,
  GNTTABOP_setup_table,
  GNTTABOP_unmap_and_replace,
  GNTTABOP_unmap_grant_ref,
} from "@hyperlab/abi";
import {
  definePlugin,
  type GrantHostMapping,
  HyperlabError,
  type Hypervisor,
  type Plugin,
} from "@hyperlab/core";
import type { GrantErrorCode } from "./errors";
import { type GrantTableOptions, GrantTableService } from "./service";
import type { GrantTableOpArgs } from "./types";

declare module "@hyperlab/core" {
  interface Slots {
    /** The grant table service: GNTTABOP_* and views for tools and checkers. */
    "grant-table": GrantTableService;
  }
  interface HypercallArgs {
    [__HYPERVISOR_grant_table_op]: GrantTableOpArgs;
  }
}

const OPS = [
  GNTTABOP_map_grant_ref,
  GNTTABOP_unmap_grant_ref,
  GNTTABOP_setup_table,
  GNTTABOP_copy,
  GNTTABOP_query_size,
  GNTTABOP_unmap_and_replace,
  GNTTABOP_set_version,
  GNTTABOP_get_status_frames,
  GNTTABOP_get_version,
];

/** Xen grant tables (v1, and v2 where a guest asks for it), as a plugin value. */
export function grantTable(options: GrantTableOptions = {}): Plugin {
  const { maxGrantFrames = 64, maxMaptrackFrames = 1024, maxVersion = 2 } = options;
  if (!Number.isInteger(maxGrantFrames) || maxGrantFrames < 1 || maxGrantFrames > 1024) {
    throw new HyperlabError<GrantErrorCode>(
      "GRANT_BAD_OPTION",
      `maxGrantFrames must be a whole number from 1 to 1024, got ${maxGrantFrames}.`,
    );
  }
  if (!Number.isInteger(maxMaptrackFrames) || maxMaptrackFrames < 0 || maxMaptrackFrames > 65536) {
    throw new HyperlabError<GrantErrorCode>(
      "GRANT_BAD_OPTION",
      `maxMaptrackFrames must be a whole number from 0 to 65536, got ${maxMaptrackFrames}.`,
    );
  }
  if (maxVersion !== 1 && maxVersion !== 2) {
    throw new HyperlabError<GrantErrorCode>(
      "GRANT_BAD_OPTION",
      `maxVersion must be 1 or 2, got ${maxVersion}.`,
    );
  }
  return definePlugin({
    name: "grant-table",
    description: "Xen grant tables: setup, map, unmap, copy, versions",
    provides: ["grant-table"],
    requires: ["grant-host-mapping"],
    hypercalls: OPS.map((cmd) => ({ op: __HYPERVISOR_grant_table_op, cmd })),
    setup(ctx) {
      const gt = new GrantTableService(ctx.hv, ctx.slot("grant-host-mapping"), {
        maxGrantFrames,
        maxMaptrackFrames,
        maxVersion,
      });
      const s = ctx.stats;
      gt.counters = {
        maps: s.counter("maps", "mappings", "grant mappings made (map_grant_ref successes)"),
        unmaps: s.counter("unmaps", "mappings", "grant mappings undone by unmap"),
        copies: s.counter("copies", "copies", "GNTTABOP_copy elements done"),
        copiedBytes: s.counter("copied_bytes", "bytes", "bytes moved by GNTTABOP_copy"),
        errors: s.counter("errors", "elements", "elements answered with a GNTST_ error"),
      };
      ctx.provide("grant-table", gt);
      const hc = (
        cmd: number,
        fn: (v: Parameters<typeof gt.copy>[0], a: GrantTableOpArgs) => number,
      ) => ctx.hypercall(__HYPERVISOR_grant_table_op, fn, cmd);
      hc(GNTTABOP_map_grant_ref, (v, a) => gt.mapGrantRef(v, a));
      hc(GNTTABOP_unmap_grant_ref, (v, a) => gt.unmapGrantRef(v, a));
      hc(GNTTABOP_unmap_and_replace, (v, a) => gt.unmapAndReplace(v, a));
      hc(GNTTABOP_setup_table, (v, a) => gt.setupTable(v, a));
      hc(GNTTABOP_query_size, (v, a) => gt.querySize(v, a));
      hc(GNTTABOP_copy, (v, a) => gt.copy(v, a));
      hc(GNTTABOP_set_version, (v, a) => gt.setVersion(v, a));
      hc(GNTTABOP_get_version, (v, a) => gt.getVersion(v, a));
      hc(GNTTABOP_get_status_frames, (v, a) => gt.getStatusFrames(v, a));
      ctx.onDomainCreate((d) => {
        if (!gt.domainCreated(d)) {
          throw new HyperlabError<GrantErrorCode>(
            "GRANT_NO_MEMORY",
            `No free frame for domain ${d.domid}'s first grant-table frame. Give the machine more RAM.`,
          );
        }
      });
      ctx.onDomainDestroy((d) => gt.domainDestroyed(d));
    },
  });
}

/**
 * A plugin that fills `grant-host-mapping` with any implementation, e.g. testkit's
 * GrantMappingDouble for builds without page tables.
 */
export function grantHostMapping(
  make: (hv: Hypervisor) => GrantHostMapping,
  name = "grant-host-mapping",
): Plugin {
  return definePlugin({
    name,
    description: "grant host mappings from a given implementation",
    provides: ["grant-host-mapping"],
    setup(ctx) {
      ctx.provide("grant-host-mapping", make(ctx.hv));
    },
  });
}
