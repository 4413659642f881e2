/*
 * Where a NIC's frames go: a port. Three kinds: loopback (back into the same NIC), a bridge
 * (a learning switch between several NICs) and a pcap tap (records, then passes on).
 *
 * Invariants of the bridge: it learns a source MAC on the port it arrived from (the latest
 * port wins); a frame to a learned unicast MAC goes out that port only, and is dropped if that
 * is the port it came in on; broadcast, multicast and unknown unicast go out every other
 * port. A frame is handed to receivers synchronously and never kept: a receiver copies it.
 */

import { MachineError } from "../errors";

/** Something that takes frames in: a NIC's receive side. */
export interface NetEndpoint {
  receive(frame: Uint8Array): void;
}

/** Where a NIC sends frames. The frame is only valid during the call. */
export interface NetPort {
  transmit(frame: Uint8Array): void;
}

/** Frames come straight back into the endpoint that sent them. */
export class LoopbackPort implements NetPort {
  frames = 0;

  constructor(private readonly endpoint: NetEndpoint) {}

  transmit(frame: Uint8Array): void {
    this.frames++;
    this.endpoint.receive(frame);
  }
}

/** Drops every frame (a cable to nowhere), counting them. */
export class NullPort implements NetPort {
  frames = 0;

  transmit(_frame: Uint8Array): void {
    this.frames++;
  }
}

function macKey(frame: Uint8Array, at: number): number {
  return (frame[at] * 2 ** 40 +
    frame[at + 1] * 2 ** 32 +
    ((frame[at + 2] << 24) >>> 0) +
    (frame[at + 3] << 16) +
    (frame[at + 4] << 8) +
    frame[at + 5]) as number;
}

/** A learning Ethernet switch between endpoints. */
export class NetBridge {
  private readonly endpoints: NetEndpoint[] = [];
  private readonly fdb = new Map<number, number>();
  forwarded = 0;
  flooded = 0;
  dropped = 0;

  /** Connects an endpoint; returns the port it transmits through. */
  connect(endpoint: NetEndpoint): NetPort {
    if (endpoint === null || typeof endpoint?.receive !== "function") {
      throw new MachineError(
        "NET_BAD_CONFIG",
        "bridge.connect needs an endpoint with receive(frame), e.g. a Nic",
      );
    }
    const index = this.endpoints.length;
    this.endpoints.push(endpoint);
    return { transmit: (frame) => this.forward(index, frame) };
  }

  /** The port index a MAC (6 bytes) was learned on, or -1. */
  lookup(mac: Uint8Array): number {
    return mac.length < 6 ? -1 : (this.fdb.get(macKey(mac, 0)) ?? -1);
  }

  private forward(from: number, frame: Uint8Array): void {
    if (frame.length < 14) {
      this.dropped++;
      return;
    }
    if ((frame[6] & 1) === 0) this.fdb.set(macKey(frame, 6), from);
    const group = (frame[0] & 1) !== 0;
    const to = group ? undefined : this.fdb.get(macKey(frame, 0));
    if (to !== undefined) {
      if (to === from) {
        this.dropped++;
        return;
      }
      this.forwarded++;
      this.endpoints[to].receive(frame);
      return;
    }
    this.flooded++;
    for (let i = 0; i < this.endpoints.length; i++) {
      if (i !== from) this.endpoints[i].receive(frame);
    }
  }
}
