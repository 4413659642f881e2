/*
 * The hypervisor: composition, boot, hypercall dispatch and domain lifecycle.
 *
 * Invariants: composition is checked whole before any setup runs; after boot the slot table
 * and the hypercall table are frozen; there is one dispatcher per hypercall number (with a
 * second level keyed by `cmd` for multiplexed hypercalls); dispatch never throws on
 * guest-controlled arguments (a handler that throws is a bug); every domain leaves through
 * one cleanup path (destroyDomain -> destroy hooks in reverse setup order -> pages released).
 */
import {
  __HYPERVISOR_multicall,
  __HYPERVISOR_vcpu_op,
  __HYPERVISOR_vm_assist,
  DOMID_FIRST_RESERVED,
  EFAULT,
  EINVAL,
  ENOSYS,
  shared_info_x86_64,
  VMASST_CMD_disable,
  VMASST_CMD_enable,
  VMASST_TYPE_4gb_segments_notify,
  VMASST_TYPE_m2p_strict,
  VMASST_TYPE_runstate_update_flag,
  VMASST_TYPE_writable_pagetables,
  vcpu_info_x86_64,
} from "@hyperlab/abi";
import type { Machine } from "@hyperlab/machine";
import type { CreateDomainOptions, Domain, Vcpu } from "./domain";
import { HyperlabError } from "./errors";
import { FRAME_FREE, FrameTable, ownerKey, PGC_xen_heap } from "./frame-table";
import { hypercallName } from "./hypercall-names";
import { type PluginShape, resolvePlugins, SlotTable } from "./registry";
import type { EvtchnService } from "./slots/evtchn";
import type { GrantHostMapping } from "./slots/grant-host-mapping";
import type { IoBusService } from "./slots/io-bus";
import type { IomemService } from "./slots/iomem";
import type { IrqService } from "./slots/irq";
import type { MmuBackend } from "./slots/mmu";
import type { SchedService } from "./slots/sched";
import { type StatGroup, Stats, type StatValue } from "./stats";
import { CORE_VCPUOPS, VcpuAreas } from "./vcpu-op";

/**
 * The hypervisor's slot table. Every shared contract is declared here, with its interface in
 * slots/, so a provider implements it and a consumer requires it without importing each other.
 * A backend's extended service (what only it offers) is added by declaration merging in its
 * package's plugin.ts: `declare module "@hyperlab/core" { interface Slots { pvMmu: PvMmu } }`.
 */
export interface Slots {
  /** How vCPUs' virtual addresses reach machine memory (slots/mmu.ts). */
  mmu: MmuBackend;
  /** The scheduler (slots/sched.ts). */
  sched: SchedService;
  /** Event channels (slots/evtchn.ts). */
  evtchn: EvtchnService;
  /** The arch half of grant host mappings (slots/grant-host-mapping.ts). */
  "grant-host-mapping": GrantHostMapping;
  /** Physical interrupt routing, pirqs and irq_caps (slots/irq.ts); phase 2. */
  irq: IrqService;
  /** I/O memory permission and the RAM/MMIO map (slots/iomem.ts); phase 2. */
  iomem: IomemService;
  /** MMIO exits to device models and the virtual irqchip of KVM-style VMs (slots/io-bus.ts). */
  "io-bus": IoBusService;
}
export type SlotName = keyof Slots & string;

/**
 * Argument types per hypercall number, extended by declaration merging so that
 * `hv.hypercall(vcpu, __HYPERVISOR_mmu_update, args)` is typed. Unlisted numbers take `object`.
 */
// biome-ignore lint/suspicious/noEmptyInterface: extended by declaration merging
export interface HypercallArgs {}

/**
 * A hypercall handler. `args` is guest-controlled: check every field and answer with Xen's
 * negative errno; write outputs back into `args` as Xen writes back into the guest's struct.
 */
// biome-ignore lint/suspicious/noExplicitAny: handlers narrow their own arguments
export type HypercallHandler = (vcpu: Vcpu, args: any) => number;

/** A hypercall a plugin handles: a number, and for multiplexed hypercalls a sub-op `cmd`. */
export interface HypercallKey {
  readonly op: number;
  readonly cmd?: number;
}

