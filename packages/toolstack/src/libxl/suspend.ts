/*
 * The guest kernel's side of a save and a restore, as Linux's arch/x86/xen/suspend.c and
 * drivers/xen/manage.c do them: before SHUTDOWN_suspend the kernel unmaps shared_info from
 * its fixmap (xen_pre_suspend), so no page table names a frame that is not the guest's; after
 * the restore it takes the new P2M and M2P that the restore wrote, maps the new shared_info,
 * registers its callbacks and runstate area again and sets its event channels up afresh
 * (xen_post_suspend, xen_irq_resume), all through hypercalls on the new domain: that half is
 * @hyperlab/guest's resumeXenPvKernel, run from the kernel's suspend record, which the save
 * file carries (save.ts); the drivers then reconnect through create.ts's connectGuest, as
 * xenbus_resume has every frontend talk to its backend again.
 *
 * Invariant: between xenPreSuspend and the resume the kernel makes no hypercall.
 */
import { __HYPERVISOR_update_va_mapping, UVMF_INVLPG } from "@hyperlab/abi";
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
