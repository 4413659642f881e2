/*
 * The guest side of a Xen PV console, as Linux's drivers/tty/hvc/hvc_xen.c does it: console
 * 0 on the page and port start_info names (console.domU.mfn / evtchn), further consoles as
 * xenbus devices `device/console/<n>` whose page the frontend grants (`ring-ref`) and whose
 * port it allocates (`port`). Output goes into `out` and the backend is notified; input is
 * taken from `in` when the backend notifies.
 *
 * Invariant: the frontend writes only `out` and `out_prod`, `in_cons`; bytes that do not fit
 * wait in the frontend's own queue (hvc's buffer) and go out, in order, as the backend frees
 * room. A backend's indices never make it read outside `in`: an impossible in_prod - in_cons
 * (more than the ring holds) is refused and the ring is skipped to in_prod.
 */
import { ENOMEM, start_info_x86_32, start_info_x86_64 } from "@hyperlab/abi";
import type { XsOps } from "@hyperlab/xenstore";
import type { XenbusDevice, XenbusDriver, XenbusKernel } from "../xenbus/device";
import { xenbusError } from "../xenbus/errors";
import type { GnttabGuest } from "../xenbus/gnttab";
import { XENCONS_IN_BYTES, XenconsInterface } from "./xencons";

/** One console as the guest sees it: write output, receive input. */
export class XenconsFrontConsole {
  readonly page: XenconsInterface;
  readonly mfn: number;
  /** The irq bound to the console's port (-1 once closed). */
  irq: number;
  /** Times the backend's indices were impossible (in_prod - in_cons > sizeof(in)). */
  badIndices = 0;
  private readonly kernel: XenbusKernel;
  private queue = new Uint8Array(4096);
  private qHead = 0;
  private qTail = 0;
  private readonly inBuf = new Uint8Array(XENCONS_IN_BYTES);
  private readonly listeners: ((bytes: Uint8Array) => void)[] = [];

  /** @internal */
  constructor(kernel: XenbusKernel, mfn: number) {
    this.kernel = kernel;
    this.mfn = mfn;
    this.page = new XenconsInterface(kernel.hv.machine.ram.frameBytes(mfn));
    this.irq = -1;
  }

  /** Bytes written and not yet in the ring. */
  get queued(): number {
    return this.qTail - this.qHead;
  }

  /** Input from the backend (each call gets a fresh copy). */
  onInput(fn: (bytes: Uint8Array) => void): void {
    this.listeners.push(fn);
  }

  /** hvc's write: queue `data` (a string is UTF-8), push what fits, notify. Returns data's length. */
  write(data: Uint8Array | string): number {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    if (this.qTail + bytes.length > this.queue.length) {
      const live = this.queue.subarray(this.qHead, this.qTail);
      const next = new Uint8Array(Math.max(this.queue.length, (live.length + bytes.length) * 2));
      next.set(live);
      this.queue = next;
      this.qTail = live.length;
      this.qHead = 0;
    }
    this.queue.set(bytes, this.qTail);
    this.qTail += bytes.length;
    this.pushOut();
    return bytes.length;
  }

  /** __write_console over the queue; notifies when something went in. */
  private pushOut(): void {
    if (this.qHead === this.qTail || this.irq < 0) return;
    const n = this.page.writeOut(this.queue, this.qHead, this.qTail);
    this.qHead += n;
    if (this.qHead === this.qTail) this.qHead = this.qTail = 0;
    if (n > 0) this.notify();
  }

  /** notify_daemon: kick the backend through the console's port. */
  notify(): void {
    if (this.irq < 0) return;
    this.kernel.evtchn.notifyRemoteViaIrq(this.irq);
    this.kernel.kick();
  }

  /** The irq handler: take input (domU_read_console), then push queued output. */
  handleEvent(): void {
    const pending = this.page.inPending();
    if (pending > XENCONS_IN_BYTES) {
      this.badIndices++;
      this.page.inCons = this.page.inProd;
    } else if (pending > 0) {
      const n = this.page.readIn(this.inBuf, 0, pending);
      const copy = this.inBuf.slice(0, n);
      for (const l of this.listeners) l(copy);
      this.notify();
    }
    this.pushOut();
  }

  /** @internal Bind `port` (console 0: the start_info one) to this console's handler. */
  bindPort(port: number): number {
    const irq = this.kernel.evtchn.bindEvtchnToIrqHandler(port, () => this.handleEvent());
    if (irq >= 0) this.irq = irq;
    return irq;
  }

  /** @internal Allocate a port the backend domain binds to. Returns the port or -errno. */
  listen(backend: number): number {
    const irq = this.kernel.evtchn.bindListeningPortToIrqHandler(backend, () => this.handleEvent());
    if (irq < 0) return irq;
    this.irq = irq;
    return this.kernel.evtchn.evtchnFromIrq(irq);
  }