export interface SetupContext {
  readonly hv: Hypervisor;
  /** Fills a slot this plugin names in `provides`. */
  provide<K extends SlotName>(slot: K, impl: Slots[K]): void;
  /** A slot this plugin names in `requires` (its provider's setup has already run). */
  slot<K extends SlotName>(slot: K): Slots[K];
  /** Registers the handler of a hypercall this plugin names in `hypercalls`. */
  hypercall(op: number, handler: HypercallHandler, cmd?: number): void;
  /** This plugin's stat group. */
  readonly stats: StatGroup;
  /** Runs for every domain created after boot. */
  onDomainCreate(fn: (d: Domain) => void): void;
  /** Runs when a domain is destroyed, in reverse setup order, before its pages are released. */
  onDomainDestroy(fn: (d: Domain) => void): void;
}

export interface Plugin extends PluginShape<SlotName> {
  readonly description?: string;
  readonly hypercalls?: readonly HypercallKey[];
  setup(ctx: SetupContext): void;
}

/** Identity helper that types a plugin literal. */
export function definePlugin(plugin: Plugin): Plugin {
  return plugin;
}

export interface HypervisorOptions {
  readonly machine: Machine;
  readonly plugins: readonly Plugin[];
}

export type TraceEvent =
  | { kind: "hypercall"; domid: number; vcpuId: number; op: number; cmd: number; rc: number }
  | { kind: "domain"; domid: number; state: Domain["state"] }
  | { kind: string; [field: string]: unknown };

export interface Description {
  plugins: { name: string; provides: string[]; requires: string[]; overrides: string[] }[];
  slots: Record<string, string>;
  hypercalls: { op: number; name: string; cmd?: number; plugin: string }[];
  stats: Record<string, StatValue[]>;
}

interface Route {
  plugin: string;
  handler: HypercallHandler | undefined;
  cmds: Map<number, { plugin: string; handler: HypercallHandler | undefined }> | undefined;
}

const MAX_HYPERCALL = 64;
const CORE = "core";
const VMASST_VALID = new Set([
  VMASST_TYPE_4gb_segments_notify,
  VMASST_TYPE_writable_pagetables,
  VMASST_TYPE_runstate_update_flag,
  VMASST_TYPE_m2p_strict,
]);

/** Checks a composition; throws HyperlabError naming the plugins and slot on any mistake. */
export function createHypervisor(options: HypervisorOptions): Hypervisor {
  return new Hypervisor(options);
}

export class Hypervisor {
  readonly machine: Machine;
  readonly frames: FrameTable;
  readonly stats = new Stats();
  /** Per-vCPU state in guest memory: vcpu_info placement, runstate area, PV clock, contexts. */
  readonly vcpuAreas: VcpuAreas;
  private readonly order: readonly Plugin[];
  private readonly providers: ReadonlyMap<string, Plugin>;
  private readonly table = new SlotTable<Slots>("hypervisor");
  private readonly routes: (Route | undefined)[] = new Array(MAX_HYPERCALL).fill(undefined);
  private readonly createHooks: ((d: Domain) => void)[] = [];
  private readonly destroyHooks: ((d: Domain) => void)[] = [];
  private readonly domainList = new Map<number, Domain>();
  private readonly vcpuList: Vcpu[] = [];
  private booted = false;
  private traceFn: ((e: TraceEvent) => void) | null = null;
  private readonly counts = new Float64Array(MAX_HYPERCALL);
  private readonly hcUnknown;
  private readonly hcInMulticall;
  private multicallDepth = 0;

