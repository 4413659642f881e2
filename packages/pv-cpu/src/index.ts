export { DOMAIN_LINE_MAX, XenConsole } from "./console";
export { checkDescriptor, GUEST_KERNEL_RPL } from "./descriptors";
export { PV_CPU_ERROR_CODES, type PvCpuErrorCode } from "./errors";
export { pvCpu, readConsoleLog } from "./plugin";
export {
  type PvCpuCounts,
  type PvCpuOptions,
  PvCpuService,
  XEN_CAPABILITIES,
  XEN_EXTRAVERSION,
  XEN_MAJOR,
  XEN_MINOR,
} from "./service";
export {
  PvVcpu,
  REG_CS,
  REG_R11,
  REG_RAX,
  REG_RCX,
  REG_RFLAGS,
  REG_RIP,
  REG_RSP,
  REG_SS,
} from "./vcpu-state";
