/*
 * Bringing up a secondary vCPU of a Xen PV guest, after Linux's arch/x86/xen/smp_pv.c
 * (cpu_initialize_context, xen_pv_cpu_up) and enlighten.c (xen_vcpu_setup): the vCPU's
 * vcpu_info moves into a page of the kernel (VCPUOP_register_vcpu_info, while the vCPU is
 * down), its first context is built from the boot CPU's (the IDT as trap_info, the
 * callbacks, a kernel stack of its own, the init page tables) and given with
 * VCPUOP_initialise, then VCPUOP_up starts it, and its runstate area is registered.
 *
 * Invariants: a vCPU is brought up once (a second call answers -EEXIST from Xen); on any
 * failure the call returns Xen's errno and the kernel's view of the vCPU is unchanged (it
 * runs nothing); on success the kernel runs its init mm there.
 */
import {
  __HYPERVISOR_vcpu_op,
  EINVAL,
  ENOMEM,
  ENOSYS,
  FLAT_KERNEL_CS,
  FLAT_KERNEL_SS,
  trap_info,
  VCPUOP_initialise,
  VCPUOP_register_vcpu_info,
  VCPUOP_up,
  VGCF_in_kernel,
  VGCF_syscall_disables_events,
  vcpu_guest_context_x86_64,
} from "@hyperlab/abi";
import { KERNEL_IDT, KERNEL_STACKS, THREAD_SIZE, XEN_CALLBACKS } from "./cpu";
import type { GuestKernel } from "./kernel";
import { PAGE_SIZE } from "./layout";
import { XenCpuOps } from "./xen-cpu";

/** Where a secondary vCPU starts (cpu_bringup_and_idle), 48-bit spelling of the kernel text. */
const CPU_BRINGUP = 0xffff_8100_4000;

function put64(c: Uint8Array, off: number, x: number): void {
  const dv = new DataView(c.buffer, c.byteOffset);
  dv.setUint32(off, x % 2 ** 32, true);
  dv.setUint32(off + 4, Math.floor(x / 2 ** 32), true);
}

/** An address field, sign-extended from the model's 48-bit spelling as Xen's ABI has it. */
function putAddr(c: Uint8Array, off: number, x: number): void {
  const dv = new DataView(c.buffer, c.byteOffset);
  const hi = Math.floor(x / 2 ** 32);
  dv.setUint32(off, x % 2 ** 32, true);
  dv.setUint32(off + 4, x >= 2 ** 47 ? (hi | 0xffff0000) >>> 0 : hi, true);
}

function put16(c: Uint8Array, off: number, x: number): void {
  c[off] = x & 0xff;
  c[off + 1] = x >>> 8;
}

/** xen_pv_cpu_up for cpu `vi` (> 0): 0, or Xen's negative errno. */
export function xenCpuUp(k: GuestKernel, vi: number): number {
  k.requireOps();
  if (k.xen === null || !Number.isInteger(vi) || vi <= 0 || vi >= k.port.vcpus.length) {
    return -EINVAL;
  }
  const hc = (args: object) => k.port.hypercall(0, __HYPERVISOR_vcpu_op, args);
  // xen_vcpu_setup: this vCPU's vcpu_info in a page of the kernel.
  const infoPfn = k.allocPage();
  if (infoPfn < 0) return -ENOMEM;
  k.clearPage(infoPfn);
  let rc = hc({ cmd: VCPUOP_register_vcpu_info, vcpuid: vi, mfn: k.frameOf(infoPfn), offset: 0 });
  if (rc < 0) {
    k.freePage(infoPfn);
    return rc;
  }
  // per_cpu(xen_vcpu) now points at the registered area: events and the clock read it there.
  const infoMaddr = k.frameOf(infoPfn) * PAGE_SIZE;
  k.registeredVcpuInfo[vi] = infoMaddr;
  k.events?.setVcpuInfo(vi, infoMaddr);
  // cpu_initialize_context.
  const f = vcpu_guest_context_x86_64.fields;
  const c = new Uint8Array(vcpu_guest_context_x86_64.sizeof);
  const stackTop = KERNEL_STACKS - vi * THREAD_SIZE; // idle stacks below the tasks'
  put64(c, f.flags.offset, VGCF_in_kernel | VGCF_syscall_disables_events);
  putAddr(c, f["user_regs.rip"].offset, CPU_BRINGUP);
  putAddr(c, f["user_regs.rsp"].offset, stackTop);
  put16(c, f["user_regs.cs"].offset, FLAT_KERNEL_CS);
  put16(c, f["user_regs.ss"].offset, FLAT_KERNEL_SS);
  put64(c, f["user_regs.rflags"].offset, 0x1000);
  for (const g of KERNEL_IDT) {
    const at = f.trap_ctxt.offset + g.vector * f.trap_ctxt.size;
    c[at + trap_info.fields.vector.offset] = g.vector;
    c[at + trap_info.fields.flags.offset] = g.dpl | (g.vector === 0x80 ? 0 : 4);
    put16(c, at + trap_info.fields.cs.offset, FLAT_KERNEL_CS);
    putAddr(c, at + trap_info.fields.address.offset, g.address);
  }
  put64(c, f.kernel_ss.offset, FLAT_KERNEL_SS);
  putAddr(c, f.kernel_sp.offset, stackTop);
  putAddr(c, f.event_callback_eip.offset, XEN_CALLBACKS.event);
  putAddr(c, f.failsafe_callback_eip.offset, XEN_CALLBACKS.failsafe);
  putAddr(c, f.syscall_callback_eip.offset, XEN_CALLBACKS.syscall);
  put64(c, f.ctrlreg.offset, k.ops.cpu.readCr0(0));
  put64(c, f.ctrlreg.offset + 3 * 8, k.frameOf(k.initMm.pgd) * PAGE_SIZE);
  rc = hc({ cmd: VCPUOP_initialise, vcpuid: vi, ctxt: c });
  if (rc < 0) return rc;
  // xen_smp_intr_init: the boot CPU's IPIs (once) and this CPU's, bound before it runs. A
  // Xen without event channels (a build with no evtchn plugin) answers -ENOSYS: the vCPU
  // then comes up without IPIs.
  if (k.events !== null) {
    rc = k.smp.intrInit(0);
    if (rc === 0) rc = k.smp.intrInit(vi);
    if (rc < 0 && rc !== -ENOSYS) return rc;
  }
  rc = hc({ cmd: VCPUOP_up, vcpuid: vi });
  if (rc < 0) return rc;
  k.loadedMm[vi] = k.initMm;
  k.cr3Pfn[vi] = k.initMm.pgd;
  const cpu = k.ops.cpu;
  if (cpu instanceof XenCpuOps) cpu.registerRunstate(vi);
  return 0;
}
