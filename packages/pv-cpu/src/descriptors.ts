/*
 * Segment descriptors a 64-bit PV guest may install, after Xen's check_descriptor
 * (xen/arch/x86/pv/descriptor-tables.c and mm.c): code and data segments pass with their DPL
 * raised to the guest kernel's ring (3 for a 64-bit PV kernel); a not-present descriptor and
 * the zero type (the upper half of a call gate) pass as they are; of the system types only
 * a call gate to an allowed code selector passes, with its DPL moved into the selector's RPL
 * and forced to 0 so that every use traps to Xen; anything else is refused.
 *
 * Invariant: checkDescriptor never accepts a descriptor that gives the guest a privilege
 * it lacks (DPL below 3 on a segment, a gate whose DPL lets user code enter it directly, a
 * gate into Xen's reserved GDT entries other than FLAT_KERNEL_CS).
 */
import { FIRST_RESERVED_GDT_ENTRY, FLAT_KERNEL_CS } from "@hyperlab/abi";

const SEGMENT_P = 1 << 15;
const SEGMENT_DPL = 3 << 13;
const SEGMENT_S = 1 << 12;
const SEGMENT_TYPE = 0xf << 8;
/** A 64-bit call gate's type. */
const TYPE_CALL_GATE = 0xc << 8;
/** GUEST_KERNEL_RPL of a 64-bit PV domain: its kernel runs in ring 3. */
export const GUEST_KERNEL_RPL = 3;

/** Xen's guest_gate_selector_okay for a 64-bit PV domain. */
function gateSelectorOkay(sel: number): boolean {
  return sel >>> 3 < FIRST_RESERVED_GDT_ENTRY || sel === FLAT_KERNEL_CS || (sel & 4) !== 0;
}

/**
 * Xen's check_descriptor for a 64-bit PV domain. `d` holds the descriptor's low (a) and high
 * (b) words and is fixed up in place. True if the guest may install it.
 */
export function checkDescriptor(d: Uint32Array): boolean {
  let a = d[0];
  let b = d[1];
  if ((b & SEGMENT_P) === 0) return true;
  let dpl = (b >>> 13) & 3;
  if (dpl < GUEST_KERNEL_RPL) dpl = GUEST_KERNEL_RPL;
  b = ((b & ~SEGMENT_DPL) | (dpl << 13)) >>> 0;
  if ((b & SEGMENT_S) === 0) {
    const type = b & SEGMENT_TYPE;
    if (type === 0) return true;
    if (type !== TYPE_CALL_GATE) return false;
    let cs = a >>> 16;
    if (!gateSelectorOkay(cs)) return false;
    // Every use of the gate traps to Xen, which emulates it; the guest's DPL rides in the RPL.
    b = (b & ~SEGMENT_DPL) >>> 0;
    cs = (cs & ~3) | dpl;
    a = ((a & 0xffff) | (cs << 16)) >>> 0;
    if ((b & 0xff) !== 0) return false;
  }
  d[0] = a;
  d[1] = b;
  return true;
}
