/*
 * A VM's in-kernel irqchip (KVM's virtual IO-APIC, arch/x86/kvm/ioapic.c, with the local APIC
 * virtualized): interrupt lines that the guest kernel programs exactly as it programs the
 * machine's, and that the VM's emulated devices raise. A delivery is an injection: KVM sets
 * the vector in the vCPU's virtual IRR and enters the guest with it (kvm_inject_irq;
 * kvm_stat's irq_injections), and the guest's native irq flow runs its handler.
 *
 * EOI (a decision, docs/decisions.md): the local APIC is modelled with APICv's virtual
 * interrupt delivery. An EOI of an edge vector is completed by the CPU without an exit; a
 * level vector's bit is set in the EOI-exit bitmap, so its EOI exits (EXIT_REASON_EOI_INDUCED)
 * and KVM clears the IO-APIC's remote IRR (kvm_ioapic_update_eoi), re-injecting a line the
 * device still asserts. The guest's native apic ops touch the IO-APIC only for a level EOI,
 * which is exactly the set of EOIs that exit here.
 *
 * Injection happens at VM entry: a line a device raises while a vCPU is in an exit (the
 * device model is emulating its access) is latched and delivered when the exit returns
 * (`exitDone`), unless the device lowered it meanwhile; a line raised outside any exit (a
 * frame arriving from the bridge) is delivered at once, as KVM kicks the vCPU.
 *
 * Invariants: IrqLines' own (one handler per line, level lines held in service until EOI);
 * every handler call is counted as one injection and every line EOI as one exit; no handler
 * runs inside an exit.
 */
import { type IrqHandler, IrqLines } from "@hyperlab/machine";
import { EXIT_REASON_EOI_INDUCED } from "@hyperlab/paging";

/** GSIs of the virtual IO-APIC: 24, as KVM_IOAPIC_NUM_PINS. */
export const KVM_IOAPIC_NUM_PINS = 24;

export class VirtualIoApic extends IrqLines {
  /** Interrupts injected into the guest (handler entries). */
  injections = 0;
  /** EOIs that exited (level vectors, EOI-exit bitmap). */
  eoiExits = 0;

  /** Exits in progress (nested only through the host's own code paths). */
  private inExit = 0;
  /** Lines raised during the exit and still asserted, to raise at VM entry. */
  private readonly deferred = new Uint8Array(KVM_IOAPIC_NUM_PINS);
  private anyDeferred = false;

  /** @param exits the VM's exit counters by reason, where EOI exits are also counted. */
  constructor(private readonly exits: Float64Array | null = null) {
    super(KVM_IOAPIC_NUM_PINS);
  }

  /** A vCPU left the guest for the device model. */
  exitBegin(): void {
    this.inExit++;
  }

  /** The exit returns: raise what devices raised meanwhile (the injection at VM entry). */
  exitDone(): void {
    if (--this.inExit > 0 || !this.anyDeferred) return;
    this.anyDeferred = false;
    const d = this.deferred;
    for (let g = 0; g < d.length; g++) {
      if (d[g] === 0) continue;
      d[g] = 0;
      super.raise(g);
    }
  }

  override raise(gsi: number): void {
    if (this.inExit > 0 && gsi >>> 0 === gsi && gsi < KVM_IOAPIC_NUM_PINS) {
      this.deferred[gsi] = 1;
      this.anyDeferred = true;
      return;
    }
    super.raise(gsi);
  }

  override lower(gsi: number): void {
    if (gsi >>> 0 === gsi && gsi < KVM_IOAPIC_NUM_PINS) this.deferred[gsi] = 0;
    super.lower(gsi);
  }

  override setHandler(gsi: number, handler: IrqHandler | null): void {
    super.setHandler(
      gsi,
      handler === null
        ? null
        : (g) => {
            this.injections++;
            handler(g);
          },
    );
  }

  override eoi(gsi: number): void {
    this.eoiExits++;
    if (this.exits !== null) this.exits[EXIT_REASON_EOI_INDUCED]++;
    super.eoi(gsi);
  }
}
