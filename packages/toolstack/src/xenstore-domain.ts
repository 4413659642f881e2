/*
 * xenstored in dom0, wired to domains through the hypervisor, and the toolstack's part of
 * giving a new domain its xenstore connection (libxl's store setup + XS_INTRODUCE).
 *
 * Follows Xen 4.17: tools/libs/light/libxl_create.c (libxl__domain_make: the domain's home
 * and its permissions), libxl_dom.c (libxl__build_pre: EVTCHNOP_alloc_unbound for the store
 * port with remote_dom = the xenstore domain; libxl__build_post: store/port, store/ring-ref,
 * xs_introduce_domain), tools/xenstore/xenstored_domain.c (introduce_domain/new_domain: map
 * the page, EVTCHNOP_bind_interdomain, mark connected, notify; domain_cleanup on VIRQ_DOM_EXC;
 * destroy_domain: unbind and unmap).
 *
 * Invariants:
 * - Every mapped interface holds one general page reference (get_page) on the domain's ring
 *   frame, taken at INTRODUCE and dropped exactly once, when the daemon closes the channel
 *   (RELEASE, or cleanup of a dying or vanished domain). So, as with Xen's foreign mappings,
 *   a destroyed domain stays dying until xenstored lets go of its page.
 * - Dom0's end of every store channel is bound by a hypercall from dom0's vCPU and closed by
 *   one when the channel closes; dom0's incoming events reach the daemon only through dom0's
 *   guest-side upcall handler (XenEvtchnGuest irq handler -> XenstoreRing.onEvent).
 * - Whatever a domain writes into its page reaches only XenstoreRing, which never throws on
 *   it (bad indices or lengths mark the page XENSTORE_ERROR_* and drop the connection).
 */
import {
  __HYPERVISOR_event_channel_op,
  EVTCHNOP_alloc_unbound,
  start_info_x86_32,
  start_info_x86_64,
  VIRQ_DOM_EXC,
} from "@hyperlab/abi";
import { type Domain, HyperlabError, type Hypervisor } from "@hyperlab/core";
import type { EvtchnService } from "@hyperlab/evtchn";
import { XenEvtchnGuest } from "@hyperlab/guest";
import {
  type DomainChannel,
  domainPath,
  Xenstored,
  type XenstoredOptions,
  XenstoreError,
  XenstoreRing,
  XsClient,
  type XsConnection,
} from "@hyperlab/xenstore";
import type { UpcallLoop } from "./upcall-loop";

export interface Dom0XenstoredOptions {
  hv: Hypervisor;
  /** The domain xenstored runs in: privileged, with its guest-side event channels set up. */
  dom0: Domain;
  /** Delivers dom0's upcalls (and everyone else's). */
  loop: UpcallLoop;
  /**
   * Dom0's guest-side event channels. If absent one is made (the build's ABI; FIFO pages
   * come from dom0's allowance), initialised and registered with `loop`.
   */
  evtchn?: XenEvtchnGuest;
  /** The dom0 vCPU xenstored's hypercalls run on (default 0). */
  cpu?: number;
  /** The daemon's other options (quotas, privDomid, log). */
  xenstored?: Omit<XenstoredOptions, "mapDomainInterface" | "domainExists" | "domains">;
  /**
   * Bind VIRQ_DOM_EXC in dom0 and run `domainCleanup()` from its handler, as C xenstored
   * does (default true). Pass false if dom0's kernel already binds it; then call
   * domainCleanup() from that handler.
   */
  bindDomExc?: boolean;
}

/** One mapped domain interface, as `Dom0Xenstored.interfaces()` lists it. */
export interface XenstoreInterfaceInfo {
  domid: number;
  /** The domain's ring frame (the gfn INTRODUCE named; gfn = mfn for PV). */
  mfn: number;
  /** The domain's end of the store channel (INTRODUCE's port). */
  remotePort: number;
  /** Dom0's end, bound with EVTCHNOP_bind_interdomain. */
  localPort: number;
  /** Dom0's irq for it. */
  irq: number;
}

