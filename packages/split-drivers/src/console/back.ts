/*
 * The dom0 side of Xen PV consoles, as xenconsoled does it (tools/console/daemon/io.c):
 * console 0 of a domain from `/local/domain/<domid>/console/{ring-ref,port}` (mapped through
 * the reserved grant GNTTAB_RESERVED_CONSOLE the toolstack seeded, else, dom0 being
 * privileged, by the frame number), further consoles as xenbus backends of type `console`
 * (`ring-ref` a grant, `port`). Each console is a XenconsStream: the bytes the domain wrote
 * to `out`, and a write function whose bytes go into `in`.
 *
 * Invariant: the backend reads only `out`, `out_prod`, `in_cons` and writes only `in`,
 * `in_prod`, `out_cons` of a page it has mapped; it never reads outside `out`. A domain whose
 * out_prod - out_cons is more than sizeof(out) gets at most one ring's worth of bytes and its
 * out_cons set to out_prod (the rest is dropped and counted in `badIndices`). Nothing a
 * domain writes makes the backend throw.
 */
import { EINVAL, ENOENT, GNTTAB_RESERVED_CONSOLE } from "@hyperlab/abi";
import type { XenbusDevice, XenbusDriver, XenbusKernel } from "../xenbus/device";
import { type MappedRing, xenbusMapRing, xenbusUnmapRing } from "../xenbus/gnttab";
import { parseXenbusUint } from "../xenbus/state";
import { XENCONS_OUT_BYTES, XenconsInterface } from "./xencons";

/** One domain console as dom0 sees it: what `hyperlab console DOMAIN` attaches to. */
export class XenconsStream {
  readonly domid: number;
  readonly devid: number;
  /** Times the domain's indices were impossible (out_prod - out_cons > sizeof(out)). */
  badIndices = 0;
  /** Bytes the domain has written so far. */
  outputBytes = 0;
  private page: XenconsInterface | null = null;
  private notifyFn: (() => void) | null = null;
  private log: Uint8Array[] = [];
  private readonly outBuf = new Uint8Array(XENCONS_OUT_BYTES);
  private input = new Uint8Array(0);
  private readonly listeners: ((bytes: Uint8Array) => void)[] = [];

  /** @internal */
  constructor(domid: number, devid: number) {
    this.domid = domid;
    this.devid = devid;
  }

  /** True while a page is mapped and a port bound. */
  get connected(): boolean {
    return this.page !== null;
  }

  /** Every output byte from now on, as it arrives (each call gets its own copy). */
  onOutput(fn: (bytes: Uint8Array) => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** All output so far. */
  output(): Uint8Array {
    const all = new Uint8Array(this.outputBytes);
    let at = 0;
    for (const c of this.log) {
      all.set(c, at);
      at += c.length;
    }
    this.log = [all];
    return all.slice();
  }

  /** All output so far as text (UTF-8). */
  text(): string {
    return new TextDecoder().decode(this.output());
  }

  /** Input for the domain (a string is UTF-8): queued, pushed into `in` as it fits. */
  write(data: Uint8Array | string): number {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const next = new Uint8Array(this.input.length + bytes.length);
    next.set(this.input);
    next.set(bytes, this.input.length);
    this.input = next;
    this.pushIn();
    return bytes.length;
  }

  /** Input bytes still waiting for room in `in`. */
  get pendingInput(): number {
    return this.input.length;
  }

  /** @internal */
  attach(page: XenconsInterface, notify: () => void): void {
    this.page = page;
    this.notifyFn = notify;
  }

  /** @internal */
  detach(): void {
    this.page = null;
    this.notifyFn = null;
  }

  /** Kick the domain through the console's port (nothing while detached). */
  notify(): void {
    this.notifyFn?.();
  }

  private pushIn(): void {
    const page = this.page;
    if (page === null || this.input.length === 0) return;
    const n = page.writeIn(this.input);
    if (n === 0) return;
    this.input = this.input.slice(n);
    this.notifyFn?.();
  }

  /** The port's handler (handle_ring_read): drain `out`, then push waiting input. */
  handleEvent(): void {
    const page = this.page;
    if (page === null) return;
    const pending = page.outPending();
    let n = 0;
    if (pending > XENCONS_OUT_BYTES) {
      this.badIndices++;
      n = page.readOut(this.outBuf, 0, XENCONS_OUT_BYTES);
      page.outCons = page.outProd;
    } else if (pending > 0) {
      n = page.readOut(this.outBuf, 0, pending);
    }
    if (n > 0) {
      const chunk = this.outBuf.slice(0, n);
      this.log.push(chunk);
      this.outputBytes += n;
      for (const l of this.listeners) l(chunk.slice());
      this.notifyFn?.();
    }
    this.pushIn();
  }
}

interface Binding {
  stream: XenconsStream;
  ring: MappedRing | null;
  irq: number;
}

/** xenconsoled in dom0's kernel: console 0 of each domain and a xenbus backend for the rest. */
export class XenconsBack implements XenbusDriver {
  readonly type = "console";
  /** Optional hook: every frontend state the backend saw (for tracing). */
  otherendChanged?: (dev: XenbusDevice, state: number) => void;
  private readonly kernel: XenbusKernel;
  private readonly streams = new Map<string, XenconsStream>();
  private readonly bound = new Map<string, Binding>();

