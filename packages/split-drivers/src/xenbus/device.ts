/*
 * The xenbus device state machine: a frontend (in a domU) and a backend (in the driver
 * domain) as independent actors that learn about each other only through xenstore watches,
 * as Linux's drivers/xen/xenbus/xenbus_probe.c (otherend watch, xenbus_otherend_changed),
 * xenbus_probe_frontend.c / xenbus_probe_backend.c (a watch on `device/<type>` and on
 * `backend/<type>`) and xenbus_client.c (xenbus_switch_state, xenbus_dev_error /
 * xenbus_dev_fatal) drive it. Paths are libxl's: the frontend's `/local/domain/<domid>/
 * device/<type>/<devid>` with `backend` and `backend-id`, the backend's `/local/domain/
 * <backend>/backend/<type>/<domid>/<devid>` with `frontend` and `frontend-id`.
 *
 * Invariant: nothing the other end writes makes an actor throw. Every value read from
 * xenstore is parsed (missing or garbage is Unknown / -1), every xenstore failure becomes a
 * -errno, and a bad value takes the device to Closing with an `error/<nodename>/error` node
 * in the actor's own domain (xenbus_dev_fatal). Each device handles one event at a time, in
 * the order xenstored delivered them, and reads the other end's current state when it runs
 * (a watch says "look", not "what"), so two quick changes may be seen as one.
 */
import { EINVAL, EIO, ENOENT } from "@hyperlab/abi";
import type { Domain, Hypervisor } from "@hyperlab/core";
import type { XenEvtchnGuest } from "@hyperlab/guest";
import type { XsClient, XsOps, XsWatch, XsWatchEvent } from "@hyperlab/xenstore";
import { xenbusError } from "./errors";
import {
  isXenbusState,
  parseXenbusState,
  parseXenbusUint,
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialised,
  XenbusStateInitialising,
  XenbusStateInitWait,
  XenbusStateUnknown,
  xenbusStrstate,
} from "./state";

/** What a driver needs of the kernel it runs in. */
export interface XenbusKernel {
  hv: Hypervisor;
  /** The domain whose kernel this is. */
  domain: Domain;
  /** The kernel's xenstore connection (XenbusComms.client, or dom0's). */
  client: XsClient;
  /** The kernel's event channels. */
  evtchn: XenEvtchnGuest;
  /** A hypercall may have raised an upcall somewhere: deliver (the upcall loop's kick). */
  kick(): void;
}

/**
 * What a front or back end driver implements (Linux's struct xenbus_driver). Every method
 * returns 0 or a negative errno; a failure that the driver did not report itself with
 * `dev.fatal` is reported for it. Nothing here may throw on what the other end wrote.
 */
export interface XenbusDriver {
  /** The device type: `console`, `vbd`, `vif`. */
  readonly type: string;
  /** A device appeared: a backend publishes its features here (before InitWait). */
  probe(dev: XenbusDevice): Promise<number> | number;
  /**
   * Frontend only (talk_to_backend): set the transport up (grant the ring, allocate the
   * event channel) and write its keys inside `tx`; the device then goes Initialised.
   */
  initialise?(dev: XenbusDevice, tx: XsOps): Promise<number> | number;
  /**
   * Backend: read the frontend's transport keys, map the ring, bind the event channel
   * (then Connected). Frontend: the backend is Connected, read its properties.
   */
  connect(dev: XenbusDevice): Promise<number> | number;
  /** Tear the transport down (unmap, unbind, revoke). Called at most once per connect. */
  disconnect(dev: XenbusDevice): Promise<void> | void;
  /** Every state the other end was seen in, before the state machine acts on it. */
  otherendChanged?(dev: XenbusDevice, state: number): void;
}

const home = (domid: number) => `/local/domain/${domid}`;

/**
 * Hands every event of `w` to `fn`, including the one xenstored fires when the watch is
 * registered (it may arrive before watch() resolves, so it is taken from the queue).
 */
