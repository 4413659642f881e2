/*
 * libxl's device directories in xenstore (Xen 4.17 tools/libs/light/libxl_device.c
 * libxl__device_generic_add, libxl__initiate_device_generic_remove, libxl__device_destroy;
 * libxl_console.c for a console's keys): the frontend directory in the domU's tree, the
 * backend directory in the backend domain's tree, and the toolstack's private copy under
 * /libxl, written in one transaction.
 *
 * Invariant: the frontend directory is owned by the domU and readable by the backend domain
 * ([n<domid>, r<backend>]); the backend directory is owned by the backend domain and readable
 * by the domU ([n<backend>, r<domid>]); /libxl is dom0's alone. Both ends start in state 1
 * (Initialising) and name each other (`backend` / `backend-id`, `frontend` / `frontend-id`).
 */
import { HyperlabError } from "@hyperlab/core";
import type { XsClient, XsOps } from "@hyperlab/xenstore";

export type DeviceErrorCode = "TOOLSTACK_BAD_DEVICE";

/** One device as libxl adds it. */
export interface DeviceSpec {
  /** `console`, `vbd`, `vif`, ... */
  type: string;
  /** The frontend domain. */
  domid: number;
  /** The device number (`<devid>`). */
  devid: number;
  /** The backend domain (default 0). */
  backendDomid?: number;
  /** Extra backend keys (`params`, `mode`, `mac`, ...). */
  backend?: Readonly<Record<string, string>>;
  /** Extra frontend keys (`virtual-device`, `mac`, ...). */
  frontend?: Readonly<Record<string, string>>;
}

/** The three directories of a device. */
export interface DevicePaths {
  frontend: string;
  backend: string;
  libxl: string;
}

function bad(message: string): HyperlabError<DeviceErrorCode> {
  return new HyperlabError<DeviceErrorCode>("TOOLSTACK_BAD_DEVICE", message);
}

function checkSpec(spec: DeviceSpec): number {
  const backendDomid = spec?.backendDomid ?? 0;
  if (typeof spec?.type !== "string" || !/^[a-z0-9-]+$/.test(spec.type)) {
    throw bad(
      `a device type is lower-case letters, digits and "-", such as "vbd"; got ${JSON.stringify(spec?.type)}.`,
    );
  }
  for (const [what, v] of [
    ["domid", spec.domid],
    ["backendDomid", backendDomid],
  ] as const) {
    if (!(Number.isInteger(v) && v >= 0 && v < 0x7ff0)) {
      throw bad(`${what} ${v} is not a domain id (0..32751).`);
    }
  }
  if (!(Number.isInteger(spec.devid) && spec.devid >= 0 && spec.devid <= 0x7fffffff)) {
    throw bad(`devid ${spec.devid} is not a device number (a non-negative integer).`);
  }
  for (const keys of [spec.backend, spec.frontend]) {
    for (const k of Object.keys(keys ?? {})) {
      if (!/^[A-Za-z0-9_-][A-Za-z0-9_/-]*$/.test(k) || k.includes("//")) {
        throw bad(`device key ${JSON.stringify(k)} is not a relative xenstore path.`);
      }
    }
  }
  return backendDomid;
}

/** libxl__device_frontend_path / _backend_path / _libxl_path. */
export function devicePaths(spec: DeviceSpec): DevicePaths {
  const b = checkSpec(spec);
  const { type, domid, devid } = spec;
  return {
    frontend: `/local/domain/${domid}/device/${type}/${devid}`,
    backend: `/local/domain/${b}/backend/${type}/${domid}/${devid}`,
    libxl: `/libxl/${domid}/device/${type}/${devid}`,
  };
}

async function writeAll(tx: XsOps, dir: string, keys: Readonly<Record<string, string>>) {
  for (const [k, v] of Object.entries(keys)) await tx.write(`${dir}/${k}`, v);
}

/**
 * libxl__device_generic_add: both directories with their permissions and keys, and the
 * private copy of the backend keys, in one transaction (retried on EAGAIN).
 */
export async function libxlDeviceGenericAdd(xs: XsClient, spec: DeviceSpec): Promise<DevicePaths> {
  const p = devicePaths(spec);
  const b = spec.backendDomid ?? 0;
  const back = {
    ...spec.backend,
    frontend: p.frontend,
    "frontend-id": String(spec.domid),
    online: "1",
    state: "1",
  };
  const front = {
    ...spec.frontend,
    backend: p.backend,
    "backend-id": String(b),
    state: "1",
  };
  await xs.transaction(async (tx) => {
    await tx.mkdir(p.frontend);
    await tx.setPerms(p.frontend, [`n${spec.domid}`, `r${b}`]);
    await tx.mkdir(p.backend);
    await tx.setPerms(p.backend, [`n${b}`, `r${spec.domid}`]);
    await tx.mkdir(p.libxl);
    await tx.setPerms(p.libxl, ["n0"]);
    await writeAll(tx, p.frontend, front);
    await writeAll(tx, p.backend, back);
    await writeAll(tx, p.libxl, { ...back, backend: p.backend, frontend: p.frontend });
  });
  return p;
}

/**
 * libxl__initiate_device_generic_remove: asks the backend to let go (`online` 0, `state`
 * Closing); the ends then walk to Closed, after which libxlDeviceDestroy removes the nodes.
 */
export async function libxlDeviceRemove(xs: XsClient, spec: DeviceSpec): Promise<void> {
  const p = devicePaths(spec);
  await xs.transaction(async (tx) => {
    await tx.write(`${p.backend}/online`, "0");
    await tx.write(`${p.backend}/state`, "5");
  });
}

/**
 * libxl__xs_path_cleanup: removes `path`, then each parent left empty, up to the first
 * parent that still has children.
 */
export async function xsPathCleanup(tx: XsOps, path: string): Promise<void> {
  try {
    await tx.rm(path);
  } catch {
    // Already gone: removing it is what was asked.
  }
  for (
    let p = path.slice(0, path.lastIndexOf("/"));
    p.length > 1;
    p = p.slice(0, p.lastIndexOf("/"))
  ) {
    let children: string[];
    try {
      children = await tx.directory(p);
    } catch {
      continue;
    }
    if (children.length > 0) return;
    try {
      await tx.rm(p);
    } catch {
      return;
    }
  }
}

/** libxl__device_destroy: removes the three directories and their emptied parents (one transaction). */
export async function libxlDeviceDestroy(xs: XsClient, spec: DeviceSpec): Promise<void> {
  const p = devicePaths(spec);
  await xs.transaction(async (tx) => {
    for (const dir of [p.frontend, p.backend, p.libxl]) await xsPathCleanup(tx, dir);
  });
}

/**
 * libxl__device_console_add's keys for an extra console (devid >= 1): backend `protocol`
 * vt100, frontend `limit`, `type` xenconsoled, `output`, `tty` (filled by the daemon).
 */
export function consoleDevice(domid: number, devid: number, backendDomid = 0): DeviceSpec {
  return {
    type: "console",
    domid,
    devid,
    backendDomid,
    backend: { protocol: "vt100" },
    frontend: { limit: "1048576", type: "xenconsoled", output: "pty", tty: "" },
  };
}
