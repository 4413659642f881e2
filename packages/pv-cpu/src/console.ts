/*
 * Xen's console as a guest reaches it through console_io (xen/drivers/char/console.c): the
 * console log every CONSOLEIO_write lands in (what `xl dmesg` reads), with a domU's lines
 * buffered until their newline and prefixed "(dN) " as guest_console_write does, and the
 * serial input ring CONSOLEIO_read drains.
 *
 * Invariants: the log keeps at most `capacity` characters (oldest dropped first, as Xen's
 * conring); a read starts at the consumer mark (conringc), or at the oldest character kept if
 * the ring overwrote the mark, and a clearing read (XEN_SYSCTL_readconsole with clear, `xl
 * dmesg -c`) moves the mark to the producer (conringp); a domU's unfinished line is at most DOMAIN_LINE_MAX characters before it is
 * flushed; reading input never returns more than was asked for.
 */

/** Xen's DOMAIN_PBUF_SIZE: a domU's line buffer flushes when full. */
export const DOMAIN_LINE_MAX = 200;

export class XenConsole {
  private log = "";
  /** Characters ever appended (conringp) and the consumer mark a clear left (conringc). */
  private produced = 0;
  private consumer = 0;
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
    this.produced += text.length;
    if (this.log.length > this.capacity) this.log = this.log.slice(this.log.length - this.capacity);
  }

  /**
   * The console log as `xl dmesg` prints it: from the consumer mark (or the oldest character
   * still in the ring) to the end. With `clear` (xl dmesg -c), the mark moves to the end,
   * so the next read shows only what is written after this one (Xen's read_console_ring).
   */
  read(clear = false): string {
    const oldest = this.produced - this.log.length;
    const from = Math.max(this.consumer, oldest);
    const out = this.log.slice(from - oldest);
    if (clear) this.consumer = this.produced;
    return out;
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
