export type { NativeMmuError, NativeMmuErrorCode } from "./errors";
export { NativeMmu, type NativeMmuCounts, type NativeMmuOptions } from "./native-mmu";
export { nativeMmu } from "./plugin";
