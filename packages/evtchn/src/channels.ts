/*
 * Event channels (Xen's xen/common/event_channel.c): ports per domain, the EVTCHNOP_*
 * operations, VIRQs, IPIs, PIRQs and interdomain channels, over a pluggable ABI.
 *
 * Invariants (on top of EvtDomain's):
 * - A domain acts only on its own ports; the only ways to reach another domain's port are
 *   binding an unbound port that names you (bind_interdomain), and, for a privileged or
 *   target-holding domain, alloc_unbound/status/reset by domid (Xen's XSM_TARGET).
 * - An interdomain channel is symmetric: A.p -> (B, q) iff B.q -> (A, p). Closing one end
 *   frees it and leaves the other ECS_UNBOUND, naming the closer as the allowed peer.
 * - A freed port has no pending event (evtchn_free clears it), so nothing stale reaches
 *   whoever binds that port next.
 * - An operation that names a port acts only on a port in use (send, close, bind_vcpu:
 *   -EINVAL otherwise) or, as Xen's unmask and set_priority, on any existing port (one in an
 *   allocated bucket, Xen's port_is_valid); ports exist only below the current ABI's limit (a
 *   reset from FIFO back to 2-level forgets the rest) and the ABI ops ignore a port past their
 *   bitmaps or event-array pages, so no guest-chosen port reaches memory outside the domain's
 *   shared_info, control blocks and event arrays.
 * - Guest input never throws: every field is checked and bad ones get Xen's errno.
 * - Every event raised on a port goes through raise(), which counts it for the port and for
 *   the vCPU it notifies before the ABI sets it pending (typed-array increments, no allocation),
 *   and every send that raises one counts on the sender's port: the counts tools read
 *   (forEachPort, vcpuEventCounts) are exactly the events the ABIs were handed.
 */
import {
  __HYPERVISOR_event_channel_op,
  DOMID_SELF,
  EEXIST,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOSPC,
  EPERM,
  ESRCH,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_ipi,
  EVTCHNOP_bind_pirq,
  EVTCHNOP_bind_vcpu,
  EVTCHNOP_bind_virq,
  EVTCHNOP_close,
  EVTCHNOP_expand_array,
  EVTCHNOP_init_control,
  EVTCHNOP_reset,
  EVTCHNOP_send,
  EVTCHNOP_set_priority,
  EVTCHNOP_status,
  EVTCHNOP_unmask,
  EVTCHNSTAT_closed,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_ipi,
  EVTCHNSTAT_pirq,
  EVTCHNSTAT_unbound,
  EVTCHNSTAT_virq,
  NR_VIRQS,
  VIRQ_DEBUG,
  VIRQ_DOM_EXC,
  VIRQ_TIMER,
  VIRQ_XENOPROF,
  VIRQ_XENPMU,
} from "@hyperlab/abi";
import {
  type Domain,
  type EvtchnService,
  HyperlabError,
  type PirqHooks,
  type PortInfo,
  type PortTraffic,
  type SchedService,
  type SetupContext,
  type Vcpu,
  type VcpuEventCounts,
} from "@hyperlab/core";
import { twoLevelOps } from "./abi-2l";
import { destroyFifo, expandArray, fifoOps, initControl } from "./abi-fifo";
import type { EvtchnErrorCode } from "./errors";
import {
  ECS_FREE,
  ECS_INTERDOMAIN,
  ECS_IPI,
  ECS_PIRQ,
  ECS_RESERVED,
  ECS_UNBOUND,
  ECS_VIRQ,
  EvtDomain,
  type PortOps,
  type PortOpsHost,
} from "./port-ops";

/** Options of the event channel plugins. */
export interface EvtchnOptions {
  /** PIRQs each domain may have (Xen's nr_pirqs); default 256. */
  nrPirqs?: number;
  /** Highest port a domain may allocate (Xen's max_evtchn_port); default: the ABI's limit. */
  maxEvtchnPort?: number;
}

/** Xen's virq_is_global (x86: every architectural VIRQ is global). */
export function virqIsGlobal(virq: number): boolean {
  return !(
    virq === VIRQ_TIMER ||
    virq === VIRQ_DEBUG ||
    virq === VIRQ_XENOPROF ||
    virq === VIRQ_XENPMU
  );
}

