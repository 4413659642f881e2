/*
 * The guest kernel's side of a save and a restore, as Linux's arch/x86/xen/suspend.c and
 * drivers/xen/manage.c do them: before SHUTDOWN_suspend the kernel unmaps shared_info from
 * its fixmap (xen_pre_suspend), so no page table names a frame that is not the guest's; after
 * the restore it takes the new P2M and M2P that the restore wrote, maps the new shared_info,
 * registers its callbacks and runstate area again and sets its event channels up afresh
 * (xen_post_suspend, xen_irq_resume), all through hypercalls on the new domain.
 *
 * Where the model departs: a GuestKernel keeps its own bookkeeping (free lists, VMAs, page
 * table levels, by pfn) in JavaScript objects, not in guest memory, so a save file cannot
 * carry it. The host keeps the suspended kernel object beside the file (keyed by the file's
 * id) and hands it to the domain that restores that file; everything the guest can see (its
 * memory, page tables, P2M, vCPU state) comes from the file.
 *
 * Invariant: between xenPreSuspend and xenPostResume the kernel makes no hypercall.
 */
import { __HYPERVISOR_update_va_mapping, UVMF_INVLPG } from "@hyperlab/abi";
import type { Domain, Hypervisor } from "@hyperlab/core";
import {
  createGuestPort,
  type GuestKernel,
  PAGE_KERNEL,
  XenCpuOps,
  XenEvtchnGuest,
  xenCpuUp,
} from "@hyperlab/guest";
import type { DomainRecord } from "./host";

/** xen_pre_suspend: shared_info leaves the kernel's tables (its fixmap slot becomes empty). */
export function xenPreSuspend(r: DomainRecord): void {
  const k = r.kernel;
  if (k === null || k.xen === null) return;
  k.port.hypercall(0, __HYPERVISOR_update_va_mapping, {
    va: k.xen.sharedInfoVa,
    val: 0,
    flags: UVMF_INVLPG,
  });
  // The project's builder also maps shared_info at the end of the boot region (pv-mmu
  // README); that mapping goes too, as every mapping of a frame that is not the guest's must.
  if (r.build !== null) {
    k.port.hypercall(0, __HYPERVISOR_update_va_mapping, {
      va: r.build.sharedInfoVa,
      val: 0,
      flags: UVMF_INVLPG,
    });
  }
}

/**
 * xen_post_suspend + xen_irq_resume on the domain the kernel now runs in: `p2m` is the P2M the
 * restore wrote (pfn -> new mfn). Returns 0 or the failing hypercall's -errno.
 */
export function xenPostResume(
  k: GuestKernel,
  hv: Hypervisor,
  d: Domain,
  p2m: Float64Array,
): number {
  const xen = k.xen!;
  // The secondary vCPUs that were up, and the pfns of their vcpu_info pages (read through the
  // old M2P before it is rewritten): xen_vcpu_restore registers them again below.
  const secondaries: number[] = [];
  const infoPfns: number[] = [];
  for (let vi = 1; vi < k.registeredVcpuInfo.length; vi++) {
    const maddr = k.registeredVcpuInfo[vi];
    if (maddr === undefined || maddr < 0) continue;
    secondaries.push(vi);
    infoPfns.push(xen.m2p[Math.floor(maddr / 4096)] ?? -1);
  }
  // The kernel now runs on the new domain's vCPUs (the hardware it wakes up on).
  (k as { port: GuestKernel["port"] }).port = createGuestPort(hv, d);
  xen.p2m.set(p2m);
  // The kernel's view of Xen's M2P (the pv_ops hold this very array): rewritten in place.
  const m2p = xen.m2p;
  m2p.fill(-1);
  for (let pfn = 0; pfn < p2m.length; pfn++)
    if (p2m[pfn]! >= 0 && p2m[pfn]! < m2p.length) m2p[p2m[pfn]!] = pfn;
  xen.sharedInfoMaddr = d.sharedInfoMfn * 4096;
  const rc = k.port.hypercall(0, __HYPERVISOR_update_va_mapping, {
    va: xen.sharedInfoVa,
    val: xen.sharedInfoMaddr + PAGE_KERNEL,
    flags: UVMF_INVLPG,
  });
  if (rc !== 0) return rc;
  // CR3 came back from the file (the kernel base pointer); load both base pointers again,
  // as the resumed kernel's first switch_mm would (the user one is not in the file).
  const mm = k.loadedMm[0];
  if (mm !== null && mm !== undefined) {
    k.ops.mmu.writeCr3(0, mm);
    const err = k.takeError();
    if (err !== 0) return err;
  }
  const cpu = k.ops.cpu;
  if (cpu instanceof XenCpuOps) {
    cpu.setupCallbacks();
    cpu.registerRunstate(0);
  }
  const events = new XenEvtchnGuest({
    port: k.port,
    sharedInfoMfn: d.sharedInfoMfn,
    abi: "2-level",
  });
  const erc = events.init();
  if (erc !== 0) return erc;
  for (let c = 0; c < k.port.vcpus.length; c++) events.disableUpcalls(c);
  k.events = events;
  k.port.registerUpcall((c) => events.xenEvtchnDoUpcall(c));
  const ipi = k.smp.restoreIpis();
  if (ipi < 0) return ipi;
  // xen_vcpu_restore + cpu_up: each secondary vCPU that ran before the save gets its
  // vcpu_info page back (freed, then taken again by the bring-up), a context and VCPUOP_up.
  for (let i = 0; i < secondaries.length; i++) {
    const vi = secondaries[i]!;
    if (vi >= d.vcpus.length) continue;
    if (infoPfns[i]! >= 0) k.freePage(infoPfns[i]!);
    k.registeredVcpuInfo[vi] = -1;
    const up = xenCpuUp(k, vi);
    if (up < 0) return up;
    events.enableUpcalls(vi);
  }
  return k.takeError();
}
