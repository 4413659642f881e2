/*
 * The DMA API's vocabulary (Linux's include/linux/dma-direction.h and dma-mapping.h):
 * directions, the mapping-error value, what the API knows of a device, a scatterlist entry,
 * and dma_capable. Types and arithmetic only; the ops live in pv_ops.dma.
 *
 * Invariant: a bus address is a plain non-negative number, so DMA_MAPPING_ERROR (-1) is never
 * one; a device's masks are widths in bits (DMA_BIT_MASK(n) is written n).
 */
/** Linux's enum dma_data_direction. */
export const DMA_BIDIRECTIONAL = 0;
export const DMA_TO_DEVICE = 1;
export const DMA_FROM_DEVICE = 2;
export const DMA_NONE = 3;
export type DmaDirection = 0 | 1 | 2 | 3;
/** dma_mapping_error's value (Linux's DMA_MAPPING_ERROR is ~0; a bus address is never negative). */
export const DMA_MAPPING_ERROR = -1;

/** What the DMA API knows of a device (Linux's struct device DMA fields). */
export interface DmaDevice {
  readonly name: string;
  /** dev->dma_mask as a width: the device drives this many address bits (DMA_BIT_MASK(n)). */
  dmaMaskBits: number;
  /** dev->coherent_dma_mask, as a width. */
  coherentDmaMaskBits: number;
}

/** One scatterlist entry: kernel memory in, bus address out (struct scatterlist). */
export interface DmaSgEntry {
  pfn: number;
  offset: number;
  length: number;
  /** sg_dma_address after mapSg (DMA_MAPPING_ERROR before). */
  busAddr: number;
  /** sg_dma_len after mapSg. */
  busLength: number;
}

/** The lowest mask a device may set: ZONE_DMA's 24 bits, as dma_direct_supported demands. */
export const DMA_MIN_MASK_BITS = 24;

/** Whether [bus, bus + size) is reachable by a device driving `bits` address bits (dma_capable). */
export function dmaCapable(bits: number, bus: number, size: number): boolean {
  return bits >= 53 || bus + size <= 2 ** bits;
}