  constructor(kernel: XenbusKernel) {
    this.kernel = kernel;
  }

  /** The stream of console `devid` of `domid` (created on first ask, attached once connected). */
  console(domid: number, devid = 0): XenconsStream {
    const key = `${domid}/${devid}`;
    let s = this.streams.get(key);
    if (s === undefined) {
      s = new XenconsStream(domid, devid);
      this.streams.set(key, s);
    }
    return s;
  }

  /**
   * Console 0 of `domid`: reads its `console/ring-ref` (an mfn) and `console/port`, maps the
   * page through grant GNTTAB_RESERVED_CONSOLE (by frame when the grant map fails and the
   * frame is the domain's), binds the port. Returns the stream, or a negative errno.
   */
  async attachConsole0(domid: number): Promise<XenconsStream | number> {
    const dir = `/local/domain/${domid}/console`;
    const read = async (k: string) => {
      try {
        return await this.kernel.client.read(`${dir}/${k}`);
      } catch {
        return null;
      }
    };
    const mfn = parseXenbusUint(await read("ring-ref"), 2 ** 40);
    const port = parseXenbusUint(await read("port"));
    if (mfn < 0 || port < 0) return -ENOENT;
    const { hv } = this.kernel;
    let ring: MappedRing | null = null;
    let frame = -1;
    const m = xenbusMapRing(hv, this.kernel.domain, domid, GNTTAB_RESERVED_CONSOLE);
    if (typeof m !== "number" && m.mfn === mfn) {
      ring = m;
      frame = m.mfn;
    } else {
      if (typeof m !== "number") xenbusUnmapRing(hv, this.kernel.domain, m);
      // xc_map_foreign_range: only a privileged domain maps another's frame, and only its own.
      if (!this.kernel.domain.isPrivileged) return typeof m === "number" ? m : -EINVAL;
      if (!(hv.frames.validMfn(mfn) && hv.frames.ownedBy(mfn, domid))) return -EINVAL;
      frame = mfn;
    }
    const rc = this.bind(domid, 0, frame, ring, port);
    return rc < 0 ? rc : this.console(domid, 0);
  }

  /** How console `devid` of `domid` is mapped: by grant, by frame (console 0 only), or not. */
  mappedBy(domid: number, devid = 0): "grant" | "mfn" | null {
    const b = this.bound.get(`${domid}/${devid}`);
    return b === undefined ? null : b.ring === null ? "mfn" : "grant";
  }

  /** Stop serving console `devid` of `domid` (unbind, unmap); the stream keeps its log. */
  detach(domid: number, devid = 0): void {
    const key = `${domid}/${devid}`;
    const b = this.bound.get(key);
    if (b === undefined) return;
    this.bound.delete(key);
    b.stream.detach();
    this.kernel.evtchn.unbindFromIrqHandler(b.irq);
    if (b.ring !== null) xenbusUnmapRing(this.kernel.hv, this.kernel.domain, b.ring);
  }

  private bind(
    domid: number,
    devid: number,
    frame: number,
    ring: MappedRing | null,
    port: number,
  ): number {
    this.detach(domid, devid);
    const stream = this.console(domid, devid);
    const page = new XenconsInterface(this.kernel.hv.machine.ram.frameBytes(frame));
    const irq = this.kernel.evtchn.bindInterdomainEvtchnToIrqHandler(domid, port, () =>
      stream.handleEvent(),
    );
    if (irq < 0) {
      if (ring !== null) xenbusUnmapRing(this.kernel.hv, this.kernel.domain, ring);
      return irq;
    }
    this.bound.set(`${domid}/${devid}`, { stream, ring, irq });
    stream.attach(page, () => {
      this.kernel.evtchn.notifyRemoteViaIrq(irq);
      this.kernel.kick();
    });
    // Whatever the domain wrote before we bound is read now (xenconsoled reads on connect).
    stream.handleEvent();
    this.kernel.kick();
    return 0;
  }

  // ---- the xenbus backend for consoles 1.. ----

  probe(): number {
    return 0;
  }

  async connect(dev: XenbusDevice): Promise<number> {
    const ref = parseXenbusUint(await dev.readOtherend("ring-ref"));
    if (ref < 0) {
      await dev.fatal(-EINVAL, `reading ${dev.otherend}/ring-ref`);
      return -EINVAL;
    }
    const port = parseXenbusUint(await dev.readOtherend("port"));
    if (port < 0) {
      await dev.fatal(-EINVAL, `reading ${dev.otherend}/port`);
      return -EINVAL;
    }
    const m = xenbusMapRing(this.kernel.hv, this.kernel.domain, dev.otherendId, ref);
    if (typeof m === "number") {
      await dev.fatal(m, `mapping ring-ref ${ref} of domain ${dev.otherendId}`);
      return m < 0 ? m : -EINVAL;
    }
    const rc = this.bind(dev.otherendId, dev.devid, m.mfn, m, port);
    if (rc < 0) await dev.fatal(rc, `binding port ${port} of domain ${dev.otherendId}`);
    return rc;
  }

  disconnect(dev: XenbusDevice): void {
    this.detach(dev.otherendId, dev.devid);
  }
}