/** Dom0's side of one domain's xenstore connection: the page and dom0's end of the channel. */
class DomainInterface implements DomainChannel {
  readonly ring: XenstoreRing;
  irq = -1;
  localPort = 0;
  remotePort: number;
  private closed = false;

  constructor(
    private readonly host: Dom0Xenstored,
    readonly domid: number,
    readonly mfn: number,
    remotePort: number,
  ) {
    this.remotePort = remotePort;
    this.ring = new XenstoreRing(host.hv.machine.ram, mfn, { notify: () => this.notify() });
  }

  /** new_domain's xenevtchn_bind_interdomain, from dom0's vCPU. Returns 0 or -errno. */
  bind(port: number): number {
    const g = this.host.evtchn;
    const irq = g.bindInterdomainEvtchnToIrqHandler(
      this.domid,
      port,
      () => this.ring.onEvent(),
      this.host.cpu,
    );
    if (irq < 0) return irq;
    this.irq = irq;
    this.localPort = g.evtchnFromIrq(irq);
    this.remotePort = port;
    this.ring.rebind(port);
    // Binding raises an event on dom0's new port (Xen's evtchn_bind_interdomain).
    this.host.loop.kick();
    return 0;
  }

  private unbind(): void {
    if (this.irq < 0) return;
    this.host.evtchn.unbindFromIrqHandler(this.irq);
    this.irq = -1;
    this.localPort = 0;
  }

  /** xenevtchn_notify from dom0: EVTCHNOP_send on dom0's end. */
  private notify(): void {
    if (this.irq < 0 || this.closed) return;
    this.host.evtchn.notifyRemoteViaIrq(this.irq, this.host.cpu);
    this.host.loop.kick();
  }

  attach(conn: XsConnection): void {
    this.ring.attach(conn);
  }

  reset(): void {
    this.ring.reset();
  }

  connected(): void {
    this.ring.connected();
  }

  rebind(port: number): void {
    // introduce_domain on a live domain: unbind the old port, bind the new one.
    this.unbind();
    this.remotePort = port;
    if (this.bind(port) < 0) this.ring.rebind(0);
  }

  markError(err: number): void {
    this.ring.markError(err);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ring.close();
    this.unbind();
    this.host.hv.frames.putPage(this.mfn);
    this.host.forget(this);
  }
}

/**
 * C xenstored running in dom0: a Xenstored whose INTRODUCE maps a domain's ring frame and
 * binds dom0's end of the store channel by hypercall, and whose VIRQ_DOM_EXC handler
 * releases domains that died.
 */
export class Dom0Xenstored {
  readonly hv: Hypervisor;
  readonly dom0: Domain;
  readonly loop: UpcallLoop;
  readonly evtchn: XenEvtchnGuest;
  readonly cpu: number;
  readonly daemon: Xenstored;
  /** The toolstack's own privileged connection (libxl's ctx->xsh; a local socket in C). */
  readonly xs: XsClient;
  private readonly ifaces = new Map<number, DomainInterface>();
  private domExcIrq = -1;

  constructor(options: Dom0XenstoredOptions) {
    const { hv, dom0, loop } = options;
    if (hv === undefined || dom0 === undefined || loop === undefined) {
      throw new HyperlabError(
        "TOOLSTACK_BAD_OPTION",
        "Dom0Xenstored needs { hv, dom0, loop }: the hypervisor, the domain it runs in and an UpcallLoop.",
      );
    }
    if (!dom0.isPrivileged) {
      throw new HyperlabError(
        "TOOLSTACK_NOT_PRIVILEGED",
        `Domain ${dom0.domid} is not privileged; xenstored must run in dom0 (or another privileged domain).`,
      );
    }
    const cpu = options.cpu ?? 0;
    if (!(Number.isInteger(cpu) && cpu >= 0 && cpu < dom0.vcpus.length)) {
      throw new HyperlabError(
        "TOOLSTACK_BAD_OPTION",
        `cpu ${cpu} is not one of dom${dom0.domid}'s vCPUs (0..${dom0.vcpus.length - 1}).`,
      );
    }
    this.hv = hv;
    this.dom0 = dom0;
    this.loop = loop;
    this.cpu = cpu;
    this.evtchn = options.evtchn ?? makeGuestEvtchn(hv, dom0);
    loop.register(dom0, this.evtchn);
    this.daemon = new Xenstored({
      ...options.xenstored,
      domainExists: (domid) => {
        const d = hv.domain(domid);
        return d !== undefined && d.state !== "dead";
      },
      mapDomainInterface: (req) => this.mapInterface(req),
    });
    if (options.bindDomExc !== false) {
      const irq = this.evtchn.bindVirqToIrqHandler(VIRQ_DOM_EXC, 0, () => this.domainCleanup());
      if (irq < 0) {
        throw new HyperlabError(
          "TOOLSTACK_DOM_EXC",
          `Binding VIRQ_DOM_EXC in dom${dom0.domid} failed (${irq}). If dom0's kernel binds it already, pass bindDomExc: false and call domainCleanup() from its handler.`,
        );
      }
      this.domExcIrq = irq;
    }
    this.xs = XsClient.inMemory(this.daemon);
  }

