/*
 * Byte helpers for xs_wire.h messages: the 16-byte little-endian header, NUL-separated
 * string payloads, and the errno <-> name table.
 *
 * Invariant: everything here is total on guest bytes (no throw on any input); paths and
 * tokens are Latin-1 strings (one char per byte), values stay bytes.
 */
import { XENSTORE_PAYLOAD_MAX, xsd_errors } from "@hyperlab/abi";

export const XSD_SOCKMSG_SIZE = 16;

function errnum(name: string): number {
  const e = xsd_errors.find((x) => x.errstring === name);
  if (e === undefined) throw new Error(`xsd_errors has no ${name}: @hyperlab/abi is out of date`);
  return e.errnum;
}

export const EINVAL = errnum("EINVAL");
export const EACCES = errnum("EACCES");
export const EEXIST = errnum("EEXIST");
export const ENOENT = errnum("ENOENT");
export const ENOMEM = errnum("ENOMEM");
export const ENOSPC = errnum("ENOSPC");
export const EIO = errnum("EIO");
export const ENOSYS = errnum("ENOSYS");
export const EBUSY = errnum("EBUSY");
export const EAGAIN = errnum("EAGAIN");
export const E2BIG = errnum("E2BIG");
export const EPERM = errnum("EPERM");

const errorPayloads = new Map<number, Uint8Array>();
for (const e of xsd_errors) errorPayloads.set(e.errnum, latin1z(e.errstring));

/** The ERROR payload for an errno ("ENOENT\0"); unknown numbers map to the table's first (EINVAL). */
export function errorPayload(err: number): Uint8Array {
  return errorPayloads.get(err) ?? errorPayloads.get(xsd_errors[0].errnum)!;
}

/** The errno named by an ERROR payload, or undefined. */
export function errnoOfName(name: string): number | undefined {
  return xsd_errors.find((x) => x.errstring === name)?.errnum;
}

/** Latin-1 bytes of a string (chars above 0xff are truncated to their low byte). */
export function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** Latin-1 bytes of a string followed by a NUL. */
export function latin1z(s: string): Uint8Array {
  const out = new Uint8Array(s.length + 1);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/**
 * Node's native Latin-1 decoder (Buffer.prototype.latin1Slice: one char per byte, 0x80-0xff
 * included, unlike TextDecoder's "latin1", which is windows-1252). It takes any Uint8Array.
 */
const nativeLatin1 = (globalThis as { Buffer?: { prototype: { latin1Slice?: unknown } } }).Buffer
  ?.prototype.latin1Slice as ((this: Uint8Array, start: number, end: number) => string) | undefined;

/** The string of bytes [start, end). */
export function decodeLatin1(b: Uint8Array, start = 0, end = b.length): string {
  if (nativeLatin1 !== undefined) return nativeLatin1.call(b, start, end);
  let s = "";
  for (let i = start; i < end; i += 4096) {
    s += String.fromCharCode.apply(
      null,
      b.subarray(i, Math.min(end, i + 4096)) as unknown as number[],
    );
  }
  return s;
}

/** Concatenation of NUL-terminated strings. */
export function joinz(parts: readonly string[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length + 1;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) out[o++] = p.charCodeAt(i) & 0xff;
    out[o++] = 0;
  }
  return out;
}

/** Number of NULs in the payload (C's xs_count_strings / get_strings count). */
export function countStrings(p: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < p.length; i++) if (p[i] === 0) n++;
  return n;
}

/**
 * The first `max` NUL-terminated strings of a payload (bytes after the last NUL are
 * ignored, as C's get_strings does).
 */
export function getStrings(p: Uint8Array, max: number): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < p.length && out.length < max; i++) {
    if (p[i] === 0) {
      out.push(decodeLatin1(p, start, i));
      start = i + 1;
    }
  }
  return out;
}

/** C's onearg: the payload must hold exactly one NUL, at its end. */
export function onearg(p: Uint8Array): string | null {
  const n = p.length;
  if (n === 0 || p[n - 1] !== 0) return null;
  for (let i = 0; i < n - 1; i++) if (p[i] === 0) return null;
  return decodeLatin1(p, 0, n - 1);
}

