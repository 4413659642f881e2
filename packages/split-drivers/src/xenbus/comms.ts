/*
 * A domain's end of its xenstore connection, as Linux's xenbus does it
 * (drivers/xen/xenbus/xenbus_comms.c, xenbus_probe.c): the ring page and port come from
 * start_info (xen_start_info->store_mfn / store_evtchn), the port is bound to an irq whose
 * handler moves bytes (wake_waiting -> the ring's onEvent), and the domain kicks xenstored
 * with EVTCHNOP_send from its own vCPU (notify_remote_via_evtchn). The bytes themselves move
 * through @hyperlab/xenstore's one ring loop (XenstoreRingFrontend).
 *
 * Invariant: the domain touches only its own ring frame and reaches the hypervisor only by
 * hypercalls from its own vCPU; replies and watch events arrive only through its upcall
 * handler, i.e. when whatever delivers the domain's upcalls (XenbusUpcalls) runs it.
 */
import { start_info_x86_32, start_info_x86_64 } from "@hyperlab/abi";
import type { Domain, Hypervisor } from "@hyperlab/core";
import { XenEvtchnGuest } from "@hyperlab/guest";
import { XenstoreRingFrontend, XsClient } from "@hyperlab/xenstore";
import { xenbusError } from "./errors";

/**
 * What runs a domain's event-channel upcalls (the toolstack's UpcallLoop fits): it knows each
 * domain's guest-side event channels and delivers pending upcalls after `kick()`.
 */
export interface XenbusUpcalls {
  /** The guest-side event channels registered for `domain`, if any. */
  guestOf(domain: Domain): XenEvtchnGuest | undefined;
  /** From now on deliver `domain`'s upcalls to `evtchn`. */
  register(domain: Domain, evtchn: XenEvtchnGuest): void;
  /** A hypercall may have raised an upcall: deliver (now or soon). */
  kick(): void;
}

export interface XenbusCommsOptions {
  hv: Hypervisor;
  /** The domain whose kernel connects (running, introduced). */
  domain: Domain;
  /** Delivers the domain's upcalls. */
  loop: XenbusUpcalls;
  /**
   * The domain's guest-side event channels (init() done). If absent, the loop's registered
   * ones are used, else the kernel sets them up as Linux's xen_init_IRQ does (FIFO if the
   * hypervisor takes EVTCHNOP_init_control, else 2-level) and registers them with `loop`.
   */
  evtchn?: XenEvtchnGuest;
  /**
   * For that setup: one free frame of the domain's for each FIFO control block and event
   * array page (default: the hypervisor's allocator, as the builder would hand them out).
   */
  allocFrame?: () => number;
  /** PV: the start_info frame to read store_mfn / store_evtchn from. */
  startInfoMfn?: number;
  /** Or the ring frame and port directly (as an HVM guest gets them from HVM params). */
  storeMfn?: number;
  storeEvtchn?: number;
  /** The vCPU the store irq is bound to and notifies from (default 0). */
  cpu?: number;
}

/** A domain's xenbus connection to xenstored: ring frontend, store irq, and a client. */
export class XenbusComms {
  readonly domain: Domain;
  readonly storeMfn: number;
  readonly storeEvtchn: number;
  readonly evtchn: XenEvtchnGuest;
  readonly frontend: XenstoreRingFrontend;
  /** The xenstore client the domain's kernel would use (xenbus_read, xenbus_write, ...). */
  readonly client: XsClient;
  /** The irq bound to the store port. */
  readonly irq: number;
  private readonly loop: XenbusUpcalls;
  private readonly cpu: number;
  private closed = false;