  /** Dom0's irq for VIRQ_DOM_EXC, or -1 when not bound here. */
  get domExcIrqNumber(): number {
    return this.domExcIrq;
  }

  /** The domain interfaces mapped now, by domid. */
  interfaces(): XenstoreInterfaceInfo[] {
    return [...this.ifaces.values()]
      .sort((a, b) => a.domid - b.domid)
      .map((i) => ({
        domid: i.domid,
        mfn: i.mfn,
        remotePort: i.remotePort,
        localPort: i.localPort,
        irq: i.irq,
      }));
  }

  /**
   * C's domain_cleanup (run on VIRQ_DOM_EXC): a domain that is gone or dying loses its
   * connection (watches, transactions, nodes it owns; its page and channel are let go) and
   * @releaseDomain fires; one that shut down fires @releaseDomain once.
   */
  domainCleanup(): void {
    for (const i of [...this.ifaces.values()]) {
      const d = this.hv.domain(i.domid);
      if (d === undefined || d.state === "dying" || d.state === "dead") {
        this.daemon.domainDestroyed(i.domid);
      } else if (d.state === "shutdown") {
        this.daemon.domainShutdown(i.domid);
      }
    }
  }

  /** @internal Called by an interface when the daemon closed it. */
  forget(i: DomainInterface): void {
    if (this.ifaces.get(i.domid) === i) this.ifaces.delete(i.domid);
  }

  /** INTRODUCE's map_interface + bind_interdomain. Null answers the INTRODUCE with EINVAL. */
  private mapInterface(req: { domid: number; gfn: number; port: number }): DomainChannel | null {
    const { domid, gfn, port } = req;
    const d = this.hv.domain(domid);
    if (d === undefined || d === this.dom0 || d.state === "dying" || d.state === "dead") {
      return null;
    }
    if (this.ifaces.has(domid)) return null;
    // A PV domain names its page by mfn; the frame must be the domain's own.
    if (!(Number.isSafeInteger(gfn) && gfn >= 0) || !this.hv.frames.getPage(gfn, domid)) {
      return null;
    }
    const i = new DomainInterface(this, domid, gfn, port);
    if (i.bind(port) < 0) {
      this.hv.frames.putPage(gfn);
      return null;
    }
    this.ifaces.set(domid, i);
    return i;
  }
}

function makeGuestEvtchn(hv: Hypervisor, d: Domain): XenEvtchnGuest {
  const evtchn: EvtchnService = hv.slot("evtchn");
  const g = new XenEvtchnGuest({
    hv,
    vcpus: d.vcpus,
    sharedInfoMfn: d.sharedInfoMfn,
    addressSize: d.addressSize,
    abi: evtchn.abi,
    allocFrame: () => {
      const mfn = hv.allocDomainPages(d);
      if (mfn < 0) {
        throw new HyperlabError(
          "TOOLSTACK_NO_MEMORY",
          `Domain ${d.domid} has no page left for its event channel pages; raise its maxPages.`,
        );
      }
      return mfn;
    },
  });
  const rc = g.init();
  if (rc < 0) {
    throw new HyperlabError(
      "TOOLSTACK_EVTCHN_INIT",
      `Setting up domain ${d.domid}'s event channels failed (${rc}).`,
    );
  }
  return g;
}