  /** @internal The queued output not yet in the ring, removed from this console. */
  takeQueued(): Uint8Array {
    const out = this.queue.slice(this.qHead, this.qTail);
    this.qHead = this.qTail = 0;
    return out;
  }

  /** Unbind the port (the page stays the domain's). */
  close(): void {
    if (this.irq < 0) return;
    const irq = this.irq;
    this.irq = -1;
    this.kernel.evtchn.unbindFromIrqHandler(irq);
  }
}

/**
 * Console 0 of a PV domain (xen_pv_console_init): the page and port from start_info. Throws
 * a XenbusError when start_info names no console (the builder was given none).
 */
export function xenconsConsole0(kernel: XenbusKernel, startInfoMfn: number): XenconsFrontConsole {
  const { hv, domain } = kernel;
  const ram = hv.machine.ram;
  const f = (domain.addressSize === 32 ? start_info_x86_32 : start_info_x86_64).fields;
  const base = startInfoMfn * 4096;
  const mfnField = f["console.domU.mfn"]!;
  const mfn =
    mfnField.size === 8 ? ram.read64(base + mfnField.offset) : ram.read32(base + mfnField.offset);
  const port = ram.read32(base + f["console.domU.evtchn"]!.offset);
  const own = hv.frames.validMfn(mfn) && hv.frames.ownedBy(mfn, domain.domid);
  if (mfn === 0 || port === 0 || !own) {
    throw xenbusError(
      "XENBUS_BAD_DEVICE",
      `Domain ${domain.domid}'s start_info names no console of its own (mfn ${mfn}, port ${port}); build it with consoleMfn and consoleEvtchn.`,
    );
  }
  const c = new XenconsFrontConsole(kernel, mfn);
  const irq = c.bindPort(port);
  if (irq < 0) {
    throw xenbusError(
      "XENBUS_BAD_DEVICE",
      `Binding domain ${domain.domid}'s console port ${port} failed (${irq}).`,
    );
  }
  kernel.kick();
  return c;
}

/**
 * hvc_xen's xenbus frontend for consoles 1.. (`device/console/<n>`): on the backend's
 * InitWait it takes a page, grants it to the backend, allocates a port and writes
 * `ring-ref`, `port` (and `protocol`) in one transaction. `consoles` maps devid to console.
 */
export class XenconsFrontDriver implements XenbusDriver {
  readonly type = "console";
  readonly consoles = new Map<number, XenconsFrontConsole>();
  private readonly kernel: XenbusKernel;
  private readonly gnttab: GnttabGuest;
  private readonly allocFrame: () => number;
  private readonly pages = new Map<number, number>();
  private readonly refs = new Map<number, number>();

  constructor(kernel: XenbusKernel, gnttab: GnttabGuest, allocFrame?: () => number) {
    this.kernel = kernel;
    this.gnttab = gnttab;
    this.allocFrame = allocFrame ?? (() => kernel.hv.allocDomainPages(kernel.domain));
  }

  probe(): number {
    return 0;
  }

  initialise(dev: XenbusDevice, tx: XsOps): Promise<number> {
    return this.talkToBackend(dev, tx);
  }

  private async talkToBackend(dev: XenbusDevice, tx: XsOps): Promise<number> {
    let mfn = this.pages.get(dev.devid);
    if (mfn === undefined) {
      mfn = this.allocFrame();
      if (!(Number.isSafeInteger(mfn) && mfn > 0)) return -ENOMEM;
      this.pages.set(dev.devid, mfn);
    }
    this.kernel.hv.machine.ram.clearFrame(mfn);
    const ref = this.gnttab.grantForeignAccess(dev.otherendId, mfn);
    if (ref < 0) return ref;
    this.refs.set(dev.devid, ref);
    const c = new XenconsFrontConsole(this.kernel, mfn);
    const port = c.listen(dev.otherendId);
    if (port < 0) return port;
    const old = this.consoles.get(dev.devid);
    this.consoles.set(dev.devid, c);
    if (old !== undefined) c.write(old.takeQueued());
    await tx.write(`${dev.nodename}/ring-ref`, String(ref));
    await tx.write(`${dev.nodename}/port`, String(port));
    await tx.write(`${dev.nodename}/protocol`, "x86_64-abi");
    return 0;
  }

  connect(): number {
    return 0;
  }

  disconnect(dev: XenbusDevice): void {
    this.consoles.get(dev.devid)?.close();
    const ref = this.refs.get(dev.devid);
    if (ref !== undefined && this.gnttab.endForeignAccess(ref)) this.refs.delete(dev.devid);
  }
}
