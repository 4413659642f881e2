import {
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_sched_op,
  DOMID_SELF,
  EEXIST,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOSPC,
  ENOSYS,
  EOPNOTSUPP,
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
  SCHEDOP_poll,
  SCHEDOP_shutdown,
  SHUTDOWN_crash,
  VIRQ_CONSOLE,
  VIRQ_DEBUG,
  VIRQ_DOM_EXC,
  VIRQ_TIMER,
} from "@hyperlab/abi";
import { type Domain, HyperlabError, type Hypervisor, type Vcpu } from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import { evtchn2l } from "../src/index";
import { type Abi, boot } from "./helpers";

const MS = 1_000_000;

function ev(hv: Hypervisor, v: Vcpu, cmd: number, args: Record<string, unknown> = {}) {
  const a: Record<string, unknown> = { cmd, ...args };
  const rc = hv.hypercall(v, __HYPERVISOR_event_channel_op, a);
  return { rc, a };
}

function doms(abi: Abi = "2-level") {
  const s = boot(abi);
  const mk = (domid?: number, addressSize?: 64 | 32) => {
    const d = s.hv.createDomain({ domid, maxVcpus: 2, maxPages: 64, addressSize });
    s.hv.unpauseDomain(d);
    return d;
  };
  const dom0 = mk(0);
  const a = mk();
  const b = mk();
  return { ...s, dom0, a, b, mk };
}

/** An interdomain channel between a (port pa) and b (port pb). */
function connect(hv: Hypervisor, a: Domain, b: Domain) {
  const u = ev(hv, b.vcpus[0], EVTCHNOP_alloc_unbound, { dom: DOMID_SELF, remote_dom: a.domid });
  expect(u.rc).toBe(0);
  const i = ev(hv, a.vcpus[0], EVTCHNOP_bind_interdomain, {
    remote_dom: b.domid,
    remote_port: u.a.port,
  });
  expect(i.rc).toBe(0);
  return { pa: i.a.local_port as number, pb: u.a.port as number };
}

