/*
 * The few printf(3) conversions xl's display verbs use, as glibc prints them: padded
 * strings and integers (%-40s, %5d, %5u, %8x), and %N.1f of a double, rounded from the
 * exact binary value with ties to even as glibc does in the default rounding mode.
 *
 * Invariant: every function returns exactly the bytes glibc's printf would for the same C
 * value; integer helpers take the C value already converted to its C type (see int32/uint32).
 */

/** How many bytes C's strlen counts for `s` (its UTF-8 length). */
export function cLength(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s, "utf8");
  }
  return s.length;
}

const SPACES = " ".repeat(256);
const spaces = (n: number) => (n <= 256 ? SPACES.slice(0, n) : " ".repeat(n));

/** `%-Ns`: left-justified in N bytes; longer strings are never cut. */
export function padEnd(s: string, width: number): string {
  const n = cLength(s);
  return n >= width ? s : s + spaces(width - n);
}

/** `%Ns` / `%Nd`: right-justified in N bytes; longer text is never cut. */
export function padStart(s: string, width: number): string {
  const n = cLength(s);
  return n >= width ? s : spaces(width - n) + s;
}

/** A JS number as C's `int` (two's complement wrap of the low 32 bits). */
export function int32(n: number): number {
  return n | 0; // ToInt32: the low 32 bits, two's complement
}

/** A JS number as C's `uint32_t` / `unsigned int`. */
export function uint32(n: number): number {
  return n >>> 0; // ToUint32: the low 32 bits
}

/** `%x` of a C int: its 32-bit two's complement pattern in lower-case hex. */
export function hex32(n: number): string {
  return uint32(n).toString(16);
}

/**
 * `%.1f` of a finite non-negative double, as glibc rounds it: the exact binary value to the
 * nearest tenth, an exact tie to the even tenth. JS's toFixed also rounds the exact value
 * but sends ties up; a tie at tenths is a value whose quadruple is an odd integer (x.25,
 * x.75), so only those need correcting.
 */
export function fixed1(x: number): string {
  const q = x * 4; // exact: a power-of-two scale
  if (Number.isInteger(q) && q % 2 !== 0 && Number.isSafeInteger(q)) {
    const t = Math.floor(x * 10); // x * 10 = 2.5 * q, exact for these x
    const n = t % 2 === 0 ? t : t + 1;
    return `${Math.floor(n / 10)}.${n % 10}`;
  }
  return x.toFixed(1);
}

/**
 * xl's CPU seconds: `(float)ns / 1e9` in C converts the 64-bit count to single precision
 * first, then divides in double.
 */
export function cpuSeconds(ns: number): number {
  return Math.fround(ns) / 1e9;
}
