/** The `grant-host-mapping` contract lives in @hyperlab/core; re-exported for older imports. */
export type { GrantHostMapping } from "@hyperlab/core";
export { GRANT_ERROR_CODES, type GrantErrorCode } from "./errors";
export { grantHostMapping, grantTable } from "./plugin";
export {
  type ActiveGrantInfo,
  type GrantMappingInfo,
  type GrantTableCounters,
  type GrantTableOptions,
  GrantTableService,
} from "./service";
export {
  GNTPIN_devr_inc,
  GNTPIN_devw_inc,
  GNTPIN_hstr_inc,
  GNTPIN_hstw_inc,
  GrantTable,
  INITIAL_NR_GRANT_FRAMES,
  MAPTRACK_PER_PAGE,
} from "./table";
export type {
  GnttabCopy,
  GnttabCopyPtr,
  GnttabGetStatusFrames,
  GnttabGetVersion,
  GnttabMapGrantRef,
  GnttabQuerySize,
  GnttabSetupTable,
  GnttabSetVersion,
  GnttabUnmapAndReplace,
  GnttabUnmapGrantRef,
  GrantTableOpArgs,
} from "./types";
