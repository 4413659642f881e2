import {
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_multicall,
  __HYPERVISOR_sched_op,
  __HYPERVISOR_vcpu_op,
  __HYPERVISOR_vm_assist,
  __HYPERVISOR_xen_version,
  EFAULT,
  EINVAL,
  ENOSYS,
  SHUTDOWN_poweroff,
  shared_info_x86_64,
  VCPUOP_initialise,
  VCPUOP_register_runstate_memory_area,
  VCPUOP_register_vcpu_info,
  VMASST_CMD_disable,
  VMASST_CMD_enable,
  VMASST_TYPE_writable_pagetables,
  vcpu_info_x86_64,
} from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import {
  createHypervisor,
  definePlugin,
  HyperlabError,
  PGC_allocated,
  type Plugin,
  type TraceEvent,
} from "../src/index";
import { bootWith, machine } from "./helpers";

declare module "../src/index" {
  interface Slots {
    clock2: { now(): number };
    echo: { say(s: string): string };
  }
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HyperlabError);
    return (e as HyperlabError).code;
  }
  throw new Error("expected a HyperlabError");
}

const echoPlugin: Plugin = definePlugin({
  name: "echo",
  provides: ["echo"],
  hypercalls: [{ op: __HYPERVISOR_xen_version }, { op: __HYPERVISOR_event_channel_op, cmd: 4 }],
  setup(ctx) {
    const calls = ctx.stats.counter("calls", "calls", "echo hypercalls handled");
    ctx.provide("echo", { say: (s) => `echo ${s}` });
    ctx.hypercall(__HYPERVISOR_xen_version, (_v, args: { cmd?: unknown }) => {
      calls.value++;
      return typeof args.cmd === "number" && args.cmd >= 0 ? args.cmd : -EINVAL;
    });
    ctx.hypercall(
      __HYPERVISOR_event_channel_op,
      (_v, args: { port?: number }) => {
        args.port = 7; // written back as Xen writes into the guest's struct
        return 0;
      },
      4,
    );
  },
});

