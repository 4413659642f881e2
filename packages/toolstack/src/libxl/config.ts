/*
 * The domain configuration libxl builds from (libxl_domain_config, the subset this model
 * uses), read from the JSON that xl's parser produces (xlcfg/create.ts, `xl -N create`).
 * xl's `create FILE key=value...` appends each key=value to the file's text as a line of its
 * own before parsing (tools/xl/xl_vmcontrol.c, extra_config), and so does configFromXlCfg.
 *
 * Invariant: a DomainConfig holds only checked values: memory in whole KiB, vCPU counts from
 * 1 to 128 with maxVcpus >= vcpus, every affinity entry a list of CPU numbers.
 */
import { dryRunCreate, parseXlCfg } from "../xlcfg/index";

/** xl.cfg(5)'s on_poweroff / on_reboot / on_crash / on_watchdog / on_soft_reset actions. */
export type DomainAction =
  | "destroy"
  | "restart"
  | "rename-restart"
  | "preserve"
  | "coredump-destroy"
  | "coredump-restart"
  | "soft-reset";

export interface DiskConfig {
  /** pdev_path (target). */
  target: string;
  vdev: string;
  format: string;
  readwrite: boolean;
  /** The backend domain (default 0). */
  backendDomid: number;
}

export interface NicConfig {
  devid: number;
  mac: string;
  bridge: string;
  backendDomid: number;
}

/** One `pci=` entry (libxl_device_pci): the host function's segment, bus, device and function. */
export interface PciConfig {
  domain: number;
  bus: number;
  dev: number;
  func: number;
}

/** libxl's name for a host PCI function, DDDD:BB:DD.F in hex (as xl pci-list prints it). */
export function pciConfigName(p: PciConfig): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, "0");
  return `${h(p.domain, 4)}:${h(p.bus, 2)}:${h(p.dev, 2)}.${p.func}`;
}

export interface DomainConfig {
  name: string;
  /** The domain's uuid; "" when the file gave none (create then makes one, as libxl_uuid_generate). */
  uuid: string;
  /** memory (target_memkb) and maxmem (max_memkb), KiB. */
  targetMemkb: number;
  maxMemkb: number;
  /** vcpus online at start, and maxvcpus. */
  vcpus: number;
  maxVcpus: number;
  kernel: string | undefined;
  ramdisk: string | undefined;
  cmdline: string;
  /** Hard affinity per vCPU (cpus=); empty: every pCPU. */
  hardAffinity: number[][];
  /** sched_params (cpu_weight, cap); undefined: the scheduler's default. */
  weight: number | undefined;
  cap: number | undefined;
  onPoweroff: DomainAction;
  onReboot: DomainAction;
  onCrash: DomainAction;
  onWatchdog: DomainAction;
  disks: DiskConfig[];
  nics: NicConfig[];
  /** Host PCI functions to pass through (pci=, libxl's pcidevs). */
  pcidevs: PciConfig[];
  /** The JSON it came from, as JSON.parse gives it (what `xl list -l` prints as "config"). */
  json: PlainJson;
}

/** What parsing a config gave: a DomainConfig, or xl's messages and exit status. */
export type ConfigResult =
  | { ok: true; config: DomainConfig; stderr: string }
  | { ok: false; stderr: string; exitCode: number };

const ACTIONS: Record<string, DomainAction> = {
  destroy: "destroy",
  restart: "restart",
  rename_restart: "rename-restart",
  preserve: "preserve",
  coredump_destroy: "coredump-destroy",
  coredump_restart: "coredump-restart",
  soft_reset: "soft-reset",
};

/** A JSON object as JSON.parse gives it. */
export type PlainJson = { [key: string]: unknown };

function o(v: unknown): PlainJson {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as PlainJson) : {};
}
function num(v: unknown): number | undefined {
  return typeof v === "number" ? v : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** Reads libxl's JSON (as dryRunCreate prints it) into a DomainConfig. */
export function configFromJson(json: PlainJson): DomainConfig {
  const c = o(json.c_info);
  const b = o(json.b_info);
  const maxMemkb = num(b.max_memkb) ?? 32 * 1024;
  const targetMemkb = num(b.target_memkb) ?? maxMemkb;
  const maxVcpus = Math.max(1, num(b.max_vcpus) ?? 1);
  const avail = Array.isArray(b.avail_vcpus) ? b.avail_vcpus.length : maxVcpus;
  const aff = Array.isArray(b.vcpu_hard_affinity) ? b.vcpu_hard_affinity : [];
  const sp = o(b.sched_params);
  const action = (k: string, d: DomainAction) => ACTIONS[str(json[k]) ?? ""] ?? d;
  return {
    name: str(c.name) ?? "",
    uuid: str(c.uuid) ?? "00000000-0000-0000-0000-000000000000",
    targetMemkb,
    maxMemkb: Math.max(maxMemkb, targetMemkb),
    vcpus: Math.max(1, Math.min(avail, maxVcpus)),
    maxVcpus,
    kernel: str(b.kernel),
    ramdisk: str(b.ramdisk),
    cmdline: str(b.cmdline) ?? "",
    hardAffinity: aff.map((m: unknown) =>
      Array.isArray(m) ? m.filter((x): x is number => typeof x === "number") : [],
    ),
    weight: num(sp.weight),
    cap: num(sp.cap),
    onPoweroff: action("on_poweroff", "destroy"),
    onReboot: action("on_reboot", "restart"),
    onCrash: action("on_crash", "destroy"),
    onWatchdog: action("on_watchdog", "destroy"),
    disks: (Array.isArray(json.disks) ? json.disks : []).map((d: unknown) => {
      const x = o(d);
      return {
        target: str(x.pdev_path) ?? "",
        vdev: str(x.vdev) ?? "",
        format: str(x.format) ?? "raw",
        readwrite: num(x.readwrite) === 1,
        backendDomid: 0,
      };
    }),
    nics: (Array.isArray(json.nics) ? json.nics : []).map((n: unknown, i: number) => {
      const x = o(n);
      return {
        devid: num(x.devid) ?? i,
        mac: str(x.mac) ?? "",
        bridge: str(x.bridge) ?? "xenbr0",
        backendDomid: 0,
      };
    }),
    pcidevs: (Array.isArray(json.pcidevs) ? json.pcidevs : []).map((p: unknown) => {
      const x = o(p);
      return {
        domain: num(x.domain) ?? 0,
        bus: num(x.bus) ?? 0,
        dev: num(x.dev) ?? 0,
        func: num(x.func) ?? 0,
      };
    }),
    json,
  };
}

/**
 * Parses an xl.cfg text as `xl create FILE KEY=VALUE...` does (each extra setting appended as
 * its own line) and reads the result into a DomainConfig; on failure, xl's messages and exit
 * status. Never throws on the text.
 */
export function configFromXlCfg(
  text: string,
  file: string,
  extra: readonly string[] = [],
): ConfigResult {
  const full =
    extra.length === 0 ? text : `${text}${text.endsWith("\n") ? "" : "\n"}${extra.join("\n")}\n`;
  const r = dryRunCreate(full, file);
  if (r.exitCode !== 0) return { ok: false, stderr: r.stderr, exitCode: r.exitCode };
  const json = JSON.parse(r.stdout) as PlainJson;
  const config = configFromJson(json);
  // No uuid= in the file: libxl makes a fresh one at create (the dry run prints a fixed one).
  if (!parseXlCfg(full, file).settings.has("uuid")) config.uuid = "";
  return { ok: true, config, stderr: r.stderr };
}
