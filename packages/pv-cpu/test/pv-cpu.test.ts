import {
  __HYPERVISOR_callback_op,
  __HYPERVISOR_console_io,
  __HYPERVISOR_fpu_taskswitch,
  __HYPERVISOR_iret,
  __HYPERVISOR_set_callbacks,
  __HYPERVISOR_set_gdt,
  __HYPERVISOR_set_segment_base,
  __HYPERVISOR_set_trap_table,
  __HYPERVISOR_stack_switch,
  __HYPERVISOR_update_descriptor,
  __HYPERVISOR_xen_version,
  CALLBACKF_mask_events,
  CALLBACKOP_register,
  CALLBACKOP_unregister,
  CALLBACKTYPE_event,
  CALLBACKTYPE_failsafe,
  CALLBACKTYPE_nmi,
  CALLBACKTYPE_syscall,
  CONSOLEIO_read,
  CONSOLEIO_write,
  EFAULT,
  EINVAL,
  ENOSYS,
  EPERM,
  FIRST_RESERVED_GDT_ENTRY,
  FLAT_KERNEL_CS,
  SEGBASE_FS,
  SEGBASE_GS_KERNEL,
  SEGBASE_GS_USER,
  SEGBASE_GS_USER_SEL,
  SHUTDOWN_crash,
  shared_info_x86_64,
  VGCF_in_syscall,
  vcpu_info_x86_64,
  XENFEAT_dom0,
  XENFEAT_mmu_pt_update_preserve_ad,
  XENFEAT_writable_page_tables,
  XENVER_build_id,
  XENVER_capabilities,
  XENVER_commandline,
  XENVER_extraversion,
  XENVER_get_features,
  XENVER_pagesize,
  XENVER_platform_parameters,
  XENVER_version,
} from "@hyperlab/abi";
import { isHyperlabError, PGT_l1_page_table, PGT_seg_desc_page } from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import {
  checkDescriptor,
  PV_CPU_ERROR_CODES,
  pvCpu,
  REG_CS,
  REG_R11,
  REG_RAX,
  REG_RCX,
  REG_RFLAGS,
  REG_RIP,
  readConsoleLog,
  XEN_CAPABILITIES,
} from "../src/index";
import { edgeFrame, PAGE, peekString, poke, rig, u16le, u64le } from "./helpers";

const text = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

describe("xen_version", () => {
  it("reports Xen 4.17.0, its capabilities, page size and platform parameters", () => {
    const { hv, domU, fU, machine } = rig();
    const v = domU.vcpus[0];
    expect(hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: XENVER_version })).toBe(0x40011);
    expect(hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: XENVER_pagesize })).toBe(4096);
    const buf = fU[0] * PAGE;
    expect(hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: XENVER_extraversion, arg: buf })).toBe(
      0,
    );
    expect(peekString(machine, buf)).toBe(".0");
    expect(hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: XENVER_capabilities, arg: buf })).toBe(
      0,
    );
    expect(peekString(machine, buf)).toBe(XEN_CAPABILITIES);
    expect(
      hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: XENVER_platform_parameters, arg: buf }),
    ).toBe(0);
    expect(machine.ram.read64hi(buf)).toBe(0xffff8000);
    expect(machine.ram.read64lo(buf)).toBe(0);
  });

  it("gives a PV guest its feature bits, dom0 the XENFEAT_dom0 bit, and refuses other submaps", () => {
    const { hv, domU, dom0, fU, f0, machine } = rig();
    const get = (v: (typeof domU.vcpus)[0], at: number, idx: number) => {
      machine.ram.write32(at, idx);
      return hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: XENVER_get_features, arg: at });
    };
    expect(get(domU.vcpus[0], fU[0] * PAGE, 0)).toBe(0);
    const u = machine.ram.read32(fU[0] * PAGE + 4);
    expect(u & (1 << XENFEAT_mmu_pt_update_preserve_ad)).not.toBe(0);
    expect(u & (1 << XENFEAT_dom0)).toBe(0);
    expect(u & (1 << XENFEAT_writable_page_tables)).toBe(0); // PV guests must use mmu_update
    expect(get(dom0.vcpus[0], f0[0] * PAGE, 0)).toBe(0);
    expect(machine.ram.read32(f0[0] * PAGE + 4) & (1 << XENFEAT_dom0)).not.toBe(0);
    expect(get(domU.vcpus[0], fU[0] * PAGE, 1)).toBe(-EINVAL);
  });

  it("answers -EFAULT for a buffer the guest does not own or cannot write, -ENOSYS for unknown commands", () => {
    const { hv, domU, f0, fU, readOnly } = rig();
    const v = domU.vcpus[0];
    const xv = (args: object) => hv.hypercall(v, __HYPERVISOR_xen_version, args);
    expect(xv({ cmd: XENVER_capabilities, arg: f0[0] * PAGE })).toBe(-EFAULT);
    // A result that runs off the end of an owned frame into a foreign one.
    expect(xv({ cmd: XENVER_capabilities, arg: edgeFrame(hv, domU) * PAGE + 4000 })).toBe(-EFAULT);
    readOnly.add(fU[1]);
    expect(xv({ cmd: XENVER_extraversion, arg: fU[1] * PAGE })).toBe(-EFAULT);
    expect(xv({ cmd: XENVER_extraversion, arg: -1 })).toBe(-EFAULT);
    expect(xv({ cmd: 99 })).toBe(-ENOSYS);
    expect(xv({ cmd: XENVER_build_id, arg: fU[0] * PAGE })).toBe(-EPERM);
  });

  it("shows Xen's command line to dom0 only", () => {
    const { hv, domU, dom0, fU, f0, machine } = rig();
    hv.hypercall(dom0.vcpus[0], __HYPERVISOR_xen_version, {
      cmd: XENVER_commandline,
      arg: f0[0] * PAGE,
    });
    expect(peekString(machine, f0[0] * PAGE)).toBe("dom0_mem=512M");
    poke(machine, fU[0] * PAGE, text("junk"));
    hv.hypercall(domU.vcpus[0], __HYPERVISOR_xen_version, {
      cmd: XENVER_commandline,
      arg: fU[0] * PAGE,
    });
    expect(peekString(machine, fU[0] * PAGE)).toBe("");
  });
});