describe("composition and boot", () => {
  it("fills slots in dependency order and freezes them", () => {
    const seen: string[] = [];
    const user: Plugin = {
      name: "user",
      requires: ["echo"],
      setup(ctx) {
        seen.push(ctx.slot("echo").say("hi"));
      },
    };
    const hv = createHypervisor({ machine: machine(), plugins: [user, echoPlugin] }).boot();
    expect(seen).toEqual(["echo hi"]);
    expect(hv.slot("echo").say("x")).toBe("echo x");
    expect(hv.hasSlot("mmu")).toBe(false);
    expect(hv.isBooted).toBe(true);
  });

  it("refuses every setup-time mistake with a typed error", () => {
    const m = machine();
    const undeclaredProvide: Plugin = {
      name: "p",
      setup: (ctx) => ctx.provide("echo", { say: (s) => s }),
    };
    expect(
      codeOf(() => createHypervisor({ machine: m, plugins: [undeclaredProvide] }).boot()),
    ).toBe("SLOT_UNDECLARED_PROVIDE");
    const undeclaredRequire: Plugin = { name: "q", setup: (ctx) => ctx.slot("echo") };
    expect(
      codeOf(() =>
        createHypervisor({ machine: m, plugins: [echoPlugin, undeclaredRequire] }).boot(),
      ),
    ).toBe("SLOT_UNDECLARED_REQUIRE");
    const notFilled: Plugin = { name: "r", provides: ["clock2"], setup() {} };
    expect(codeOf(() => createHypervisor({ machine: m, plugins: [notFilled] }).boot())).toBe(
      "SLOT_NOT_FILLED",
    );
    const undeclaredCall: Plugin = {
      name: "s",
      setup: (ctx) => ctx.hypercall(__HYPERVISOR_xen_version, () => 0),
    };
    expect(codeOf(() => createHypervisor({ machine: m, plugins: [undeclaredCall] }).boot())).toBe(
      "HYPERCALL_UNDECLARED",
    );
    const unregistered: Plugin = {
      name: "t",
      hypercalls: [{ op: __HYPERVISOR_xen_version }],
      setup() {},
    };
    expect(codeOf(() => createHypervisor({ machine: m, plugins: [unregistered] }).boot())).toBe(
      "HYPERCALL_NOT_REGISTERED",
    );
    const twice = createHypervisor({ machine: m, plugins: [] }).boot();
    expect(codeOf(() => twice.boot())).toBe("HYPERVISOR_BOOTED");
  });

  it("refuses composition mistakes before any setup runs", () => {
    const m = machine();
    let ran = false;
    const spy: Plugin = {
      name: "spy",
      setup: () => {
        ran = true;
      },
    };
    const clash: Plugin = {
      name: "clash",
      hypercalls: [{ op: __HYPERVISOR_xen_version }],
      setup() {},
    };
    expect(codeOf(() => createHypervisor({ machine: m, plugins: [spy, echoPlugin, clash] }))).toBe(
      "HYPERCALL_DUPLICATE",
    );
    const wholeVsCmd: Plugin = {
      name: "whole",
      hypercalls: [{ op: __HYPERVISOR_event_channel_op }],
      setup() {},
    };
    expect(codeOf(() => createHypervisor({ machine: m, plugins: [echoPlugin, wholeVsCmd] }))).toBe(
      "HYPERCALL_DUPLICATE",
    );
    const coreClash: Plugin = {
      name: "mc",
      hypercalls: [{ op: __HYPERVISOR_multicall }],
      setup() {},
    };
    expect(codeOf(() => createHypervisor({ machine: m, plugins: [coreClash] }))).toBe(
      "HYPERCALL_DUPLICATE",
    );
    const badNumber: Plugin = { name: "bad", hypercalls: [{ op: 99 }], setup() {} };
    expect(codeOf(() => createHypervisor({ machine: m, plugins: [badNumber] }))).toBe(
      "HYPERCALL_BAD_NUMBER",
    );
    const noSetup = { name: "nosetup" } as unknown as Plugin;
    expect(codeOf(() => createHypervisor({ machine: m, plugins: [noSetup] }))).toBe(
      "PLUGIN_INVALID",
    );
    expect(codeOf(() => createHypervisor({ plugins: [] } as never))).toBe("HYPERVISOR_NO_MACHINE");
    expect(ran).toBe(false);
  });

  it("asks for boot before use", () => {
    const hv = createHypervisor({ machine: machine(), plugins: [] });
    expect(codeOf(() => hv.createDomain({ maxVcpus: 1, maxPages: 1 }))).toBe(
      "HYPERVISOR_NOT_BOOTED",
    );
  });

  it("describes what it built", () => {
    const hv = bootWith([echoPlugin]);
    const d = hv.describe();
    expect(d.plugins.map((p) => p.name)).toEqual(["echo"]);
    expect(d.slots).toEqual({ echo: "echo" });
    expect(d.hypercalls).toEqual([
      { op: __HYPERVISOR_multicall, name: "multicall", plugin: "core" },
      { op: __HYPERVISOR_xen_version, name: "xen_version", plugin: "echo" },
      { op: __HYPERVISOR_vm_assist, name: "vm_assist", plugin: "core" },
      { op: __HYPERVISOR_vcpu_op, name: "vcpu_op", cmd: VCPUOP_initialise, plugin: "core" },
      {
        op: __HYPERVISOR_vcpu_op,
        name: "vcpu_op",
        cmd: VCPUOP_register_runstate_memory_area,
        plugin: "core",
      },
      { op: __HYPERVISOR_vcpu_op, name: "vcpu_op", cmd: VCPUOP_register_vcpu_info, plugin: "core" },
      { op: __HYPERVISOR_event_channel_op, name: "event_channel_op", cmd: 4, plugin: "echo" },
    ]);
    expect(d.stats.echo).toEqual([
      { name: "calls", unit: "calls", description: "echo hypercalls handled", value: 0 },
    ]);
  });
});