for (const abi of ["2-level", "fifo"] as Abi[]) {
  describe(`EVTCHNOP_* (${abi} build)`, () => {
    it("alloc_unbound: allocates the lowest free port, checks the caller may act on dom", () => {
      const { hv, evtchn, dom0, a, b } = doms(abi);
      const r = ev(hv, a.vcpus[0], EVTCHNOP_alloc_unbound, {
        dom: DOMID_SELF,
        remote_dom: b.domid,
      });
      expect(r.rc).toBe(0);
      expect(r.a.port).toBe(1);
      expect(evtchn.portInfo(a, 1)).toMatchObject({
        status: EVTCHNSTAT_unbound,
        remoteDom: b.domid,
      });
      expect(
        ev(hv, a.vcpus[0], EVTCHNOP_alloc_unbound, { dom: b.domid, remote_dom: a.domid }).rc,
      ).toBe(-EPERM);
      expect(
        ev(hv, a.vcpus[0], EVTCHNOP_alloc_unbound, { dom: 4000, remote_dom: a.domid }).rc,
      ).toBe(-ESRCH);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_alloc_unbound, { dom: "x", remote_dom: 0 }).rc).toBe(
        -EFAULT,
      );
      expect(
        ev(hv, a.vcpus[0], EVTCHNOP_alloc_unbound, { dom: DOMID_SELF, remote_dom: -1 }).rc,
      ).toBe(-EFAULT);
      // dom0 (privileged) may allocate in b for a; remote_dom DOMID_SELF means the caller.
      const p = ev(hv, dom0.vcpus[0], EVTCHNOP_alloc_unbound, {
        dom: b.domid,
        remote_dom: DOMID_SELF,
      });
      expect(p.rc).toBe(0);
      expect(evtchn.portInfo(b, p.a.port as number).remoteDom).toBe(0);
      // a device model (d.target) may act on its target.
      a.target = b.domid;
      expect(
        ev(hv, a.vcpus[0], EVTCHNOP_alloc_unbound, { dom: b.domid, remote_dom: a.domid }).rc,
      ).toBe(0);
    });

    it("bind_interdomain: only the named domain may bind, only an unbound port, and one event is raised", () => {
      const { hv, evtchn, dom0, a, b } = doms(abi);
      const u = ev(hv, b.vcpus[0], EVTCHNOP_alloc_unbound, {
        dom: DOMID_SELF,
        remote_dom: a.domid,
      });
      const rp = u.a.port as number;
      expect(
        ev(hv, dom0.vcpus[0], EVTCHNOP_bind_interdomain, { remote_dom: b.domid, remote_port: rp })
          .rc,
      ).toBe(-EINVAL);
      expect(
        ev(hv, a.vcpus[0], EVTCHNOP_bind_interdomain, { remote_dom: b.domid, remote_port: 999 }).rc,
      ).toBe(-EINVAL);
      expect(
        ev(hv, a.vcpus[0], EVTCHNOP_bind_interdomain, { remote_dom: b.domid, remote_port: 0 }).rc,
      ).toBe(-EINVAL);
      expect(
        ev(hv, a.vcpus[0], EVTCHNOP_bind_interdomain, { remote_dom: 4000, remote_port: rp }).rc,
      ).toBe(-ESRCH);
      expect(
        ev(hv, a.vcpus[0], EVTCHNOP_bind_interdomain, { remote_dom: b.domid, remote_port: "1" }).rc,
      ).toBe(-EFAULT);
      expect(evtchn.activePorts(a)).toBe(1);
      const i = ev(hv, a.vcpus[0], EVTCHNOP_bind_interdomain, {
        remote_dom: b.domid,
        remote_port: rp,
      });
      expect(i.rc).toBe(0);
      const lp = i.a.local_port as number;
      expect(evtchn.portInfo(a, lp)).toMatchObject({
        status: EVTCHNSTAT_interdomain,
        remoteDom: b.domid,
        remotePort: rp,
      });
      expect(evtchn.portInfo(b, rp)).toMatchObject({
        status: EVTCHNSTAT_interdomain,
        remoteDom: a.domid,
        remotePort: lp,
      });
      // Both builds start every domain on the 2-level ABI.
      expect(evtchn.isPending(a, lp)).toBe(true);
      // Bound ports cannot be bound twice.
      expect(
        ev(hv, a.vcpus[0], EVTCHNOP_bind_interdomain, { remote_dom: b.domid, remote_port: rp }).rc,
      ).toBe(-EINVAL);
      // Loopback: a domain may connect to itself.
      const self = ev(hv, a.vcpus[0], EVTCHNOP_alloc_unbound, {
        dom: DOMID_SELF,
        remote_dom: DOMID_SELF,
      });
      expect(
        ev(hv, a.vcpus[0], EVTCHNOP_bind_interdomain, {
          remote_dom: DOMID_SELF,
          remote_port: self.a.port,
        }).rc,
      ).toBe(0);
    });

    it("send: raises the remote end; unbound drops silently; VIRQ/PIRQ/free ports are -EINVAL", () => {
      const { hv, evtchn, a, b } = doms(abi);
      const { pa, pb } = connect(hv, a, b);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_send, { port: pa }).rc).toBe(0);
      expect(evtchn.isPending(b, pb)).toBe(true);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_send, { port: 77 }).rc).toBe(-EINVAL);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_send, { port: -1 }).rc).toBe(-EINVAL);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_send, { port: 0 }).rc).toBe(-EINVAL);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_send, {}).rc).toBe(-EFAULT);
      const u = ev(hv, a.vcpus[0], EVTCHNOP_alloc_unbound, {
        dom: DOMID_SELF,
        remote_dom: b.domid,
      });
      expect(ev(hv, a.vcpus[0], EVTCHNOP_send, { port: u.a.port }).rc).toBe(0);
      const v = ev(hv, a.vcpus[0], EVTCHNOP_bind_virq, { virq: VIRQ_TIMER, vcpu: 0 });
      expect(ev(hv, a.vcpus[0], EVTCHNOP_send, { port: v.a.port }).rc).toBe(-EINVAL);
      expect(evtchn.send(a, pa)).toBe(0);
    });

    it("destroying a domain raises VIRQ_DOM_EXC at the domain that handles it, as domain_kill does", () => {
      const { hv, evtchn, dom0, a, b } = doms(abi);
      const v = ev(hv, dom0.vcpus[0], EVTCHNOP_bind_virq, { virq: VIRQ_DOM_EXC, vcpu: 0 });
      expect(v.rc).toBe(0);
      const { pb } = connect(hv, a, b);
      expect(evtchn.isPending(dom0, v.a.port as number)).toBe(false);
      hv.destroyDomain(a);
      expect(evtchn.isPending(dom0, v.a.port as number)).toBe(true);
      // The surviving end of the interdomain channel is left unbound, as Xen leaves it.
      expect(evtchn.portInfo(b, pb).status).toBe(EVTCHNSTAT_unbound);
    });

    it("close: frees the port, leaves the other end unbound to the closer, and refuses bad ports", () => {
      const { hv, evtchn, a, b } = doms(abi);
      const { pa, pb } = connect(hv, a, b);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_close, { port: pa }).rc).toBe(0);
      expect(evtchn.portInfo(a, pa).status).toBe(EVTCHNSTAT_closed);
      expect(evtchn.isPending(a, pa)).toBe(false);
      expect(evtchn.portInfo(b, pb)).toMatchObject({
        status: EVTCHNSTAT_unbound,
        remoteDom: a.domid,
      });
      // b's sends now drop silently; a may bind again and the channel works again.
      expect(ev(hv, b.vcpus[0], EVTCHNOP_send, { port: pb }).rc).toBe(0);
      const again = ev(hv, a.vcpus[0], EVTCHNOP_bind_interdomain, {
        remote_dom: b.domid,
        remote_port: pb,
      });
      expect(again.rc).toBe(0);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_close, { port: pa + 100 }).rc).toBe(-EINVAL);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_close, { port: 0 }).rc).toBe(-EINVAL);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_close, { port: 5 }).rc).toBe(-EINVAL);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_close, { port: "1" }).rc).toBe(-EFAULT);
      // Closing a port with an event waiting drops the event: the next owner starts clean.
      const ipi = ev(hv, a.vcpus[0], EVTCHNOP_bind_ipi, { vcpu: 0 }).a.port as number;
      expect(ev(hv, a.vcpus[0], EVTCHNOP_send, { port: ipi }).rc).toBe(0);
      expect(evtchn.isPending(a, ipi)).toBe(true);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_close, { port: ipi }).rc).toBe(0);
      expect(evtchn.isPending(a, ipi)).toBe(false);
    });

    it("bind_virq: range, global VIRQs only on vCPU 0, no double binding, delivery per vCPU", () => {
      const { hv, evtchn, a } = doms(abi);
      const bind = (virq: unknown, vcpu: unknown) =>
        ev(hv, a.vcpus[0], EVTCHNOP_bind_virq, { virq, vcpu });
      expect(bind(24, 0).rc).toBe(-EINVAL);
      expect(bind(-1, 0).rc).toBe(-EINVAL);
      expect(bind(VIRQ_CONSOLE, 1).rc).toBe(-EINVAL);
      expect(bind(VIRQ_TIMER, 5).rc).toBe(-ENOENT);
      expect(bind("0", 0).rc).toBe(-EFAULT);
      const t1 = bind(VIRQ_TIMER, 1);
      expect(t1.rc).toBe(0);
      expect(bind(VIRQ_TIMER, 1).rc).toBe(-EEXIST);
      const t0 = bind(VIRQ_TIMER, 0);
      const dbg = bind(VIRQ_DEBUG, 0);
      expect(evtchn.portInfo(a, t1.a.port as number)).toMatchObject({
        status: EVTCHNSTAT_virq,
        irq: VIRQ_TIMER,
        vcpu: 1,
      });
      evtchn.sendVirq(a.vcpus[1], VIRQ_TIMER);
      if (abi === "2-level") {
        expect(evtchn.isPending(a, t1.a.port as number)).toBe(true);
        expect(evtchn.isPending(a, t0.a.port as number)).toBe(false);
      }
      expect(() => evtchn.sendVirq(a.vcpus[0], 99)).toThrow(HyperlabError);
      // Closing frees the VIRQ for binding again.
      expect(ev(hv, a.vcpus[0], EVTCHNOP_close, { port: t1.a.port }).rc).toBe(0);
      expect(bind(VIRQ_TIMER, 1).rc).toBe(0);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_close, { port: dbg.a.port }).rc).toBe(0);
    });

    it("global VIRQs go to dom0 or the handler set for them, never to the domain that names them", () => {
      const { hv, evtchn, dom0, a } = doms(abi);
      const p0 = ev(hv, dom0.vcpus[0], EVTCHNOP_bind_virq, { virq: VIRQ_DOM_EXC, vcpu: 0 }).a
        .port as number;
      const pa = ev(hv, a.vcpus[0], EVTCHNOP_bind_virq, { virq: VIRQ_DOM_EXC, vcpu: 0 }).a
        .port as number;
      evtchn.sendGlobalVirq(VIRQ_DOM_EXC);
      if (abi === "2-level") {
        expect(evtchn.isPending(dom0, p0)).toBe(true);
        expect(evtchn.isPending(a, pa)).toBe(false);
      }
      evtchn.setGlobalVirqHandler(a, VIRQ_DOM_EXC);
      evtchn.sendGlobalVirq(VIRQ_DOM_EXC);
      if (abi === "2-level") expect(evtchn.isPending(a, pa)).toBe(true);
      expect(() => evtchn.sendGlobalVirq(VIRQ_TIMER)).toThrow(/not a global VIRQ/);
      expect(() => evtchn.setGlobalVirqHandler(a, VIRQ_TIMER)).toThrow(HyperlabError);
      // A domain's shutdown raises VIRQ_DOM_EXC at the handler (through the scheduler).
      hv.destroyDomain(a);
      evtchn.sendGlobalVirq(VIRQ_DOM_EXC);
    });

    it("bind_ipi and bind_vcpu", () => {
      const { hv, evtchn, a } = doms(abi);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_bind_ipi, { vcpu: 2 }).rc).toBe(-ENOENT);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_bind_ipi, { vcpu: null }).rc).toBe(-EFAULT);
      const ipi = ev(hv, a.vcpus[0], EVTCHNOP_bind_ipi, { vcpu: 1 });
      expect(ipi.rc).toBe(0);
      const port = ipi.a.port as number;
      expect(evtchn.portInfo(a, port)).toMatchObject({ status: EVTCHNSTAT_ipi, vcpu: 1 });
      expect(ev(hv, a.vcpus[0], EVTCHNOP_send, { port }).rc).toBe(0);
      // IPIs and per-vCPU VIRQs cannot move; unbound, interdomain, global VIRQ and PIRQ ports can.
      expect(ev(hv, a.vcpus[0], EVTCHNOP_bind_vcpu, { port, vcpu: 0 }).rc).toBe(-EINVAL);
      const t = ev(hv, a.vcpus[0], EVTCHNOP_bind_virq, { virq: VIRQ_TIMER, vcpu: 0 }).a.port;
      expect(ev(hv, a.vcpus[0], EVTCHNOP_bind_vcpu, { port: t, vcpu: 1 }).rc).toBe(-EINVAL);
      const g = ev(hv, a.vcpus[0], EVTCHNOP_bind_virq, { virq: VIRQ_CONSOLE, vcpu: 0 }).a.port;
      expect(ev(hv, a.vcpus[0], EVTCHNOP_bind_vcpu, { port: g, vcpu: 1 }).rc).toBe(0);
      const u = ev(hv, a.vcpus[0], EVTCHNOP_alloc_unbound, { dom: DOMID_SELF, remote_dom: 0 }).a
        .port;
      expect(ev(hv, a.vcpus[0], EVTCHNOP_bind_vcpu, { port: u, vcpu: 1 }).rc).toBe(0);
      expect(evtchn.portInfo(a, u as number).vcpu).toBe(1);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_bind_vcpu, { port: u, vcpu: 9 }).rc).toBe(-ENOENT);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_bind_vcpu, { port: 500, vcpu: 1 }).rc).toBe(-EINVAL);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_bind_vcpu, { port: 0, vcpu: 1 }).rc).toBe(-EINVAL);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_bind_vcpu, { port: "x", vcpu: 1 }).rc).toBe(-EFAULT);
    });

    it("bind_pirq: needs permission, calls the apic-hooks hook, delivers sendPirq, unbinds on close", () => {
      const { hv, evtchn, a, b } = doms(abi);
      const calls: string[] = [];
      evtchn.setPirqHooks({
        bind: (d, pirq) => {
          calls.push(`bind ${d.domid} ${pirq}`);
          return pirq === 13 ? -16 : 0;
        },
        unbind: (d, pirq) => calls.push(`unbind ${d.domid} ${pirq}`),
      });
      const bind = (pirq: unknown, flags: unknown = 0) =>
        ev(hv, a.vcpus[0], EVTCHNOP_bind_pirq, { pirq, flags });
      expect(bind(10).rc).toBe(-EPERM);
      expect(bind(256).rc).toBe(-EINVAL);
      expect(bind(10, "x").rc).toBe(-EFAULT);
      evtchn.permitPirq(a, 10, true);
      evtchn.permitPirq(a, 13, true);
      expect(bind(13).rc).toBe(-16);
      const r = bind(10);
      expect(r.rc).toBe(0);
      expect(bind(10).rc).toBe(-EEXIST);
      const port = r.a.port as number;
      expect(evtchn.portInfo(a, port)).toMatchObject({ status: EVTCHNSTAT_pirq, irq: 10 });
      expect(evtchn.sendPirq(a, 10)).toBe(true);
      expect(evtchn.sendPirq(a, 11)).toBe(false);
      expect(evtchn.sendPirq(a, -3)).toBe(false);
      // Another domain without the permission still cannot bind the same PIRQ.
      expect(ev(hv, b.vcpus[0], EVTCHNOP_bind_pirq, { pirq: 10, flags: 0 }).rc).toBe(-EPERM);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_bind_vcpu, { port, vcpu: 1 }).rc).toBe(0);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_close, { port }).rc).toBe(0);
      expect(calls).toEqual([`bind ${a.domid} 13`, `bind ${a.domid} 10`, `unbind ${a.domid} 10`]);
      expect(() => evtchn.permitPirq(a, 4096, true)).toThrow(/nrPirqs/);
    });

    it("status: reports every kind of port and refuses other domains' ports", () => {
      const { hv, dom0, a, b } = doms(abi);
      const { pa } = connect(hv, a, b);
      const st = (from: Domain, dom: unknown, port: unknown) =>
        ev(hv, from.vcpus[0], EVTCHNOP_status, { dom, port });
      const s = st(a, DOMID_SELF, pa);
      expect(s.rc).toBe(0);
      expect(s.a).toMatchObject({
        status: EVTCHNSTAT_interdomain,
        vcpu: 0,
        u: { interdomain: { dom: b.domid } },
      });
      expect(st(a, DOMID_SELF, 0).a.status).toBe(EVTCHNSTAT_closed);
      expect(st(a, DOMID_SELF, 9999).rc).toBe(-EINVAL);
      expect(st(a, b.domid, 1).rc).toBe(-EPERM);
      expect(st(a, 4000, 1).rc).toBe(-ESRCH);
      expect(st(a, DOMID_SELF, "1").rc).toBe(-EFAULT);
      expect(st(dom0, a.domid, pa).rc).toBe(0);
      const u = ev(hv, a.vcpus[0], EVTCHNOP_alloc_unbound, { dom: DOMID_SELF, remote_dom: 0 }).a
        .port;
      expect(st(a, DOMID_SELF, u).a.u).toEqual({ unbound: { dom: 0 } });
      const v = ev(hv, a.vcpus[0], EVTCHNOP_bind_virq, { virq: VIRQ_DEBUG, vcpu: 1 }).a.port;
      expect(st(a, DOMID_SELF, v).a).toMatchObject({
        status: EVTCHNSTAT_virq,
        vcpu: 1,
        u: { virq: VIRQ_DEBUG },
      });
    });

    it("unmask: any existing port, free or in use, as Xen's port_is_valid; -EINVAL past the buckets", () => {
      const { hv, a } = doms(abi);
      const ipi = ev(hv, a.vcpus[0], EVTCHNOP_bind_ipi, { vcpu: 0 }).a.port as number;
      expect(ev(hv, a.vcpus[0], EVTCHNOP_unmask, { port: ipi }).rc).toBe(0);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_unmask, { port: 0 }).rc).toBe(0); // reserved, in use
      expect(ev(hv, a.vcpus[0], EVTCHNOP_unmask, { port: ipi + 1 }).rc).toBe(0); // free, in a bucket
      expect(ev(hv, a.vcpus[0], EVTCHNOP_unmask, { port: 64 }).rc).toBe(-EINVAL); // no bucket
      expect(ev(hv, a.vcpus[0], EVTCHNOP_unmask, { port: "3" }).rc).toBe(-EFAULT);
    });

    it("reset: closes every port; another domain may reset only a paused domain it controls", () => {
      const { hv, evtchn, dom0, a, b } = doms(abi);
      const { pb } = connect(hv, a, b);
      ev(hv, a.vcpus[0], EVTCHNOP_bind_virq, { virq: VIRQ_TIMER, vcpu: 0 });
      expect(ev(hv, b.vcpus[0], EVTCHNOP_reset, { dom: a.domid }).rc).toBe(-EPERM);
      expect(ev(hv, dom0.vcpus[0], EVTCHNOP_reset, { dom: a.domid }).rc).toBe(-EINVAL);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_reset, { dom: 4000 }).rc).toBe(-ESRCH);
      hv.pauseDomain(a);
      expect(ev(hv, dom0.vcpus[0], EVTCHNOP_reset, { dom: a.domid }).rc).toBe(0);
      expect(evtchn.activePorts(a)).toBe(1);
      expect(evtchn.portInfo(b, pb)).toMatchObject({
        status: EVTCHNSTAT_unbound,
        remoteDom: a.domid,
      });
      hv.unpauseDomain(a);
      expect(ev(hv, a.vcpus[0], EVTCHNOP_reset, { dom: DOMID_SELF }).rc).toBe(0);
    });

    it("allocation past the ABI's limit returns -ENOSPC and the domain keeps working", () => {
      const { hv, evtchn, a, b, mk } = doms(abi);
      const d32 = mk(undefined, 32);
      for (const [d, limit] of [
        [a, 4096],
        [d32, 1024],
      ] as const) {
        expect(evtchn.maxPorts(d)).toBe(limit);
        let n = 0;
        for (;;) {
          const r = ev(hv, d.vcpus[0], EVTCHNOP_alloc_unbound, {
            dom: DOMID_SELF,
            remote_dom: b.domid,
          });
          if (r.rc !== 0) {
            expect(r.rc).toBe(-ENOSPC);
            break;
          }
          n++;
        }
        expect(n).toBe(limit - 1);
        expect(ev(hv, d.vcpus[0], EVTCHNOP_bind_ipi, { vcpu: 0 }).rc).toBe(-ENOSPC);
        expect(ev(hv, d.vcpus[0], EVTCHNOP_close, { port: 7 }).rc).toBe(0);
        expect(ev(hv, d.vcpus[0], EVTCHNOP_bind_ipi, { vcpu: 0 }).a.port).toBe(7);
        expect(ev(hv, d.vcpus[0], EVTCHNOP_send, { port: 7 }).rc).toBe(0);
      }
    });

    it("a maxEvtchnPort option lowers the limit", () => {
      const s = boot(abi, [], { maxEvtchnPort: 3 });
      const d = s.hv.createDomain({ maxVcpus: 1, maxPages: 8 });
      for (let i = 1; i <= 3; i++)
        expect(ev(s.hv, d.vcpus[0], EVTCHNOP_bind_ipi, { vcpu: 0 }).rc).toBe(0);
      expect(ev(s.hv, d.vcpus[0], EVTCHNOP_bind_ipi, { vcpu: 0 }).rc).toBe(-ENOSPC);
      expect(s.evtchn.maxPorts(d)).toBe(4);
    });

    it("SCHEDOP_poll on event channel ports: fails for ports never allocated, wakes on an event", () => {
      const { hv, sched, machine, a, b } = doms(abi);
      const { pa, pb } = connect(hv, a, b);
      const poll = (ports: number[]) =>
        hv.hypercall(b.vcpus[0], __HYPERVISOR_sched_op, {
          cmd: SCHEDOP_poll,
          ports,
          nr_ports: ports.length,
          timeout: 0,
        });
      machine.clock.runUntil(MS);
      expect(poll([300])).toBe(-EINVAL);
      expect(poll([pb + 1])).toBe(-EINVAL);
      if (abi === "2-level") {
        // pb is not pending yet; mask it so the event raises no upcall, only the poll wake-up.
        const e = hv.machine.ram;
        const maskWord = b.sharedInfoMfn * 4096 + 2560 + (pb >>> 5) * 4;
        e.write32(maskWord, e.read32(maskWord) | (1 << (pb & 31)));
      }
      expect(poll([pb])).toBe(0);
      machine.clock.runUntil(2 * MS);
      expect(sched.isPolling(b.vcpus[0])).toBe(true);
      expect(b.vcpus[0].state).toBe("blocked");
      expect(ev(hv, a.vcpus[0], EVTCHNOP_send, { port: pa }).rc).toBe(0);
      machine.clock.runUntil(3 * MS);
      if (abi === "2-level") {
        expect(sched.isPolling(b.vcpus[0])).toBe(false);
        expect(b.vcpus[0].state).not.toBe("blocked");
        // Already pending: the poll returns at once.
        expect(poll([pb])).toBe(0);
        expect(sched.isPolling(b.vcpus[0])).toBe(false);
      }
    });

    it("a domain's shutdown raises VIRQ_DOM_EXC at dom0", () => {
      const { hv, evtchn, dom0, a } = doms(abi);
      const p = ev(hv, dom0.vcpus[0], EVTCHNOP_bind_virq, { virq: VIRQ_DOM_EXC, vcpu: 0 }).a
        .port as number;
      ev(hv, dom0.vcpus[0], EVTCHNOP_unmask, { port: p });
      expect(
        hv.hypercall(a.vcpus[0], __HYPERVISOR_sched_op, {
          cmd: SCHEDOP_shutdown,
          reason: SHUTDOWN_crash,
        }),
      ).toBe(0);
      if (abi === "2-level") expect(evtchn.isPending(dom0, p)).toBe(true);
    });

    it("destroying a domain closes its ports and leaves its peers' ends unbound", () => {
      const { hv, evtchn, a, b } = doms(abi);
      const { pb } = connect(hv, a, b);
      hv.destroyDomain(a);
      expect(evtchn.portInfo(b, pb)).toMatchObject({
        status: EVTCHNSTAT_unbound,
        remoteDom: a.domid,
      });
      expect(ev(hv, b.vcpus[0], EVTCHNOP_send, { port: pb }).rc).toBe(0);
      expect(() => evtchn.portInfo(a, 1)).toThrow(HyperlabError);
    });
  });
}