  constructor(options: HypervisorOptions) {
    if (options?.machine?.ram === undefined) {
      throw new HyperlabError(
        "HYPERVISOR_NO_MACHINE",
        "createHypervisor needs a machine: pass { machine: createMachine({ ramBytes, cpus, seed }), plugins }.",
      );
    }
    this.machine = options.machine;
    const resolved = resolvePlugins<SlotName, Plugin>(options.plugins ?? [], {
      what: "hypervisor",
    });
    this.order = resolved.order;
    this.providers = resolved.providers;
    for (const p of this.order) {
      if (typeof p.setup !== "function") {
        throw new HyperlabError(
          "PLUGIN_INVALID",
          `Plugin "${p.name}" has no setup function. A plugin is { name, provides, requires, hypercalls, setup(ctx) }.`,
        );
      }
    }
    this.vcpuAreas = new VcpuAreas(this);
    this.declareHypercalls();
    const alloc = this.machine.frames;
    this.frames = new FrameTable(
      this.machine.ram.nrFrames,
      {
        alloc: (order, below) =>
          order === 0 && below === undefined
            ? alloc.allocFrame()
            : alloc.allocPages(order, { below }),
        free: (mfn) => alloc.freeFrame(mfn),
      },
      (domid, mfn) => this.frameFreed(domid, mfn),
      (domid, _mfn, count) => this.podPopulated(domid, count),
    );
    const g = this.stats.group(CORE);
    this.hcUnknown = g.counter(
      "hypercalls_unknown",
      "calls",
      "hypercalls with no handler (-ENOSYS)",
    );
    g.gauge("hypercalls", "calls", "hypercalls dispatched", () =>
      this.counts.reduce((a, b) => a + b, 0),
    );
    this.hcInMulticall = g.counter(
      "multicall_entries",
      "calls",
      "hypercalls dispatched from inside a multicall (counted in hypercalls too)",
    );
    g.gauge(
      "hypercall_entries",
      "entries",
      "entries into the hypervisor by hypercall: a multicall is one, whatever it carries",
      () => this.counts.reduce((a, b) => a + b, 0) - this.hcInMulticall.value,
    );
    g.gauge("domains", "domains", "domains that exist (not dead)", () => this.domainList.size);
  }

  private declareHypercalls(): void {
    const owner = new Map<string, string>();
    const declare = (plugin: string, key: HypercallKey) => {
      const { op, cmd } = key;
      if (!Number.isInteger(op) || op < 0 || op >= MAX_HYPERCALL) {
        throw new HyperlabError(
          "HYPERCALL_BAD_NUMBER",
          `Plugin "${plugin}" declares hypercall ${op}, which is not a hypercall number (0..${MAX_HYPERCALL - 1}). Use the __HYPERVISOR_* constants from @hyperlab/abi.`,
        );
      }
      const id = cmd === undefined ? `${op}` : `${op}/${cmd}`;
      const prev = owner.get(id) ?? (cmd === undefined ? undefined : owner.get(`${op}`));
      if (prev !== undefined) {
        throw new HyperlabError(
          "HYPERCALL_DUPLICATE",
          `Hypercall ${hypercallName(op)}${cmd === undefined ? "" : ` cmd ${cmd}`} is handled by both "${prev}" and "${plugin}". One dispatcher per hypercall: remove one of the plugins.`,
        );
      }
      owner.set(id, plugin);
      let route = this.routes[op];
      if (route === undefined) {
        route = { plugin, handler: undefined, cmds: cmd === undefined ? undefined : new Map() };
        this.routes[op] = route;
      } else if ((route.cmds === undefined) !== (cmd === undefined)) {
        throw new HyperlabError(
          "HYPERCALL_DUPLICATE",
          `Hypercall ${hypercallName(op)} is claimed whole by "${route.plugin}" and by sub-op by "${plugin}". Declare it by cmd in both, or whole in one.`,
        );
      }
      if (cmd !== undefined) route.cmds!.set(cmd, { plugin, handler: undefined });
    };
    declare(CORE, { op: __HYPERVISOR_multicall });
    declare(CORE, { op: __HYPERVISOR_vm_assist });
    for (const cmd of CORE_VCPUOPS) declare(CORE, { op: __HYPERVISOR_vcpu_op, cmd });
    for (const p of this.order) for (const key of p.hypercalls ?? []) declare(p.name, key);
    this.routes[__HYPERVISOR_multicall]!.handler = (v, a) => this.doMulticall(v, a);
    this.routes[__HYPERVISOR_vm_assist]!.handler = (v, a) => this.doVmAssist(v, a);
    for (const cmd of CORE_VCPUOPS) {
      this.routes[__HYPERVISOR_vcpu_op]!.cmds!.get(cmd)!.handler = this.vcpuAreas.handler(cmd);
    }
  }

