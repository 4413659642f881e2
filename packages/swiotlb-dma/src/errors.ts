/*
 * The swiotlb-dma package's error codes. A user's mistake (bad options, a driver passing a
 * direction that is none of the three, installing the ops on a kernel that is not Xen PV)
 * throws a HyperlabError with one of these codes; what a device or Xen does never throws
 * (DMA_MAPPING_ERROR, null, or -errno instead).
 */
import { HyperlabError } from "@hyperlab/core";

/** Every code a HyperlabError thrown by @hyperlab/swiotlb-dma carries. */
export type SwiotlbErrorCode =
  | "SWIOTLB_BAD_OPTIONS"
  | "SWIOTLB_NOT_XEN_PV"
  | "SWIOTLB_NOT_INSTALLED"
  | "SWIOTLB_BAD_DIRECTION";

/** A user mistake reported by swiotlb-dma. */
export type SwiotlbError = HyperlabError<SwiotlbErrorCode>;

export function swiotlbError(code: SwiotlbErrorCode, message: string): SwiotlbError {
  return new HyperlabError<SwiotlbErrorCode>(code, message);
}