type Args = Record<string, unknown>;

function int(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x);
}

export class EventChannels implements EvtchnService, PortOpsHost {
  readonly abi: "2-level" | "fifo";
  private readonly ctx: SetupContext;
  private readonly sched: SchedService;
  private readonly doms: (EvtDomain | undefined)[] = [];
  private readonly twoLevel: PortOps;
  private readonly fifo: PortOps;
  private readonly nrPirqs: number;
  private readonly maxPortOpt: number;
  private readonly globalHandler = new Int32Array(NR_VIRQS).fill(-1);
  private pirqHooks: PirqHooks | null = null;
  private readonly cSends;
  private readonly cUpcalls;

  constructor(ctx: SetupContext, abi: "2-level" | "fifo", options: EvtchnOptions = {}) {
    this.ctx = ctx;
    this.abi = abi;
    this.sched = ctx.slot("sched");
    this.nrPirqs = options.nrPirqs ?? 256;
    this.maxPortOpt = options.maxEvtchnPort ?? Number.MAX_SAFE_INTEGER;
    if (!(Number.isInteger(this.nrPirqs) && this.nrPirqs >= 0 && this.nrPirqs <= 65536)) {
      throw new HyperlabError<EvtchnErrorCode>(
        "EVTCHN_BAD_OPTION",
        `nrPirqs must be a whole number from 0 to 65536, got ${options.nrPirqs}.`,
      );
    }
    if (!(Number.isInteger(this.maxPortOpt) && this.maxPortOpt >= 1)) {
      throw new HyperlabError<EvtchnErrorCode>(
        "EVTCHN_BAD_OPTION",
        `maxEvtchnPort must be a whole number >= 1, got ${options.maxEvtchnPort}.`,
      );
    }
    this.twoLevel = twoLevelOps(this);
    this.fifo = fifoOps(this);
    this.cSends = ctx.stats.counter("sends", "events", "EVTCHNOP_send calls that raised an event");
    this.cUpcalls = ctx.stats.counter(
      "upcalls",
      "upcalls",
      "evtchn_upcall_pending raised from 0 to 1",
    );
    ctx.stats.gauge("ports", "ports", "ports in use in all domains", () => {
      let n = 0;
      for (const e of this.doms) if (e !== undefined) n += e.active;
      return n;
    });
    this.register(ctx);
    this.sched.setEventSource({
      localEventsNeedDelivery: (v) => this.localEventsNeedDelivery(v),
      localEventDeliveryEnable: (v) => this.localEventDeliveryEnable(v),
      portPoll: (d, port) => this.portPoll(d, port),
      sendGlobalVirq: (virq) => this.sendGlobalVirq(virq),
    });
  }

  private register(ctx: SetupContext): void {
    const op = __HYPERVISOR_event_channel_op;
    const h = (cmd: number, fn: (v: Vcpu, e: EvtDomain, a: Args) => number) =>
      ctx.hypercall(
        op,
        (v, a) => {
          const e = this.doms[v.domain.domid];
          return e === undefined ? -ESRCH : fn(v, e, a);
        },
        cmd,
      );
    h(EVTCHNOP_alloc_unbound, (v, _e, a) => this.allocUnbound(v, a));
    h(EVTCHNOP_bind_interdomain, (_v, e, a) => this.bindInterdomain(e, a));
    h(EVTCHNOP_bind_virq, (_v, e, a) => this.bindVirq(e, a));
    h(EVTCHNOP_bind_ipi, (_v, e, a) => this.bindIpi(e, a));
    h(EVTCHNOP_bind_pirq, (_v, e, a) => this.bindPirq(e, a));
    h(EVTCHNOP_close, (_v, e, a) => (int(a.port) ? this.close(e, a.port) : -EFAULT));
    h(EVTCHNOP_send, (_v, e, a) => (int(a.port) ? this.sendPort(e, a.port) : -EFAULT));
    h(EVTCHNOP_status, (v, _e, a) => this.status(v, a));
    h(EVTCHNOP_bind_vcpu, (_v, e, a) => this.bindVcpu(e, a));
    h(EVTCHNOP_unmask, (_v, e, a) => this.unmask(e, a));
    h(EVTCHNOP_reset, (v, _e, a) => this.reset(v, a));
    if (this.abi === "fifo") {
      h(EVTCHNOP_init_control, (_v, e, a) => initControl(ctx.hv, e, a, this.fifo));
      h(EVTCHNOP_expand_array, (_v, e, a) => expandArray(ctx.hv, e, a, this.fifo));
      h(EVTCHNOP_set_priority, (_v, e, a) => this.setPriority(e, a));
    }
    ctx.onDomainCreate((d) => this.domainCreated(d));
    ctx.onDomainDestroy((d) => this.domainDestroyed(d));
  }