  /** Runs every plugin's setup in dependency order, then freezes the tables. */
  boot(): this {
    if (this.booted) {
      throw new HyperlabError(
        "HYPERVISOR_BOOTED",
        "This hypervisor has already booted. Boot it once.",
      );
    }
    for (const p of this.order) {
      const declared = p.provides ?? [];
      const required = p.requires ?? [];
      const ctx: SetupContext = {
        hv: this,
        provide: (slot, impl) => {
          if (!declared.includes(slot)) {
            throw new HyperlabError(
              "SLOT_UNDECLARED_PROVIDE",
              `Plugin "${p.name}" fills slot "${slot}" without naming it in provides. Add "${slot}" to its provides.`,
            );
          }
          this.table.set(slot, impl);
        },
        slot: (slot) => {
          if (!required.includes(slot) && !declared.includes(slot)) {
            throw new HyperlabError(
              "SLOT_UNDECLARED_REQUIRE",
              `Plugin "${p.name}" reads slot "${slot}" without naming it in requires. Add "${slot}" to its requires, so composition orders its setup after the provider's.`,
            );
          }
          return this.table.get(slot);
        },
        hypercall: (op, handler, cmd) => this.registerHandler(p.name, op, handler, cmd),
        stats: this.stats.group(p.name),
        onDomainCreate: (fn) => this.createHooks.push(fn),
        onDomainDestroy: (fn) => this.destroyHooks.unshift(fn),
      };
      p.setup(ctx);
      for (const slot of declared) {
        if (!this.table.has(slot)) {
          throw new HyperlabError(
            "SLOT_NOT_FILLED",
            `Plugin "${p.name}" declares that it provides slot "${slot}" but its setup did not fill it. Call ctx.provide("${slot}", impl) in its setup.`,
          );
        }
      }
    }
    for (const [op, route] of this.routes.entries()) {
      if (route === undefined) continue;
      const missing =
        route.cmds === undefined
          ? route.handler === undefined
            ? [route.plugin]
            : []
          : [...route.cmds]
              .filter(([, r]) => r.handler === undefined)
              .map(([c, r]) => `${r.plugin} (cmd ${c})`);
      if (missing.length > 0) {
        throw new HyperlabError(
          "HYPERCALL_NOT_REGISTERED",
          `Hypercall ${hypercallName(op)} is declared by ${missing.join(", ")} but no handler was registered. Call ctx.hypercall(op, handler${route.cmds ? ", cmd" : ""}) in its setup.`,
        );
      }
    }
    this.table.freeze();
    this.booted = true;
    return this;
  }

  private registerHandler(
    plugin: string,
    op: number,
    handler: HypercallHandler,
    cmd?: number,
  ): void {
    const route = this.routes[op];
    const target = cmd === undefined ? route : route?.cmds?.get(cmd);
    if (
      route === undefined ||
      target === undefined ||
      target.plugin !== plugin ||
      (cmd === undefined && route.cmds)
    ) {
      throw new HyperlabError(
        "HYPERCALL_UNDECLARED",
        `Plugin "${plugin}" registers hypercall ${hypercallName(op)}${cmd === undefined ? "" : ` cmd ${cmd}`} that it does not declare. Add { op${cmd === undefined ? "" : ", cmd"} } to its hypercalls.`,
      );
    }
    target.handler = handler;
  }

  get isBooted(): boolean {
    return this.booted;
  }

  /** A slot's implementation (after boot). */
  slot<K extends SlotName>(name: K): Slots[K] {
    return this.table.get(name);
  }

  /** Whether a slot is filled in this build. */
  hasSlot(name: SlotName): boolean {
    return this.table.has(name);
  }

  // ---- hypercalls ----

  /**
   * A hypercall from `vcpu`. Returns >= 0 on success or Xen's negative errno. Unknown numbers
   * and sub-ops answer -ENOSYS; arguments that are not an object answer -EFAULT.
   */
  hypercall<N extends number>(
    vcpu: Vcpu,
    op: N,
    args: N extends keyof HypercallArgs ? HypercallArgs[N] : object,
  ): number {
    this.requireBooted("make a hypercall");
    const route = op >= 0 && op < MAX_HYPERCALL ? this.routes[op] : undefined;
    if (route === undefined) {
      this.hcUnknown.value++;
      return this.traced(vcpu, op, -1, -ENOSYS);
    }
    if (typeof args !== "object" || args === null) return this.traced(vcpu, op, -1, -EFAULT);
    this.counts[op]++;
    if (this.multicallDepth > 0) this.hcInMulticall.value++;
    if (route.cmds === undefined) return this.traced(vcpu, op, -1, route.handler!(vcpu, args));
    const cmd = (args as { cmd?: unknown }).cmd;
    const sub = typeof cmd === "number" ? route.cmds.get(cmd) : undefined;
    if (sub === undefined) {
      this.hcUnknown.value++;
      return this.traced(vcpu, op, typeof cmd === "number" ? cmd : -1, -ENOSYS);
    }
    return this.traced(vcpu, op, cmd as number, sub.handler!(vcpu, args));
  }