function pump(w: XsWatch, fn: (e: XsWatchEvent) => void): void {
  void (async () => {
    for (;;) {
      let e: XsWatchEvent;
      try {
        e = await w.next();
      } catch {
        return; // the watch ended
      }
      fn(e);
    }
  })();
}

function errnoOf(e: unknown): number {
  const n = (e as { errno?: unknown })?.errno;
  return typeof n === "number" && n > 0 ? -n : -EIO;
}

/** One device as one end sees it. */
export class XenbusDevice {
  readonly kernel: XenbusKernel;
  readonly driver: XenbusDriver;
  readonly end: "frontend" | "backend";
  /** Absolute path of this end's directory. */
  readonly nodename: string;
  /** The device number (`<devid>`). */
  readonly devid: number;
  /** The other end's domain and directory (read at probe time; -1 / "" until then). */
  otherendId = -1;
  otherend = "";
  /** The state this end last wrote. */
  state = XenbusStateInitialising;
  /** The other end's state as last read. */
  otherendState = XenbusStateUnknown;
  /** The last error this end reported (xenbus_dev_error), "" if none. */
  lastError = "";
  /** Driver-private data (the mapped ring, the bound irq, ...). */
  priv: unknown;
  private transportUp = false;
  private chain: Promise<void> = Promise.resolve();
  private watch: XsWatch | null = null;
  private gone = false;
  private readonly listeners: ((dev: XenbusDevice) => void)[] = [];

  constructor(
    kernel: XenbusKernel,
    driver: XenbusDriver,
    end: "frontend" | "backend",
    nodename: string,
    devid: number,
  ) {
    this.kernel = kernel;
    this.driver = driver;
    this.end = end;
    this.nodename = nodename;
    this.devid = devid;
  }

  /** True once the device was unregistered (its directory went away or it was stopped). */
  get removed(): boolean {
    return this.gone;
  }

  /** Called after every event this device handled. */
  onChange(fn: (dev: XenbusDevice) => void): void {
    this.listeners.push(fn);
  }

  /** Reads `<nodename>/<key>`: the value, or null when it is missing or unreadable. */
  async read(key: string): Promise<string | null> {
    return this.readPath(`${this.nodename}/${key}`);
  }

  /** Reads `<otherend>/<key>` the same way. */
  async readOtherend(key: string): Promise<string | null> {
    return this.otherend === "" ? null : this.readPath(`${this.otherend}/${key}`);
  }

  /** Writes `<nodename>/<key>`; 0 or -errno. */
  async write(key: string, value: string): Promise<number> {
    try {
      await this.kernel.client.write(`${this.nodename}/${key}`, value);
      return 0;
    } catch (e) {
      return errnoOf(e);
    }
  }

  private async readPath(path: string): Promise<string | null> {
    try {
      return await this.kernel.client.read(path);
    } catch {
      return null;
    }
  }

  /**
   * xenbus_switch_state: writes `state` in a transaction (retried on EAGAIN) that first reads
   * the node, so a device whose directory was removed is not recreated. 0 or -errno.
   */
  async switchState(state: number): Promise<number> {
    if (state === this.state) return 0;
    try {
      await this.kernel.client.transaction(async (tx) => {
        await tx.read(`${this.nodename}/state`);
        await tx.write(`${this.nodename}/state`, String(state));
      });
      this.state = state;
      return 0;
    } catch (e) {
      const err = errnoOf(e);
      await this.error(err, `writing new state ${xenbusStrstate(state)}`);
      return err;
    }
  }

  /** The path xenbus_dev_error writes: `<own home>/error/<nodename relative to home>/error`. */
  get errorPath(): string {
    const h = home(this.kernel.domain.domid);
    const rel = this.nodename.startsWith(`${h}/`)
      ? this.nodename.slice(h.length + 1)
      : this.nodename;
    return `${h}/error/${rel}/error`;
  }

