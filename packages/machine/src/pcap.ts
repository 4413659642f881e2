/*
 * A pcap writer: the classic libpcap file format (magic 0xa1b2c3d4 written little-endian,
 * version 2.4, microsecond timestamps, LINKTYPE_ETHERNET = 1), which tshark, tcpdump and
 * Wireshark read. Timestamps come from the machine's clock (nanoseconds), never the wall clock.
 *
 * Invariant: the file is always a valid capture up to the last record written; a host write
 * error after opening is counted, not thrown (the frame came from a guest).
 */

import { closeSync, openSync, writeSync } from "node:fs";
import type { NetPort } from "./devices/net-port";
import { MachineError } from "./errors";

export const PCAP_MAGIC = 0xa1b2c3d4;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
export const LINKTYPE_ETHERNET = 1;
export const PCAP_SNAPLEN = 65535;

/** Where the bytes go. */
export interface PcapSink {
  write(bytes: Uint8Array): void;
}

export interface PcapWriterOptions {
  /** Nanoseconds now (e.g. () => machine.clock.now); default always 0. */
  now?: () => number;
}

export class PcapWriter {
  private readonly rec = new Uint8Array(16);
  private readonly rv = new DataView(this.rec.buffer);
  private readonly now: () => number;
  frames = 0;
  errors = 0;

  constructor(
    private readonly sink: PcapSink,
    options: PcapWriterOptions = {},
  ) {
    this.now = options.now ?? (() => 0);
    const h = new Uint8Array(24);
    const v = new DataView(h.buffer);
    v.setUint32(0, PCAP_MAGIC, true);
    v.setUint16(4, PCAP_VERSION_MAJOR, true);
    v.setUint16(6, PCAP_VERSION_MINOR, true);
    v.setInt32(8, 0, true); // thiszone
    v.setUint32(12, 0, true); // sigfigs
    v.setUint32(16, PCAP_SNAPLEN, true);
    v.setUint32(20, LINKTYPE_ETHERNET, true);
    this.put(h);
  }

  /** A writer to a new file at `path` (truncated). */
  static toFile(path: string, options: PcapWriterOptions = {}): PcapWriter & { close(): void } {
    let fd: number;
    try {
      fd = openSync(path, "w");
    } catch (e) {
      throw new MachineError(
        "PCAP_IO",
        `cannot create the capture file ${path}: ${(e as Error).message}; pick a writable path`,
      );
    }
    const w = new PcapWriter({ write: (b) => void writeSync(fd, b) }, options) as PcapWriter & {
      close(): void;
    };
    w.close = () => {
      if (fd >= 0) closeSync(fd);
      fd = -1;
    };
    return w;
  }

  private put(b: Uint8Array): void {
    try {
      this.sink.write(b);
    } catch {
      this.errors++;
    }
  }

  /** Appends one frame. */
  record(frame: Uint8Array): void {
    const ns = Math.max(0, Math.floor(this.now()));
    const incl = Math.min(frame.length, PCAP_SNAPLEN);
    this.rv.setUint32(0, Math.floor(ns / 1e9) >>> 0, true);
    this.rv.setUint32(4, Math.floor((ns % 1e9) / 1e3), true);
    this.rv.setUint32(8, incl, true);
    this.rv.setUint32(12, frame.length, true);
    this.put(this.rec);
    this.put(incl === frame.length ? frame : frame.subarray(0, incl));
    this.frames++;
  }
}

/** A tap: records every frame in a pcap writer, then passes it to `next` (if any). */
export class PcapPort implements NetPort {
  constructor(
    readonly writer: PcapWriter,
    private readonly next: NetPort | null = null,
  ) {}

  transmit(frame: Uint8Array): void {
    this.writer.record(frame);
    this.next?.transmit(frame);
  }
}