describe("console_io", () => {
  it("appends dom0's text as is and a domU's by line with its (dN) prefix", () => {
    const { hv, domU, dom0, fU, f0, machine } = rig();
    const w = (v: (typeof domU.vcpus)[0], at: number, s: string) => {
      poke(machine, at, text(s));
      return hv.hypercall(v, __HYPERVISOR_console_io, {
        cmd: CONSOLEIO_write,
        count: s.length,
        buffer: at,
      });
    };
    expect(w(dom0.vcpus[0], f0[0] * PAGE, "Xen says hi\n")).toBe(0);
    expect(w(domU.vcpus[0], fU[0] * PAGE, "Linux version")).toBe(0);
    expect(readConsoleLog(hv)).toBe("Xen says hi\n");
    expect(w(domU.vcpus[0], fU[0] * PAGE, " 6.1\x07\n")).toBe(0);
    expect(readConsoleLog(hv)).toBe(`Xen says hi\n(d${domU.domid}) Linux version 6.1\n`);
    // A write longer than a copy chunk (128 bytes) across two frames.
    const long = "x".repeat(150);
    expect(w(domU.vcpus[0], fU[0] * PAGE + 4000, `${long}\n`)).toBe(0);
    expect(readConsoleLog(hv).endsWith(`(d${domU.domid}) ${long}\n`)).toBe(true);
  });

  it("refuses a domU's read with -EPERM, gives dom0 the serial input, and checks buffers", () => {
    const { hv, domU, dom0, f0, fU, machine } = rig();
    const svc = hv.slot("pv-cpu");
    svc.console.pushInput(new Uint8Array(text("ls\n")));
    const rd = (v: (typeof domU.vcpus)[0], buffer: number, count: number) =>
      hv.hypercall(v, __HYPERVISOR_console_io, { cmd: CONSOLEIO_read, count, buffer });
    expect(rd(domU.vcpus[0], fU[0] * PAGE, 16)).toBe(-EPERM);
    expect(rd(dom0.vcpus[0], fU[0] * PAGE, 16)).toBe(-EFAULT);
    expect(svc.console.pendingInput).toBe(3);
    expect(rd(dom0.vcpus[0], f0[0] * PAGE, 2)).toBe(2);
    expect(peekString(machine, f0[0] * PAGE, 2)).toBe("ls");
    expect(rd(dom0.vcpus[0], f0[0] * PAGE, 16)).toBe(1);
    expect(
      hv.hypercall(domU.vcpus[0], __HYPERVISOR_console_io, {
        cmd: CONSOLEIO_write,
        count: 4,
        buffer: f0[0] * PAGE,
      }),
    ).toBe(-EFAULT);
    expect(
      hv.hypercall(domU.vcpus[0], __HYPERVISOR_console_io, { cmd: 7, count: 0, buffer: 0 }),
    ).toBe(-ENOSYS);
  });

  it("xl dmesg -c: a clearing read moves the consumer mark, also after the ring wrapped", async () => {
    const { createHypervisor, schedCredit } = await import("@hyperlab/core");
    const { createMachine } = await import("@hyperlab/machine");
    const { directMmu } = await import("./helpers");
    const machine = createMachine({ ramBytes: 8 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({
      machine,
      plugins: [schedCredit(), directMmu(), pvCpu({ consoleRingSize: 32 })],
    }).boot();
    const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 4 });
    const at = hv.allocDomainPages(dom0) * PAGE;
    const w = (s: string) => {
      poke(machine, at, text(s));
      return hv.hypercall(dom0.vcpus[0], __HYPERVISOR_console_io, {
        cmd: CONSOLEIO_write,
        count: s.length,
        buffer: at,
      });
    };
    expect(w("boot 1\n")).toBe(0);
    expect(readConsoleLog(hv, { clear: true })).toBe("boot 1\n");
    expect(readConsoleLog(hv)).toBe("");
    expect(w("boot 2\n")).toBe(0);
    expect(readConsoleLog(hv)).toBe("boot 2\n");
    expect(readConsoleLog(hv)).toBe("boot 2\n");
    // 40 more characters overwrite the 32-character ring, the mark included: a read starts at
    // the oldest character kept (an offset into the text, as a caller might keep, would not).
    expect(w(`${"a".repeat(19)}\n${"b".repeat(19)}\n`)).toBe(0);
    expect(readConsoleLog(hv, { clear: true })).toBe(`${"a".repeat(11)}\n${"b".repeat(19)}\n`);
    expect(readConsoleLog(hv)).toBe("");
    expect(w("c\n")).toBe(0);
    expect(readConsoleLog(hv)).toBe("c\n");
    let err: unknown;
    try {
      readConsoleLog(hv, { clear: "yes" as unknown as boolean });
    } catch (e) {
      err = e;
    }
    expect(isHyperlabError(err, ["PV_CPU_BAD_OPTION"])).toBe(true);
  });

  it("readConsoleLog throws a typed error on a build without pv-cpu", async () => {
    const { createHypervisor } = await import("@hyperlab/core");
    const { createMachine } = await import("@hyperlab/machine");
    const hv = createHypervisor({
      machine: createMachine({ ramBytes: 4 << 20, cpus: 1, seed: 1 }),
      plugins: [],
    }).boot();
    try {
      readConsoleLog(hv);
      expect.unreachable();
    } catch (e) {
      expect(isHyperlabError(e, PV_CPU_ERROR_CODES)).toBe(true);
    }
    expect(() => pvCpu({ consoleRingSize: 0 })).toThrow(/consoleRingSize/);
  });
});