  // ---- domains ----

  private domainCreated(d: Domain): void {
    const ram = this.ctx.hv.machine.ram;
    const si = ram.frameWords(d.sharedInfoMfn, true);
    const e = new EvtDomain(
      d,
      si,
      0, // the view is shared_info's frame alone
      this.twoLevel,
      this.nrPirqs,
      this.maxPortOpt,
      this.ctx.hv.vcpuAreas,
      ram,
    );
    e.growTo(1);
    e.state[0] = ECS_RESERVED;
    e.active = 1;
    this.doms[d.domid] = e;
  }

  private domainDestroyed(d: Domain): void {
    const e = this.doms[d.domid];
    if (e === undefined) return;
    for (let port = 1; port < e.valid; port++) if (e.state[port] !== ECS_FREE) this.close(e, port);
    destroyFifo(this.ctx.hv, e);
    for (let virq = 0; virq < NR_VIRQS; virq++)
      if (this.globalHandler[virq] === d.domid) this.globalHandler[virq] = -1;
    this.doms[d.domid] = undefined;
    // Xen's domain_kill tells the toolstack's domain (xenstored's domain_cleanup) at once.
    this.sendGlobalVirq(VIRQ_DOM_EXC);
  }

  private lookup(cur: Domain, domid: unknown): EvtDomain | number {
    if (!int(domid)) return -EFAULT;
    const id = domid === DOMID_SELF ? cur.domid : domid;
    const e = id >= 0 ? this.doms[id] : undefined;
    return e === undefined ? -ESRCH : e;
  }

  /** Xen's dummy XSM_TARGET: yourself, a privileged domain, or the device model of `t`. */
  private mayTarget(src: Domain, t: Domain): boolean {
    return src === t || src.isPrivileged || src.target === t.domid;
  }

  private evtDomain(d: Domain): EvtDomain {
    const e = this.doms[d?.domid];
    if (e === undefined || e.d !== d) {
      throw new HyperlabError<EvtchnErrorCode>(
        "EVTCHN_UNKNOWN_DOMAIN",
        `Domain ${d?.domid} has no event channels here (destroyed, or created by another hypervisor).`,
      );
    }
    return e;
  }

  // ---- ports ----

  /** Xen's evtchn_get_port/get_free_port: the lowest free port, or -ENOSPC. */
  private getFreePort(e: EvtDomain): number {
    const st = e.d.state;
    if (st === "dying" || st === "dead") return -EINVAL;
    const limit = Math.min(e.maxEvtchnPort + 1, e.ops.maxPorts(e));
    for (let port = 1; port < limit; port++) {
      if (port >= e.valid) e.growTo(port + 1);
      if (e.state[port] === ECS_FREE && !e.ops.isBusy(e, port)) {
        e.active++;
        return port;
      }
    }
    return -ENOSPC;
  }

  private bindPort(e: EvtDomain, port: number, state: number, vcpu: number): void {
    e.state[port] = state;
    e.notify[port] = vcpu;
    e.remoteDom[port] = -1;
    e.remotePort[port] = 0;
    e.u[port] = -1;
    e.sends[port] = 0;
    e.raised[port] = 0;
    e.ops.init(e, port);
  }

  /** An event on `port` for `vcpuId`: counted, then handed to the ABI (Xen's evtchn_port_set_pending). */
  private raise(e: EvtDomain, vcpuId: number, port: number): void {
    e.raised[port]++;
    e.vcpuRaised[vcpuId]++;
    e.ops.setPending(e, vcpuId, port);
  }

  /** Xen's evtchn_free. */
  private free(e: EvtDomain, port: number): void {
    e.ops.clearPending(e, port);
    e.state[port] = ECS_FREE;
    e.notify[port] = 0;
    e.remoteDom[port] = -1;
    e.u[port] = -1;
    e.active--;
  }