describe("FIFO-only operations", () => {
  it("answer -ENOSYS in a 2-level build", () => {
    const s = boot("2-level");
    const d = s.hv.createDomain({ maxVcpus: 1, maxPages: 8 });
    for (const cmd of [EVTCHNOP_init_control, EVTCHNOP_expand_array, EVTCHNOP_set_priority]) {
      expect(ev(s.hv, d.vcpus[0], cmd, {}).rc).toBe(-ENOSYS);
    }
    expect(s.evtchn.abi).toBe("2-level");
    expect(evtchn2l().name).toBe("evtchn-2l");
  });

  it("init_control, expand_array and set_priority check their arguments", () => {
    const { hv, evtchn } = boot("fifo");
    const d = hv.createDomain({ maxVcpus: 2, maxPages: 300 });
    const other = hv.createDomain({ maxVcpus: 1, maxPages: 8 });
    const v = d.vcpus[0];
    const page = () => hv.allocDomainPages(d);
    expect(ev(hv, v, EVTCHNOP_expand_array, { array_gfn: page() }).rc).toBe(-EOPNOTSUPP);
    expect(ev(hv, v, EVTCHNOP_set_priority, { port: 1, priority: 3 }).rc).toBe(-ENOSYS);
    const ic = (a: Record<string, unknown>) => ev(hv, v, EVTCHNOP_init_control, a);
    expect(ic({ control_gfn: page(), offset: 0, vcpu: 5 }).rc).toBe(-ENOENT);
    expect(ic({ control_gfn: page(), offset: 4, vcpu: 0 }).rc).toBe(-EINVAL);
    expect(ic({ control_gfn: page(), offset: 4096 - 64, vcpu: 0 }).rc).toBe(-EINVAL);
    expect(ic({ control_gfn: page(), offset: -8, vcpu: 0 }).rc).toBe(-EINVAL);
    expect(ic({ control_gfn: hv.allocDomainPages(other), offset: 0, vcpu: 0 }).rc).toBe(-EINVAL);
    expect(ic({ control_gfn: 1e12, offset: 0, vcpu: 0 }).rc).toBe(-EINVAL);
    expect(ic({ control_gfn: "x", offset: 0, vcpu: 0 }).rc).toBe(-EINVAL);
    expect(evtchn.domainAbi(d)).toBe("2-level");
    const ok = ic({ control_gfn: page(), offset: 64, vcpu: 0 });
    expect(ok.rc).toBe(0);
    expect(ok.a.link_bits).toBe(17);
    expect(evtchn.domainAbi(d)).toBe("fifo");
    expect(ic({ control_gfn: page(), offset: 0, vcpu: 0 }).rc).toBe(-EINVAL);
    expect(ev(hv, v, EVTCHNOP_expand_array, { array_gfn: -1 }).rc).toBe(-EINVAL);
    for (let i = 0; i < 128; i++)
      expect(ev(hv, v, EVTCHNOP_expand_array, { array_gfn: page() }).rc).toBe(0);
    expect(ev(hv, v, EVTCHNOP_expand_array, { array_gfn: page() }).rc).toBe(-ENOSPC);
    const p = ev(hv, v, EVTCHNOP_bind_ipi, { vcpu: 0 }).a.port;
    expect(ev(hv, v, EVTCHNOP_set_priority, { port: p, priority: 16 }).rc).toBe(-EINVAL);
    expect(ev(hv, v, EVTCHNOP_set_priority, { port: p, priority: 2 }).rc).toBe(0);
    expect(ev(hv, v, EVTCHNOP_set_priority, { port: 99999, priority: 2 }).rc).toBe(-EINVAL);
    expect(ev(hv, v, EVTCHNOP_set_priority, { port: p, priority: "2" }).rc).toBe(-EFAULT);
    expect(evtchn.maxPorts(d)).toBe(131072);
    // Reset returns the domain to 2-level and drops the page references.
    expect(ev(hv, v, EVTCHNOP_reset, { dom: DOMID_SELF }).rc).toBe(0);
    expect(evtchn.domainAbi(d)).toBe("2-level");
    hv.destroyDomain(d);
    expect(d.state).toBe("dead");
  });
});
