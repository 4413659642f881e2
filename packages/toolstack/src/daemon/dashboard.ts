/*
 * What `hyperlab up --http PORT` shows: the live dashboard's source over a running host. The
 * domains, vCPUs and scheduler come from the same XlHost the xl verbs read (libxlHost); a
 * domain's page-table tree is walked from its vCPU 0's CR3 in machine memory, read-only.
 * Grant mappings (Xen-style hosts) are the grant table's live maptrack entries: who maps
 * whose grant, to which frame. Event-channel traffic is the evtchn slot's per-port counts
 * (forEachPort) for every live domain, dom0 included.
 *
 * Ring occupancy is read from guest memory as Xen's tools would, with no driver's private
 * state: xenstore names each ring (a vbd's or vif's ring-ref grant refs under the frontend's
 * device directory; console/ring-ref and store/ring-ref, frame numbers, in the domain's home),
 * the grant table's maptrack gives the frame the backend mapped for a grant ref, and the
 * indexes are read from that frame. Invariant: a frame is read only if it is a grant the
 * device's backend has mapped (Xen checked it then) or, for the console and xenstore pages
 * whose frame numbers sit in xenstore, a frame the domain owns; so guest-written xenstore
 * values never make the dashboard read another domain's memory. A ring not connected (no
 * mapping yet) has no row.
 */
import {
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_ipi,
  EVTCHNSTAT_pirq,
  EVTCHNSTAT_unbound,
  EVTCHNSTAT_virq,
  GNTMAP_readonly,
} from "@hyperlab/abi";
import { pageTableTree } from "../dashboard/pagetable";
import { type RingKind, readRing } from "../dashboard/rings";
import type {
  DashboardSource,
  EvtchnTraffic,
  GrantMapping,
  PageTableNode,
  RingOccupancy,
  VcpuEvents,
} from "../dashboard/source";
import type { Host } from "../libxl/host";
import { libxlHost } from "../libxl/info";

const KIND: Record<number, string> = {
  [EVTCHNSTAT_unbound]: "unbound",
  [EVTCHNSTAT_interdomain]: "interdomain",
  [EVTCHNSTAT_pirq]: "pirq",
  [EVTCHNSTAT_virq]: "virq",
  [EVTCHNSTAT_ipi]: "ipi",
};

/** Domains whose event channels exist now (a dying domain's are gone). */
function liveDomains(h: Host) {
  return h.hv.domains().filter((d) => d.state !== "dying" && d.state !== "dead");
}