  private allocUnbound(v: Vcpu, a: Args): number {
    const e = this.lookup(v.domain, a.dom);
    if (typeof e === "number") return e;
    const remote = a.remote_dom;
    if (!int(remote) || remote < 0 || remote > 0xffff) return -EFAULT;
    if (!this.mayTarget(v.domain, e.d)) return -EPERM;
    const port = this.getFreePort(e);
    if (port < 0) return port;
    this.bindPort(e, port, ECS_UNBOUND, 0);
    e.remoteDom[port] = remote === DOMID_SELF ? v.domain.domid : remote;
    a.port = port;
    return 0;
  }

  private bindInterdomain(le: EvtDomain, a: Args): number {
    const re = this.lookup(le.d, a.remote_dom);
    if (typeof re === "number") return re;
    const rport = a.remote_port;
    if (!int(rport)) return -EFAULT;
    const lport = this.getFreePort(le);
    if (lport < 0) return lport;
    if (
      !re.portValid(rport) ||
      re.state[rport] !== ECS_UNBOUND ||
      re.remoteDom[rport] !== le.d.domid
    ) {
      le.active--;
      return -EINVAL;
    }
    this.bindPort(le, lport, ECS_INTERDOMAIN, 0);
    le.remoteDom[lport] = re.d.domid;
    le.remotePort[lport] = rport;
    re.state[rport] = ECS_INTERDOMAIN;
    re.remoteDom[rport] = le.d.domid;
    re.remotePort[rport] = lport;
    // Events sent to the unbound remote end were dropped: raise one here, as Xen does.
    this.raise(le, le.notify[lport], lport);
    a.local_port = lport;
    return 0;
  }

  private bindVirq(e: EvtDomain, a: Args): number {
    const { virq, vcpu } = a;
    if (!int(virq) || !int(vcpu)) return -EFAULT;
    if (virq < 0 || virq >= NR_VIRQS) return -EINVAL;
    if (virqIsGlobal(virq) && vcpu !== 0) return -EINVAL;
    if (vcpu < 0 || vcpu >= e.d.vcpus.length) return -ENOENT;
    const slot = vcpu * NR_VIRQS + virq;
    if (e.virqPort[slot] !== 0) return -EEXIST;
    const port = this.getFreePort(e);
    if (port < 0) return port;
    this.bindPort(e, port, ECS_VIRQ, vcpu);
    e.u[port] = virq;
    e.virqPort[slot] = port;
    a.port = port;
    return 0;
  }

  private bindIpi(e: EvtDomain, a: Args): number {
    const vcpu = a.vcpu;
    if (!int(vcpu)) return -EFAULT;
    if (vcpu < 0 || vcpu >= e.d.vcpus.length) return -ENOENT;
    const port = this.getFreePort(e);
    if (port < 0) return port;
    this.bindPort(e, port, ECS_IPI, vcpu);
    a.port = port;
    return 0;
  }

  private bindPirq(e: EvtDomain, a: Args): number {
    const { pirq, flags } = a;
    if (!int(pirq) || !int(flags)) return -EFAULT;
    if (pirq < 0 || pirq >= this.nrPirqs) return -EINVAL;
    if (!e.pirqPermitted[pirq]) return -EPERM;
    if (e.pirqPort[pirq] !== 0) return -EEXIST;
    const port = this.getFreePort(e);
    if (port < 0) return port;
    // Xen's order: the pirq names its port (info->evtchn) before pirq_guest_bind, so an
    // interrupt the bind lets through (an edge latched while the pin was masked) finds it.
    this.bindPort(e, port, ECS_PIRQ, 0);
    e.u[port] = pirq;
    e.pirqPort[pirq] = port;
    const rc = this.pirqHooks?.bind(e.d, pirq, (flags & 1) !== 0) ?? 0;
    if (rc !== 0) {
      e.pirqPort[pirq] = 0;
      this.free(e, port);
      return rc < 0 ? rc : -EINVAL;
    }
    a.port = port;
    return 0;
  }

