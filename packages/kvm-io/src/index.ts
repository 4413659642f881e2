export type { KvmIoError, KvmIoErrorCode } from "./errors";
export { GuestMemory } from "./guest-memory";
export { KVM_IOAPIC_NUM_PINS, VirtualIoApic } from "./irqchip";
export { KvmIo, kvmIo } from "./plugin";
export {
  VIRTIO_BLK_MAX_BYTES,
  VIRTIO_BLK_SEG_MAX,
  VirtioBlk,
  type VirtioBlkCounts,
  type VirtioBlkOptions,
} from "./virtio/blk";
export {
  VIRTIO_MMIO_VENDOR_HYPERLAB,
  type VirtioBackend,
  VirtioMmio,
  type VirtioMmioCounts,
  type VirtioMmioDevice,
} from "./virtio/mmio";
export {
  VIRTIO_NET_MAX_FRAME,
  VirtioNet,
  type VirtioNetCounts,
  type VirtioNetOptions,
} from "./virtio/net";
export { VIRTQUEUE_MAX_SEGS, VirtQueue, VQ_BROKEN, VQ_EMPTY } from "./virtio/queue";
export { VIRTIO_MMIO_FIRST_GSI, VmIo, type VmIoCounts, type VmIoSnapshot } from "./vm";