  private traced(vcpu: Vcpu, op: number, cmd: number, rc: number): number {
    if (this.traceFn !== null) {
      this.traceFn({
        kind: "hypercall",
        domid: vcpu.domain.domid,
        vcpuId: vcpu.vcpuId,
        op,
        cmd,
        rc,
      });
    }
    return rc;
  }

  /** How many times each hypercall number was dispatched. */
  hypercallCount(op: number): number {
    return this.counts[op] ?? 0;
  }

  /** Xen's multicall: each entry `{ op, args }` runs in order and gets its `result`. */
  private doMulticall(vcpu: Vcpu, a: { entries?: unknown }): number {
    const entries = a.entries;
    if (!Array.isArray(entries)) return -EFAULT;
    if (this.multicallDepth > 0) return -EINVAL; // Xen refuses multicall re-entry
    this.multicallDepth++;
    try {
      for (const e of entries) {
        if (typeof e !== "object" || e === null || typeof e.op !== "number") return -EFAULT;
        e.result = this.hypercall(vcpu, e.op, e.args);
      }
    } finally {
      this.multicallDepth--;
    }
    return 0;
  }

  /** Xen's vm_assist: enables or disables an assist for the calling domain. */
  private doVmAssist(vcpu: Vcpu, a: { cmd?: unknown; type?: unknown }): number {
    const { cmd, type } = a;
    if (typeof type !== "number" || !VMASST_VALID.has(type)) return -EINVAL;
    const d = vcpu.domain;
    if (cmd === VMASST_CMD_enable) d.vmAssist.add(type);
    else if (cmd === VMASST_CMD_disable) d.vmAssist.delete(type);
    else return -ENOSYS;
    return 0;
  }

  // ---- domains ----

  /** Creates a domain, paused, as Xen does. Throws HyperlabError on bad options or a taken domid. */
  createDomain(options: CreateDomainOptions): Domain {
    this.requireBooted("create a domain");
    const maxVcpus = options?.maxVcpus;
    if (!Number.isInteger(maxVcpus) || maxVcpus < 1 || maxVcpus > 128) {
      throw new HyperlabError(
        "DOMAIN_BAD_VCPUS",
        `maxVcpus must be a whole number from 1 to 128, got ${maxVcpus}.`,
      );
    }
    if (!Number.isInteger(options.maxPages) || options.maxPages < 0) {
      throw new HyperlabError(
        "DOMAIN_BAD_MAXPAGES",
        `maxPages must be a whole number of frames, got ${options.maxPages}.`,
      );
    }
    let domid = options.domid;
    if (domid === undefined) {
      domid = 1;
      while (this.domainList.has(domid)) domid++;
    }
    if (!Number.isInteger(domid) || domid < 0 || domid >= DOMID_FIRST_RESERVED) {
      throw new HyperlabError(
        "DOMAIN_BAD_DOMID",
        `domid must be a whole number below ${DOMID_FIRST_RESERVED}, got ${domid}.`,
      );
    }
    if (this.domainList.has(domid)) {
      throw new HyperlabError(
        "DOMAIN_EXISTS",
        `Domain ${domid} already exists. Destroy it first, or leave domid out to get a free one.`,
      );
    }
    const addressSize = options.addressSize ?? 64;
    if (addressSize !== 64 && addressSize !== 32) {
      throw new HyperlabError(
        "DOMAIN_BAD_ADDRESS_SIZE",
        `addressSize must be 64 or 32, got ${addressSize}.`,
      );
    }
    const sharedInfoMfn = this.frames.allocate(domid, 0);
    if (sharedInfoMfn < 0) {
      throw new HyperlabError(
        "DOMAIN_NO_MEMORY",
        "No free frame for the new domain's shared_info. Give the machine more RAM.",
      );
    }
    // shared_info is a Xen heap page shared with the guest: not counted in tot_pages.
    this.frames.countInfo[sharedInfoMfn] |= PGC_xen_heap;
    this.machine.ram.clearFrame(sharedInfoMfn);
    const d: Domain = {
      domid,
      isPrivileged: options.privileged ?? domid === 0,
      addressSize,
      state: "paused",
      shutdownCode: -1,
      vcpus: [],
      maxPages: options.maxPages,
      totPages: 0,
      podPages: 0,
      sharedInfoMfn,
      pauseCount: 1,
      target: -1,
      vmAssist: new Set(),
    };
    const siBase = sharedInfoMfn * 4096 + shared_info_x86_64.fields.vcpu_info.offset;
    for (let i = 0; i < maxVcpus; i++) {
      const v: Vcpu = {
        vcpuId: i,
        uid: this.vcpuList.length,
        domain: d,
        state: i === 0 ? "runnable" : "offline",
        processor: i % Math.max(1, this.machine.cpus.length),
        cr3Mfn: -1,
        userCr3Mfn: -1,
        inKernel: true,
        pauseCount: 0,
      };
      d.vcpus.push(v);
      this.vcpuList.push(v);
      this.vcpuAreas.vcpuCreated(v);
      // Xen starts PV vCPUs with event delivery masked.
      if (i < shared_info_x86_64.fields.vcpu_info.count!) {
        this.machine.ram.write8(
          siBase + i * vcpu_info_x86_64.sizeof + vcpu_info_x86_64.fields.evtchn_upcall_mask.offset,
          1,
        );
      }
    }
    this.domainList.set(domid, d);
    for (const fn of this.createHooks) fn(d);
    this.emitDomain(d);
    return d;
  }