  constructor(options: XenbusCommsOptions) {
    const { hv, domain, loop } = options ?? ({} as XenbusCommsOptions);
    if (hv === undefined || domain === undefined || loop === undefined) {
      throw xenbusError(
        "XENBUS_BAD_OPTION",
        "XenbusComms needs { hv, domain, loop } and either startInfoMfn or storeMfn + storeEvtchn.",
      );
    }
    const cpu = options.cpu ?? 0;
    if (!(Number.isInteger(cpu) && cpu >= 0 && cpu < domain.vcpus.length)) {
      throw xenbusError(
        "XENBUS_BAD_OPTION",
        `cpu ${cpu} is not one of domain ${domain.domid}'s vCPUs (0..${domain.vcpus.length - 1}).`,
      );
    }
    const ram = hv.machine.ram;
    const own = (mfn: number) =>
      Number.isSafeInteger(mfn) && hv.frames.validMfn(mfn) && hv.frames.ownedBy(mfn, domain.domid);
    let storeMfn = options.storeMfn;
    let storeEvtchn = options.storeEvtchn;
    if (options.startInfoMfn !== undefined) {
      if (!own(options.startInfoMfn)) {
        throw xenbusError(
          "XENBUS_NOT_OWNER",
          `startInfoMfn ${options.startInfoMfn} is not domain ${domain.domid}'s frame; pass PvBuildResult.startInfoMfn.`,
        );
      }
      const base = options.startInfoMfn * 4096;
      const f = (domain.addressSize === 32 ? start_info_x86_32 : start_info_x86_64).fields;
      storeMfn =
        f.store_mfn.size === 8
          ? ram.read64(base + f.store_mfn.offset)
          : ram.read32(base + f.store_mfn.offset);
      storeEvtchn = ram.read32(base + f.store_evtchn.offset);
    }
    if (storeMfn === undefined || storeEvtchn === undefined || storeEvtchn === 0) {
      throw xenbusError(
        "XENBUS_NO_STORE",
        `Domain ${domain.domid} has no xenstore ring (store_evtchn is 0); introduce it to xenstored (the toolstack's introduceDomainToXenstore) before connecting.`,
      );
    }
    if (!own(storeMfn)) {
      throw xenbusError(
        "XENBUS_NOT_OWNER",
        `store_mfn ${storeMfn} is not domain ${domain.domid}'s frame, so its kernel cannot map it.`,
      );
    }
    this.domain = domain;
    this.loop = loop;
    this.cpu = cpu;
    this.storeMfn = storeMfn;
    this.storeEvtchn = storeEvtchn;
    const g =
      options.evtchn ??
      loop.guestOf(domain) ??
      initGuestEvtchn(hv, domain, options.allocFrame ?? (() => hv.allocDomainPages(domain)));
    loop.register(domain, g);
    this.evtchn = g;
    this.frontend = new XenstoreRingFrontend(ram, storeMfn, { notify: () => this.notify() });
    // xb_init_comms: bind_evtchn_to_irqhandler(xen_store_evtchn, wake_waiting, ...).
    const irq = g.bindEvtchnToIrqHandler(storeEvtchn, () => this.frontend.onEvent(), cpu);
    if (irq < 0) {
      throw xenbusError(
        "XENBUS_STORE_IRQ",
        `Binding domain ${domain.domid}'s store port ${storeEvtchn} to an irq failed (${irq}).`,
      );
    }
    this.irq = irq;
    this.client = XsClient.overRing(this.frontend);
    // A bind that unmasked a pending event asked Xen to raise the upcall again.
    loop.kick();
  }

  /** notify_remote_via_evtchn(xen_store_evtchn): EVTCHNOP_send from the domain's vCPU. */
  private notify(): void {
    if (this.closed) return;
    this.evtchn.notifyRemoteViaIrq(this.irq, this.cpu);
    this.loop.kick();
  }

  /** The page's `error` field (XENSTORE_ERROR_*), as the domain sees it. */
  get ringError(): number {
    return this.frontend.error;
  }

  /** The domain's kernel stops using xenstore: closes the client and unbinds the irq. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
    if (this.domain.state !== "dying" && this.domain.state !== "dead") {
      this.evtchn.unbindFromIrqHandler(this.irq);
    }
  }
}

/**
 * Linux's xen_init_IRQ for a kernel that has none yet: try the FIFO ABI
 * (EVTCHNOP_init_control), fall back to 2-level when the hypervisor refuses it.
 */
function initGuestEvtchn(hv: Hypervisor, d: Domain, allocFrame: () => number): XenEvtchnGuest {
  const frame = (): number => {
    const mfn = allocFrame();
    if (!(Number.isSafeInteger(mfn) && mfn >= 0)) {
      throw xenbusError(
        "XENBUS_EVTCHN_INIT",
        `Domain ${d.domid} has no page left for its event channel control blocks; raise its maxPages.`,
      );
    }
    return mfn;
  };
  const base = {
    hv,
    vcpus: d.vcpus,
    sharedInfoMfn: d.sharedInfoMfn,
    addressSize: d.addressSize,
  } as const;
  // Linux frees the control block page of a refused FIFO setup; this model has no way to
  // give a frame back, so that one page stays with the domain, unused.
  const fifo = new XenEvtchnGuest({ ...base, abi: "fifo", allocFrame: frame });
  if (fifo.init() === 0) return fifo;
  const twoLevel = new XenEvtchnGuest({ ...base, abi: "2-level" });
  const rc = twoLevel.init();
  if (rc < 0) {
    throw xenbusError(
      "XENBUS_EVTCHN_INIT",
      `Setting up domain ${d.domid}'s event channels failed (${rc}).`,
    );
  }
  return twoLevel;
}
