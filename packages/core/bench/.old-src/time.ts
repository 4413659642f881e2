/*
 * The PV clock and the runstate area as bytes (Xen's xen/arch/x86/time.c and the runstate
 * copy in xen/arch/x86/domain.c): the hypervisor's writers and the guest's readers, as pure
 * functions over a memory accessor, so the guest kernel reads exactly what the hypervisor
 * wrote.
 *
 * Invariants:
 * - vcpu_time_info.version is odd exactly while the writer is between its two version stores;
 *   every complete update leaves it even and larger than before. A reader accepts a snapshot
 *   only when it saw the same even version before and after reading the fields.
 * - With VMASST_TYPE_runstate_update_flag, XEN_RUNSTATE_UPDATE is set in state_entry_time
 *   before any other field of the runstate area changes and cleared after the last one; a
 *   reader accepts a snapshot only when it saw the same state_entry_time, without the flag,
 *   before and after.
 * - 64-bit fields are stored as two 32-bit halves; values are whole nanoseconds or TSC ticks
 *   below 2^53, so no BigInt is needed.
 */
import {
  RUNSTATE_offline,
  RUNSTATE_runnable,
  vcpu_info_x86_64,
  vcpu_runstate_info,
  vcpu_time_info,
  XEN_RUNSTATE_UPDATE_HI,
} from "@hyperlab/abi";

/** The modelled TSC frequency: 2 GHz, constant and invariant across pCPUs. */
export const PVCLOCK_TSC_HZ = 2_000_000_000;
/** tsc_to_system_mul for PVCLOCK_TSC_HZ: ns = (ticks << tsc_shift) * mul / 2^32. */
export const PVCLOCK_TSC_TO_SYSTEM_MUL = 0x80000000;
/** tsc_shift for PVCLOCK_TSC_HZ. */
export const PVCLOCK_TSC_SHIFT = 0;
/** How often each pCPU recalibrates its time stamp (Xen's EPOCH: one second). */
export const PVCLOCK_CALIBRATION_NS = 1_000_000_000;
/** How many times a reader retries a torn snapshot before it gives up. */
export const PVCLOCK_MAX_RETRIES = 1000;

const TWO_32 = 0x1_0000_0000;
const TIME = vcpu_info_x86_64.fields.time.offset;
const T_VERSION = vcpu_time_info.fields.version.offset;
const T_TSC = vcpu_time_info.fields.tsc_timestamp.offset;
const T_SYSTEM = vcpu_time_info.fields.system_time.offset;
const T_MUL = vcpu_time_info.fields.tsc_to_system_mul.offset;
const T_SHIFT = vcpu_time_info.fields.tsc_shift.offset;
const T_FLAGS = vcpu_time_info.fields.flags.offset;
const R_STATE = vcpu_runstate_info.fields.state.offset;
const R_ENTRY = vcpu_runstate_info.fields.state_entry_time.offset;
const R_TIME = vcpu_runstate_info.fields.time.offset;

/** What the writers need: machine RAM's accessors (a `Ram` from @hyperlab/machine is one). */
export interface MemoryWriter {
  read32(addr: number): number;
  write8(addr: number, value: number): void;
  write32(addr: number, value: number): void;
}

/** What the readers need: 8- and 32-bit loads (RAM, or a guest's view of its own memory). */
export interface MemoryReader {
  read8(addr: number): number;
  read32(addr: number): number;
}

/** The TSC value at virtual time `ns` on the modelled machine. */
export function tscAt(ns: number): number {
  return Math.floor((ns * PVCLOCK_TSC_HZ) / 1e9);
}

function write64(mem: MemoryWriter, addr: number, value: number): void {
  mem.write32(addr, (value % TWO_32) >>> 0);
  mem.write32(addr + 4, Math.floor(value / TWO_32) >>> 0);
}

function read64(mem: MemoryReader, addr: number): number {
  return mem.read32(addr + 4) * TWO_32 + mem.read32(addr);
}

/**
 * Xen's __update_vcpu_system_time for the vcpu_info at `vcpuInfo`: the version goes odd, the
 * stamp (TSC at `stampNs`, system time `stampNs`, scale) is written, the version goes even.
 */
export function writeVcpuTime(
  mem: MemoryWriter,
  vcpuInfo: number,
  stampNs: number,
  flags = 0,
): void {
  const t = vcpuInfo + TIME;
  const version = mem.read32(t + T_VERSION);
  mem.write32(t + T_VERSION, ((version + 1) | 1) >>> 0);
  write64(mem, t + T_TSC, tscAt(stampNs));
  write64(mem, t + T_SYSTEM, stampNs);
  mem.write32(t + T_MUL, PVCLOCK_TSC_TO_SYSTEM_MUL);
  mem.write8(t + T_SHIFT, PVCLOCK_TSC_SHIFT & 0xff);
  mem.write8(t + T_FLAGS, flags & 0xff);
  mem.write32(t + T_VERSION, (((version + 1) | 1) + 1) >>> 0);
}

/** One consistent reading of a vcpu_time_info. */
export interface PvClockSnapshot {
  version: number;
  tscTimestamp: number;
  systemTime: number;
  tscToSystemMul: number;
  tscShift: number;
  flags: number;
}

