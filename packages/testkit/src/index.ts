export { InvariantError, TESTKIT_ERROR_CODES, type TestkitErrorCode } from "./errors";
export {
  assertGrantInvariants,
  checkGrantInvariants,
  type GrantCheckOptions,
  type GrantView,
  type GrantViewActive,
  type GrantViewMapping,
  grantInvariantOptions,
} from "./grants";
export { type DoubleMapping, GrantMappingDouble } from "./grants-double";
export {
  type ConformanceProcess,
  defineGuestConformance,
  type GuestBuildFactory,
  type GuestConformanceBuild,
  type GuestConformanceCase,
  GuestConformanceError,
  guestConformanceCases,
  runGuestConformance,
  type TestRunner,
} from "./guest-conformance";
export { assertFrameInvariants, checkFrameInvariants, type InvariantOptions } from "./invariants";
