/*
 * Typed errors for mistakes made by the code that drives the machine (the hypervisor model,
 * a device model, a test). Guest-controlled input never reaches these: the machine answers a
 * guest-caused fault with a status (DMA) or a documented value (unclaimed MMIO), and the
 * hypervisor checks guest-supplied frame numbers with `ram.validMfn` before touching RAM.
 */

/** Every code a MachineError can carry. */
export type MachineErrorCode =
  | "RAM_BAD_SIZE"
  | "RAM_OUT_OF_RANGE"
  | "RAM_BAD_LENGTH"
  | "RAM_BAD_HOOK"
  | "FRAME_BAD_RANGE"
  | "FRAME_BAD_ORDER"
  | "FRAME_NOT_ALLOCATED"
  | "FRAME_RESERVED"
  | "FRAME_BUSY"
  | "CPU_BAD_COUNT"
  | "IRQ_BAD_LINE"
  | "IRQ_BAD_TRIGGER"
  | "IRQ_BAD_COUNT"
  | "IRQ_STORM"
  | "MMIO_BAD_REGION"
  | "MMIO_OVERLAP"
  | "MMIO_BAD_WIDTH"
  | "MMIO_NOT_REGISTERED"
  | "DMA_BAD_BUFFER"
  | "DMA_BAD_MASK"
  | "APIC_BAD_CONFIG"
  | "PCI_BAD_CONFIG"
  | "PCI_SLOT_BUSY"
  | "PCI_NO_SPACE"
  | "DEVICE_BAD_CONFIG"
  | "DISK_IMAGE"
  | "NET_BAD_CONFIG"
  | "PCAP_IO"
  | "CLOCK_BAD_TIME"
  | "CLOCK_PAST"
  | "CLOCK_REENTRANT"
  | "CLOCK_FULL"
  | "CLOCK_BAD_CALLBACK"
  | "PRNG_BAD_SEED"
  | "PRNG_BAD_BOUND"
  | "MACHINE_BAD_CONFIG";

/** An API misuse of @hyperlab/machine: `code` says which, the message says what to do. */
export class MachineError extends Error {
  readonly code: MachineErrorCode;

  constructor(code: MachineErrorCode, message: string) {
    super(message);
    this.name = "MachineError";
    this.code = code;
  }
}

/** `0x`-prefixed hex for messages. */
export function hex(n: number): string {
  return Number.isFinite(n) && n >= 0 ? `0x${n.toString(16)}` : String(n);
}
