// The MMU conformance suite from @hyperlab/testkit on the Xen PV MMU: pages are mapped with
// update_va_mapping into the tables the builder made; a user-mode access runs the vCPU in
// the guest's user mode (its user base table, none here, so every user access faults).
import {
  __HYPERVISOR_update_va_mapping,
  _PAGE_PRESENT,
  _PAGE_RW,
  _PAGE_USER,
  UVMF_INVLPG,
} from "@hyperlab/abi";
import { PFEC_user_mode } from "@hyperlab/core";
import { defineMmuConformance, type MmuConformanceBuild } from "@hyperlab/testkit";
import { describe, it } from "vitest";
import { boot, guest } from "./helpers";

function build(): MmuConformanceBuild {
  const w = boot();
  const g = guest(w, { nrPages: 1024 });
  const v = g.d.vcpus[0];
  return {
    map(k, r) {
      const va = g.b.vEnd + (8 + k) * 4096;
      const mfn = g.b.p2m[g.b.p2m.length - 1 - k];
      const flags = _PAGE_PRESENT | (r.write ? _PAGE_RW : 0) | (r.user ? _PAGE_USER : 0);
      const val = (BigInt(mfn) << 12n) | BigInt(flags) | (r.nx ? 1n << 63n : 0n);
      const rc = w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, { va, val, flags: UVMF_INVLPG });
      if (rc !== 0) throw new Error(`update_va_mapping failed: ${rc}`);
      return va;
    },
    translate(va, access) {
      v.inKernel = (access & PFEC_user_mode) === 0;
      const ma = w.pv.translate(v, va, access);
      v.inKernel = true;
      return ma;
    },
    get fault() {
      return w.pv.fault;
    },
    flushLocal: () => w.pv.flushLocal(v),
  };
}

defineMmuConformance({ describe, it }, [["Xen PV", build]]);
