// Invariant: dryRunCreate never throws on file content; every input yields xl's stdout, stderr
// and exit status for `xl -N create FILE` (parse_config_data in tools/xl/xl_parse.c, 4.17).
import { type CfgSetting, type ParsedCfg, parseXlCfg } from "./cfg";
import { parseDiskSpec, parsePciSpec, parseVifSpec } from "./devices";
import { checkXlCfgArgs } from "./errors";
import { type JsonValue, obj, printJson } from "./json";

export interface DryRunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

class Exit {
  constructor(readonly code: number) {}
}

const ERANGE = "Numerical result out of range";
const LONG_MAX = 9223372036854775807n;

/** xlu_cfg_get_string/long/list with libxlutil's warnings. */
class Getters {
  err = "";
  constructor(
    private readonly cfg: ParsedCfg,
    private readonly file: string,
  ) {}

  private atom(name: string): CfgSetting | undefined {
    const s = this.cfg.settings.get(name);
    if (!s) return undefined;
    if (s.value.kind !== "string") {
      this.err += `${this.file}:${s.lineno}: warning: parameter \`${name}' is a list but should be a single value\n`;
      return undefined;
    }
    return s;
  }

  string(name: string): string | undefined {
    const s = this.atom(name);
    return s && s.value.kind === "string" ? s.value.value : undefined;
  }

  long(name: string): number | undefined {
    const s = this.atom(name);
    if (s?.value.kind !== "string") return undefined;
    if (s.appended) {
      this.err += `${this.file}:${s.lineno}: warning: can't use += with numbers for parameter \`${name}'\n`;
      return undefined;
    }
    const r = strtol(s.value.value);
    if (r === "range") {
      this.err += `${this.file}:${s.lineno}: warning: parameter \`${name}' could not be parsed as a number: ${ERANGE}\n`;
      return undefined;
    }
    if (r === "invalid") {
      this.err += `${this.file}:${s.lineno}: warning: parameter \`${name}' is not a valid number\n`;
      return undefined;
    }
    return r;
  }

  list(name: string): string[] | undefined {
    const s = this.cfg.settings.get(name);
    if (!s) return undefined;
    if (s.value.kind !== "list") {
      this.err += `${this.file}:${s.lineno}: warning: parameter \`${name}' is a single value but should be a list\n`;
      return undefined;
    }
    return s.value.values;
  }
}

/** strtol(s, &ep, 0) and the checks xlu_cfg_get_long makes on its result. */
function strtol(s: string): number | "invalid" | "range" {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX](?=[0-9a-fA-F])[0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)/.exec(s);
  if (!m || m[0].length !== s.length) return "invalid";
  const digits = m[2] as string;
  let v: bigint;
  if (/^0[xX]/.test(digits)) v = BigInt(digits);
  else if (digits.length > 1 && digits[0] === "0") v = BigInt(`0o${digits.slice(1)}`);
  else v = BigInt(digits);
  if (v > LONG_MAX) return "range";
  const n = Number(v);
  return m[1] === "-" ? -n : n;
}

const ACTIONS: Record<string, string> = {
  destroy: "destroy",
  restart: "restart",
  "rename-restart": "rename_restart",
  preserve: "preserve",
  "coredump-destroy": "coredump_destroy",
  "coredump-restart": "coredump_restart",
  "soft-reset": "soft_reset",
};

/** The host the shim describes has 8 pCPUs; affinity bits beyond them are dropped, as libxl does. */
const HOST_CPUS = 8;