describe("hypercall dispatch", () => {
  const hv = bootWith([echoPlugin]);
  const dom = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
  const v = dom.vcpus[0];

  it("routes by number and returns the handler's answer", () => {
    expect(hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: 3 })).toBe(3);
    expect(hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: "x" })).toBe(-EINVAL);
    expect(hv.stats.read("echo", "calls")).toBe(2);
    expect(hv.hypercallCount(__HYPERVISOR_xen_version)).toBe(2);
  });

  it("answers -ENOSYS for unknown numbers and sub-ops", () => {
    expect(hv.hypercall(v, __HYPERVISOR_sched_op, { cmd: 0 })).toBe(-ENOSYS);
    expect(hv.hypercall(v, 63, {})).toBe(-ENOSYS);
    expect(hv.hypercall(v, 64, {})).toBe(-ENOSYS);
    expect(hv.hypercall(v, -1, {})).toBe(-ENOSYS);
    expect(hv.hypercall(v, 1.5, {})).toBe(-ENOSYS);
    expect(hv.hypercall(v, __HYPERVISOR_event_channel_op, { cmd: 5 })).toBe(-ENOSYS);
    expect(hv.hypercall(v, __HYPERVISOR_event_channel_op, { cmd: "4" })).toBe(-ENOSYS);
    expect(hv.stats.read("core", "hypercalls_unknown")).toBeGreaterThanOrEqual(6);
  });

  it("answers -EFAULT for arguments that are not a struct", () => {
    expect(hv.hypercall(v, __HYPERVISOR_xen_version, null as never)).toBe(-EFAULT);
    expect(hv.hypercall(v, __HYPERVISOR_xen_version, 5 as never)).toBe(-EFAULT);
  });

  it("routes sub-ops by cmd and writes outputs back", () => {
    const args: { cmd: number; port?: number } = { cmd: 4 };
    expect(hv.hypercall(v, __HYPERVISOR_event_channel_op, args)).toBe(0);
    expect(args.port).toBe(7);
  });

  it("runs a multicall entry by entry, each with its result", () => {
    const entries = [
      { op: __HYPERVISOR_xen_version, args: { cmd: 1 }, result: 0 },
      { op: 60, args: {}, result: 0 },
      { op: __HYPERVISOR_xen_version, args: { cmd: -1 }, result: 0 },
      { op: __HYPERVISOR_multicall, args: { entries: [] }, result: 0 },
    ];
    expect(hv.hypercall(v, __HYPERVISOR_multicall, { entries })).toBe(0);
    expect(entries.map((e) => e.result)).toEqual([1, -ENOSYS, -EINVAL, -EINVAL]);
    expect(hv.hypercall(v, __HYPERVISOR_multicall, { entries: 3 })).toBe(-EFAULT);
    expect(hv.hypercall(v, __HYPERVISOR_multicall, { entries: [7] })).toBe(-EFAULT);
  });

  it("counts a multicall as one entry into the hypervisor, and its calls apart", () => {
    const read = (n: string) => hv.stats.read("core", n) ?? -1;
    const [calls, entries, inside] = ["hypercalls", "hypercall_entries", "multicall_entries"].map(
      read,
    );
    const batch = [
      { op: __HYPERVISOR_xen_version, args: { cmd: 1 }, result: 0 },
      { op: __HYPERVISOR_xen_version, args: { cmd: 1 }, result: 0 },
      { op: 60, args: {}, result: 0 }, // no handler: not dispatched, not counted
    ];
    expect(hv.hypercall(v, __HYPERVISOR_multicall, { entries: batch })).toBe(0);
    expect(hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: 1 })).toBe(1);
    expect(read("hypercalls")).toBe(calls + 4);
    expect(read("multicall_entries")).toBe(inside + 2);
    expect(read("hypercall_entries")).toBe(entries + 2);
  });

  it("keeps vm_assist per domain and refuses unknown types", () => {
    const wp = VMASST_TYPE_writable_pagetables;
    expect(hv.hypercall(v, __HYPERVISOR_vm_assist, { cmd: VMASST_CMD_enable, type: wp })).toBe(0);
    expect(dom.vmAssist.has(wp)).toBe(true);
    expect(hv.hypercall(v, __HYPERVISOR_vm_assist, { cmd: VMASST_CMD_disable, type: wp })).toBe(0);
    expect(dom.vmAssist.has(wp)).toBe(false);
    expect(hv.hypercall(v, __HYPERVISOR_vm_assist, { cmd: VMASST_CMD_enable, type: 17 })).toBe(
      -EINVAL,
    );
    expect(hv.hypercall(v, __HYPERVISOR_vm_assist, { cmd: 9, type: wp })).toBe(-ENOSYS);
  });

  it("traces every hypercall when asked", () => {
    const events: TraceEvent[] = [];
    hv.setTrace((e) => events.push(e));
    expect(hv.tracing).toBe(true);
    hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: 2 });
    hv.setTrace(null);
    hv.hypercall(v, __HYPERVISOR_xen_version, { cmd: 2 });
    expect(events).toEqual([
      {
        kind: "hypercall",
        domid: dom.domid,
        vcpuId: 0,
        op: __HYPERVISOR_xen_version,
        cmd: -1,
        rc: 2,
      },
    ]);
  });
});