export interface IntroduceDomainOptions {
  /** The domain being built (still paused, as libxl introduces it before unpausing). */
  domain: Domain;
  /** A frame of the domain's the builder set aside for the store ring; else one is allocated. */
  storeMfn?: number;
  /** PV build: the domain's start_info frame (PvBuildResult.startInfoMfn); store_* go there. */
  startInfoMfn?: number;
  /** The domain's name (/local/domain/N/name); default "domain-N". */
  name?: string;
  /** The connection to use (default: the daemon's toolstack connection, `xenstored.xs`). */
  xs?: XsClient;
}

/** What the store setup gave the domain. */
export interface XenstoreDomainSetup {
  domid: number;
  /** The ring frame (start_info.store_mfn, store/ring-ref). */
  storeMfn: number;
  /** The domain's end of the store channel (start_info.store_evtchn, store/port). */
  storeEvtchn: number;
  /** /local/domain/N */
  path: string;
}

/** libxl__domain_make's nodes under /local/domain/N: read-only ones, then the domain's own. */
function homeNodes(roperm: string[], rwperm: string[]): [string, string[]][] {
  const ro = ["", "cpu", "memory", "device", "control"];
  const rw = [
    "control/shutdown",
    "control/feature-poweroff",
    "control/feature-reboot",
    "control/feature-suspend",
    "control/sysrq",
    "device/suspend/event-channel",
    "data",
    "drivers",
    "feature",
    "attr",
    "error",
  ];
  return [
    ...ro.map((n): [string, string[]] => [n, roperm]),
    ...rw.map((n): [string, string[]] => [n, rwperm]),
  ];
}

/**
 * Gives a domain being built its xenstore connection, as libxl does: its home in the tree
 * (owned by dom0 and readable by the domain; data/, drivers/, control/shutdown and the other
 * nodes libxl__domain_make gives it are its own), a ring frame in its memory, an unbound store
 * port it may connect to xenstored's domain with (EVTCHNOP_alloc_unbound made by dom0's
 * vCPU), store_mfn/store_evtchn in its start_info (PV), store/port and store/ring-ref, then
 * XS_INTRODUCE. Throws HyperlabError when a step fails.
 */