/** xl's cpu list syntax (`all`, `N`, `N-M`, `^N`, comma separated) as the sorted set bits. */
function parseCpuList(text: string): number[] | string {
  const bits = new Uint8Array(HOST_CPUS);
  for (const item of text.split(",")) {
    const neg = item.startsWith("^");
    const body = neg ? item.slice(1) : item;
    let lo: number;
    let hi: number;
    if (body === "all") {
      lo = 0;
      hi = HOST_CPUS - 1;
    } else {
      const m = /^(\d+)(?:-(\d+))?$/.exec(body);
      if (!m) return `Invalid pcpu range: ${item}.\n`;
      lo = Number(m[1]);
      hi = m[2] === undefined ? lo : Number(m[2]);
      if (hi < lo) return `Invalid pcpu range: ${item}.\n`;
    }
    for (let c = lo; c <= hi && c < HOST_CPUS; c++) bits[c] = neg ? 0 : 1;
  }
  const out: number[] = [];
  for (let c = 0; c < HOST_CPUS; c++) if (bits[c]) out.push(c);
  if (out.length === 0) return "vcpu hard affinity map is empty\n";
  return out;
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function buildConfig(
  cfg: ParsedCfg,
  file: string,
  g: Getters,
  say: (s: string) => void,
): JsonValue {
  const flush = () => {
    if (g.err) say(g.err);
    g.err = "";
  };
  const cInfo: [string, JsonValue][] = [];
  const bInfo: [string, JsonValue][] = [];
  let type = g.string("type");
  if (type === undefined) {
    const builder = g.string("builder");
    type = builder === "hvm" ? "hvm" : "pv";
  }
  flush();
  if (type !== "pv" && type !== "pvh" && type !== "hvm") {
    say(`Invalid domain type ${type}.\n`);
    throw new Exit(1);
  }
  cInfo.push(["type", type]);
  const name = g.string("name");
  flush();
  if (name === undefined) {
    say("Domain name must be specified.\n");
    throw new Exit(1);
  }
  cInfo.push(["name", name]);
  const uuid = g.string("uuid");
  flush();
  if (uuid !== undefined) {
    if (!UUID_RE.test(uuid)) {
      say(`Failed to parse UUID: ${uuid}\n`);
      throw new Exit(1);
    }
    cInfo.push(["uuid", uuid.toLowerCase()]);
  } else cInfo.push(["uuid", "00000000-0000-4000-8000-000000000001"]);
  cInfo.push(["run_hotplug_scripts", "True"]);

  const vcpus = g.long("vcpus");
  flush();
  let maxVcpus = 0;
  if (vcpus !== undefined) maxVcpus = vcpus;
  const mv = g.long("maxvcpus");
  flush();
  if (mv !== undefined) {
    if (vcpus !== undefined && mv < vcpus) {
      say("xl: maxvcpus < vcpus\n");
      throw new Exit(1);
    }
    maxVcpus = mv;
  }
  if (vcpus !== undefined || mv !== undefined) bInfo.push(["max_vcpus", maxVcpus]);
  if (vcpus !== undefined && vcpus > 0)
    bInfo.push(["avail_vcpus", Array.from({ length: vcpus }, (_, i) => i)]);
  const cpus = cfg.settings.get("cpus");
  if (cpus !== undefined) {
    const maps: JsonValue[] = [];
    const items = cpus.value.kind === "list" ? cpus.value.values : [];
    const one = cpus.value.kind === "string" ? cpus.value.value : "";
    const count = cpus.value.kind === "list" ? items.length : maxVcpus;
    for (let i = 0; i < count; i++) {
      const r = parseCpuList(cpus.value.kind === "list" ? (items[i] as string) : one);
      if (typeof r === "string") {
        say(r);
        throw new Exit(1);
      }
      maps.push(r);
    }
    if (maps.length > 0) bInfo.push(["vcpu_hard_affinity", maps]);
    if (cpus.value.kind === "list") bInfo.push(["numa_placement", "False"]);
  }
  const memory = g.long("memory");
  flush();
  const maxmem = g.long("maxmem");
  flush();
  if (maxmem !== undefined) bInfo.push(["max_memkb", maxmem * 1024]);
  else if (memory !== undefined) bInfo.push(["max_memkb", memory * 1024]);
  if (memory !== undefined) bInfo.push(["target_memkb", memory * 1024]);
  const sched: [string, JsonValue][] = [];
  const weight = g.long("cpu_weight");
  flush();
  if (weight !== undefined) sched.push(["weight", weight]);
  const cap = g.long("cap");
  flush();
  if (cap !== undefined) sched.push(["cap", cap]);
  bInfo.push(["sched_params", obj(sched)]);
  bInfo.push(["claim_mode", "True"]);

  const actions: [string, string][] = [];
  for (const [key, dflt] of [
    ["on_poweroff", "destroy"],
    ["on_reboot", "restart"],
    ["on_watchdog", "destroy"],
    ["on_crash", "destroy"],
    ["on_soft_reset", "soft-reset"],
  ] as const) {
    const v = g.string(key) ?? dflt;
    flush();
    const a = ACTIONS[v];
    if (a === undefined) {
      say(`Unknown ${key} action "${v}" specified\n`);
      throw new Exit(1);
    }
    actions.push([key, a]);
  }

  const kernel = g.string("kernel");
  flush();
  const cmdline = g.string("cmdline");
  const root = g.string("root");
  const extra = g.string("extra");
  flush();
  let line: string | undefined;
  if (cmdline !== undefined) {
    if (root !== undefined || extra !== undefined)
      say("Warning: ignoring root= and extra= in favour of cmdline=\n");
    line = cmdline;
  } else if (root !== undefined)
    line = extra !== undefined ? `root=${root} ${extra}` : `root=${root}`;
  else if (extra !== undefined) line = extra;
  const ramdisk = g.string("ramdisk");
  flush();
  if (kernel !== undefined) bInfo.push(["kernel", kernel]);
  if (line !== undefined) bInfo.push(["cmdline", line]);
  if (ramdisk !== undefined) bInfo.push(["ramdisk", ramdisk]);
  if (type === "pv" && kernel === undefined) {
    say("Neither kernel nor bootloader specified\n");
    throw new Exit(1);
  }
  const typeInfo: [string, JsonValue][] = [];
  bInfo.push([`type.${type}`, obj(typeInfo)]);
  bInfo.push(["arch_arm", obj([])]);
  bInfo.push(["arch_x86", obj([])]);

  const top: [string, JsonValue][] = [
    ["c_info", obj(cInfo)],
    ["b_info", obj(bInfo)],
  ];
  const disks = g.list("disk");
  flush();
  if (disks && disks.length > 0) {
    const out: JsonValue[] = [];
    for (const spec of disks) {
      const r = parseDiskSpec(spec);
      if (typeof r === "string") {
        say(`${file}: config parsing error in disk specification: ${r}\n`);
        throw new Exit(1);
      }
      out.push(r);
    }
    top.push(["disks", out]);
  }
  const vifs = g.list("vif");
  flush();
  if (vifs && vifs.length > 0) {
    top.push(["nics", vifs.map((spec, i) => parseVifSpec(spec, i, say))]);
  }
  const pcis = g.list("pci");
  flush();
  if (pcis && pcis.length > 0) {
    const out: JsonValue[] = [];
    for (const spec of pcis) {
      const r = parsePciSpec(spec);
      if (r !== null && typeof r === "object" && "exitCode" in r) {
        say(`${r.message}unable to parse PCI_SPEC_STRING \`${spec}' for passthrough\n`);
        throw new Exit(r.exitCode);
      }
      out.push(r);
    }
    top.push(["pcidevs", out]);
    if (type === "pv") typeInfo.push(["e820_host", "True"]);
  }
  for (const [key, a] of actions) if (a !== "destroy") top.push([key, a]);
  return obj(top);
}

/** What `xl -N create FILE` prints and returns for a config file with this text. */
export function dryRunCreate(fileText: string, fileName: string): DryRunResult {
  checkXlCfgArgs(fileText, fileName);
  let stderr = `Parsing config from ${fileName}\n`;
  const cfg = parseXlCfg(fileText, fileName);
  stderr += cfg.diagnostics;
  if (cfg.failed) {
    if (cfg.looksLikePython)
      stderr +=
        "warning: Config file looks like it contains Python code.\n" +
        "warning:  Arbitrary Python is no longer supported.\n" +
        "warning:  See https://wiki.xen.org/wiki/PythonInXlConfig\n";
    stderr += "Failed to parse config: Invalid argument\n";
    return { stdout: "", stderr, exitCode: 1 };
  }
  const g = new Getters(cfg, fileName);
  try {
    const json = buildConfig(cfg, fileName, g, (s) => {
      stderr += s;
    });
    return { stdout: `${printJson(json)}\n`, stderr, exitCode: 0 };
  } catch (e) {
    if (e instanceof Exit) return { stdout: "", stderr, exitCode: e.code };
    throw e;
  }
}
