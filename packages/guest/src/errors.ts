/*
 * The guest package's error codes. A user's mistake (a bad boot option, driving a dead
 * process, a bad pv_ops composition) throws a HyperlabError whose code is one of these; what a
 * guest program or the hypervisor does never throws (signals and -errno instead).
 */
import { HyperlabError } from "@hyperlab/core";

/** Every code a HyperlabError thrown by @hyperlab/guest carries. */
export type GuestErrorCode =
  // boot and configuration
  | "GUEST_BAD_SIZE"
  | "GUEST_BAD_FRAMES"
  | "GUEST_BOOT_TWICE"
  | "GUEST_BOOT_NO_MEMORY"
  | "GUEST_BAD_START_INFO"
  | "GUEST_BOOT_HYPERCALL"
  | "GUEST_BAD_THP"
  | "GUEST_NOT_BOOTED"
  | "GUEST_NOT_XEN_PV"
  | "GUEST_BAD_PORT"
  | "GUEST_UPCALL_TWICE"
  | "GUEST_BAD_CPU"
  // suspend and resume (a save file's kernel record that does not fit its domain)
  | "GUEST_BAD_RECORD"
  // processes
  | "GUEST_NO_MEMORY"
  | "GUEST_SPAWN_FAILED"
  | "PROCESS_DEAD"
  | "PROCESS_BAD_BULK"
  // pv_ops composition (the guest's own checks; resolvePlugins adds core's codes)
  | "PLUGIN_INVALID"
  | "SLOT_UNDECLARED_PROVIDE"
  | "PV_OPS_GROUP_NO_DEFAULT"
  | "PV_OPS_GROUP_TWICE"
  // DMA API misuse (a driver bug, as Linux's DMA debugging reports it)
  | "DMA_BAD_DIRECTION"
  | "DMA_BAD_MASK"
  // guest-side event channels (a driver's misuse of its own irq table)
  | "EVTCHN_GUEST_OPTIONS"
  | "EVTCHN_GUEST_NOT_INIT"
  | "EVTCHN_GUEST_HANDLER"
  | "EVTCHN_GUEST_CPU"
  | "EVTCHN_GUEST_NO_IPI"
  | "EVTCHN_GUEST_NO_IRQ";

/** A user mistake reported by the guest package. */
export type GuestError = HyperlabError<GuestErrorCode>;

/** Makes a guest error (typed code, message that says what to do). */
export function guestError(code: GuestErrorCode, message: string): GuestError {
  return new HyperlabError<GuestErrorCode>(code, message);
}
