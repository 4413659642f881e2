/*
 * Who runs event-channel upcalls, and when, in a synchronous model.
 *
 * On real hardware Xen sets a vCPU's evtchn_upcall_pending and the guest takes the upcall
 * the next time that vCPU runs with evtchn_upcall_mask clear. Here nothing runs by itself, so
 * an UpcallLoop stands in for "the vCPUs run": it knows each domain's guest-side event
 * channels (its kernel's XenEvtchnGuest) and `runPendingUpcalls()` enters Linux's
 * xen_evtchn_do_upcall on every vCPU that has an upcall pending, is not offline, has upcalls
 * unmasked, and belongs to a running (not paused, shut down or dying) domain.
 *
 * A vCPU's upcall flags are read from its vcpu_info where the guest kernel points
 * (per_cpu(xen_vcpu)): the area it registered with VCPUOP_register_vcpu_info once it has, its
 * slot in shared_info before.
 *
 * Invariants: runPendingUpcalls returns only when a whole round over the registered domains
 * found no deliverable upcall, or after `maxRounds` rounds (then, in "microtask" mode, another
 * run is queued, so a guest that keeps raising events is time-sliced rather than looping
 * forever inside one call). It never re-enters itself: a handler that raises an event during
 * a run makes the running call do another round. A paused domain's upcalls wait, as its
 * vCPUs do not run, and are taken by the first run after it is unpaused.
 */
import { type Domain, HyperlabError, type Hypervisor } from "@hyperlab/core";
import type { XenEvtchnGuest } from "@hyperlab/guest";
import type { XenbusUpcalls } from "@hyperlab/split-drivers";

/**
 * "microtask": every `kick()` queues one run on the microtask queue (coalesced), so promise-
 * based clients (XsClient) make progress by themselves. "manual": only explicit
 * `runPendingUpcalls()` calls deliver; a test then decides exactly when each upcall runs.
 */
export type UpcallMode = "microtask" | "manual";

export interface UpcallLoopOptions {
  /** Default "microtask". */
  mode?: UpcallMode;
  /** Rounds over all domains one run makes at most (default 1000). */
  maxRounds?: number;
}

interface Entry {
  readonly domain: Domain;
  readonly guest: XenEvtchnGuest;
}

/** Runs pending event-channel upcalls of the domains registered with it. */
export class UpcallLoop implements XenbusUpcalls {
  readonly mode: UpcallMode;
  private readonly maxRounds: number;
  private readonly entries = new Map<number, Entry>();
  private running = false;
  private again = false;
  private scheduled = false;
  /** Upcalls entered (xen_evtchn_do_upcall calls) so far. */
  upcalls = 0;
  /** Events handled by those upcalls so far. */
  events = 0;

  /** `_hv`: the hypervisor whose domains it serves (the guests' own views say what is pending). */
  constructor(_hv: Hypervisor, options: UpcallLoopOptions = {}) {
    const mode = options.mode ?? "microtask";
    if (mode !== "microtask" && mode !== "manual") {
      throw new HyperlabError(
        "TOOLSTACK_BAD_OPTION",
        `UpcallLoop mode must be "microtask" or "manual", got ${JSON.stringify(mode)}.`,
      );
    }
    const maxRounds = options.maxRounds ?? 1000;
    if (!(Number.isInteger(maxRounds) && maxRounds >= 1)) {
      throw new HyperlabError(
        "TOOLSTACK_BAD_OPTION",
        `UpcallLoop maxRounds must be a whole number >= 1, got ${options.maxRounds}.`,
      );
    }
    this.mode = mode;
    this.maxRounds = maxRounds;
  }

  /**
   * Domain `domain` runs a kernel whose event channels are `guest` (init() already called):
   * its upcalls are now delivered by this loop. Registering the same pair again is a no-op.
   */
  register(domain: Domain, guest: XenEvtchnGuest): void {
    const old = this.entries.get(domain.domid);
    if (old !== undefined) {
      if (old.domain === domain && old.guest === guest) return;
      throw new HyperlabError(
        "TOOLSTACK_UPCALL_TWICE",
        `Domain ${domain.domid} already has guest-side event channels registered; unregister them first.`,
      );
    }
    this.entries.set(domain.domid, { domain, guest });
  }

  /** Stops delivering to `domain` (its kernel is gone). */
  unregister(domain: Domain): void {
    const e = this.entries.get(domain.domid);
    if (e?.domain === domain) this.entries.delete(domain.domid);
  }

  /** The guest-side event channels registered for `domain`, if any. */
  guestOf(domain: Domain): XenEvtchnGuest | undefined {
    const e = this.entries.get(domain.domid);
    return e?.domain === domain ? e.guest : undefined;
  }

  /**
   * Something may have raised evtchn_upcall_pending (a hypercall sent an event). In
   * "microtask" mode this queues one run; in "manual" mode it does nothing.
   */
  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.mode !== "microtask" || this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.runPendingUpcalls();
    });
  }

  /**
   * Enters xen_evtchn_do_upcall on every deliverable vCPU, round after round, until a round
   * finds none. Returns the number of events handled. Safe to call at any time.
   */
  runPendingUpcalls(): number {
    if (this.running) {
      this.again = true;
      return 0;
    }
    this.running = true;
    const before = this.events;
    let rounds = 0;
    let delivered = false;
    try {
      do {
        this.again = false;
        delivered = this.round();
        rounds++;
      } while ((delivered || this.again) && rounds < this.maxRounds);
    } finally {
      this.running = false;
    }
    if ((delivered || this.again) && this.mode === "microtask") this.kick();
    return this.events - before;
  }

  /** Whether any registered vCPU could take an upcall now. */
  get pending(): boolean {
    for (const e of this.entries.values()) {
      for (let cpu = 0; cpu < e.domain.vcpus.length; cpu++)
        if (this.deliverable(e, cpu)) return true;
    }
    return false;
  }

  private deliverable(e: Entry, cpu: number): boolean {
    const d = e.domain;
    if (d.state !== "running") return false;
    if (d.vcpus[cpu].state === "offline") return false;
    // The guest reads its vcpu_info where its kernel points (the area it registered with
    // VCPUOP_register_vcpu_info, else its shared_info slot; none from vCPU 32 on).
    return e.guest.upcallPending(cpu) && !e.guest.upcallMasked(cpu);
  }

  private round(): boolean {
    let any = false;
    // Map iteration tolerates a handler (un)registering a domain mid-round.
    for (const e of this.entries.values()) {
      for (let cpu = 0; cpu < e.domain.vcpus.length; cpu++) {
        if (!this.deliverable(e, cpu)) continue;
        any = true;
        this.upcalls++;
        this.events += e.guest.xenEvtchnDoUpcall(cpu);
      }
    }
    return any;
  }
}
