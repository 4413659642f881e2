/*
 * The Xen-style host's block and network backends in dom0 and their frontends in each domU:
 * blkback serving the raw image file named by xl.cfg's `disk=` target, netback putting each
 * vif on the dom0 bridge its `vif=` line names (a VifBridge per bridge name, made on first
 * use, as `brctl addbr` before the vif-bridge hotplug script runs), and blkfront/netfront in
 * the guest kernels. libxl's device code (devices.ts) writes the nodes; these drivers run the
 * xenbus state machine to Connected.
 *
 * Invariants:
 * - `images` holds the target of exactly the vbds whose directories exist (attach adds it
 *   after checking the file exists, as libxl__device_disk_set_backend stats it; detach
 *   removes it once blkback has let the device go).
 * - A vif's netback is the one of the bridge its backend directory named when it was probed;
 *   release() gives everything the vif held back (mappings, ports, bridge port, staging pages
 *   to dom0's allocator) once the device's directories are gone.
 */
import { ENODEV, ENOMEM } from "@hyperlab/abi";
import { PcapWriter } from "@hyperlab/machine";
import {
  BlkBack,
  BlkFront,
  NetbackDriver,
  NetfrontDriver,
  VifBridge,
  type XenbusDevice,
  type XenbusDriver,
  type XenbusKernel,
} from "@hyperlab/split-drivers";
import type { DeviceDriverPair } from "./driver-pair";

/** The bridge a vif joins when its `vif=` spec names none (xl's default). */
export const DEFAULT_BRIDGE = "xenbr0";

export interface SplitDevicesOptions {
  /** Write every frame entering bridge NAME to `${pcapDir}/NAME.pcap` (default: no capture). */
  pcapDir?: string;
}

/** dom0's block and network backends and the bridges, as a host keeps them. */
export interface SplitDevices {
  /** The vbds' image paths by `domid/devid`. */
  readonly images: Map<string, string>;
  /** dom0's bridges by name. */
  readonly bridges: Map<string, VifBridge>;
  /** One netback per bridge (each vif's is the one of its bridge). */
  readonly netbacks: Map<string, NetbackDriver>;
  /** blkback, once dom0's kernel has loaded it. */
  blkback: BlkBack | null;
  /** The vif backend driver (routes each vif to its bridge's netback). */
  vifBackend: VifBackend | null;
  readonly pcapDir: string | null;
}

export function splitDevices(options: SplitDevicesOptions = {}): SplitDevices {
  return {
    images: new Map(),
    bridges: new Map(),
    netbacks: new Map(),
    blkback: null,
    vifBackend: null,
    pcapDir: options.pcapDir ?? null,
  };
}

/** The bridge named `name`, made on first use (with its pcap file when the host has a pcapDir). */
export function bridgeFor(s: SplitDevices, name: string): VifBridge {
  let b = s.bridges.get(name);
  if (b === undefined) {
    const pcap = s.pcapDir === null ? undefined : PcapWriter.toFile(`${s.pcapDir}/${name}.pcap`);
    b = new VifBridge(pcap === undefined ? {} : { pcap });
    s.bridges.set(name, b);
  }
  return b;
}

/**
 * dom0's `vif` backend: netback's xenbus driver, one NetbackDriver per bridge. A device goes
 * to the netback of the bridge its backend directory names (libxl writes `bridge`).
 */
export class VifBackend implements XenbusDriver {
  readonly type = "vif";
  private readonly byDev = new Map<string, NetbackDriver>();

  constructor(
    private readonly kernel: XenbusKernel,
    private readonly s: SplitDevices,
  ) {}

  /** The netback serving frontend `domid`'s vif `devid`, once probed. */
  netback(domid: number, devid: number): NetbackDriver | undefined {
    return this.byDev.get(`${domid}/${devid}`);
  }

  async probe(dev: XenbusDevice): Promise<number> {
    const name = (await dev.read("bridge")) || DEFAULT_BRIDGE;
    let nb = this.s.netbacks.get(name);
    if (nb === undefined) {
      try {
        nb = new NetbackDriver(this.kernel, { bridge: bridgeFor(this.s, name) });
      } catch {
        return -ENOMEM; // dom0 has no room for the staging pages
      }
      this.s.netbacks.set(name, nb);
    }
    this.byDev.set(`${dev.otherendId}/${dev.devid}`, nb);
    return nb.probe(dev);
  }

  connect(dev: XenbusDevice): Promise<number> | number {
    const nb = this.byDev.get(`${dev.otherendId}/${dev.devid}`);
    return nb === undefined ? -ENODEV : nb.connect(dev);
  }

  disconnect(dev: XenbusDevice): void {
    this.byDev.get(`${dev.otherendId}/${dev.devid}`)?.disconnect(dev);
  }

  /** The device is gone: its netback frees the vif (see NetbackDriver.release). */
  release(domid: number, devid: number): void {
    const key = `${domid}/${devid}`;
    this.byDev.get(key)?.release(domid, devid);
    this.byDev.delete(key);
  }
}

/** The vbd and vif driver pairs a Xen-style host plugs in by default. */
export function splitDriverPairs(s: SplitDevices): DeviceDriverPair[] {
  return [
    {
      type: "vbd",
      backend: (dom0) => {
        s.blkback = new BlkBack(dom0, {
          image: (domid, devid) => s.images.get(`${domid}/${devid}`) ?? "",
        });
        return s.blkback;
      },
      frontend: (domU, gnttab) => new BlkFront(domU, { gnttab: gnttab }),
    },
    {
      type: "vif",
      backend: (dom0) => {
        s.vifBackend = new VifBackend(dom0, s);
        return s.vifBackend;
      },
      frontend: (domU, gnttab) => new NetfrontDriver(domU, gnttab),
    },
  ];
}