/** A trap_info entry's 16 bytes. */
const trap = (vector: number, flags: number, cs: number, address: number) => [
  vector,
  flags,
  ...u16le(cs),
  0,
  0,
  0,
  0,
  ...u64le(address),
];

describe("set_trap_table", () => {
  it("loads entries up to the first zero address, raises kernel selectors to RPL 3, and a null pointer clears it", () => {
    const { hv, domU, fU, machine } = rig();
    const v = domU.vcpus[0];
    const at = fU[0] * PAGE;
    poke(machine, at, [
      ...trap(14, 0, 0xe030, 0xffff_8000_0000_1000),
      ...trap(0x80, 3, 0xe033, 0x2000),
      ...trap(3, 0, 0, 0),
      ...trap(6, 0, 0xe033, 0x3000),
    ]);
    expect(hv.hypercall(v, __HYPERVISOR_set_trap_table, { traps: at })).toBe(0);
    const s = hv.slot("pv-cpu").state(v);
    // A sign-extended handler is kept in the model's 48-bit spelling.
    expect(s.trapAddress[14]).toBe(0x8000_0000_1000);
    expect(s.trapCs[14]).toBe(0xe033);
    expect(s.trapFlags[0x80]).toBe(3);
    expect(s.trapAddress[6]).toBe(0); // after the terminator
    expect(hv.hypercall(v, __HYPERVISOR_set_trap_table, { traps: 0 })).toBe(0);
    expect(s.trapAddress[14]).toBe(0);
  });

  it("refuses a non-canonical handler with -EINVAL and an unreadable table with -EFAULT", () => {
    const { hv, domU, fU, f0, machine } = rig();
    const v = domU.vcpus[0];
    poke(machine, fU[0] * PAGE, trap(13, 0, 0xe033, 0x1_0000_0000_0000));
    expect(hv.hypercall(v, __HYPERVISOR_set_trap_table, { traps: fU[0] * PAGE })).toBe(-EINVAL);
    expect(hv.hypercall(v, __HYPERVISOR_set_trap_table, { traps: f0[0] * PAGE })).toBe(-EFAULT);
    expect(hv.hypercall(v, __HYPERVISOR_set_trap_table, { traps: Number.NaN })).toBe(-EINVAL);
  });
});