  /** Xen's evtchn_close. */
  close(e: EvtDomain, port: number): number {
    if (!e.portValid(port)) return -EINVAL;
    switch (e.state[port]) {
      case ECS_FREE:
      case ECS_RESERVED:
        return -EINVAL;
      case ECS_PIRQ: {
        const pirq = e.u[port];
        this.pirqHooks?.unbind(e.d, pirq);
        e.pirqPort[pirq] = 0;
        break;
      }
      case ECS_VIRQ: {
        const virq = e.u[port];
        const vcpu = virqIsGlobal(virq) ? 0 : e.notify[port];
        e.virqPort[vcpu * NR_VIRQS + virq] = 0;
        break;
      }
      case ECS_INTERDOMAIN: {
        const re = this.doms[e.remoteDom[port]];
        const rport = e.remotePort[port];
        if (
          re !== undefined &&
          re.state[rport] === ECS_INTERDOMAIN &&
          re.remoteDom[rport] === e.d.domid &&
          re.remotePort[rport] === port
        ) {
          re.state[rport] = ECS_UNBOUND;
          re.remoteDom[rport] = e.d.domid;
          re.remotePort[rport] = 0;
        }
        break;
      }
      default:
        break;
    }
    this.free(e, port);
    return 0;
  }

  /** Xen's evtchn_send. */
  sendPort(e: EvtDomain, port: number): number {
    if (!e.portValid(port)) return -EINVAL;
    switch (e.state[port]) {
      case ECS_INTERDOMAIN: {
        const re = this.doms[e.remoteDom[port]]!;
        const rport = e.remotePort[port];
        e.sends[port]++;
        this.raise(re, re.notify[rport], rport);
        this.cSends.value++;
        return 0;
      }
      case ECS_IPI:
        e.sends[port]++;
        this.raise(e, e.notify[port], port);
        this.cSends.value++;
        return 0;
      case ECS_UNBOUND:
        return 0;
      default:
        return -EINVAL;
    }
  }

  private status(v: Vcpu, a: Args): number {
    const e = this.lookup(v.domain, a.dom);
    if (typeof e === "number") return e;
    const port = a.port;
    if (!int(port)) return -EFAULT;
    if (!e.portValid(port)) return -EINVAL;
    if (!this.mayTarget(v.domain, e.d)) return -EPERM;
    const info = this.info(e, port);
    a.status = info.status;
    a.vcpu = info.vcpu;
    switch (info.status) {
      case EVTCHNSTAT_unbound:
        a.u = { unbound: { dom: info.remoteDom } };
        break;
      case EVTCHNSTAT_interdomain:
        a.u = { interdomain: { dom: info.remoteDom, port: info.remotePort } };
        break;
      case EVTCHNSTAT_pirq:
        a.u = { pirq: info.irq };
        break;
      case EVTCHNSTAT_virq:
        a.u = { virq: info.irq };
        break;
      default:
        break;
    }
    return 0;
  }

  private info(e: EvtDomain, port: number): PortInfo {
    const out: PortInfo = {
      status: EVTCHNSTAT_closed,
      vcpu: 0,
      remoteDom: -1,
      remotePort: 0,
      irq: -1,
    };
    if (!e.portValid(port)) return out;
    out.vcpu = e.notify[port];
    switch (e.state[port]) {
      case ECS_UNBOUND:
        out.status = EVTCHNSTAT_unbound;
        out.remoteDom = e.remoteDom[port];
        break;
      case ECS_INTERDOMAIN:
        out.status = EVTCHNSTAT_interdomain;
        out.remoteDom = e.remoteDom[port];
        out.remotePort = e.remotePort[port];
        break;
      case ECS_PIRQ:
        out.status = EVTCHNSTAT_pirq;
        out.irq = e.u[port];
        break;
      case ECS_VIRQ:
        out.status = EVTCHNSTAT_virq;
        out.irq = e.u[port];
        break;
      case ECS_IPI:
        out.status = EVTCHNSTAT_ipi;
        break;
      default:
        break;
    }
    return out;
  }

  private bindVcpu(e: EvtDomain, a: Args): number {
    const { port, vcpu } = a;
    if (!int(port) || !int(vcpu)) return -EFAULT;
    if (vcpu < 0 || vcpu >= e.d.vcpus.length) return -ENOENT;
    if (!e.portValid(port)) return -EINVAL;
    switch (e.state[port]) {
      case ECS_VIRQ:
        if (!virqIsGlobal(e.u[port])) return -EINVAL;
        e.notify[port] = vcpu;
        return 0;
      case ECS_UNBOUND:
      case ECS_INTERDOMAIN:
      case ECS_PIRQ:
        e.notify[port] = vcpu;
        return 0;
      default:
        return -EINVAL;
    }
  }

