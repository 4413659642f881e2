/*
 * Domains and vCPUs, as plain data. The hypervisor (hypervisor.ts) owns every transition.
 *
 * Lifecycle, as Xen's: created paused -> running <-> paused -> shutdown (with a reason) ->
 * dying (destroy hooks release what the domain holds) -> dead (no frame references it).
 * A vCPU is running, runnable, blocked or offline; only the scheduler moves it between the
 * first three.
 */

export type DomainState = "running" | "paused" | "shutdown" | "dying" | "dead";
export type VcpuState = "running" | "runnable" | "blocked" | "offline";

export interface Vcpu {
  /** The vCPU's number within its domain. */
  readonly vcpuId: number;
  /** A dense system-wide index, for plugins that keep per-vCPU state in typed arrays. */
  readonly uid: number;
  readonly domain: Domain;
  state: VcpuState;
  /** The pCPU it runs on, or last ran on. */
  processor: number;
  /** Machine frame of the pinned top-level page table (Xen: guest_table), or -1. */
  cr3Mfn: number;
  /** Machine frame of the user-mode top-level table for 64-bit PV guests (guest_table_user), or -1. */
  userCr3Mfn: number;
  /** Whether the vCPU runs guest kernel code (as opposed to user code). */
  inKernel: boolean;
  /** Pause count: a vCPU with a nonzero count does not run. */
  pauseCount: number;
}

export interface Domain {
  readonly domid: number;
  readonly isPrivileged: boolean;
  /** 64 for x86_64 PV guests, 32 for x86_32 ones: decides layouts and event channel limits. */
  readonly addressSize: 64 | 32;
  state: DomainState;
  /** SHUTDOWN_* reason when state is "shutdown" (and after), else -1. */
  shutdownCode: number;
  readonly vcpus: Vcpu[];
  /** Most frames the domain may own (Xen's max_pages). */
  maxPages: number;
  /** Frames it owns now (Xen's tot_pages): populated frames only. */
  totPages: number;
  /**
   * Frames reserved for it as populate-on-demand blocks and not yet populated (Xen's
   * p2m->pod.entry_count): out of the machine's free pool, owned by no one until the first
   * check that the domain owns one of them. totPages + podPages is at most maxPages.
   */
  podPages: number;
  /** Machine frame of its shared_info page. */
  sharedInfoMfn: number;
  /** Pause count (Xen's pause_count): the domain runs only at zero. */
  pauseCount: number;
  /** Domains this one may act on as a target (Xen's d->target, for device models). */
  target: number;
  /** VMASST_TYPE_* assists the guest enabled through vm_assist (writable_pagetables, ...). */
  readonly vmAssist: Set<number>;
}

export interface CreateDomainOptions {
  /** Domain id; the next free one if omitted (dom0 must ask for 0). */
  domid?: number;
  /** Privileged (dom0-like): may act on other domains. Defaults to domid === 0. */
  privileged?: boolean;
  /** Number of vCPUs. */
  maxVcpus: number;
  /** Most frames the domain may own. */
  maxPages: number;
  addressSize?: 64 | 32;
}