/** C's atoi: optional blanks, sign, digits; stops at the first other char; wraps to int32. */
export function atoi(s: string): number {
  let i = 0;
  while (i < s.length && " \t\n\v\f\r".includes(s[i])) i++;
  let neg = false;
  if (s[i] === "+" || s[i] === "-") {
    neg = s[i] === "-";
    i++;
  }
  let v = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    v = (v * 10 + c) % 0x1_0000_0000;
    i++;
  }
  return (neg ? -v : v) | 0;
}

/** Store `v` as a little-endian u32 at `o` (no DataView: that would move a small array off-heap). */
function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

function getU32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** A whole message: header then payload. */
export function encodeMessage(
  type: number,
  reqId: number,
  txId: number,
  payload: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(XSD_SOCKMSG_SIZE + payload.length);
  putU32(out, 0, type);
  putU32(out, 4, reqId);
  putU32(out, 8, txId);
  putU32(out, 12, payload.length);
  out.set(payload, XSD_SOCKMSG_SIZE);
  return out;
}

export interface XsMessage {
  type: number;
  reqId: number;
  txId: number;
  payload: Uint8Array;
}

/**
 * Incremental framing: bytes go in as they arrive (split or batched), whole messages come
 * out. A header announcing more than XENSTORE_PAYLOAD_MAX makes `push` return false and
 * the reader unusable (the caller drops the connection).
 */
export class MessageReader {
  private readonly hdr = new Uint8Array(XSD_SOCKMSG_SIZE);
  private hdrUsed = 0;
  private body: Uint8Array | null = null;
  private bodyUsed = 0;
  private type = 0;
  private reqId = 0;
  private txId = 0;
  bad = false;

  /** Bytes still needed to complete the current header or payload. */
  get needed(): number {
    return this.body === null ? XSD_SOCKMSG_SIZE - this.hdrUsed : this.body.length - this.bodyUsed;
  }

  /** Bytes of a message received so far (0 between messages). */
  get partial(): number {
    return this.body === null ? this.hdrUsed : XSD_SOCKMSG_SIZE + this.bodyUsed;
  }

  push(chunk: Uint8Array, onMessage: (m: XsMessage) => void): boolean {
    let i = 0;
    const end = chunk.length;
    while (i < end) {
      if (this.bad) return false;
      if (this.body === null) {
        let h: Uint8Array;
        let ho: number;
        if (this.hdrUsed === 0 && end - i >= XSD_SOCKMSG_SIZE) {
          // The whole header is in this chunk (the usual case): read it in place.
          h = chunk;
          ho = i;
          i += XSD_SOCKMSG_SIZE;
        } else {
          const n = Math.min(XSD_SOCKMSG_SIZE - this.hdrUsed, end - i);
          for (let k = 0; k < n; k++) this.hdr[this.hdrUsed + k] = chunk[i + k];
          this.hdrUsed += n;
          i += n;
          if (this.hdrUsed < XSD_SOCKMSG_SIZE) return true;
          h = this.hdr;
          ho = 0;
        }
        this.type = getU32(h, ho);
        this.reqId = getU32(h, ho + 4);
        this.txId = getU32(h, ho + 8);
        const len = getU32(h, ho + 12);
        if (len > XENSTORE_PAYLOAD_MAX) {
          this.bad = true;
          return false;
        }
        if (end - i >= len) {
          // The whole payload is here too: one copy, no partial state.
          // A fresh plain Uint8Array (a Buffer's slice would be a view of the whole chunk).
          const body = new Uint8Array(len);
          if (len < 64) for (let k = 0; k < len; k++) body[k] = chunk[i + k];
          else body.set(chunk.subarray(i, i + len));
          i += len;
          this.hdrUsed = 0;
          onMessage({ type: this.type, reqId: this.reqId, txId: this.txId, payload: body });
          continue;
        }
        this.body = new Uint8Array(len);
        this.bodyUsed = 0;
      }
      const body = this.body;
      const n = Math.min(body.length - this.bodyUsed, end - i);
      body.set(chunk.subarray(i, i + n), this.bodyUsed);
      this.bodyUsed += n;
      i += n;
      if (this.bodyUsed === body.length) {
        this.body = null;
        this.hdrUsed = 0;
        onMessage({ type: this.type, reqId: this.reqId, txId: this.txId, payload: body });
      }
    }
    return !this.bad;
  }
}
