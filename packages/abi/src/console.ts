/*
 * Xen 4.17 public/io/console.h: the PV console page. Its rings are not ring.h rings: each
 * is a byte array whose length is a power of two, indexed by free-running 32-bit counters
 * masked with (count - 1) (the header's MASK_XENCONS_IDX).
 *
 * Invariant: every value equals the header's.
 */
import type { StructLayout } from "./layout";

/** The console ring page: in (to the guest) and out (from it) with their indexes. */
export const xencons_interface: StructLayout = {
  cName: "struct xencons_interface",
  sizeof: 3088,
  fields: {
    in: { offset: 0, size: 1, count: 1024 },
    out: { offset: 1024, size: 1, count: 2048 },
    in_cons: { offset: 3072, size: 4 },
    in_prod: { offset: 3076, size: 4 },
    out_cons: { offset: 3080, size: 4 },
    out_prod: { offset: 3084, size: 4 },
  },
};
