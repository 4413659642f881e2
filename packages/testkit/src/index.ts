export { assertFrameInvariants, checkFrameInvariants, type InvariantOptions } from "./invariants";
