import {
  __HYPERVISOR_sched_op,
  __HYPERVISOR_vcpu_op,
  __HYPERVISOR_vm_assist,
  EEXIST,
  EFAULT,
  EINVAL,
  ENOENT,
  RUNSTATE_blocked,
  RUNSTATE_offline,
  RUNSTATE_runnable,
  RUNSTATE_running,
  SCHEDOP_block,
  SCHEDOP_poll,
  VCPUOP_down,
  VCPUOP_initialise,
  VCPUOP_is_up,
  VCPUOP_register_runstate_memory_area,
  VCPUOP_register_vcpu_info,
  VCPUOP_up,
  VGCF_online,
  VMASST_CMD_enable,
  VMASST_TYPE_runstate_update_flag,
  vcpu_guest_context_x86_64,
  vcpu_info_x86_64,
  vcpu_runstate_info,
  XEN_RUNSTATE_UPDATE_HI,
} from "@hyperlab/abi";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import {
  createHypervisor,
  type Hypervisor,
  type MemoryReader,
  PGT_l4_page_table,
  type Plugin,
  PVCLOCK_CALIBRATION_NS,
  pvClockNs,
  readPvClock,
  readRunstateArea,
  schedCredit,
  stealNs,
  tscAt,
  type Vcpu,
} from "../src/index";
import { directMmu } from "./helpers";

const MS = 1_000_000;
const PAGE = 4096;
const GC = vcpu_guest_context_x86_64.fields;

function boot(opts: { mmu?: string; cpus?: number } = {}) {
  const machine = createMachine({ ramBytes: 16 << 20, cpus: opts.cpus ?? 1, seed: 5 });
  const plugins: Plugin[] = [schedCredit({ ratelimitUs: 0 })];
  if (opts.mmu !== undefined) plugins.push(directMmu(opts.mmu));
  const hv = createHypervisor({ machine, plugins }).boot();
  if (opts.mmu === "pv") {
    hv.frames.setTypeHooks(PGT_l4_page_table, { validate: () => 0, devalidate: () => {} });
  }
  const sched = hv.slot("sched");
  const clock = machine.clock;
  const ram = machine.ram;
  const dom = (maxVcpus = 2) => {
    const d = hv.createDomain({ maxVcpus, maxPages: 64 });
    hv.unpauseDomain(d);
    return d;
  };
  return { hv, sched, clock, ram, dom };
}

function vcpuOp(hv: Hypervisor, v: Vcpu, cmd: number, a: object = {}): number {
  return hv.hypercall(v, __HYPERVISOR_vcpu_op, { cmd, ...a });
}

/** A zeroed vcpu_guest_context with a few fields set (64-bit values as numbers < 2^53). */
function context(fields: Record<string, number> = {}): Uint8Array {
  const c = new Uint8Array(vcpu_guest_context_x86_64.sizeof);
  const dv = new DataView(c.buffer);
  for (const [name, value] of Object.entries(fields)) {
    const [field, index] = name.split("#");
    const f = GC[field];
    const off = f.offset + (index === undefined ? 0 : Number(index) * f.size);
    dv.setUint32(off, value % 2 ** 32, true);
    if (f.size === 8) dv.setUint32(off + 4, Math.floor(value / 2 ** 32), true);
  }
  return c;
}

