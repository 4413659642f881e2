/*
 * `xl block-list` (tools/xl/xl_block.c) and `xl network-list` (tools/xl/xl_nic.c): a header,
 * then one left-justified row per device from libxl_diskinfo / libxl_nicinfo.
 *
 * Invariant: pure.
 */
import { int32, padEnd, padStart } from "../cfmt";
import type { XlDiskInfo, XlNicInfo } from "../types";

const d = (n: number) => String(int32(n));

export const BLOCK_HEADER = `${padEnd("Vdev", 5)} ${padEnd("BE", 3)} ${padEnd("handle", 6)} ${padEnd("state", 5)} ${padEnd("evt-ch", 6)} ${padEnd("ring-ref", 8)} ${padEnd("BE-path", 30)}\n`;

/** "%-5d %-3d %-6d %-5d %-6d %-8d %-30s": devid, backend domid, frontend domid, state, ... */
export function blockRow(i: XlDiskInfo): string {
  return `${padEnd(d(i.devid), 5)} ${padEnd(d(i.backendId), 3)} ${padEnd(d(i.frontendId), 6)} ${padEnd(d(i.state), 5)} ${padEnd(d(i.evtch), 6)} ${padEnd(d(i.rref), 8)} ${padEnd(i.backend, 30)}\n`;
}

export const NETWORK_HEADER = `${padEnd("Idx", 3)} ${padEnd("BE", 2)} ${padEnd("Mac Addr.", 17)} ${padEnd("handle", 6)} ${padEnd("state", 5)} ${padEnd("evt-ch", 6)} ${padStart("tx-", 5)}/${padEnd("rx-ring-ref", 5)} ${padEnd("BE-path", 30)}\n`;

/** "%-3d %-2d " MAC "%6d %5d %6d %5d/%-11d %-30s". */
export function networkRow(i: XlNicInfo): string {
  return `${padEnd(d(i.devid), 3)} ${padEnd(d(i.backendId), 2)} ${i.mac}${padStart(d(i.devid), 6)} ${padStart(d(i.state), 5)} ${padStart(d(i.evtch), 6)} ${padStart(d(i.rrefTx), 5)}/${padEnd(d(i.rrefRx), 11)} ${padEnd(i.backend, 30)}\n`;
}
