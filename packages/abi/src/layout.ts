/*
 * The shape every struct layout in this package shares. Data only.
 *
 * Invariant: each layout mirrors one C struct of Xen 4.17's public headers on the ABI it
 * names (x86_64 unless the name ends in _x86_32); `offset` and `size` are in bytes and
 * equal C's offsetof and sizeof, which test/abi-vs-headers.test.ts checks with gcc.
 */

/** One member of a C struct. */
export interface FieldLayout {
  /** Byte offset from the start of the struct (C's offsetof). */
  readonly offset: number;
  /** Size in bytes of one element (C's sizeof of the member, or of one array element). */
  readonly size: number;
  /** Number of elements when the member is an array; absent for a scalar. */
  readonly count?: number;
}

/**
 * A C struct as data. Fields of nested structs use dotted names ("time.version"); a nested
 * struct may appear both whole and by its members.
 */
export interface StructLayout {
  /** The C type it mirrors, e.g. "struct vcpu_info_x86_64". */
  readonly cName: string;
  /** C's sizeof of the whole struct, padding included. */
  readonly sizeof: number;
  readonly fields: Readonly<Record<string, FieldLayout>>;
}
