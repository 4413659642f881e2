/*
 * What `hyperlab up --http PORT` shows: the live dashboard's source over a running host. The
 * domains, vCPUs and scheduler come from the same XlHost the xl verbs read (libxlHost); a
 * domain's page-table tree is walked from its vCPU 0's CR3 in machine memory, read-only.
 * Grant mappings (Xen-style hosts) are the grant table's live maptrack entries: who maps
 * whose grant, to which frame. Event-channel traffic and ring occupancy are not fed yet.
 */
import { GNTMAP_readonly } from "@hyperlab/abi";
import { pageTableTree } from "../dashboard/pagetable";
import type { DashboardSource, GrantMapping, PageTableNode } from "../dashboard/source";
import type { Host } from "../libxl/host";
import { libxlHost } from "../libxl/info";

export function hostDashboardSource(h: Host): DashboardSource {
  const ram = h.hv.machine.ram;
  return {
    host: libxlHost(h),
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