describe("domains", () => {
  it("are created paused with masked event delivery, and follow Xen's lifecycle", () => {
    const hv = bootWith();
    const states: string[] = [];
    hv.setTrace((e) => e.kind === "domain" && states.push(String(e.state)));
    const dom0 = hv.createDomain({ domid: 0, maxVcpus: 2, maxPages: 64 });
    expect(dom0.isPrivileged).toBe(true);
    expect(dom0.state).toBe("paused");
    expect(dom0.vcpus.map((v) => v.state)).toEqual(["runnable", "offline"]);
    const si = dom0.sharedInfoMfn * 4096 + shared_info_x86_64.fields.vcpu_info.offset;
    expect(hv.machine.ram.read8(si + vcpu_info_x86_64.fields.evtchn_upcall_mask.offset)).toBe(1);
    expect(
      hv.machine.ram.read8(
        si + vcpu_info_x86_64.sizeof + vcpu_info_x86_64.fields.evtchn_upcall_mask.offset,
      ),
    ).toBe(1);
    const du = hv.createDomain({ maxVcpus: 1, maxPages: 64 });
    expect(du.domid).toBe(1);
    expect(du.isPrivileged).toBe(false);
    expect(du.vcpus[0].uid).toBe(2);
    hv.unpauseDomain(du);
    expect(du.state).toBe("running");
    hv.pauseDomain(du);
    hv.pauseDomain(du);
    hv.unpauseDomain(du);
    expect(du.state).toBe("paused");
    hv.unpauseDomain(du);
    expect(du.state).toBe("running");
    expect(codeOf(() => hv.unpauseDomain(du))).toBe("DOMAIN_NOT_PAUSED");
    hv.shutdownDomain(du, SHUTDOWN_poweroff);
    expect(du.state).toBe("shutdown");
    expect(du.shutdownCode).toBe(SHUTDOWN_poweroff);
    hv.destroyDomain(du);
    expect(du.state).toBe("dead");
    expect(hv.domain(1)).toBeUndefined();
    expect(codeOf(() => hv.pauseDomain(du))).toBe("DOMAIN_GONE");
    expect(states).toEqual([
      "paused",
      "paused",
      "running",
      "paused",
      "running",
      "shutdown",
      "dying",
      "dead",
    ]);
  });

  it("refuse bad options with typed errors", () => {
    const hv = bootWith();
    expect(codeOf(() => hv.createDomain({ maxVcpus: 0, maxPages: 1 }))).toBe("DOMAIN_BAD_VCPUS");
    expect(codeOf(() => hv.createDomain({ maxVcpus: 1, maxPages: -1 }))).toBe(
      "DOMAIN_BAD_MAXPAGES",
    );
    expect(codeOf(() => hv.createDomain({ domid: 0x7ff0, maxVcpus: 1, maxPages: 1 }))).toBe(
      "DOMAIN_BAD_DOMID",
    );
    expect(codeOf(() => hv.createDomain({ maxVcpus: 1, maxPages: 1, addressSize: 16 as 64 }))).toBe(
      "DOMAIN_BAD_ADDRESS_SIZE",
    );
    hv.createDomain({ domid: 3, maxVcpus: 1, maxPages: 1 });
    expect(codeOf(() => hv.createDomain({ domid: 3, maxVcpus: 1, maxPages: 1 }))).toBe(
      "DOMAIN_EXISTS",
    );
  });

  it("allocate within max_pages and stay dying while another domain holds a frame", () => {
    const hv = bootWith();
    const a = hv.createDomain({ maxVcpus: 1, maxPages: 4 });
    const mfns = [0, 1, 2, 3].map(() => hv.allocDomainPages(a));
    expect(mfns.every((m) => m >= 0)).toBe(true);
    expect(a.totPages).toBe(4);
    expect(hv.allocDomainPages(a)).toBe(-1);
    expect(hv.frames.countInfo[mfns[0]]).toBe((PGC_allocated | 1) >>> 0);
    // Something else (a grant mapping, say) holds a reference on one frame.
    expect(hv.frames.getPage(mfns[2], a.domid)).toBe(true);
    hv.destroyDomain(a);
    expect(a.state).toBe("dying");
    expect(a.totPages).toBe(1);
    hv.frames.putPage(mfns[2]);
    expect(a.state).toBe("dead");
    expect(hv.frames.ownerOf(mfns[2])).toBe(-1);
  });

  it("run create and destroy hooks, destroy hooks in reverse setup order", () => {
    const log: string[] = [];
    const mk = (name: string): Plugin => ({
      name,
      setup(ctx) {
        ctx.onDomainCreate((d) => log.push(`${name}+${d.domid}`));
        ctx.onDomainDestroy((d) => log.push(`${name}-${d.domid}`));
      },
    });
    const hv = bootWith([mk("first"), mk("second")]);
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 1 });
    hv.destroyDomain(d);
    hv.destroyDomain(d); // a second destroy is a no-op
    expect(log).toEqual(["first+1", "second+1", "second-1", "first-1"]);
  });
});
