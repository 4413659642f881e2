/*
 * dom0's software bridge for vifs (Linux's bridge `xenbr0` that libxl's vif-bridge script
 * adds each vif to): @hyperlab/machine's learning NetBridge, with every frame that enters it
 * optionally written to a pcap file first, and the offload metadata (GSO, checksum) of the
 * frame in flight passed beside it, as an skb carries it across a Linux bridge.
 *
 * Invariant: a frame is recorded once, when it enters the bridge, before it is forwarded;
 * forwarding is synchronous, so `meta` is the sending port's metadata exactly while the
 * receivers run and the default (no offload) otherwise.
 */
import {
  NetBridge,
  type NetEndpoint,
  type NetPort,
  PcapPort,
  type PcapWriter,
} from "@hyperlab/machine";
import { type NetMeta, netMeta } from "./netif";

export interface VifBridgeOptions {
  /** Write every frame that enters the bridge here (e.g. `PcapWriter.toFile(path)`). */
  pcap?: PcapWriter;
}

/** A port of the bridge that can send a frame with its metadata. */
export interface VifBridgePort extends NetPort {
  transmitWithMeta(frame: Uint8Array, meta: NetMeta): void;
  /**
   * Takes the port off the bridge (brctl delif): its endpoint receives nothing more and what
   * it transmits is dropped. The switch keeps the slot, as a bridge keeps a learned address
   * until it ages out.
   */
  close(): void;
}

/** The bridge in dom0 that joins the vifs of every domU. */
export class VifBridge {
  readonly bridge = new NetBridge();
  readonly pcap: PcapWriter | null;
  /** Frames that entered the bridge. */
  frames = 0;
  private readonly none = netMeta();
  private current: NetMeta = this.none;

  constructor(options: VifBridgeOptions = {}) {
    this.pcap = options.pcap ?? null;
  }

  /** The metadata of the frame being forwarded (no offload outside a forward). */
  get meta(): NetMeta {
    return this.current;
  }

  /** Plugs an endpoint (a vif, or any NIC) in; returns the port it sends through. */
  connect(endpoint: NetEndpoint): VifBridgePort {
    let open = true;
    const inner = this.bridge.connect({
      receive: (frame) => {
        if (open) endpoint.receive(frame);
      },
    });
    const port: NetPort = this.pcap === null ? inner : new PcapPort(this.pcap, inner);
    const send = (frame: Uint8Array): void => {
      if (!open) return;
      this.frames++;
      port.transmit(frame);
    };
    return {
      transmit: send,
      transmitWithMeta: (frame, meta) => {
        this.current = meta;
        try {
          send(frame);
        } finally {
          this.current = this.none;
        }
      },
      close: () => {
        open = false;
      },
    };
  }
}
