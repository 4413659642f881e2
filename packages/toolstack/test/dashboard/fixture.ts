// A dashboard source over a MemoryXlHost with every optional stream, whose state tests change.
import type {
  DashboardSource,
  EvtchnTraffic,
  GrantMapping,
  PageTableNode,
  RingOccupancy,
  VcpuEvents,
} from "../../src/dashboard/index";
import { domInfo, MemoryXlHost } from "../../src/xl/memory-host";

export interface FakeSource extends DashboardSource {
  host: MemoryXlHost;
  evtchn: EvtchnTraffic[];
  vcpus: VcpuEvents[];
  grants: GrantMapping[];
  ringList: RingOccupancy[];
  trees: Map<number, PageTableNode>;
  /** Tells the dashboard the state changed (as a host daemon would after a create). */
  changed(): void;
  /** Makes every read fail (a host gone away). */
  broken: boolean;
}

export function addDomain(host: MemoryXlHost, domid: number, name: string, vcpus = 2): void {
  host.add({
    name,
    info: domInfo(domid, {
      running: true,
      currentMemkb: 262144,
      maxMemkb: 524288,
      cpuTime: domid * 1_500_000_000,
      vcpuOnline: vcpus,
      vcpuMaxId: vcpus - 1,
    }),
    vcpus: Array.from({ length: vcpus }, (_, i) => ({
      vcpuid: i,
      cpu: i,
      online: true,
      running: i === 0,
      blocked: i !== 0,
      vcpuTime: 1e9 * i,
      cpumap: [0, 1, 2, 3, 4, 5, 6, 7],
      cpumapSoft: [0, 1, 2, 3, 4, 5, 6, 7],
    })),
    weight: 256,
    cap: 0,
    disks: [],
    nics: [],
  });
}

export function fakeSource(): FakeSource {
  const host = new MemoryXlHost();
  addDomain(host, 0, "Domain-0", 4);
  const listeners = new Set<() => void>();
  const src: FakeSource = {
    host,
    evtchn: [
      {
        domid: 0,
        port: 3,
        kind: "interdomain",
        remoteDomid: 1,
        remotePort: 5,
        vcpu: 0,
        pending: true,
        masked: false,
        sent: 10,
        received: 7,
      },
    ],
    vcpus: [{ domid: 0, vcpu: 0, raised: 7, upcalls: 5 }],
    grants: [{ granter: 1, grantee: 0, ref: 8, frame: 0x1234, readonly: false }],
    ringList: [
      {
        name: "vbd 1/51712",
        domid: 1,
        kind: "blkif",
        frame: 0x2345,
        size: 32,
        used: 8,
        indexes: { req_prod: 12, req_event: 11, rsp_prod: 4, rsp_event: 5 },
      },
    ],
    trees: new Map([
      [
        0,
        {
          label: "L4 mfn 0x100",
          children: [
            { label: "L3 mfn 0x101", children: [{ label: "L1 pte 0x2000 -> mfn 0x300 rw" }] },
          ],
        },
      ],
    ]),
    broken: false,
    changed() {
      for (const l of listeners) l();
    },
    async evtchnTraffic() {
      if (src.broken) throw new Error("host gone");
      return src.evtchn;
    },
    async vcpuEvents() {
      return src.vcpus;
    },
    async grantMappings() {
      return src.grants;
    },
    async rings() {
      return src.ringList;
    },
    async pageTable(domid) {
      return src.trees.get(domid);
    },
    subscribe(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  return src;
}