describe("SCHEDOP_poll checks every argument before it blocks", () => {
  const setup = () => {
    const b = boot();
    const d = b.dom(1);
    const v = d.vcpus[0];
    b.sched.setEventSource({
      localEventsNeedDelivery: () => false,
      localEventDeliveryEnable: () => {},
      portPoll: () => 0, // every port in use and not pending
      sendGlobalVirq: () => {},
    });
    b.clock.runUntil(MS);
    const poll = (a: object) =>
      b.hv.hypercall(v, __HYPERVISOR_sched_op, { cmd: SCHEDOP_poll, ...a });
    return { ...b, v, poll };
  };

  it("refuses non-finite, negative, fractional, huge and BigInt timeouts without polling", () => {
    const { v, poll, sched, clock } = setup();
    for (const timeout of [
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
      -1,
      0.5,
      2 ** 64,
      1e300,
      10n,
    ]) {
      expect(poll({ ports: [5], nr_ports: 1, timeout })).toBe(-EFAULT);
      expect(sched.isPolling(v)).toBe(false);
    }
    clock.runUntil(clock.now + MS);
    expect(v.state).toBe("running");
  });

  it("takes a far but valid deadline and wakes on the event", () => {
    const { v, poll, sched, clock } = setup();
    expect(poll({ ports: [5], nr_ports: 1, timeout: 2 ** 63 })).toBe(0);
    expect(sched.isPolling(v)).toBe(true);
    clock.runUntil(clock.now + MS);
    expect(v.state).toBe("blocked");
    sched.checkPollers(v.domain, 5);
    clock.runUntil(clock.now + MS);
    expect(v.state).toBe("running");
    expect(sched.isPolling(v)).toBe(false);
  });

  it("answers -EINVAL for port 0 and ports beyond 32 bits, even if the event side says 0", () => {
    const { v, poll, sched } = setup();
    expect(poll({ ports: [0], nr_ports: 1, timeout: 0 })).toBe(-EINVAL);
    expect(poll({ ports: [5, 0], nr_ports: 2, timeout: 0 })).toBe(-EINVAL);
    expect(poll({ ports: [-3], nr_ports: 1, timeout: 0 })).toBe(-EINVAL);
    expect(poll({ ports: [2 ** 32], nr_ports: 1, timeout: 0 })).toBe(-EINVAL);
    expect(poll({ ports: [Number.NaN], nr_ports: 1, timeout: 0 })).toBe(-EFAULT);
    expect(poll({ ports: [5n], nr_ports: 1, timeout: 0 })).toBe(-EFAULT);
    expect(poll({ ports: [5], nr_ports: 1n, timeout: 0 })).toBe(-EINVAL);
    expect(sched.isPolling(v)).toBe(false);
  });
});

describe("VCPUOP_initialise and VCPUOP_up", () => {
  it("refuses VCPUOP_up before VCPUOP_initialise, then brings the vCPU up", () => {
    const { hv, dom, clock } = boot();
    const d = dom(2);
    const [v0, v1] = d.vcpus;
    expect(hv.vcpuAreas.isInitialised(v0)).toBe(true);
    expect(hv.vcpuAreas.isInitialised(v1)).toBe(false);
    expect(vcpuOp(hv, v0, VCPUOP_up, { vcpuid: 1 })).toBe(-EINVAL);
    clock.runUntil(MS);
    expect(v1.state).toBe("offline");
    const ctxt = context({ "user_regs.rip": 0x40_1000, kernel_sp: 0x80_0000 });
    expect(vcpuOp(hv, v0, VCPUOP_initialise, { vcpuid: 1, ctxt })).toBe(0);
    expect(vcpuOp(hv, v0, VCPUOP_initialise, { vcpuid: 1, ctxt })).toBe(-EEXIST);
    expect(hv.vcpuAreas.guestContext(v1)).toEqual(ctxt);
    expect(vcpuOp(hv, v0, VCPUOP_up, { vcpuid: 1 })).toBe(0);
    expect(vcpuOp(hv, v0, VCPUOP_is_up, { vcpuid: 1 })).toBe(1);
  });

  it("checks the context as arch_set_info_guest does", () => {
    const { hv, dom } = boot();
    const d = dom(3);
    const v0 = d.vcpus[0];
    const init = (ctxt: unknown, vcpuid = 1) => vcpuOp(hv, v0, VCPUOP_initialise, { vcpuid, ctxt });
    expect(init(undefined)).toBe(-EFAULT);
    expect(init(new Uint8Array(16))).toBe(-EFAULT);
    expect(init([1, 2, 3])).toBe(-EFAULT);
    expect(init(context(), 9)).toBe(-ENOENT);
    expect(init(context({ "user_regs.rip": 2 ** 47 }))).toBe(-EINVAL);
    expect(init(context({ event_callback_eip: 2 ** 50 }))).toBe(-EINVAL);
    expect(init(context({ ldt_base: 0x1234, ldt_ents: 1 }))).toBe(-EINVAL);
    expect(init(context({ ldt_ents: 8193 }))).toBe(-EINVAL);
    // __addr_ok(ldt_base) holds even for an empty LDT: a base inside the hypervisor's hole
    // (0xffff800000000000..0xffff87ffffffffff) is refused (accepted before this check).
    expect(init(context({ ldt_base: 0xffff_8000_0000_0000 }))).toBe(-EINVAL);
    expect(init(context({ ldt_base: 0xffff_8000_0000_0000, ldt_ents: 4 }))).toBe(-EINVAL);
    expect(init(context({ gdt_ents: 0x1c01 }))).toBe(-EINVAL);
    // A GDT frame that is not the domain's.
    expect(init(context({ gdt_ents: 16, "gdt_frames#0": 1 }))).toBe(-EINVAL);
    expect(hv.vcpuAreas.isInitialised(d.vcpus[1])).toBe(false);
    // VGCF_online brings it up at once. An LDT just above the hole is fine.
    expect(
      init(context({ flags: VGCF_online, ldt_base: 0xffff_8800_0000_0000, ldt_ents: 4 }), 2),
    ).toBe(0);
    expect(d.vcpus[2].state).not.toBe("offline");
  });

  it("refuses a vCPU above 31 with no vcpu_info (Xen's dummy_vcpu_info)", () => {
    const { hv, dom } = boot();
    const d = dom(33);
    expect(vcpuOp(hv, d.vcpus[0], VCPUOP_initialise, { vcpuid: 32, ctxt: context() })).toBe(
      -EINVAL,
    );
    expect(hv.vcpuAreas.vcpuInfoMaddr(d.vcpus[32])).toBe(-1);
  });

  it("takes the base table of a PV vCPU as a validated L4 of its own domain", () => {
    const { hv, dom } = boot({ mmu: "pv" });
    const d = dom(2);
    const other = dom(1);
    const [v0, v1] = d.vcpus;
    const l4 = hv.allocDomainPages(d);
    const foreign = hv.allocDomainPages(other);
    const init = (cr3: number) =>
      vcpuOp(hv, v0, VCPUOP_initialise, { vcpuid: 1, ctxt: context({ "ctrlreg#3": cr3 }) });
    expect(init(foreign * PAGE)).toBe(-EINVAL);
    expect(init(2 ** 52)).toBe(-EINVAL);
    expect(init(l4 * PAGE)).toBe(0);
    expect(v1.cr3Mfn).toBe(l4);
    expect(hv.frames.typeOf(l4)).toBe(PGT_l4_page_table);
    expect(hv.frames.typeCount(l4)).toBe(1);
    hv.destroyDomain(d);
    expect(hv.domain(d.domid)).toBeUndefined();
  });
});