/**
 * Reads the vcpu_time_info inside the vcpu_info at `vcpuInfo` as Linux's pvclock does: retry
 * while the version is odd or changed across the read. Returns null if no consistent
 * snapshot came within PVCLOCK_MAX_RETRIES tries.
 */
export function readPvClock(mem: MemoryReader, vcpuInfo: number): PvClockSnapshot | null {
  const t = vcpuInfo + TIME;
  for (let i = 0; i < PVCLOCK_MAX_RETRIES; i++) {
    const version = mem.read32(t + T_VERSION);
    if ((version & 1) !== 0) continue;
    const snap: PvClockSnapshot = {
      version,
      tscTimestamp: read64(mem, t + T_TSC),
      systemTime: read64(mem, t + T_SYSTEM),
      tscToSystemMul: mem.read32(t + T_MUL),
      tscShift: (mem.read8(t + T_SHIFT) << 24) >> 24,
      flags: mem.read8(t + T_FLAGS),
    };
    if (mem.read32(t + T_VERSION) === version) return snap;
  }
  return null;
}

/** Linux's pvclock_get_nsec_offset + system_time: nanoseconds since boot at TSC `tsc`. */
export function pvClockNs(snap: PvClockSnapshot, tsc: number): number {
  let delta = tsc - snap.tscTimestamp;
  if (delta < 0) delta = 0;
  delta = snap.tscShift < 0 ? Math.floor(delta / 2 ** -snap.tscShift) : delta * 2 ** snap.tscShift;
  // (delta * mul) >> 32 without losing bits: split delta into 32-bit halves.
  const hi = Math.floor(delta / TWO_32);
  const lo = delta - hi * TWO_32;
  return (
    snap.systemTime + hi * snap.tscToSystemMul + Math.floor((lo * snap.tscToSystemMul) / TWO_32)
  );
}

/**
 * Xen's update_runstate_area: copies a vcpu_runstate_info (state, state_entry_time, and the
 * time in each state from `times[base .. base + 3]`) to the area at machine address `area`;
 * when the area crosses a page, the bytes from offset `split` on go to `area2`. With
 * `updateFlag` (VMASST_TYPE_runstate_update_flag) XEN_RUNSTATE_UPDATE marks the copy as in
 * progress from before the first store to after the last.
 */
export function writeRunstateArea(
  mem: MemoryWriter,
  state: number,
  entry: number,
  times: ArrayLike<number>,
  base: number,
  updateFlag: boolean,
  area: number,
  split: number = vcpu_runstate_info.sizeof,
  area2 = -1,
): void {
  const w32 = (off: number, v: number) =>
    mem.write32(off < split ? area + off : area2 + off - split, v >>> 0);
  const entryLo = (entry % TWO_32) >>> 0;
  const entryHi = Math.floor(entry / TWO_32) >>> 0;
  const flagged = (entryHi | XEN_RUNSTATE_UPDATE_HI) >>> 0;
  if (updateFlag) w32(R_ENTRY + 4, flagged);
  w32(R_STATE, state);
  w32(R_STATE + 4, 0);
  w32(R_ENTRY, entryLo);
  w32(R_ENTRY + 4, updateFlag ? flagged : entryHi);
  for (let i = 0; i < 4; i++) {
    const v = times[base + i];
    w32(R_TIME + i * 8, (v % TWO_32) >>> 0);
    w32(R_TIME + i * 8 + 4, Math.floor(v / TWO_32) >>> 0);
  }
  if (updateFlag) w32(R_ENTRY + 4, entryHi);
}

/** One consistent reading of a runstate area. */
export interface RunstateSnapshot {
  state: number;
  stateEntryTime: number;
  time: [number, number, number, number];
}

/**
 * Reads a runstate area as Linux's xen_get_runstate_snapshot does: retry while
 * XEN_RUNSTATE_UPDATE is set or state_entry_time changed across the read. `at(off)` maps a
 * byte offset of the struct to an address (the area may cross a page). Null after
 * PVCLOCK_MAX_RETRIES torn reads.
 */
export function readRunstateArea(
  mem: MemoryReader,
  at: (offset: number) => number,
): RunstateSnapshot | null {
  const entryHi = () => mem.read32(at(R_ENTRY + 4));
  for (let i = 0; i < PVCLOCK_MAX_RETRIES; i++) {
    const hi = entryHi();
    if ((hi & XEN_RUNSTATE_UPDATE_HI) !== 0) continue;
    const lo = mem.read32(at(R_ENTRY));
    const time: [number, number, number, number] = [0, 0, 0, 0];
    for (let k = 0; k < 4; k++) {
      time[k] = mem.read32(at(R_TIME + k * 8 + 4)) * TWO_32 + mem.read32(at(R_TIME + k * 8));
    }
    const state = mem.read32(at(R_STATE));
    if (entryHi() === hi && mem.read32(at(R_ENTRY)) === lo) {
      return { state, stateEntryTime: hi * TWO_32 + lo, time };
    }
  }
  return null;
}

/** Linux's xen_steal_clock: time runnable but not running, plus time offline. */
export function stealNs(snap: RunstateSnapshot): number {
  return snap.time[RUNSTATE_runnable] + snap.time[RUNSTATE_offline];
}