describe("set_callbacks and callback_op", () => {
  it("registers event, failsafe and syscall entries (syscall masking events) in one call", () => {
    const { hv, domU } = rig();
    const v = domU.vcpus[0];
    const rc = hv.hypercall(v, __HYPERVISOR_set_callbacks, {
      event_address: 0x1000,
      failsafe_address: 0x2000,
      syscall_address: 0x3000,
    });
    expect(rc).toBe(0);
    const s = hv.slot("pv-cpu").state(v);
    expect(s.callbackAddress[CALLBACKTYPE_event]).toBe(0x1000);
    expect(s.callbackAddress[CALLBACKTYPE_failsafe]).toBe(0x2000);
    expect(s.callbackAddress[CALLBACKTYPE_syscall]).toBe(0x3000);
    expect(s.callbackMasksEvents[CALLBACKTYPE_syscall]).toBe(1);
    expect(hv.hypercall(v, __HYPERVISOR_set_callbacks, { event_address: 2n })).toBe(-EINVAL);
  });

  it("CALLBACKOP_register checks the address and type; unregister allows only the NMI callback", () => {
    const { hv, domU, fU, machine } = rig();
    const v = domU.vcpus[0];
    const at = fU[0] * PAGE;
    const reg = (type: number, flags: number, address: number) => {
      poke(machine, at, [...u16le(type), ...u16le(flags), 0, 0, 0, 0, ...u64le(address)]);
      return hv.hypercall(v, __HYPERVISOR_callback_op, { cmd: CALLBACKOP_register, arg: at });
    };
    const unreg = (type: number) => {
      poke(machine, at, [...u16le(type), 0, 0]);
      return hv.hypercall(v, __HYPERVISOR_callback_op, { cmd: CALLBACKOP_unregister, arg: at });
    };
    expect(reg(CALLBACKTYPE_failsafe, CALLBACKF_mask_events, 0x4000)).toBe(0);
    const s = hv.slot("pv-cpu").state(v);
    expect(s.callbackMasksEvents[CALLBACKTYPE_failsafe]).toBe(1);
    expect(reg(CALLBACKTYPE_event, 0, 0x1_0000_0000_0000)).toBe(-EINVAL);
    expect(reg(6, 0, 0x1000)).toBe(-ENOSYS);
    expect(reg(CALLBACKTYPE_nmi, 0, 0x5000)).toBe(0);
    expect(s.trapAddress[2]).toBe(0x5000);
    expect(s.trapCs[2]).toBe(FLAT_KERNEL_CS);
    expect(unreg(CALLBACKTYPE_event)).toBe(-EINVAL);
    expect(unreg(9)).toBe(-ENOSYS);
    expect(unreg(CALLBACKTYPE_nmi)).toBe(0);
    expect(s.trapAddress[2]).toBe(0);
    expect(hv.hypercall(v, __HYPERVISOR_callback_op, { cmd: 5, arg: at })).toBe(-ENOSYS);
    expect(hv.hypercall(v, __HYPERVISOR_callback_op, { cmd: CALLBACKOP_register, arg: 12 })).toBe(
      -EFAULT,
    );
  });
});

/** An iret_context frame. */
const iretFrame = (r: {
  rax: number;
  r11: number;
  rcx: number;
  flags: number;
  rip: number;
  cs: number;
  rflags: number;
  rsp: number;
  ss: number;
}) => [r.rax, r.r11, r.rcx, r.flags, r.rip, r.cs, r.rflags, r.rsp, r.ss].flatMap(u64le);