describe("VCPUOP_register_vcpu_info", () => {
  it("moves vcpu_info into a frame of the domain, with Xen's checks", () => {
    const { hv, dom, ram, clock } = boot();
    const d = dom(2);
    const other = dom(1);
    const [v0, v1] = d.vcpus;
    const mfn = hv.allocDomainPages(d);
    const foreign = hv.allocDomainPages(other);
    const reg = (a: object, v = v0) => vcpuOp(hv, v, VCPUOP_register_vcpu_info, a);
    clock.runUntil(MS);
    expect(reg({ vcpuid: 0, mfn, offset: PAGE - 32 })).toBe(-EINVAL); // crosses the page
    expect(reg({ vcpuid: 0, mfn, offset: 12 })).toBe(-EINVAL); // misaligned
    expect(reg({ vcpuid: 0, mfn: foreign, offset: 0 })).toBe(-EINVAL); // not the domain's
    expect(reg({ vcpuid: 0, mfn: 2 ** 40, offset: 0 })).toBe(-EINVAL);
    expect(reg({ vcpuid: 0, mfn: -1, offset: 0 })).toBe(-EFAULT);
    expect(reg({ vcpuid: 0, mfn: 1n, offset: 0 })).toBe(-EFAULT);
    expect(reg({ vcpuid: 0, mfn, offset: Number.NaN })).toBe(-EFAULT);
    expect(reg({ vcpuid: 5, mfn, offset: 0 })).toBe(-ENOENT);
    const before = hv.vcpuAreas.vcpuInfoMaddr(v0);
    ram.write8(before + vcpu_info_x86_64.fields["arch.cr2"].offset, 0x5a);
    expect(reg({ vcpuid: 0, mfn, offset: 128 })).toBe(0);
    const at = mfn * PAGE + 128;
    expect(hv.vcpuAreas.vcpuInfoMaddr(v0)).toBe(at);
    // The old contents came along; every selector bit is pending so the guest rescans.
    expect(ram.read8(at + vcpu_info_x86_64.fields["arch.cr2"].offset)).toBe(0x5a);
    expect(ram.read8(at + vcpu_info_x86_64.fields.evtchn_upcall_pending.offset)).toBe(1);
    expect(ram.read32(at + vcpu_info_x86_64.fields.evtchn_pending_sel.offset)).toBe(0xffffffff);
    expect(hv.frames.refCount(mfn)).toBe(2);
    // Only once.
    expect(reg({ vcpuid: 0, mfn, offset: 256 })).toBe(-EINVAL);
    // Another vCPU's only while it is down; v1 is down (never brought up).
    expect(reg({ vcpuid: 1, mfn, offset: 256 })).toBe(0);
    expect(hv.vcpuAreas.vcpuInfoMaddr(v1)).toBe(mfn * PAGE + 256);
    hv.destroyDomain(d);
    expect(hv.domain(d.domid)).toBeUndefined();
  });

  it("refuses another vCPU of the domain that is up", () => {
    const { hv, dom, sched } = boot();
    const d = dom(2);
    sched.vcpuUp(d.vcpus[1]);
    const mfn = hv.allocDomainPages(d);
    expect(vcpuOp(hv, d.vcpus[0], VCPUOP_register_vcpu_info, { vcpuid: 1, mfn, offset: 0 })).toBe(
      -EINVAL,
    );
  });
});

