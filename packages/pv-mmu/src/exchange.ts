/*
 * Pieces of XENMEM_exchange that follow Xen 4.17's page allocator rather than the obvious
 * reading of XENMEMF_address_bits.
 *
 * Invariant: an exchange's output frames lie below the limit this returns; a width of 1 to
 * 12 bits is never "no limit".
 */

/** The lowest zone Xen's allocator can be asked for: zone 1, frames 0 and 1 (below 8 KiB). */
const LOWEST_ZONE_BITS = 13;

/**
 * The machine address the output of an exchange must lie below, from the out reservation's
 * mem_flags, or undefined for no limit. Xen's alloc_domheap_pages turns a width into the
 * highest zone it may use (bits_to_zone: a width of 12 bits or less is zone 1, as 13 is), and
 * 0 means the full width.
 */
export function exchangeAddressLimit(memFlags: number): number | undefined {
  const bits = memFlags & 0xff;
  if (bits === 0 || bits >= 64) return undefined;
  return 2 ** Math.max(bits, LOWEST_ZONE_BITS);
}