  /**
   * Xen's evtchn_unmask: any existing port (port_is_valid), in use or free, as Xen 4.17; a port
   * past the allocated buckets is -EINVAL. The ABI op clears the mask bit in the domain's own
   * shared_info or event array, and ignores a port those cannot name.
   */
  private unmask(e: EvtDomain, a: Args): number {
    const port = a.port;
    if (!int(port)) return -EFAULT;
    if (!e.portValid(port)) return -EINVAL;
    e.ops.unmask(e, port);
    return 0;
  }

  private reset(v: Vcpu, a: Args): number {
    const e = this.lookup(v.domain, a.dom);
    if (typeof e === "number") return e;
    if (!this.mayTarget(v.domain, e.d)) return -EPERM;
    if (e.d !== v.domain && e.d.pauseCount === 0) return -EINVAL;
    for (let port = 1; port < e.valid; port++) if (e.state[port] !== ECS_FREE) this.close(e, port);
    if (e.fifo !== null) {
      destroyFifo(this.ctx.hv, e);
      e.ops = this.twoLevel;
      // Back to 2-level: ports beyond its limit stop existing, so no later op can name them.
      e.shrinkTo(this.twoLevel.maxPorts(e));
    }
    return 0;
  }

  private setPriority(e: EvtDomain, a: Args): number {
    const { port, priority } = a;
    if (!int(port) || !int(priority)) return -EFAULT;
    // As Xen: any existing port (a free one's priority is reset when it is bound again).
    if (!e.portValid(port)) return -EINVAL;
    return e.ops.setPriority(e, port, priority);
  }

  // ---- what the ABIs call back ----

  markEventsPending(e: EvtDomain, vcpuId: number): void {
    const vi = e.vcpuInfoW(vcpuId);
    if (vi < 0) return;
    const w = e.vi[vi];
    if ((w & 0xff) !== 0) return;
    e.vi[vi] = (w & ~0xff) | 1;
    this.cUpcalls.value++;
    e.vcpuUpcalls[vcpuId]++;
    this.sched.vcpuKick(e.d.vcpus[vcpuId]);
  }

  checkPollers(e: EvtDomain, port: number): void {
    this.sched.checkPollers(e.d, port);
  }

  // ---- what the scheduler calls ----

  private localEventsNeedDelivery(v: Vcpu): boolean {
    const e = this.doms[v.domain.domid];
    if (e === undefined) return false;
    const vi = e.vcpuInfoW(v.vcpuId);
    if (vi < 0) return false;
    const w = e.vi[vi];
    return (w & 0xff) !== 0 && (w & 0xff00) === 0;
  }

  private localEventDeliveryEnable(v: Vcpu): void {
    const e = this.doms[v.domain.domid];
    if (e === undefined) return;
    const vi = e.vcpuInfoW(v.vcpuId);
    if (vi >= 0) e.vi[vi] &= ~0xff00;
  }

  private portPoll(d: Domain, port: number): number {
    const e = this.doms[d.domid];
    if (e === undefined || !e.portValid(port) || e.state[port] === ECS_FREE) return -EINVAL;
    return e.ops.isPending(e, port) ? 1 : 0;
  }

  // ---- the service ----

  domainAbi(d: Domain): "2-level" | "fifo" {
    return this.evtDomain(d).ops.kind;
  }

  sendVirq(v: Vcpu, virq: number): void {
    if (!(Number.isInteger(virq) && virq >= 0 && virq < NR_VIRQS)) {
      throw new HyperlabError<EvtchnErrorCode>(
        "EVTCHN_BAD_VIRQ",
        `VIRQ ${virq} does not exist; VIRQs are 0..${NR_VIRQS - 1} (VIRQ_* in @hyperlab/abi).`,
      );
    }
    const e = this.evtDomain(v.domain);
    if (virqIsGlobal(virq)) {
      const port = e.virqPort[virq];
      if (port !== 0) this.raise(e, e.notify[port], port);
      return;
    }
    const port = e.virqPort[v.vcpuId * NR_VIRQS + virq];
    if (port !== 0) this.raise(e, v.vcpuId, port);
  }

