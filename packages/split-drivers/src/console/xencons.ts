/*
 * The PV console page of Xen 4.17's public/io/console.h (struct xencons_interface) and the
 * copy loops both ends run over it.
 *
 * Invariant: the state lives only in the page: in[1024] at 0 (back end to guest), out[2048]
 * at 1024 (guest to back end), then the u32 indices in_cons, in_prod, out_cons, out_prod at
 * 3072..3087. Indices run free and wrap at 2^32; byte i of a ring is at
 * MASK_XENCONS_IDX(i) = i & (sizeof(ring) - 1). A producer never lets (prod - cons), in u32
 * arithmetic, reach sizeof(ring); it publishes prod only after copying, a consumer publishes
 * cons only after reading. The loops allocate nothing.
 */
import { HyperlabError } from "@hyperlab/core";

export type XenconsErrorCode = "XENCONS_BAD_PAGE";

/** A caller's mistake with a console page. */
export class XenconsError extends HyperlabError<XenconsErrorCode> {}

/** sizeof(struct xencons_interface). */
export const XENCONS_INTERFACE_BYTES = 3088;
/** sizeof(intf->in): the back end's ring towards the guest. */
export const XENCONS_IN_BYTES = 1024;
/** sizeof(intf->out): the guest's ring towards the back end. */
export const XENCONS_OUT_BYTES = 2048;
const IN_OFF = 0;
const OUT_OFF = 1024;
// Word indexes of in_cons, in_prod, out_cons, out_prod (bytes 3072, 3076, 3080, 3084).
const IN_CONS = 768;
const IN_PROD = 769;
const OUT_CONS = 770;
const OUT_PROD = 771;

/** MASK_XENCONS_IDX(idx, ring): the byte of a `ringBytes`-long console ring that index `idx` names. */
export function MASK_XENCONS_IDX(idx: number, ringBytes: number): number {
  return (idx & (ringBytes - 1)) >>> 0;
}

/** One console page, read and written in place (`bytes` may be the guest's whole 4 KiB frame). */
export class XenconsInterface {
  readonly bytes: Uint8Array;
  private readonly words: Uint32Array;

  constructor(bytes: Uint8Array) {
    if (bytes.length < XENCONS_INTERFACE_BYTES || bytes.byteOffset % 4 !== 0) {
      throw new XenconsError(
        "XENCONS_BAD_PAGE",
        `a console page needs a 4-byte aligned view of at least ${XENCONS_INTERFACE_BYTES} bytes, got ` +
          `${bytes.length} at offset ${bytes.byteOffset}; pass the console frame, e.g. ram.frameBytes(mfn)`,
      );
    }
    this.bytes = bytes;
    this.words = new Uint32Array(bytes.buffer, bytes.byteOffset, XENCONS_INTERFACE_BYTES >>> 2);
  }

  /** A zeroed console page in a fresh buffer. */
  static create(): XenconsInterface {
    return new XenconsInterface(new Uint8Array(XENCONS_INTERFACE_BYTES));
  }

  get inCons(): number {
    return this.words[IN_CONS]!;
  }
  set inCons(v: number) {
    this.words[IN_CONS] = v;
  }
  get inProd(): number {
    return this.words[IN_PROD]!;
  }
  set inProd(v: number) {
    this.words[IN_PROD] = v;
  }
  get outCons(): number {
    return this.words[OUT_CONS]!;
  }
  set outCons(v: number) {
    this.words[OUT_CONS] = v;
  }
  get outProd(): number {
    return this.words[OUT_PROD]!;
  }
  set outProd(v: number) {
    this.words[OUT_PROD] = v;
  }

  /** Zero the whole interface. */
  clear(): void {
    this.bytes.fill(0, 0, XENCONS_INTERFACE_BYTES);
  }

  /** The guest's write loop (Linux hvc_xen's __write_console): bytes of data[from, to) into out. */
  writeOut(data: Uint8Array, from = 0, to = data.length): number {
    return this.produce(OUT_OFF, XENCONS_OUT_BYTES, OUT_CONS, OUT_PROD, data, from, to);
  }

  /** The back end's write loop (xenconsoled's buffer_append towards the guest): into in. */
  writeIn(data: Uint8Array, from = 0, to = data.length): number {
    return this.produce(IN_OFF, XENCONS_IN_BYTES, IN_CONS, IN_PROD, data, from, to);
  }

  /** The back end's read loop over out: up to `max` bytes into dst from dstOff; returns the count. */
  readOut(dst: Uint8Array, dstOff = 0, max = dst.length - dstOff): number {
    return this.consume(OUT_OFF, XENCONS_OUT_BYTES, OUT_CONS, OUT_PROD, dst, dstOff, max);
  }

  /** The guest's read loop over in (hvc_xen's domU_read_console). */
  readIn(dst: Uint8Array, dstOff = 0, max = dst.length - dstOff): number {
    return this.consume(IN_OFF, XENCONS_IN_BYTES, IN_CONS, IN_PROD, dst, dstOff, max);
  }

  /** Bytes waiting in out (out_prod - out_cons, u32). */
  outPending(): number {
    return (this.words[OUT_PROD]! - this.words[OUT_CONS]!) >>> 0;
  }

  /** Bytes waiting in in (in_prod - in_cons, u32). */
  inPending(): number {
    return (this.words[IN_PROD]! - this.words[IN_CONS]!) >>> 0;
  }

  private produce(
    base: number,
    ringBytes: number,
    consW: number,
    prodW: number,
    data: Uint8Array,
    from: number,
    to: number,
  ): number {
    const cons = this.words[consW]!;
    let prod = this.words[prodW]!;
    const b = this.bytes;
    const mask = ringBytes - 1;
    let sent = from;
    while (sent < to && (prod - cons) >>> 0 < ringBytes) {
      b[base + (prod & mask)] = data[sent++]!;
      prod = (prod + 1) >>> 0;
    }
    this.words[prodW] = prod;
    return sent - from;
  }

  private consume(
    base: number,
    ringBytes: number,
    consW: number,
    prodW: number,
    dst: Uint8Array,
    dstOff: number,
    max: number,
  ): number {
    let cons = this.words[consW]!;
    const prod = this.words[prodW]!;
    const b = this.bytes;
    const mask = ringBytes - 1;
    let n = 0;
    while (n < max && cons !== prod) {
      dst[dstOff + n++] = b[base + (cons & mask)]!;
      cons = (cons + 1) >>> 0;
    }
    this.words[consW] = cons;
    return n;
  }
}