describe("iret", () => {
  it("restores the frame, forces guest privilege, takes the event mask from IF and is counted", () => {
    const { hv, domU, fU, machine } = rig();
    const v = domU.vcpus[0];
    const at = fU[0] * PAGE + 64;
    poke(
      machine,
      at,
      iretFrame({
        rax: 7,
        r11: 11,
        rcx: 12,
        flags: 0,
        rip: 0x4000,
        cs: 0xe030,
        rflags: 0x3002,
        rsp: 0x8000,
        ss: 0xe02b,
      }),
    );
    expect(hv.hypercall(v, __HYPERVISOR_iret, { rsp: at })).toBe(0);
    const s = hv.slot("pv-cpu").state(v);
    expect(s.regs[REG_RIP]).toBe(0x4000);
    expect(s.regs[REG_CS]).toBe(0xe033);
    expect(s.regs[REG_RFLAGS]).toBe(0x202); // IOPL dropped, IF forced on
    expect(s.regs[REG_RAX]).toBe(7);
    expect(s.regs[REG_R11]).toBe(11);
    expect(s.irets).toBe(1);
    const mask =
      domU.sharedInfoMfn * PAGE +
      shared_info_x86_64.fields.vcpu_info.offset +
      vcpu_info_x86_64.fields.evtchn_upcall_mask.offset;
    expect(machine.ram.read8(mask)).toBe(1); // IF was clear in the saved flags
    // In a syscall frame r11/rcx are not restored; IF set unmasks events.
    poke(
      machine,
      at,
      iretFrame({
        rax: 1,
        r11: 99,
        rcx: 99,
        flags: VGCF_in_syscall,
        rip: 0x5000,
        cs: 0xe030,
        rflags: 0x200,
        rsp: 0x8000,
        ss: 0xe02b,
      }),
    );
    expect(hv.hypercall(v, __HYPERVISOR_iret, { rsp: at })).toBe(0);
    expect(s.regs[REG_R11]).toBe(11);
    expect(s.regs[REG_RCX]).toBe(12);
    expect(machine.ram.read8(mask)).toBe(0);
    expect(hv.slot("pv-cpu").counts.irets).toBe(2);
  });

  it("crashes the domain on an unreadable stack, as Xen does", () => {
    const { hv, domU, f0 } = rig();
    expect(hv.hypercall(domU.vcpus[0], __HYPERVISOR_iret, { rsp: f0[0] * PAGE })).toBe(-EFAULT);
    expect(domU.state).toBe("shutdown");
    expect(domU.shutdownCode).toBe(SHUTDOWN_crash);
  });
});

describe("stack_switch, set_segment_base, fpu_taskswitch", () => {
  it("keep the kernel stack, canonical segment bases and CR0.TS per vCPU", () => {
    const { hv, domU } = rig();
    const [v0, v1] = domU.vcpus;
    const s0 = hv.slot("pv-cpu").state(v0);
    expect(hv.hypercall(v0, __HYPERVISOR_stack_switch, { ss: 0xe028, esp: 0x7000 })).toBe(0);
    expect(s0.kernelSs).toBe(0xe02b);
    expect(s0.kernelSp).toBe(0x7000);
    const sb = (which: number, base: number) =>
      hv.hypercall(v0, __HYPERVISOR_set_segment_base, { which, base });
    expect(sb(SEGBASE_FS, 0x7fff_0000)).toBe(0);
    expect(sb(SEGBASE_GS_KERNEL, 0xffff_8880_0000_0000)).toBe(0);
    expect(sb(SEGBASE_GS_USER, 0x1000)).toBe(0);
    expect(s0.fsBase).toBe(0x7fff_0000);
    expect(s0.gsBaseKernel).toBe(0xffff_8880_0000_0000);
    expect(sb(SEGBASE_FS, 0x1_0000_0000_0000)).toBe(-EINVAL);
    expect(sb(SEGBASE_GS_USER, 2 ** 63)).toBe(-EINVAL);
    expect(sb(SEGBASE_GS_USER, 0x8880_0000_0000)).toBe(0); // the model's 48-bit spelling
    expect(sb(SEGBASE_GS_USER_SEL, 0xe02b)).toBe(0);
    expect(s0.gsUserSel).toBe(0xe02b);
    expect(s0.gsBaseUser).toBe(0);
    expect(sb(SEGBASE_GS_USER_SEL, 0x0010)).toBe(0); // no GDT: loads the null selector
    expect(s0.gsUserSel).toBe(0);
    expect(sb(4, 0)).toBe(-EINVAL);
    expect(hv.hypercall(v0, __HYPERVISOR_fpu_taskswitch, { set: 1 })).toBe(0);
    expect(s0.cr0Ts).toBe(true);
    expect(hv.slot("pv-cpu").state(v1).cr0Ts).toBe(false);
    expect(hv.hypercall(v0, __HYPERVISOR_fpu_taskswitch, { set: 0 })).toBe(0);
    expect(s0.cr0Ts).toBe(false);
    expect(hv.hypercall(v0, __HYPERVISOR_fpu_taskswitch, { set: Number.POSITIVE_INFINITY })).toBe(
      -EINVAL,
    );
  });
});

