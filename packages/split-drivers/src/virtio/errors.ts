/*
 * Typed error codes of the virtio drivers: mistakes of the code that sets a guest's devices up
 * (a kernel that is not on native pv_ops, a queue size the device refuses). Nothing a device
 * (the host's device model) writes reaches here: a misbehaving device breaks its queue.
 */

export type VirtioErrorCode = "VIRTIO_BAD_KERNEL" | "VIRTIO_BAD_OPTION" | "VIRTIO_NO_MEMORY";

/** A virtio driver setup mistake: `code` says which, the message what to do. */
export class VirtioError extends Error {
  override readonly name = "VirtioError";
  readonly code: VirtioErrorCode;

  constructor(code: VirtioErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export function virtioError(code: VirtioErrorCode, message: string): VirtioError {
  return new VirtioError(code, message);
}