  domain(domid: number): Domain | undefined {
    return this.domainList.get(domid);
  }

  /** Every domain that is not dead, by domid. */
  domains(): Domain[] {
    return [...this.domainList.values()].sort((a, b) => a.domid - b.domid);
  }

  /** Every vCPU ever created, indexed by uid. */
  get vcpus(): readonly Vcpu[] {
    return this.vcpuList;
  }

  pauseDomain(d: Domain): void {
    this.requireAlive(d, "pause");
    d.pauseCount++;
    if (d.state === "running") {
      d.state = "paused";
      this.emitDomain(d);
    }
  }

  unpauseDomain(d: Domain): void {
    this.requireAlive(d, "unpause");
    if (d.pauseCount === 0) {
      throw new HyperlabError(
        "DOMAIN_NOT_PAUSED",
        `Domain ${d.domid} is not paused. Unpause only what you paused.`,
      );
    }
    d.pauseCount--;
    if (d.pauseCount === 0 && d.state === "paused") {
      d.state = "running";
      this.emitDomain(d);
      // Xen's domain_unpause wakes each vCPU that can run, so an idle pCPU takes it at once.
      if (this.table.has("sched")) {
        const sched = this.table.get("sched");
        for (const v of d.vcpus) if (v.state === "runnable") sched.vcpuWake(v);
      }
    }
  }

  /** Marks a domain shut down with a SHUTDOWN_* reason (what SCHEDOP_shutdown does). */
  shutdownDomain(d: Domain, reason: number): void {
    if (d.state === "dying" || d.state === "dead" || d.state === "shutdown") return;
    d.state = "shutdown";
    d.shutdownCode = reason;
    for (const v of d.vcpus) if (v.state !== "offline") v.state = "blocked";
    this.emitDomain(d);
  }

  /**
   * Destroys a domain: destroy hooks release what plugins hold for it (page tables, event
   * channels, grants), then every frame it owns loses its allocation reference. Frames that
   * another domain still references stay until that reference goes; the domain is dead when
   * it owns no frame.
   */
  destroyDomain(d: Domain): void {
    if (d.state === "dying" || d.state === "dead") return;
    d.state = "dying";
    this.emitDomain(d);
    for (const v of d.vcpus) v.state = "offline";
    for (const fn of this.destroyHooks) fn(d);
    this.vcpuAreas.domainDestroyed(d);
    // Blocks never populated go straight back (Xen's p2m_pod_empty_cache); a dying domain's
    // blocks are no longer populated (podPopulated refuses), so none appears meanwhile.
    d.podPages -= this.frames.releasePod(d.domid);
    for (const mfn of this.frames.framesOf(d.domid)) this.frames.release(mfn);
    this.maybeDead(d);
  }

  private frameFreed(domid: number, mfn: number): void {
    const d = this.domainList.get(domid);
    if (d === undefined) return;
    if (mfn !== d.sharedInfoMfn) d.totPages--;
    if (d.state === "dying") this.maybeDead(d);
  }

  private maybeDead(d: Domain): void {
    if (d.state !== "dying") return;
    // A cheap test first: the domain's own accounting, then the frame table's truth.
    if (d.totPages > 0 || d.podPages > 0) return;
    if (this.frames.ownerKeys.includes(ownerKey(d.domid))) return;
    d.state = "dead";
    this.domainList.delete(d.domid);
    this.emitDomain(d);
  }