describe("descriptors", () => {
  const d = (a: number, b: number) => Uint32Array.of(a, b);
  it("check_descriptor raises a segment's DPL to 3, keeps not-present ones, and allows only safe call gates", () => {
    const code = d(0x0000ffff, 0x00af9a00); // present, DPL 0, 64-bit code
    expect(checkDescriptor(code)).toBe(true);
    expect((code[1] >>> 13) & 3).toBe(3);
    expect(checkDescriptor(d(0x1234, 0x0000_0000))).toBe(true); // not present
    // A present TSS (type 9) is refused.
    expect(checkDescriptor(d(0, 0x00008900))).toBe(false);
    // A call gate (type 0xc) DPL 3 to FLAT_KERNEL_CS: accepted with DPL 0 and the DPL in the RPL.
    const gate = d((FLAT_KERNEL_CS << 16) | 0x1000, 0x0000ec00);
    expect(checkDescriptor(gate)).toBe(true);
    expect((gate[1] >>> 13) & 3).toBe(0);
    expect((gate[0] >>> 16) & 3).toBe(3);
    // A gate into a reserved GDT entry other than FLAT_KERNEL_CS is refused.
    expect(checkDescriptor(d(((FIRST_RESERVED_GDT_ENTRY + 1) << 3) << 16, 0x0000ec00))).toBe(false);
    // A gate with reserved bits set is refused.
    expect(checkDescriptor(d(0x0010 << 16, 0x0000ec01))).toBe(false);
  });

  it("update_descriptor writes a checked descriptor into the domain's own frame only", () => {
    const { hv, domU, dom0, fU, f0, machine } = rig();
    const v = domU.vcpus[0];
    const up = (ma: number, a: number, b: number) =>
      hv.hypercall(v, __HYPERVISOR_update_descriptor, { ma, a, b });
    expect(up(fU[1] * PAGE + 16, 0x0000ffff, 0x00af9a00)).toBe(0);
    expect(machine.ram.read32(fU[1] * PAGE + 20)).toBe(0x00affa00);
    expect(up(fU[1] * PAGE + 4, 0, 0)).toBe(-EINVAL); // misaligned
    expect(up(fU[1] * PAGE + 8, 0, 0x00008900)).toBe(-EINVAL); // TSS
    expect(up(f0[0] * PAGE, 0x0000ffff, 0x00af9a00)).toBe(-EINVAL); // dom0's frame
    expect(up(fU[1] * PAGE, 2 ** 32, 0)).toBe(-EINVAL);
    // A frame typed as a page table is not writable.
    expect(hv.frames.getPageAndType(fU[2], domU.domid, PGT_l1_page_table)).toBe(-EINVAL); // no validator here
    expect(dom0.domid).toBe(0);
  });

  it("set_gdt takes PGT_seg_desc_page on the domain's frames, refuses bad ones, and lets them go with the domain", () => {
    const { hv, domU, fU, f0, machine } = rig();
    const v = domU.vcpus[0];
    const list = fU[0] * PAGE;
    poke(machine, list, u64le(fU[1]));
    const gdt = (entries: number) =>
      hv.hypercall(v, __HYPERVISOR_set_gdt, { frame_list: list, entries });
    expect(gdt(FIRST_RESERVED_GDT_ENTRY + 1)).toBe(-EINVAL);
    expect(gdt(16)).toBe(0);
    expect(hv.frames.typeOf(fU[1])).toBe(PGT_seg_desc_page);
    expect(hv.frames.typeCount(fU[1])).toBe(1);
    const s = hv.slot("pv-cpu").state(v);
    expect(s.gdtEnts).toBe(16);
    // Descriptors in a live GDT page keep their type; update_descriptor checks them.
    expect(
      hv.hypercall(v, __HYPERVISOR_update_descriptor, {
        ma: fU[1] * PAGE + 8,
        a: 0xffff,
        b: 0x00cf9200,
      }),
    ).toBe(0);
    expect(hv.frames.typeCount(fU[1])).toBe(1);
    // SEGBASE_GS_USER_SEL now loads a selector of this GDT.
    expect(
      hv.hypercall(v, __HYPERVISOR_set_segment_base, { which: SEGBASE_GS_USER_SEL, base: 0x0b }),
    ).toBe(0);
    expect(s.gsUserSel).toBe(0x0b);
    // A frame with a TSS in it cannot become a descriptor page.
    machine.ram.write32(fU[2] * PAGE + 4, 0x00008900);
    poke(machine, list, u64le(fU[2]));
    expect(gdt(8)).toBe(-EINVAL);
    poke(machine, list, u64le(f0[0]));
    expect(gdt(8)).toBe(-EINVAL);
    expect(hv.hypercall(v, __HYPERVISOR_set_gdt, { frame_list: f0[0] * PAGE, entries: 8 })).toBe(
      -EFAULT,
    );
    expect(hv.frames.typeCount(fU[1])).toBe(1); // the old GDT stays
    // Replacing it with an empty GDT drops the reference.
    expect(gdt(0)).toBe(0);
    expect(hv.frames.typeCount(fU[1])).toBe(0);
    poke(machine, list, u64le(fU[1]));
    expect(gdt(512)).toBe(0);
    hv.destroyDomain(domU);
    machine.clock.runUntil(machine.clock.now + 1_000_000);
    expect(hv.domain(domU.domid)).toBeUndefined();
  });
});