  /** xenbus_dev_error: `"<errno> <message>"` into the error node. Never throws. */
  async error(err: number, message: string): Promise<void> {
    this.lastError = `${-err} ${message}`;
    try {
      await this.kernel.client.write(this.errorPath, this.lastError);
    } catch {
      // The error node is advice for the toolstack; losing it changes nothing else.
    }
  }

  /** xenbus_dev_fatal: report, then Closing. */
  async fatal(err: number, message: string): Promise<void> {
    await this.error(err, message);
    await this.takeDown();
    await this.switchState(XenbusStateClosing);
  }

  /** @internal Queue `fn` after every event already queued for this device. */
  enqueue(fn: () => Promise<void>): Promise<void> {
    this.chain = this.chain
      .then(() => (this.gone ? undefined : fn()))
      .catch(async (e) => {
        // A driver bug must not wedge the device: report it like a fatal error.
        await this.fatal(-EIO, `driver failed: ${(e as Error)?.message ?? String(e)}`);
      })
      .then(() => {
        for (const l of this.listeners) l(this);
      });
    return this.chain;
  }

  /** @internal Read the other end's details, watch its state, probe the driver. */
  async register(): Promise<void> {
    const idKey = this.end === "frontend" ? "backend-id" : "frontend-id";
    const pathKey = this.end === "frontend" ? "backend" : "frontend";
    const id = parseXenbusUint(await this.read(idKey), 0x7ff0);
    const path = await this.read(pathKey);
    if (id < 0 || path === null || !path.startsWith("/") || path.includes("\0")) {
      await this.fatal(-ENOENT, `reading other end details from ${this.nodename}`);
      return;
    }
    this.otherendId = id;
    this.otherend = path;
    const rc = await this.driver.probe(this);
    if (rc < 0) {
      if (this.lastError === "") await this.fatal(rc, "probing the device");
      return;
    }
    if (this.end === "backend") await this.switchState(XenbusStateInitWait);
    try {
      this.watch = await this.kernel.client.watch(`${this.otherend}/state`);
    } catch (e) {
      await this.fatal(errnoOf(e), `watching ${this.otherend}/state`);
      return;
    }
    pump(this.watch, () => void this.enqueue(() => this.otherendEvent()));
  }

  private async otherendEvent(): Promise<void> {
    const s = parseXenbusState(await this.readOtherend("state"));
    this.otherendState = s;
    this.driver.otherendChanged?.(this, s);
    if (this.end === "frontend") await this.frontendSees(s);
    else await this.backendSees(s);
  }

  /** blkfront/netfront's backend_changed, over the driver's steps. */
  private async frontendSees(s: number): Promise<void> {
    switch (s) {
      case XenbusStateInitWait:
        if (this.state !== XenbusStateInitialising && this.state !== XenbusStateClosed) return;
        await this.bringUp();
        return;
      case XenbusStateConnected:
        if (this.state === XenbusStateInitialising || this.state === XenbusStateClosed) {
          await this.bringUp(); // the backend skipped InitWait
        }
        if (this.state !== XenbusStateInitialised) return;
        await this.step(() => this.driver.connect(this), "connecting to the backend");
        if (this.state === XenbusStateInitialised) await this.switchState(XenbusStateConnected);
        return;
      case XenbusStateClosing:
      case XenbusStateClosed:
      case XenbusStateUnknown:
        // xenbus_frontend_closed. A frontend already Closed stays so until a backend waits again.
        if (this.state === XenbusStateClosed) return;
        if (s === XenbusStateUnknown && this.state === XenbusStateInitialising) return;
        await this.takeDown();
        await this.switchState(XenbusStateClosed);
        return;
      default:
        if (!isXenbusState(s)) await this.fatal(-EINVAL, `saw state ${s} at backend`);
    }
  }