export function hostDashboardSource(h: Host): DashboardSource {
  const ram = h.hv.machine.ram;
  return {
    host: libxlHost(h),
    async evtchnTraffic(): Promise<EvtchnTraffic[]> {
      if (!h.hv.hasSlot("evtchn")) return [];
      const ev = h.hv.slot("evtchn");
      const out: EvtchnTraffic[] = [];
      for (const d of liveDomains(h)) {
        ev.forEachPort(d, (p) => {
          const t: EvtchnTraffic = {
            domid: d.domid,
            port: p.port,
            kind: KIND[p.status] ?? String(p.status),
            vcpu: p.vcpu,
            pending: p.pending,
            masked: p.masked,
            sent: p.sends,
            received: p.raised,
          };
          if (p.status === EVTCHNSTAT_interdomain || p.status === EVTCHNSTAT_unbound)
            t.remoteDomid = p.remoteDom;
          if (p.status === EVTCHNSTAT_interdomain) t.remotePort = p.remotePort;
          if (p.status === EVTCHNSTAT_virq || p.status === EVTCHNSTAT_pirq) t.irq = p.irq;
          out.push(t);
        });
      }
      return out;
    },
    async vcpuEvents(): Promise<VcpuEvents[]> {
      if (!h.hv.hasSlot("evtchn")) return [];
      const ev = h.hv.slot("evtchn");
      return liveDomains(h).flatMap((d) =>
        d.vcpus.map((v) => ({ domid: d.domid, vcpu: v.vcpuId, ...ev.vcpuEventCounts(v) })),
      );
    },
    async rings(): Promise<RingOccupancy[]> {
      if (h.kind !== "xen" || h.xsd === null) return [];
      const xs = h.xsd.xs;
      const read = async (p: string): Promise<string | undefined> => {
        try {
          return await xs.read(p);
        } catch {
          return undefined;
        }
      };
      const list = async (p: string): Promise<string[]> => {
        try {
          return await xs.directory(p);
        } catch {
          return [];
        }
      };
      /** A decimal xenstore value (xenbus's strtoul), or undefined. */
      const num = (v: string | undefined) =>
        v !== undefined && /^[0-9]{1,15}$/.test(v) ? Number(v) : undefined;
      // The maptrack: frame by "mapper granter ref".
      const mapped = new Map<string, number>();
      h.hv.slot("grant-table").forEachMapping((m) => {
        mapped.set(`${m.mapperDomid} ${m.granterDomid} ${m.ref}`, m.mfn);
      });
      const out: RingOccupancy[] = [];
      const add = (kind: RingKind, name: string, domid: number, frame: number, order = 0) => {
        const base = frame * 4096;
        out.push(readRing(kind, { name, domid, frame, order }, (o) => ram.read32(base + o)));
      };
      const owned = (mfn: number | undefined, domid: number): mfn is number =>
        mfn !== undefined && ram.validMfn(mfn) && h.hv.frames.ownerOf(mfn) === domid;
      for (const domid of [...h.domains.keys()].sort((a, b) => a - b)) {
        const home = `/local/domain/${domid}`;
        for (const devid of await list(`${home}/device/vbd`)) {
          const fe = `${home}/device/vbd/${devid}`;
          const back = num(await read(`${fe}/backend-id`)) ?? 0;
          const orderStr = await read(`${fe}/ring-page-order`);
          const order = orderStr === undefined ? 0 : num(orderStr);
          const ref = num(await read(`${fe}/${orderStr === undefined ? "ring-ref" : "ring-ref0"}`));
          const mfn = mapped.get(`${back} ${domid} ${ref}`);
          if (order !== undefined && mfn !== undefined)
            add("blkif", `vbd ${domid}/${devid}`, domid, mfn, order);
        }
        for (const devid of await list(`${home}/device/vif`)) {
          const fe = `${home}/device/vif/${devid}`;
          const back = num(await read(`${fe}/backend-id`)) ?? 0;
          for (const dir of ["tx", "rx"] as const) {
            const ref = num(await read(`${fe}/${dir}-ring-ref`));
            const mfn = mapped.get(`${back} ${domid} ${ref}`);
            if (mfn !== undefined) add(`netif_${dir}`, `vif ${domid}/${devid} ${dir}`, domid, mfn);
          }
        }
        const cons = num(await read(`${home}/console/ring-ref`));
        if (owned(cons, domid)) {
          add("console_out", `console ${domid} out`, domid, cons);
          add("console_in", `console ${domid} in`, domid, cons);
        }
        const store = num(await read(`${home}/store/ring-ref`));
        if (owned(store, domid)) {
          add("xenstore_req", `xenstore ${domid} req`, domid, store);
          add("xenstore_rsp", `xenstore ${domid} rsp`, domid, store);
        }
      }
      return out;
    },
    async grantMappings(): Promise<GrantMapping[]> {
      if (h.kind !== "xen") return [];
      const out: GrantMapping[] = [];
      h.hv.slot("grant-table").forEachMapping((m) => {
        out.push({
          granter: m.granterDomid,
          grantee: m.mapperDomid,
          ref: m.ref,
          frame: m.mfn,
          readonly: (m.flags & GNTMAP_readonly) !== 0,
        });
      });
      return out;
    },
    async pageTable(domid: number): Promise<PageTableNode | undefined> {
      const d = h.hv.domain(domid);
      const cr3 = d?.vcpus[0]?.cr3Mfn ?? -1;
      if (cr3 < 0 || !ram.validMfn(cr3)) return undefined;
      return pageTableTree(cr3, (mfn, index) => {
        if (!ram.validMfn(mfn)) return { lo: 0, hi: 0 };
        const maddr = mfn * 4096 + index * 8;
        return { lo: ram.read64lo(maddr), hi: ram.read64hi(maddr) };
      });
    },
  };
}