describe("a vCPU started by VCPUOP_initialise", () => {
  it("takes its trap table, callbacks, kernel stack, segment bases and CR0.TS from the context", async () => {
    const {
      __HYPERVISOR_vcpu_op,
      VCPUOP_initialise,
      vcpu_guest_context_x86_64,
      VGCF_syscall_disables_events,
    } = await import("@hyperlab/abi");
    const { PGT_l4_page_table } = await import("@hyperlab/core");
    const { hv, domU, fU } = rig();
    hv.frames.setTypeHooks(PGT_l4_page_table, { validate: () => 0, devalidate: () => {} });
    const f = vcpu_guest_context_x86_64.fields;
    const c = new Uint8Array(vcpu_guest_context_x86_64.sizeof);
    const put = (off: number, bytes: number[]) => c.set(bytes, off);
    put(f.trap_ctxt.offset + 14 * 16, trap(14, 0, 0xe030, 0x9000));
    put(f.kernel_ss.offset, u64le(0xe02b));
    put(f.kernel_sp.offset, u64le(0x8000));
    put(f.event_callback_eip.offset, u64le(0x1000));
    put(f.syscall_callback_eip.offset, u64le(0x3000));
    put(f.fs_base.offset, u64le(0x7000_0000));
    put(f.flags.offset, u64le(VGCF_syscall_disables_events));
    put(f.ctrlreg.offset, u64le(0x8));
    put(f.ctrlreg.offset + 3 * 8, u64le(fU[2] * PAGE));
    const v1 = domU.vcpus[1];
    expect(
      hv.hypercall(domU.vcpus[0], __HYPERVISOR_vcpu_op, {
        cmd: VCPUOP_initialise,
        vcpuid: 1,
        ctxt: c,
      }),
    ).toBe(0);
    const s = hv.slot("pv-cpu").state(v1);
    expect(s.trapAddress[14]).toBe(0x9000);
    expect(s.trapCs[14]).toBe(0xe033);
    expect(s.kernelSp).toBe(0x8000);
    expect(s.callbackAddress[CALLBACKTYPE_event]).toBe(0x1000);
    expect(s.callbackMasksEvents[CALLBACKTYPE_syscall]).toBe(1);
    expect(s.fsBase).toBe(0x7000_0000);
    expect(s.cr0Ts).toBe(true);
  });
});