  private async bringUp(): Promise<void> {
    const init = this.driver.initialise;
    if (init === undefined) {
      await this.switchState(XenbusStateInitialised);
      return;
    }
    let rc = 0;
    const before = this.lastError;
    try {
      await this.kernel.client.transaction(async (tx) => {
        // A retried transaction starts the transport afresh.
        await this.takeDown();
        rc = await init.call(this.driver, this, tx);
        if (rc >= 0) this.transportUp = true;
        if (rc < 0) await tx.abort();
      });
    } catch (e) {
      rc = errnoOf(e);
    }
    if (rc < 0) {
      if (this.lastError === before) await this.fatal(rc, "writing the transport keys");
      else await this.switchState(XenbusStateClosing);
      return;
    }
    await this.switchState(XenbusStateInitialised);
  }

  /** blkback/netback's frontend_changed. */
  private async backendSees(s: number): Promise<void> {
    switch (s) {
      case XenbusStateInitialising:
        if (this.state === XenbusStateClosed) await this.switchState(XenbusStateInitWait);
        return;
      case XenbusStateInitialised:
      case XenbusStateConnected:
        if (
          this.state !== XenbusStateInitWait &&
          this.state !== XenbusStateInitialising &&
          this.state !== XenbusStateClosed
        ) {
          return;
        }
        await this.takeDown();
        if (await this.step(() => this.driver.connect(this), "connecting to the frontend")) {
          this.transportUp = true;
          await this.switchState(XenbusStateConnected);
        }
        return;
      case XenbusStateClosing:
        await this.takeDown();
        if (this.state !== XenbusStateClosed) await this.switchState(XenbusStateClosing);
        return;
      case XenbusStateClosed:
        // A frontend that is Closed while this end waits has not started yet: keep waiting.
        if (this.state === XenbusStateInitWait) return;
        await this.takeDown();
        await this.switchState(XenbusStateClosed);
        if ((await this.read("online")) === "0") await this.unregister();
        return;
      case XenbusStateUnknown:
        // The frontend's directory is gone (or unreadable): the device is over.
        await this.takeDown();
        await this.switchState(XenbusStateClosed);
        await this.unregister();
        return;
      default:
        if (!isXenbusState(s)) await this.fatal(-EINVAL, `saw state ${s} at frontend`);
    }
  }

  /** Runs a driver step; on failure reports it (unless the driver did) and goes Closing. */
  private async step(fn: () => Promise<number> | number, what: string): Promise<boolean> {
    const before = this.lastError;
    const rc = await fn();
    if (rc >= 0) {
      if (this.end === "frontend") this.transportUp = true;
      return true;
    }
    if (this.lastError === before) await this.fatal(rc, what);
    else if (this.state !== XenbusStateClosing) {
      await this.takeDown();
      await this.switchState(XenbusStateClosing);
    }
    return false;
  }

  private async takeDown(): Promise<void> {
    if (!this.transportUp) return;
    this.transportUp = false;
    await this.driver.disconnect(this);
  }

  /**
   * This end goes away on purpose (the frontend's remove, the backend module's unload):
   * disconnect, then Closing (frontend, which waits for the backend) or Closed (backend).
   */
  async close(): Promise<void> {
    await this.enqueue(async () => {
      await this.takeDown();
      await this.switchState(this.end === "frontend" ? XenbusStateClosing : XenbusStateClosed);
    });
  }

  /** Stop watching; the device is no longer this kernel's (device_unregister). */
  async unregister(): Promise<void> {
    if (this.gone) return;
    this.gone = true;
    await this.takeDown();
    const w = this.watch;
    this.watch = null;
    await w?.unwatch().catch(() => {});
  }
}

/**
 * One kernel's xenbus for one device type: the frontend bus of a domU (a watch on its
 * `device/<type>`) or the backend bus of a driver domain (a watch on its `backend/<type>`),
 * which finds devices as the toolstack writes them and runs one XenbusDevice each.
 */
