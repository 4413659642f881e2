/*
 * Disks, nics and extra consoles as libxl adds and removes them (libxl_disk.c,
 * libxl_nic.c, libxl_console.c over libxl_device.c): the two xenstore directories and the
 * private copy (../devices.ts), then the xenbus state machine between the backend dom0 runs
 * and the domU's frontend: by default blkback/blkfront and netback/netfront (split-devices.ts).
 * A type with no driver pair on the host gets its nodes written exactly as libxl writes them;
 * its ends stay in Initialising, as a real host without the backend module would leave them.
 *
 * Invariant: a device is in `r.devices` exactly while its directories exist; a detached
 * device's backend has let it go (ring unmapped, port closed) before detach returns.
 */
import { statSync } from "node:fs";
import { HyperlabError } from "@hyperlab/core";
import {
  type DeviceSpec,
  libxlDeviceDestroy,
  libxlDeviceGenericAdd,
  libxlDeviceRemove,
  xsPathCleanup,
} from "../devices";
import type { DiskConfig, NicConfig } from "./config";
import { libxlError } from "./errors";
import { type DeviceRecord, type DomainRecord, type Host, hostXs, settle } from "./host";

/** A device to attach: its libxl spec and its JSON (as `xl -N block-attach` prints it). */
export interface DeviceRequest {
  spec: DeviceSpec;
  json: Record<string, unknown>;
}

/** Linux's xvd device numbers: xvdX = 202 << 8 | index << 4 (blkif.h's vdev encoding). */
export function vdevNumber(vdev: string): number {
  const m = /^xvd([a-z]+)(\d*)$/.exec(vdev);
  if (m === null) {
    const h = /^(?:hd|sd)([a-z])(\d*)$/.exec(vdev);
    if (h === null)
      throw libxlError(
        "TOOLSTACK_BAD_ARGUMENT",
        `Invalid virtual disk identifier ${vdev}; use xvdX, e.g. xvdb.`,
      );
    const idx = h[1]!.charCodeAt(0) - 97;
    return vdev.startsWith("hd")
      ? (3 << 8) | (idx << 6) | Number(h[2] || 0)
      : (8 << 8) | (idx << 4) | Number(h[2] || 0);
  }
  let idx = 0;
  for (const ch of m[1]!) idx = idx * 26 + (ch.charCodeAt(0) - 96);
  idx -= 1;
  const part = Number(m[2] || 0);
  return idx < 16 && part < 16 ? (202 << 8) | (idx << 4) | part : (1 << 28) | (idx << 8) | part;
}

/** libxl__device_disk_setdefault + libxl__device_from_disk: the vbd's keys. */
export function diskDevice(r: DomainRecord, d: DiskConfig): DeviceRequest {
  const devid = vdevNumber(d.vdev);
  return {
    spec: {
      type: "vbd",
      domid: r.domid,
      devid,
      backendDomid: d.backendDomid,
      backend: {
        params: d.target,
        type: d.target.startsWith("/dev/") ? "phy" : "file",
        mode: d.readwrite ? "w" : "r",
        "device-type": "disk",
        removable: "0",
        bootable: "1",
        dev: d.vdev,
        "discard-enable": "1",
        specification: "xen",
      },
      frontend: { "virtual-device": String(devid), "device-type": "disk" },
    },
    json: {
      backend_domid: d.backendDomid,
      pdev_path: d.target,
      vdev: d.vdev,
      format: d.format,
      readwrite: d.readwrite ? 1 : 0,
      devid,
    },
  };
}

/** libxl__device_nic_setdefault + libxl__set_xenstore_nic: the vif's keys. */
export function nicDevice(r: DomainRecord, n: NicConfig): DeviceRequest {
  const mac = n.mac !== "" ? n.mac : defaultMac(r.config.uuid, n.devid);
  return {
    spec: {
      type: "vif",
      domid: r.domid,
      devid: n.devid,
      backendDomid: n.backendDomid,
      backend: {
        mac,
        bridge: n.bridge,
        handle: String(n.devid),
        script: "/etc/xen/scripts/vif-bridge",
        type: "vif",
      },
      frontend: { mac, handle: String(n.devid) },
    },
    json: { backend_domid: n.backendDomid, devid: n.devid, mac, bridge: n.bridge },
  };
}

/** libxl's default MAC: 00:16:3e plus three bytes from the domain's uuid and devid. */
function defaultMac(uuid: string, devid: number): string {
  const h = uuid.replace(/-/g, "");
  const b = [
    parseInt(h.slice(0, 2), 16) & 0x7f,
    parseInt(h.slice(2, 4), 16),
    (parseInt(h.slice(4, 6), 16) + devid) & 0xff,
  ];
  return ["00", "16", "3e", ...b.map((x) => x.toString(16).padStart(2, "0"))].join(":");
}

/** glibc's strerror for the errno codes a stat gives. */
function strerror(code: string): string {
  const texts: Record<string, string> = {
    ENOENT: "No such file or directory",
    EACCES: "Permission denied",
    ENOTDIR: "Not a directory",
    ELOOP: "Too many levels of symbolic links",
    ENAMETOOLONG: "File name too long",
  };
  return texts[code] ?? code;
}

