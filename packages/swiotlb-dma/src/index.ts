export {
  type ContigCounts,
  INVALID_P2M_ENTRY,
  MAX_CONTIG_ORDER,
  xenCreateContiguousRegion,
  xenDestroyContiguousRegion,
} from "./contig";
export { type SwiotlbError, type SwiotlbErrorCode, swiotlbError } from "./errors";
export { swiotlbDma, swiotlbOf } from "./plugin";
export {
  IO_TLB_SEGMENT_BYTES,
  IO_TLB_SEGMENT_ORDER,
  IO_TLB_SEGMENT_PAGES,
  IO_TLB_SEGSIZE,
  IO_TLB_SHIFT,
  IO_TLB_SIZE,
  SwiotlbPool,
} from "./pool";
export { MAX_DMA_BITS, type SwiotlbCounts, type SwiotlbOptions, SwiotlbXen } from "./swiotlb-xen";
