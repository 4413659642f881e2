// Shared set-up for the network tests: the xenbus test world (dom0 with xenstored, domUs),
// netback in dom0 on a VifBridge, libxl's vif directories (libxl__device_nic_add's keys:
// mac, handle, bridge, script, type), netfront domUs, and Ethernet/IPv4/ICMP frame builders.
import type { PcapWriter } from "@hyperlab/machine";
import type { XsClient } from "@hyperlab/xenstore";
import {
  GnttabGuest,
  NetbackDriver,
  type NetbackOptions,
  type NetfrontDevice,
  NetfrontDriver,
  type NetfrontOptions,
  VifBridge,
  type XenbusBus,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
} from "../src/index";
import { type DomU, until, world } from "./world";

export interface VifDomU {
  u: DomU;
  front: NetfrontDriver;
  bus: XenbusBus;
  dev: NetfrontDevice;
  mac: string;
  fe: string;
  be: string;
  /** Frames this domU received, copied. */
  got: Uint8Array[];
}

/** libxl__device_nic_add: both vif directories in one transaction, state 1. */
export async function addVifTo(xs: XsClient, domid: number, devid: number, mac: string) {
  const fe = `/local/domain/${domid}/device/vif/${devid}`;
  const be = `/local/domain/0/backend/vif/${domid}/${devid}`;
  await xs.transaction(async (tx) => {
    await tx.mkdir(fe);
    await tx.setPerms(fe, [`n${domid}`, "r0"]);
    await tx.write(`${fe}/backend`, be);
    await tx.write(`${fe}/backend-id`, "0");
    await tx.write(`${fe}/handle`, String(devid));
    await tx.write(`${fe}/mac`, mac);
    await tx.write(`${fe}/state`, "1");
    await tx.mkdir(be);
    await tx.setPerms(be, ["n0", `r${domid}`]);
    await tx.write(`${be}/frontend`, fe);
    await tx.write(`${be}/frontend-id`, String(domid));
    await tx.write(`${be}/online`, "1");
    await tx.write(`${be}/script`, "/etc/xen/scripts/vif-bridge");
    await tx.write(`${be}/mac`, mac);
    await tx.write(`${be}/bridge`, "xenbr0");
    await tx.write(`${be}/handle`, String(devid));
    await tx.write(`${be}/type`, "vif");
    await tx.write(`${be}/state`, "1");
  });
  return { fe, be };
}

export async function netWorld(opts: { pcap?: PcapWriter; back?: Partial<NetbackOptions> } = {}) {
  const w = world();
  const bridge = new VifBridge({ pcap: opts.pcap });
  const back = new NetbackDriver(w.dom0Kernel, { bridge, ...opts.back });
  const backBus = xenbusRegisterBackend(w.dom0Kernel, back);
  await backBus.start();

  const addVif = (domid: number, devid: number, mac: string) => addVifTo(w.xs, domid, devid, mac);

  /** A domU with netfront on vif `devid`, connected (both ends state 4). */
  const bootVif = async (
    mac: string,
    frontOpts: NetfrontOptions = {},
    devid = 0,
    record = true,
  ): Promise<VifDomU> => {
    const u = await w.bootDomU();
    const front = new NetfrontDriver(u.kernel, new GnttabGuest(w.hv, u.domain), frontOpts);
    const bus = xenbusRegisterFrontend(u.kernel, front);
    await bus.start();
    const { fe, be } = await addVif(u.domain.domid, devid, mac);
    await until(async () => (await w.state(fe)) === "4" && (await w.state(be)) === "4");
    const dev = front.devices.get(devid)!;
    const got: Uint8Array[] = [];
    if (record) dev.onReceive((f) => got.push(f.slice()));
    return { u, front, bus, dev, mac, fe, be, got };
  };

  return { ...w, bridge, back, backBus, addVif, bootVif };
}

export const macBytes = (mac: string) =>
  new Uint8Array(mac.split(":").map((h) => Number.parseInt(h, 16)));

/** An Ethernet frame: dst, src, ethertype, then `len - 14` payload bytes from `fill(i)`. */
export function ethFrame(
  dst: string,
  src: string,
  len: number,
  fill: (i: number) => number = (i) => (i * 31 + 7) & 0xff,
  ethertype = 0x88b5, // IEEE local experimental
): Uint8Array {
  const f = new Uint8Array(len);
  f.set(macBytes(dst), 0);
  f.set(macBytes(src), 6);
  f[12] = ethertype >> 8;
  f[13] = ethertype & 0xff;
  for (let i = 14; i < len; i++) f[i] = fill(i);
  return f;
}

function csum16(b: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (i + 1 < to ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** An ICMP echo request (type 8) or reply (0) from `src` to `dst`, IPv4, with checksums. */
export function icmpEcho(
  dst: string,
  src: string,
  srcIp: [number, number, number, number],
  dstIp: [number, number, number, number],
  type: 0 | 8,
  seq: number,
  payload = 56,
): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + payload);
  f.set(macBytes(dst), 0);
  f.set(macBytes(src), 6);
  f[12] = 0x08; // IPv4
  const ip = 14;
  f[ip] = 0x45;
  const total = 20 + 8 + payload;
  f[ip + 2] = total >> 8;
  f[ip + 3] = total & 0xff;
  f[ip + 8] = 64; // ttl
  f[ip + 9] = 1; // ICMP
  f.set(srcIp, ip + 12);
  f.set(dstIp, ip + 16);
  const hc = csum16(f, ip, ip + 20);
  f[ip + 10] = hc >> 8;
  f[ip + 11] = hc & 0xff;
  const ic = ip + 20;
  f[ic] = type;
  f[ic + 4] = 0x12; // identifier
  f[ic + 5] = 0x34;
  f[ic + 6] = seq >> 8;
  f[ic + 7] = seq & 0xff;
  for (let i = 0; i < payload; i++) f[ic + 8 + i] = i & 0xff;
  const cc = csum16(f, ic, f.length);
  f[ic + 2] = cc >> 8;
  f[ic + 3] = cc & 0xff;
  return f;
}

export { until };
