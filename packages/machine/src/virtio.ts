/*
 * The virtio 1.x interface as a driver and a device share it (OASIS virtio v1.2, §2.7 "Split
 * Virtqueues", §4.2 "Virtio Over MMIO", §5.1 network device, §5.2 block device): numbers and
 * layouts only, no behaviour. The device side lives in @hyperlab/kvm-io (the host's device
 * model), the driver side in @hyperlab/split-drivers (the guest's drivers); both read these.
 *
 * Invariant: every offset and size here is the spec's, little-endian; `vringNeedEvent` is the
 * spec's vring_need_event on 16-bit free-running indices.
 */

// §2.7.5 The Virtqueue Descriptor Table: struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }
export const VIRTQ_DESC_SIZE = 16;
export const VIRTQ_DESC_ADDR = 0;
export const VIRTQ_DESC_LEN = 8;
export const VIRTQ_DESC_FLAGS = 12;
export const VIRTQ_DESC_NEXT = 14;
/** The buffer continues via the next field. */
export const VIRTQ_DESC_F_NEXT = 1;
/** The buffer is device write-only (otherwise device read-only). */
export const VIRTQ_DESC_F_WRITE = 2;
/** The buffer holds a table of descriptors (§2.7.5.3). */
export const VIRTQ_DESC_F_INDIRECT = 4;

// §2.7.6 The Virtqueue Available Ring: le16 flags; le16 idx; le16 ring[N]; le16 used_event;
export const VIRTQ_AVAIL_FLAGS = 0;
export const VIRTQ_AVAIL_IDX = 2;
export const VIRTQ_AVAIL_RING = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

// §2.7.8 The Virtqueue Used Ring: le16 flags; le16 idx; struct virtq_used_elem { le32 id; le32 len; } ring[N]; le16 avail_event;
export const VIRTQ_USED_FLAGS = 0;
export const VIRTQ_USED_IDX = 2;
export const VIRTQ_USED_RING = 4;
export const VIRTQ_USED_ELEM_SIZE = 8;
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** Largest queue size of a split virtqueue (§2.7: "Queue Size ... maximum 32768"). */
export const VIRTQ_MAX_SIZE = 32768;

/** Bytes of a descriptor table of `num` entries (alignment 16). */
export function virtqDescBytes(num: number): number {
  return VIRTQ_DESC_SIZE * num;
}
/** Bytes of an available ring of `num` entries, used_event included (alignment 2). */
export function virtqAvailBytes(num: number): number {
  return 6 + 2 * num;
}
/** Bytes of a used ring of `num` entries, avail_event included (alignment 4). */
export function virtqUsedBytes(num: number): number {
  return 6 + VIRTQ_USED_ELEM_SIZE * num;
}
/** Offset of used_event in the available ring (`ring[num]`). */
export function virtqUsedEventOffset(num: number): number {
  return VIRTQ_AVAIL_RING + 2 * num;
}
/** Offset of avail_event in the used ring (after `ring[num]`). */
export function virtqAvailEventOffset(num: number): number {
  return VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * num;
}

/**
 * §2.7.7.2 / §2.7.10: whether the other side asked to be told now that the index moved from
 * `oldIdx` to `newIdx`, given its event index: (u16)(new - event - 1) < (u16)(new - old).
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

// §6 Reserved feature bits.
export const VIRTIO_F_INDIRECT_DESC = 28;
export const VIRTIO_F_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;

// §2.1 Device Status Field.
export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
export const VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;
export const VIRTIO_CONFIG_S_FAILED = 0x80;

// §5 Device IDs.
export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;

// §4.2.2 MMIO Device Register Layout (version 2, "modern").
export const VIRTIO_MMIO_MAGIC_VALUE = 0x000;
export const VIRTIO_MMIO_VERSION = 0x004;
export const VIRTIO_MMIO_DEVICE_ID = 0x008;
export const VIRTIO_MMIO_VENDOR_ID = 0x00c;
export const VIRTIO_MMIO_DEVICE_FEATURES = 0x010;
export const VIRTIO_MMIO_DEVICE_FEATURES_SEL = 0x014;
export const VIRTIO_MMIO_DRIVER_FEATURES = 0x020;
export const VIRTIO_MMIO_DRIVER_FEATURES_SEL = 0x024;
export const VIRTIO_MMIO_QUEUE_SEL = 0x030;
export const VIRTIO_MMIO_QUEUE_NUM_MAX = 0x034;
export const VIRTIO_MMIO_QUEUE_NUM = 0x038;
export const VIRTIO_MMIO_QUEUE_READY = 0x044;
export const VIRTIO_MMIO_QUEUE_NOTIFY = 0x050;
export const VIRTIO_MMIO_INTERRUPT_STATUS = 0x060;
export const VIRTIO_MMIO_INTERRUPT_ACK = 0x064;
export const VIRTIO_MMIO_STATUS = 0x070;
export const VIRTIO_MMIO_QUEUE_DESC_LOW = 0x080;
export const VIRTIO_MMIO_QUEUE_DESC_HIGH = 0x084;
export const VIRTIO_MMIO_QUEUE_AVAIL_LOW = 0x090;
export const VIRTIO_MMIO_QUEUE_AVAIL_HIGH = 0x094;
export const VIRTIO_MMIO_QUEUE_USED_LOW = 0x0a0;
export const VIRTIO_MMIO_QUEUE_USED_HIGH = 0x0a4;
export const VIRTIO_MMIO_CONFIG_GENERATION = 0x0fc;
export const VIRTIO_MMIO_CONFIG = 0x100;
/** "virt" little-endian. */
export const VIRTIO_MMIO_MAGIC = 0x74726976;
export const VIRTIO_MMIO_INT_VRING = 1;
export const VIRTIO_MMIO_INT_CONFIG = 2;
/** Bytes of one virtio-mmio register window (a page, as Linux's device-tree bindings give). */
export const VIRTIO_MMIO_SIZE = 0x1000;

// §5.2 Block device.
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_FLUSH = 9;
/** Config: le64 capacity (512-byte sectors) at 0, le32 seg_max at 12. */
export const VIRTIO_BLK_CFG_CAPACITY = 0;
export const VIRTIO_BLK_CFG_SEG_MAX = 12;
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;
/** struct virtio_blk_req's header: le32 type; le32 reserved; le64 sector. */
export const VIRTIO_BLK_OUTHDR_SIZE = 16;
export const VIRTIO_BLK_ID_BYTES = 20;

// §5.1 Network device.
export const VIRTIO_NET_F_MAC = 5;
/** Config: u8 mac[6] at 0. */
export const VIRTIO_NET_CFG_MAC = 0;
/** struct virtio_net_hdr (with num_buffers, as VIRTIO_F_VERSION_1 requires): 12 bytes. */
export const VIRTIO_NET_HDR_SIZE = 12;
export const VIRTIO_NET_RX_QUEUE = 0;
export const VIRTIO_NET_TX_QUEUE = 1;