/** Adds a device; pushes its removal onto `undo` when given (a create in progress). */
export async function attachDevice(
  host: Host,
  r: DomainRecord,
  req: DeviceRequest,
  undo?: (() => Promise<void> | void)[],
): Promise<DeviceRecord> {
  const xs = hostXs(host);
  if (r.devices.some((d) => d.type === req.spec.type && d.devid === req.spec.devid)) {
    throw libxlError(
      "TOOLSTACK_BAD_ARGUMENT",
      `libxl: error: device ${req.spec.type} ${req.spec.devid} of domain ${r.domid} already exists`,
    );
  }
  const split = host.split;
  const key = `${r.domid}/${req.spec.devid}`;
  if (split !== null && req.spec.type === "vbd") {
    // libxl__device_disk_set_backend stats the target before anything is written: a block
    // device (phy:) or a regular file is served (blkback opens it as the image).
    const target = String(req.spec.backend?.params ?? "");
    const vdev = String(req.json.vdev ?? req.spec.devid);
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(target);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "ENOENT";
      throw libxlError(
        "TOOLSTACK_CREATE_FAILED",
        `libxl: error: libxl_device.c: Disk vdev=${vdev} failed to stat: ${target}: ${strerror(code)}`,
      );
    }
    if (!st.isFile() && !st.isBlockDevice()) {
      throw libxlError(
        "TOOLSTACK_CREATE_FAILED",
        `libxl: error: libxl_device.c: Disk vdev=${vdev} phys path is not a block dev or file: ${target}`,
      );
    }
    split.images.set(key, target);
  }
  try {
    await libxlDeviceGenericAdd(xs, req.spec);
  } catch (e) {
    if (req.spec.type === "vbd") split?.images.delete(key);
    if (e instanceof HyperlabError) throw e;
    throw libxlError(
      "TOOLSTACK_CREATE_FAILED",
      `libxl: error: adding ${req.spec.type} ${req.spec.devid}: ${(e as Error).message}`,
    );
  }
  const rec: DeviceRecord = {
    type: req.spec.type,
    devid: req.spec.devid,
    backendDomid: req.spec.backendDomid ?? 0,
    json: req.json,
  };
  r.devices.push(rec);
  undo?.push(async () => {
    await detachDevice(host, r, rec.type, rec.devid, true);
  });
  return rec;
}

/**
 * Removes a device: asks the backend to close (online 0, state Closing), lets both ends
 * walk to Closed when they run, then removes the directories (libxl__device_destroy).
 */
export async function detachDevice(
  host: Host,
  r: DomainRecord,
  type: string,
  devid: number,
  force = false,
): Promise<boolean> {
  const i = r.devices.findIndex((d) => d.type === type && d.devid === devid);
  if (i < 0) return false;
  const xs = hostXs(host);
  const spec: DeviceSpec = {
    type,
    domid: r.domid,
    devid,
    backendDomid: r.devices[i]!.backendDomid,
  };
  if (!force) {
    await libxlDeviceRemove(xs, spec);
    for (let n = 0; n < 50; n++) await settle();
  }
  await libxlDeviceDestroy(xs, spec);
  r.devices.splice(i, 1);
  await releaseBackend(host, r.domid, type, devid, spec.backendDomid ?? 0);
  return true;
}

/**
 * Waits (bounded) for dom0's backend to notice the directory is gone and disconnect, then
 * frees what the backend kept for the device (netback's vif, blkback's image path).
 */
async function releaseBackend(
  host: Host,
  domid: number,
  type: string,
  devid: number,
  backendDomid: number,
): Promise<void> {
  const split = host.split;
  if (split === null || (type !== "vbd" && type !== "vif")) return;
  for (let n = 0; n < 200; n++) {
    const live =
      type === "vbd"
        ? split.blkback?.connected(domid, devid) === true
        : split.vifBackend?.netback(domid, devid)?.vif(domid, devid)?.txMap != null;
    if (!live) break;
    await settle();
  }
  // The backend's last state write found its directory gone and reported it under dom0's
  // error/ (xenbus_dev_error); once the device is released the toolstack clears that too.
  for (let n = 0; n < 20; n++) await settle();
  if (type === "vbd") split.images.delete(`${domid}/${devid}`);
  else split.vifBackend?.release(domid, devid);
  await hostXs(host).transaction((tx) =>
    xsPathCleanup(tx, `/local/domain/${backendDomid}/error/backend/${type}/${domid}/${devid}`),
  );
}

/** The backend's XenbusState of a device (1 Initialising .. 6 Closed), or -1. */
export async function deviceState(
  host: Host,
  r: DomainRecord,
  type: string,
  devid: number,
): Promise<number> {
  const d = r.devices.find((x) => x.type === type && x.devid === devid);
  if (d === undefined) return -1;
  try {
    return Number(
      await hostXs(host).read(
        `/local/domain/${d.backendDomid}/backend/${type}/${r.domid}/${devid}/state`,
      ),
    );
  } catch {
    return -1;
  }
}