describe("the PV clock in vcpu_info", () => {
  it("is written by the hypervisor on schedule-in and at each calibration", () => {
    const { hv, dom, ram, clock } = boot();
    const d = dom(1);
    const v = d.vcpus[0];
    clock.runUntil(3 * MS);
    const at = hv.vcpuAreas.vcpuInfoMaddr(v);
    const snap = readPvClock(ram, at);
    expect(snap).not.toBeNull();
    expect(snap!.version % 2).toBe(0);
    expect(snap!.version).toBeGreaterThan(0);
    expect(pvClockNs(snap!, tscAt(clock.now))).toBe(clock.now);
    clock.runUntil(2.5 * PVCLOCK_CALIBRATION_NS);
    const later = readPvClock(ram, at)!;
    expect(later.version).toBeGreaterThan(snap!.version);
    expect(later.systemTime).toBe(2 * PVCLOCK_CALIBRATION_NS);
    expect(pvClockNs(later, tscAt(clock.now))).toBe(clock.now);
  });

  it("follows vcpu_info to the frame it was registered in", () => {
    const { hv, dom, ram, clock } = boot();
    const d = dom(1);
    const mfn = hv.allocDomainPages(d);
    clock.runUntil(7 * MS);
    expect(vcpuOp(hv, d.vcpus[0], VCPUOP_register_vcpu_info, { vcpuid: 0, mfn, offset: 64 })).toBe(
      0,
    );
    const snap = readPvClock(ram, mfn * PAGE + 64)!;
    expect(snap.systemTime).toBe(7 * MS);
    expect(pvClockNs(snap, tscAt(9 * MS))).toBe(9 * MS);
  });

  it("has a reader that retries a torn or changing snapshot", () => {
    const { hv, dom, ram, clock } = boot();
    const d = dom(1);
    clock.runUntil(MS);
    const at = hv.vcpuAreas.vcpuInfoMaddr(d.vcpus[0]);
    const vOff = at + vcpu_info_x86_64.fields["time.version"].offset;
    const real = ram.read32(vOff);
    let reads = 0;
    // First an update in progress (odd), then a version that changes under the reader.
    const seq = [real + 1, real + 2, real + 4, real + 4];
    const mem: MemoryReader = {
      read8: (a) => ram.read8(a),
      read32: (a) => (a === vOff ? seq[Math.min(reads++, seq.length - 1)] : ram.read32(a)),
    };
    const snap = readPvClock(mem, at)!;
    expect(snap.version).toBe(real + 4);
    expect(reads).toBe(5); // odd; changed across the read; then a clean read

    const stuck: MemoryReader = { read8: () => 0, read32: () => 1 };
    expect(readPvClock(stuck, 0)).toBeNull();
  });
});

