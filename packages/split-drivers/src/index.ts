// @hyperlab/split-drivers: Xen's split drivers on the guest kernel.

// the guest's control drivers (drivers/xen/manage.c, balloon.c)
export { INVALID_P2M_ENTRY, type XenBalloon, type XenBalloonOptions, xenBalloon } from "./balloon";
// block (blkfront and blkback over io/blkif.h)
export { BlkBack, type BlkbackMode, type BlkbackOptions, imageSectors } from "./blk/back";
export {
  BLKBACK_LRU_PERCENT_CLEAN,
  BLKBACK_MAX_INDIRECT_SEGMENTS,
  BLKBACK_MAX_PERSISTENT_GRANTS,
  BLKFRONT_MAX_INDIRECT_SEGMENTS,
  BLKIF_ENTRY_BYTES,
  BLKIF_RESPONSE_BYTES,
  BLKIF_SECTORS_PER_PAGE,
  BLKIF_SEGS_PER_INDIRECT_FRAME,
  type BlkCounters,
  BlkError,
  type BlkErrorCode,
  BlkifRequest,
  type BlkifResponse,
  blkCounters,
  decodeRequest,
  decodeResponse,
  perRequest,
  readSegment,
  segmentOffset,
  writeDiscardRequest,
  writeIndirectRequest,
  writeResponse,
  writeRwRequest,
  writeSegment,
} from "./blk/blkif";
export { BlkFront, type BlkfrontOptions } from "./blk/front";
export { BlkfrontDisk, type BlkfrontFeatures, type BlkReadResult } from "./blk/front-disk";
// consoles (hvc_xen and xenconsoled)
export { XenconsBack, XenconsStream } from "./console/back";
export { XenconsFrontConsole, XenconsFrontDriver, xenconsConsole0 } from "./console/front";
export type { XenconsErrorCode } from "./console/xencons";
export {
  MASK_XENCONS_IDX,
  XENCONS_IN_BYTES,
  XENCONS_INTERFACE_BYTES,
  XENCONS_OUT_BYTES,
  XenconsError,
  XenconsInterface,
} from "./console/xencons";
export { type XenManage, type XenManageOptions, xenManage } from "./manage";
// network (xen-netfront, xen-netback, dom0's bridge)
export { NetbackDriver, type NetbackOptions } from "./net/back";
export { NETBACK_RX_BATCH } from "./net/back-rx";
export { NETBACK_TX_BUDGET } from "./net/back-tx";
export {
  NETBACK_TX_STAGE_PAGES,
  type NetbackCounters,
  type NetbackShared,
  NetbackVif,
} from "./net/back-vif";
export { VifBridge, type VifBridgeOptions, type VifBridgePort } from "./net/bridge";
export {
  type NetfrontCounters,
  NetfrontDevice,
  type NetfrontHost,
  type NetfrontOptions,
  type NetfrontReceiver,
  type NetfrontSendOptions,
} from "./net/front";
export { NetfrontDriver } from "./net/front-xenbus";
export {
  ETH_HLEN,
  FATAL_SKB_SLOTS_DEFAULT,
  formatMac,
  NET_RX_RING_SIZE,
  NET_TX_RING_SIZE,
  NETIF_MAX_FRAME,
  NetError,
  type NetErrorCode,
  type NetMeta,
  netifSlotsFor,
  netMeta,
  parseMac,
  XEN_NETBK_LEGACY_SLOTS_MAX,
  XEN_PAGE_SIZE,
} from "./net/netif";
export type { RingErrorCode } from "./ring";
export {
  BackRing,
  FrontRing,
  RING_ENTRY_BYTES,
  RING_HEADER_BYTES,
  RING_MAX_ORDER,
  RING_PAGE_BYTES,
  RingError,
  ringSize,
  ringSizeFor,
  roundDownPow2,
  SharedRing,
} from "./ring";
// shared rings (io/ring.h)
export type { ReplayField, ReplayView, RingViews } from "./ring-replay/fields";
export { RING_VIEWS } from "./ring-replay/fields";
export { ringLayout } from "./ring-replay/layout";
export type { ReplayResult } from "./ring-replay/replay";
export {
  escapeData,
  parseCNumber,
  REPLAY_MAX_LINE,
  REPLAY_MAX_TOKENS,
  ringReplay,
  unescapeData,
} from "./ring-replay/replay";
export {
  VirtioBlkFront,
  type VirtioBlkFrontCounts,
  type VirtioBlkFrontOptions,
} from "./virtio/blk";
// virtio (the KVM-style build's guest drivers: split virtqueues over virtio-mmio)
export { VirtioError, type VirtioErrorCode } from "./virtio/errors";
export { VirtioMmioDriver, type VirtioMmioDriverCounts } from "./virtio/mmio";
export {
  VIRTIO_NET_FRONT_MTU_FRAME,
  VirtioNetFront,
  type VirtioNetFrontCounts,
  type VirtioNetFrontOptions,
} from "./virtio/net";
export { type VirtqBuf, Virtqueue, type VirtqueueCounts } from "./virtio/virtqueue";
// xenbus device state machine (xenbus_probe*.c, xenbus_client.c)
export {
  XenbusBus,
  XenbusDevice,
  type XenbusDriver,
  type XenbusKernel,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
} from "./xenbus/device";
export {
  GnttabGuest,
  type MappedRing,
  xenbusMapRing,
  xenbusUnmapRing,
} from "./xenbus/gnttab";
// xenbus (the guest's xenstore connection and the device state machine)
export {
  XenbusComms,
  type XenbusCommsOptions,
  XenbusError,
  type XenbusErrorCode,
  type XenbusUpcalls,
} from "./xenbus/index";
export {
  isXenbusState,
  parseXenbusState,
  parseXenbusUint,
  xenbusStrstate,
} from "./xenbus/state";
