/*
 * `xl sched-credit` and `xl sched-credit2` output lines as tools/xl/xl_sched.c prints them:
 * the pool line, the "%-33s %4s %6s %4s" header and "%-33s %4d %6d %4d" rows.
 *
 * Invariant: pure.
 */
import { int32, padEnd, padStart } from "../cfmt";
import {
  LIBXL_SCHEDULER,
  type LibxlScheduler,
  type XlSchedCredit2Params,
  type XlSchedCreditParams,
} from "../types";

/** libxl_scheduler_to_string. */
export function schedulerName(s: LibxlScheduler): string {
  switch (s) {
    case LIBXL_SCHEDULER.SEDF:
      return "sedf";
    case LIBXL_SCHEDULER.CREDIT:
      return "credit";
    case LIBXL_SCHEDULER.CREDIT2:
      return "credit2";
    case LIBXL_SCHEDULER.ARINC653:
      return "arinc653";
    case LIBXL_SCHEDULER.RTDS:
      return "rtds";
    case LIBXL_SCHEDULER.NULL:
      return "null";
    default:
      return "unknown";
  }
}

/** The domain table header of both verbs. */
export const SCHED_HEADER = `${padEnd("Name", 33)} ${padStart("ID", 4)} ${padStart("Weight", 6)} ${padStart("Cap", 4)}\n`;

/** One domain row: name, domid, weight, cap. */
export function schedRow(
  name: string | undefined,
  domid: number,
  weight: number,
  cap: number,
): string {
  return `${padEnd(name ?? "(null)", 33)} ${padStart(String(int32(domid)), 4)} ${padStart(String(int32(weight)), 6)} ${padStart(String(int32(cap)), 4)}\n`;
}

/** credit's pool line; `params` undefined when they could not be read. */
export function creditPoolLine(
  pool: string | undefined,
  params: XlSchedCreditParams | undefined,
): string {
  const p = pool ?? "(null)";
  if (params === undefined) return `Cpupool ${p}: [sched params unavailable]\n`;
  return `Cpupool ${p}: tslice=${int32(params.tsliceMs)}ms ratelimit=${int32(params.ratelimitUs)}us migration-delay=${int32(params.vcpuMigrDelayUs)}us\n`;
}

/** credit2's pool line. */
export function credit2PoolLine(
  pool: string | undefined,
  params: XlSchedCredit2Params | undefined,
): string {
  const p = pool ?? "(null)";
  if (params === undefined) return `Cpupool ${p}: [sched params unavailable]\n`;
  return `Cpupool ${p}: ratelimit=${int32(params.ratelimitUs)}us\n`;
}