describe("VCPUOP_register_runstate_memory_area", () => {
  it("checks the address and takes references on the frames", () => {
    const { hv, dom } = boot({ mmu: "native" });
    const d = dom(1);
    const v = d.vcpus[0];
    const reg = (addr: unknown) =>
      vcpuOp(hv, v, VCPUOP_register_runstate_memory_area, { vcpuid: 0, addr });
    const mfn = hv.allocDomainPages(d);
    expect(reg(-8)).toBe(-EFAULT);
    expect(reg(Number.POSITIVE_INFINITY)).toBe(-EFAULT);
    expect(reg(8n)).toBe(-EFAULT);
    expect(reg(2 ** 47)).toBe(-EFAULT); // not canonical
    expect(reg(0xffff_8000_0000_0000)).toBe(-EFAULT); // the hypervisor's hole
    expect(reg(1 * PAGE)).toBe(-EFAULT); // not mapped (frame 1 is not the domain's)
    expect(vcpuOp(hv, v, VCPUOP_register_runstate_memory_area, { vcpuid: 4, addr: 0 })).toBe(
      -ENOENT,
    );
    expect(reg(mfn * PAGE + 8)).toBe(0);
    expect(hv.frames.refCount(mfn)).toBe(2);
    expect(reg(0)).toBe(0); // a null handle unregisters
    expect(hv.frames.refCount(mfn)).toBe(1);
    expect(hv.vcpuAreas.runstateAreaMaddr(v)).toBe(-1);
  });

  it("is rewritten on every runstate change, and gives the guest its steal time", () => {
    const { hv, dom, ram, clock, sched } = boot({ mmu: "native" });
    const a = dom(1);
    dom(1); // a second domain on the same pCPU
    const v = a.vcpus[0];
    // Across a page boundary: 16 bytes in one frame, 32 in the next.
    const mfn = hv.allocDomainPages(a, 1);
    const addr = mfn * PAGE + PAGE - 16;
    expect(vcpuOp(hv, v, VCPUOP_register_runstate_memory_area, { vcpuid: 0, addr })).toBe(0);
    clock.runUntil(200 * MS); // a and b share one pCPU: each waits while the other runs
    const snap = readRunstateArea(ram, (off) => hv.vcpuAreas.runstateAreaAt(v, off))!;
    const info = sched.runstate(v);
    expect(snap.state).toBe(info.state);
    expect(snap.stateEntryTime).toBe(info.stateEntryTime);
    // The area holds the times up to the last change; the open interval is the current state's.
    const closed = [...info.time];
    closed[info.state] -= clock.now - info.stateEntryTime;
    expect(snap.time).toEqual(closed);
    expect(stealNs(snap)).toBe(closed[RUNSTATE_runnable] + closed[RUNSTATE_offline]);
    expect(closed[RUNSTATE_runnable]).toBeGreaterThan(50 * MS);
    // Blocking shows up in the area too.
    const blocked = hv.hypercall(v, __HYPERVISOR_sched_op, { cmd: SCHEDOP_block });
    expect(blocked).toBe(0);
    clock.runUntil(clock.now + 40 * MS);
    const after = readRunstateArea(ram, (off) => hv.vcpuAreas.runstateAreaAt(v, off))!;
    expect([RUNSTATE_blocked, RUNSTATE_running]).toContain(after.state);
    expect(after.stateEntryTime).toBeGreaterThan(snap.stateEntryTime);
  });

  it("marks the copy with XEN_RUNSTATE_UPDATE while it writes, if the guest asked", () => {
    const { hv, dom, ram, clock } = boot({ mmu: "native" });
    const d = dom(2);
    const v = d.vcpus[0];
    expect(
      hv.hypercall(v, __HYPERVISOR_vm_assist, {
        cmd: VMASST_CMD_enable,
        type: VMASST_TYPE_runstate_update_flag,
      }),
    ).toBe(0);
    const mfn = hv.allocDomainPages(d);
    const area = mfn * PAGE;
    clock.runUntil(MS);
    expect(vcpuOp(hv, v, VCPUOP_register_runstate_memory_area, { vcpuid: 0, addr: area })).toBe(0);
    // Watch what the hypervisor stores into the area.
    const hiAt = area + vcpu_runstate_info.fields.state_entry_time.offset + 4;
    const stores: { addr: number; flag: boolean }[] = [];
    const write32 = ram.write32.bind(ram);
    ram.write32 = (addr: number, value: number) => {
      if (addr >= area && addr < area + vcpu_runstate_info.sizeof) {
        stores.push({ addr, flag: (ram.read32(hiAt) & XEN_RUNSTATE_UPDATE_HI) !== 0 });
      }
      write32(addr, value);
    };
    try {
      expect(vcpuOp(hv, v, VCPUOP_down, { vcpuid: 0 })).toBe(0);
      clock.runUntil(clock.now + MS);
    } finally {
      ram.write32 = write32;
    }
    expect(stores.length).toBeGreaterThan(2);
    // The first store sets the flag; every other field is stored while it is set; the last
    // store clears it.
    expect(stores[0].addr).toBe(hiAt);
    for (const s of stores.slice(1)) expect(s.flag).toBe(true);
    expect(ram.read32(hiAt) & XEN_RUNSTATE_UPDATE_HI).toBe(0);
    const snap = readRunstateArea(ram, (off) => area + off)!;
    expect(snap.state).toBe(RUNSTATE_offline);
    expect(snap.time[RUNSTATE_running]).toBeGreaterThan(0);
  });

  it("reports RUNSTATE_running while the vCPU runs", () => {
    const { hv, dom, ram, clock } = boot({ mmu: "native" });
    const d = dom(1);
    const v = d.vcpus[0];
    const mfn = hv.allocDomainPages(d);
    clock.runUntil(MS);
    expect(
      vcpuOp(hv, v, VCPUOP_register_runstate_memory_area, { vcpuid: 0, addr: mfn * PAGE }),
    ).toBe(0);
    expect(readRunstateArea(ram, (off) => mfn * PAGE + off)!.state).toBe(RUNSTATE_running);
  });
});