export class XenbusBus {
  readonly kernel: XenbusKernel;
  readonly driver: XenbusDriver;
  readonly end: "frontend" | "backend";
  /** Devices by `<devid>` (frontend) or `<domid>/<devid>` (backend). */
  readonly devices = new Map<string, XenbusDevice>();
  private readonly root: string;
  private watch: XsWatch | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(kernel: XenbusKernel, driver: XenbusDriver, end: "frontend" | "backend") {
    if (kernel?.client === undefined || kernel.domain === undefined) {
      throw xenbusError(
        "XENBUS_BAD_OPTION",
        "XenbusBus needs a kernel { hv, domain, client, evtchn, kick } and a driver.",
      );
    }
    if (typeof driver?.type !== "string" || !/^[a-z0-9-]+$/.test(driver.type)) {
      throw xenbusError(
        "XENBUS_BAD_OPTION",
        `a xenbus driver needs a device type such as "console" or "vbd", got ${JSON.stringify(driver?.type)}.`,
      );
    }
    this.kernel = kernel;
    this.driver = driver;
    this.end = end;
    this.root = `${home(kernel.domain.domid)}/${end === "frontend" ? "device" : "backend"}/${driver.type}`;
  }

  /** xenbus_register_frontend / _backend: watch the type's directory (fires once at once). */
  async start(): Promise<void> {
    if (this.watch !== null) return;
    this.watch = await this.kernel.client.watch(this.root);
    pump(this.watch, (e) => {
      this.chain = this.chain.then(() => this.event(e.path)).catch(() => {});
    });
  }

  /** Resolves when every event seen so far has been handled by the bus (not the devices). */
  async settled(): Promise<void> {
    await this.chain;
  }

  /** The device for `devid` (and, on a backend, the frontend domain `domid`). */
  device(devid: number, domid?: number): XenbusDevice | undefined {
    return this.devices.get(this.end === "frontend" ? `${devid}` : `${domid}/${devid}`);
  }

  private async event(path: string): Promise<void> {
    if (path === this.root) {
      await this.scan();
      return;
    }
    if (!path.startsWith(`${this.root}/`)) return;
    const parts = path.slice(this.root.length + 1).split("/");
    const depth = this.end === "frontend" ? 1 : 2;
    if (parts.length < depth) return;
    await this.consider(parts.slice(0, depth));
  }

  private async scan(): Promise<void> {
    const list = async (p: string) => {
      try {
        return await this.kernel.client.directory(p);
      } catch {
        return [];
      }
    };
    for (const a of await list(this.root)) {
      if (this.end === "frontend") await this.consider([a]);
      else for (const b of await list(`${this.root}/${a}`)) await this.consider([a, b]);
    }
  }

  private async consider(ids: string[]): Promise<void> {
    const key = ids.join("/");
    const nodename = `${this.root}/${key}`;
    const dev = this.devices.get(key);
    let present = false;
    try {
      present = await this.kernel.client.exists(
        `${nodename}/${this.end === "frontend" ? "backend" : "frontend"}`,
      );
    } catch {
      present = false;
    }
    if (dev !== undefined) {
      if (!present || dev.removed) {
        this.devices.delete(key);
        await dev.enqueue(async () => {
          await dev.unregister();
        });
      }
      return;
    }
    if (!present || !ids.every((s) => /^\d{1,5}$/.test(s))) return;
    const devid = Number.parseInt(ids[ids.length - 1]!, 10);
    const d = new XenbusDevice(this.kernel, this.driver, this.end, nodename, devid);
    this.devices.set(key, d);
    void d.enqueue(() => d.register());
  }

  /** Every device closes (close()), then the bus stops watching. */
  async stop(): Promise<void> {
    const w = this.watch;
    this.watch = null;
    await w?.unwatch().catch(() => {});
    await this.chain;
    for (const d of this.devices.values()) {
      await d.close();
      await d.unregister();
    }
    this.devices.clear();
  }
}

/** A frontend bus: this domU's devices of the driver's type. */
export function xenbusRegisterFrontend(kernel: XenbusKernel, driver: XenbusDriver): XenbusBus {
  return new XenbusBus(kernel, driver, "frontend");
}

/** A backend bus: the devices of the driver's type this domain serves. */
export function xenbusRegisterBackend(kernel: XenbusKernel, driver: XenbusDriver): XenbusBus {
  return new XenbusBus(kernel, driver, "backend");
}
