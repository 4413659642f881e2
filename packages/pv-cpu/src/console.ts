/*
 * Xen's console as a guest reaches it through console_io (xen/drivers/char/console.c): the
 * console log every CONSOLEIO_write lands in (what `xl dmesg` reads), with a domU's lines
 * buffered until their newline and prefixed "(dN) " as guest_console_write does, and the
 * serial input ring CONSOLEIO_read drains.
 *
 * Invariants: the log keeps at most `capacity` characters (oldest dropped first, as Xen's
 * conring); a domU's unfinished line is at most DOMAIN_LINE_MAX characters before it is
 * flushed; reading input never returns more than was asked for.
 */

/** Xen's DOMAIN_PBUF_SIZE: a domU's line buffer flushes when full. */
export const DOMAIN_LINE_MAX = 200;

export class XenConsole {
  private log = "";
  private readonly capacity: number;
  private readonly partial = new Map<number, string>();
  private input: number[] = [];

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Appends bytes a domain wrote (dom0 and privileged domains go straight, domUs by line). */
  write(domid: number, privileged: boolean, bytes: Uint8Array, len: number): void {
    let text = "";
    for (let i = 0; i < len; i++) {
      const c = bytes[i];
      // Xen filters what a guest may print: printable ASCII, newline, tab (isprint/isspace).
      if ((c >= 0x20 && c < 0x7f) || c === 0x0a || c === 0x09) text += String.fromCharCode(c);
    }
    if (privileged) {
      this.append(text);
      return;
    }
    let line = this.partial.get(domid) ?? "";
    for (const ch of text) {
      line += ch;
      if (ch === "\n" || line.length >= DOMAIN_LINE_MAX) {
        this.append(`(d${domid}) ${line.endsWith("\n") ? line : `${line}\n`}`);
        line = "";
      }
    }
    this.partial.set(domid, line);
  }

  private append(text: string): void {
    this.log += text;
    if (this.log.length > this.capacity) this.log = this.log.slice(this.log.length - this.capacity);
  }

  /** The console log as `xl dmesg` prints it. */
  read(): string {
    return this.log;
  }

  /** Characters typed on the serial line, for CONSOLEIO_read. */
  pushInput(bytes: Uint8Array): void {
    for (const b of bytes) this.input.push(b);
  }

  /** Takes up to `max` input bytes. */
  takeInput(max: number): Uint8Array {
    const n = Math.min(max, this.input.length);
    const out = Uint8Array.from(this.input.slice(0, n));
    this.input = this.input.slice(n);
    return out;
  }

  /** Input bytes waiting. */
  get pendingInput(): number {
    return this.input.length;
  }

  /** Forgets a domain's unfinished line (it was destroyed). */
  domainDestroyed(domid: number): void {
    this.partial.delete(domid);
  }
}
