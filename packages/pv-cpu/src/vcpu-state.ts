/*
 * A PV vCPU's CPU state that Xen keeps for it (struct pv_vcpu in xen/include/asm-x86/domain.h):
 * the virtual IDT, the callbacks, the kernel stack, the segment bases, CR0.TS, the GDT, and
 * the registers an iret restores.
 *
 * Invariants: every address held here is canonical; the GDT frames listed (the first
 * ceil(gdtEnts / 512)) each hold one general and one PGT_seg_desc_page type reference of the
 * vCPU's domain, dropped when the GDT is replaced or the domain is destroyed.
 */
import { FIRST_RESERVED_GDT_PAGE } from "@hyperlab/abi";

/** Registers an iret restores, as indices into PvVcpu.regs. */
export const REG_RAX = 0;
export const REG_R11 = 1;
export const REG_RCX = 2;
export const REG_RIP = 3;
export const REG_CS = 4;
export const REG_RFLAGS = 5;
export const REG_RSP = 6;
export const REG_SS = 7;

export class PvVcpu {
  /** trap_ctxt: per vector, the handler's address (0: none), code selector and flags. */
  readonly trapAddress = new Float64Array(256);
  readonly trapCs = new Uint16Array(256);
  readonly trapFlags = new Uint8Array(256);
  /** CALLBACKTYPE_* -> the callback's address (0: none), indexed by type. */
  readonly callbackAddress = new Float64Array(8);
  /** CALLBACKTYPE_* -> 1 when the callback masks events on entry. */
  readonly callbackMasksEvents = new Uint8Array(8);
  kernelSs = 0;
  kernelSp = 0;
  fsBase = 0;
  gsBaseUser = 0;
  gsBaseKernel = 0;
  /** The user %gs selector SEGBASE_GS_USER_SEL loaded. */
  gsUserSel = 0;
  /** CR0.TS as the guest sees it (fpu_taskswitch). */
  cr0Ts = false;
  /** Machine frames of the GDT, -1 past the used ones. */
  readonly gdtFrames = new Int32Array(FIRST_RESERVED_GDT_PAGE).fill(-1);
  gdtEnts = 0;
  /** rax, r11, rcx, rip, cs, rflags, rsp, ss as the last iret left them. */
  readonly regs = new Float64Array(8);
  irets = 0;
  /** Whether the VCPUOP_initialise context was taken over (once). */
  contextLoaded = false;
}