  /**
   * Allocates 2^order frames to a domain, within its max_pages (Xen's alloc_domheap_pages +
   * assign_pages), all below machine address `below` if given. Returns the first mfn, or -1 when the domain is at its limit or the
   * machine has no such run free (the caller answers -ENOMEM).
   */
  allocDomainPages(d: Domain, order = 0, below?: number): number {
    const n = 2 ** order;
    if (!this.hasRoom(d, n)) return -1;
    const mfn = this.frames.allocate(d.domid, order, below);
    if (mfn >= 0) d.totPages += n;
    return mfn;
  }

  /**
   * Reserves 2^order frames (order 9 or more: whole aligned 2 MiB blocks) for a domain as
   * populate-on-demand blocks: the same frames allocDomainPages(d, order, below) would give,
   * taken from the machine's pool but assigned to no one and not written, so a guest's memory
   * it never touches costs no host memory. Counted in d.podPages (Xen's pod.entry_count)
   * within max_pages; a block is populated (owned, counted in tot_pages) at the first check
   * that the domain owns one of its frames (see FrameTable.ownedBy). Returns the first mfn,
   * or -1 when the domain is at its limit or the machine has no such run free.
   */
  reserveDomainPages(d: Domain, order: number, below?: number): number {
    const n = 2 ** order;
    if (!this.hasRoom(d, n)) return -1;
    const mfn = this.frames.reserve(d.domid, order, below);
    if (mfn >= 0) d.podPages += n;
    return mfn;
  }

  /** Whether a live domain may take `n` more pages: populated and PoD together within max_pages. */
  private hasRoom(d: Domain, n: number): boolean {
    return d.state !== "dying" && d.state !== "dead" && d.totPages + d.podPages + n <= d.maxPages;
  }

  /** FrameTable's PodPopulateHook: a live domain's block becomes its own frames. */
  private podPopulated(domid: number, count: number): boolean {
    const d = this.domainList.get(domid);
    if (d === undefined || d.state === "dying" || d.state === "dead") return false;
    d.totPages += count;
    d.podPages -= count;
    return true;
  }

  private requireBooted(what: string): void {
    if (!this.booted) {
      throw new HyperlabError(
        "HYPERVISOR_NOT_BOOTED",
        `Boot the hypervisor (hv.boot()) before you ${what}.`,
      );
    }
  }

  private requireAlive(d: Domain, what: string): void {
    if (d.state === "dying" || d.state === "dead") {
      throw new HyperlabError("DOMAIN_GONE", `Cannot ${what} domain ${d.domid}: it is ${d.state}.`);
    }
  }

  private emitDomain(d: Domain): void {
    if (this.traceFn !== null) this.traceFn({ kind: "domain", domid: d.domid, state: d.state });
  }

  // ---- tracing and introspection ----

  /** Sets (or clears, with null) the function that sees every trace event. */
  setTrace(fn: ((e: TraceEvent) => void) | null): void {
    this.traceFn = fn;
  }

  /** Sends an event to the trace function, if one is set. Plugins call this for their events. */
  trace(e: TraceEvent): void {
    if (this.traceFn !== null) this.traceFn(e);
  }

  get tracing(): boolean {
    return this.traceFn !== null;
  }

  /** What this build is made of: plugins, slots and their providers, hypercalls, stats. */
  describe(): Description {
    const slots: Record<string, string> = {};
    for (const [s, p] of [...this.providers].sort((a, b) => a[0].localeCompare(b[0])))
      slots[s] = p.name;
    const hypercalls: Description["hypercalls"] = [];
    this.routes.forEach((route, op) => {
      if (route === undefined) return;
      if (route.cmds === undefined)
        hypercalls.push({ op, name: hypercallName(op), plugin: route.plugin });
      else
        for (const [cmd, r] of [...route.cmds].sort((a, b) => a[0] - b[0]))
          hypercalls.push({ op, name: hypercallName(op), cmd, plugin: r.plugin });
    });
    return {
      plugins: this.order.map((p) => ({
        name: p.name,
        provides: [...(p.provides ?? [])],
        requires: [...(p.requires ?? [])],
        overrides: [...(p.overrides ?? [])],
      })),
      slots,
      hypercalls,
      stats: this.stats.snapshot(),
    };
  }
}

export { FRAME_FREE };