export async function introduceDomainToXenstore(
  xenstored: Dom0Xenstored,
  options: IntroduceDomainOptions,
): Promise<XenstoreDomainSetup> {
  const { hv, dom0 } = xenstored;
  const d = options?.domain;
  if (d === undefined || hv.domain(d.domid) !== d || d.state === "dying" || d.state === "dead") {
    throw new HyperlabError(
      "TOOLSTACK_NO_DOMAIN",
      "introduceDomainToXenstore needs { domain }: a live domain of this hypervisor.",
    );
  }
  if (d === dom0) {
    throw new HyperlabError(
      "TOOLSTACK_INTRODUCE_DOM0",
      "xenstored's own domain is not introduced over a ring here; its toolstack uses xenstored.xs.",
    );
  }
  const domid = d.domid;
  const xs = options.xs ?? xenstored.xs;
  const ram = hv.machine.ram;

  // The ring frame: the builder's, or a fresh page in the domain's allowance.
  let storeMfn = options.storeMfn;
  if (storeMfn !== undefined) {
    if (!(Number.isSafeInteger(storeMfn) && hv.frames.validMfn(storeMfn))) {
      throw new HyperlabError(
        "TOOLSTACK_BAD_OPTION",
        `storeMfn ${storeMfn} is not a machine frame.`,
      );
    }
    if (!hv.frames.ownedBy(storeMfn, domid)) {
      throw new HyperlabError(
        "TOOLSTACK_NOT_OWNER",
        `storeMfn ${storeMfn} is not domain ${domid}'s frame; pass one of its own pages or leave it out.`,
      );
    }
  } else {
    storeMfn = hv.allocDomainPages(d);
    if (storeMfn < 0) {
      throw new HyperlabError(
        "TOOLSTACK_NO_MEMORY",
        `Domain ${domid} has no page left for its xenstore ring; raise its maxPages by one.`,
      );
    }
  }
  ram.clearFrame(storeMfn);

  let startInfo: { base: number; is64: boolean } | null = null;
  if (options.startInfoMfn !== undefined) {
    const m = options.startInfoMfn;
    if (!(Number.isSafeInteger(m) && hv.frames.validMfn(m) && hv.frames.ownedBy(m, domid))) {
      throw new HyperlabError(
        "TOOLSTACK_NOT_OWNER",
        `startInfoMfn ${m} is not domain ${domid}'s frame; pass PvBuildResult.startInfoMfn.`,
      );
    }
    startInfo = { base: m * 4096, is64: d.addressSize !== 32 };
  }

  // libxl__build_pre: the store port, allocated by dom0 in the new domain for xenstored's domain.
  const a = { cmd: EVTCHNOP_alloc_unbound, dom: domid, remote_dom: dom0.domid, port: 0 };
  const rc = hv.hypercall(dom0.vcpus[xenstored.cpu], __HYPERVISOR_event_channel_op, a);
  if (rc < 0) {
    throw new HyperlabError(
      "TOOLSTACK_STORE_EVTCHN",
      `EVTCHNOP_alloc_unbound for domain ${domid}'s store port failed (${rc}).`,
    );
  }
  const storeEvtchn = a.port;

  // The builder's start_info fields (xc_dom's start_info_x86_64 / _32).
  if (startInfo !== null) {
    const f = (startInfo.is64 ? start_info_x86_64 : start_info_x86_32).fields;
    if (f.store_mfn.size === 8) ram.write64n(startInfo.base + f.store_mfn.offset, storeMfn);
    else ram.write32(startInfo.base + f.store_mfn.offset, storeMfn);
    ram.write32(startInfo.base + f.store_evtchn.offset, storeEvtchn);
  }

  // libxl__domain_make's home, then libxl__build_post's store entries and the introduce.
  const path = domainPath(domid);
  const name = options.name ?? `domain-${domid}`;
  try {
    await xs.transaction(async (tx) => {
      const roperm = [`n${dom0.domid}`, `r${domid}`];
      const rwperm = [`n${domid}`];
      for (const [sub, perms] of homeNodes(roperm, rwperm)) {
        const p = sub === "" ? path : `${path}/${sub}`;
        await tx.mkdir(p);
        await tx.setPerms(p, perms);
      }
      await tx.write(`${path}/name`, name);
      await tx.write(`${path}/domid`, String(domid));
      await tx.write(`${path}/store/port`, String(storeEvtchn));
      await tx.write(`${path}/store/ring-ref`, String(storeMfn));
    });
    await xs.introduce(domid, storeMfn, storeEvtchn);
  } catch (e) {
    if (e instanceof XenstoreError) {
      throw new HyperlabError(
        "TOOLSTACK_INTRODUCE",
        `Introducing domain ${domid} to xenstored failed: ${e.message}`,
      );
    }
    throw e;
  }
  return { domid, storeMfn, storeEvtchn, path };
}

/**
 * Destroys a domain as libxl does (removes its home in xenstore, then destroys it); the
 * VIRQ_DOM_EXC that Xen's domain_kill raises (here the evtchn plugin's destroy hook) makes
 * xenstored's domain_cleanup release the connection when dom0's upcall runs.
 */
export async function destroyIntroducedDomain(
  xenstored: Dom0Xenstored,
  domain: Domain,
): Promise<void> {
  const { hv } = xenstored;
  if (domain === undefined || domain === xenstored.dom0) {
    throw new HyperlabError(
      "TOOLSTACK_NO_DOMAIN",
      "destroyIntroducedDomain needs a guest domain (not xenstored's own).",
    );
  }
  if (hv.domain(domain.domid) !== domain) return;
  try {
    await xenstored.xs.rm(domainPath(domain.domid));
  } catch (e) {
    if (!(e instanceof XenstoreError && e.xsError === "ENOENT")) throw e;
  }
  hv.destroyDomain(domain); // the evtchn plugin raises VIRQ_DOM_EXC, as Xen's domain_kill does
  xenstored.loop.kick();
}
