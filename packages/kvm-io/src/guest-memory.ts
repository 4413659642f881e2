/*
 * A VM's memory map as its device models see it (QEMU's address_space_rw over the guest's
 * memory slots): guest-physical addresses in, host RAM out. Under @hyperlab/npt-mmu a
 * guest-physical frame number is the number of a machine frame the domain owns (see its
 * README), so a gpa maps to the same machine address exactly when the domain owns its frame.
 *
 * Invariant: nothing here reads or writes a byte of a frame the domain does not own at the
 * moment of the access. A transfer is checked whole, frame by frame, before any byte moves:
 * it moves all its bytes or none, and a refusal is a return value (false, -1), never a
 * throw, whatever the guest put in its descriptors. A frame in one of the domain's
 * populate-on-demand blocks (core's reserveDomainPages) is the domain's: the check populates
 * its block (as KVM backs guest memory on first touch), then the frame is owned.
 */
import { type Domain, type FrameTable, type Hypervisor, ownerKey } from "@hyperlab/core";
import type { BusTranslator, Ram } from "@hyperlab/machine";

const PAGE = 4096;
/** Guest-physical addresses are below 2^52 (MAXPHYADDR). */
const GPA_LIMIT = 2 ** 52;

export class GuestMemory implements BusTranslator {
  readonly ram: Ram;
  /** The frame table's owner keys (core's ownerKey), compared with `key`, the domain's. */
  private readonly ownerKeys: Int32Array;
  private readonly key: number;
  private readonly frames: FrameTable;
  /** Bytes the device model copied from and into guest memory. */
  bytesRead = 0;
  bytesWritten = 0;
  /** Accesses refused: a range not wholly in frames the domain owns. */
  refused = 0;

  constructor(
    hv: Hypervisor,
    readonly domain: Domain,
  ) {
    this.ram = hv.machine.ram;
    this.ownerKeys = hv.frames.ownerKeys;
    this.key = ownerKey(domain.domid);
    this.frames = hv.frames;
  }

  /** Whether [gpa, gpa + len) lies wholly in frames the domain owns (len 0: true for a valid gpa). */
  owns(gpa: number, len: number): boolean {
    if (!(Number.isSafeInteger(gpa) && Number.isSafeInteger(len) && gpa >= 0 && len >= 0)) {
      return false;
    }
    if (gpa + len > GPA_LIMIT) return false;
    const last = len === 0 ? Math.floor(gpa / PAGE) : Math.floor((gpa + len - 1) / PAGE);
    const keys = this.ownerKeys;
    if (last >= keys.length) return false;
    const key = this.key;
    // The compare first; populate on demand (the domain's PoD block) only when it misses.
    for (let f = Math.floor(gpa / PAGE); f <= last; f++)
      if (keys[f] !== key && !this.frames.populateFor(f, this.domain.domid)) return false;
    return true;
  }

  private refuse(): false {
    this.refused++;
    return false;
  }

  /** The device reads guest memory into `dst`: all bytes or, when refused, none (false). */
  read(gpa: number, dst: Uint8Array): boolean {
    if (!this.owns(gpa, dst.length)) return this.refuse();
    this.ram.readInto(gpa, dst);
    this.bytesRead += dst.length;
    return true;
  }

  /** The device writes `src` into guest memory: all bytes or none (false). */
  write(gpa: number, src: Uint8Array): boolean {
    if (!this.owns(gpa, src.length)) return this.refuse();
    this.ram.writeBytes(gpa, src);
    this.bytesWritten += src.length;
    return true;
  }

  /** A little-endian u16 the device reads, or -1 when refused. */
  read16(gpa: number): number {
    if (gpa % 2 !== 0 || !this.owns(gpa, 2)) {
      this.refused++;
      return -1;
    }
    return this.ram.read16(gpa);
  }

  /** A little-endian u32 the device reads, or -1 when refused. */
  read32(gpa: number): number {
    if (gpa % 4 !== 0 || !this.owns(gpa, 4)) {
      this.refused++;
      return -1;
    }
    return this.ram.read32(gpa);
  }

  /** A little-endian u16 the device writes; false when refused. */
  write16(gpa: number, value: number): boolean {
    if (gpa % 2 !== 0 || !this.owns(gpa, 2)) return this.refuse();
    this.ram.write16(gpa, value & 0xffff);
    return true;
  }

  /** A little-endian u32 the device writes; false when refused. */
  write32(gpa: number, value: number): boolean {
    if (gpa % 4 !== 0 || !this.owns(gpa, 4)) return this.refuse();
    this.ram.write32(gpa, value >>> 0);
    return true;
  }

  /**
   * The IOMMU view for the emulated PCI devices' DMA ports: a bus address is a guest-physical
   * address, translated to the machine address of a frame the domain owns, or refused (-1).
   */
  translate(busPage: number, _write: boolean): number {
    if (this.owns(busPage, PAGE)) return busPage;
    this.refused++;
    return -1;
  }
}