  sendGlobalVirq(virq: number): void {
    if (!(Number.isInteger(virq) && virq >= 0 && virq < NR_VIRQS && virqIsGlobal(virq))) {
      throw new HyperlabError<EvtchnErrorCode>(
        "EVTCHN_BAD_VIRQ",
        `VIRQ ${virq} is not a global VIRQ; send per-vCPU VIRQs with sendVirq(vcpu, virq).`,
      );
    }
    const h = this.globalHandler[virq];
    const e = this.doms[Math.max(h, 0)];
    if (e === undefined) return;
    const port = e.virqPort[virq];
    if (port !== 0) this.raise(e, e.notify[port], port);
  }

  setGlobalVirqHandler(d: Domain, virq: number): void {
    this.evtDomain(d);
    if (!(Number.isInteger(virq) && virq >= 0 && virq < NR_VIRQS && virqIsGlobal(virq))) {
      throw new HyperlabError<EvtchnErrorCode>(
        "EVTCHN_BAD_VIRQ",
        `VIRQ ${virq} is not a global VIRQ, so it has no handler domain.`,
      );
    }
    this.globalHandler[virq] = d.domid;
  }

  sendPirq(d: Domain, pirq: number): boolean {
    const e = this.evtDomain(d);
    if (!(Number.isInteger(pirq) && pirq >= 0 && pirq < this.nrPirqs)) return false;
    const port = e.pirqPort[pirq];
    if (port === 0) return false;
    this.raise(e, e.notify[port], port);
    return true;
  }

  permitPirq(d: Domain, pirq: number, allow: boolean): void {
    const e = this.evtDomain(d);
    if (!(Number.isInteger(pirq) && pirq >= 0 && pirq < this.nrPirqs)) {
      throw new HyperlabError<EvtchnErrorCode>(
        "EVTCHN_BAD_PIRQ",
        `PIRQ ${pirq} is out of range 0..${this.nrPirqs - 1} (raise nrPirqs in the plugin options).`,
      );
    }
    e.pirqPermitted[pirq] = allow ? 1 : 0;
  }

  setPirqHooks(hooks: PirqHooks): void {
    this.pirqHooks = hooks;
  }

  send(d: Domain, port: number): number {
    return this.sendPort(this.evtDomain(d), port);
  }

  portInfo(d: Domain, port: number): PortInfo {
    return this.info(this.evtDomain(d), port);
  }

  isPending(d: Domain, port: number): boolean {
    const e = this.evtDomain(d);
    return e.portValid(port) && e.ops.isPending(e, port);
  }

  isMasked(d: Domain, port: number): boolean {
    const e = this.evtDomain(d);
    return !e.portValid(port) || e.ops.isMasked(e, port);
  }

  maxPorts(d: Domain): number {
    const e = this.evtDomain(d);
    return Math.min(e.maxEvtchnPort + 1, e.ops.maxPorts(e));
  }

  activePorts(d: Domain): number {
    return this.evtDomain(d).active;
  }

  forEachPort(d: Domain, fn: (p: Readonly<PortTraffic>) => void): void {
    const e = this.evtDomain(d);
    const out: PortTraffic = {
      port: 0,
      status: EVTCHNSTAT_closed,
      vcpu: 0,
      remoteDom: -1,
      remotePort: 0,
      irq: -1,
      pending: false,
      masked: true,
      sends: 0,
      raised: 0,
    };
    // `valid` is read each round: a callback may close ports (or a reset shrink the range).
    for (let port = 1; port < e.valid; port++) {
      const st = e.state[port];
      if (st === ECS_FREE || st === ECS_RESERVED) continue;
      Object.assign(out, this.info(e, port));
      out.port = port;
      out.pending = e.ops.isPending(e, port);
      out.masked = e.ops.isMasked(e, port);
      out.sends = e.sends[port];
      out.raised = e.raised[port];
      fn(out);
    }
  }

  vcpuEventCounts(v: Vcpu): VcpuEventCounts {
    const e = this.evtDomain(v.domain);
    return { raised: e.vcpuRaised[v.vcpuId], upcalls: e.vcpuUpcalls[v.vcpuId] };
  }
}
