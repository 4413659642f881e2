// Invariant: the disk and vif spec parsers never throw on spec text; a disk spec either gives a
// libxl_device_disk as JSON or libxlu's error text, and a vif spec always gives a nic (bad
// fields are reported and skipped, as xl does).
import { type JsonValue, obj } from "./json";

const FORMATS = new Set(["raw", "qcow", "qcow2", "vhd", "qed", "empty"]);
const BACKENDTYPES = new Set(["phy", "qdisk", "tap", "standalone"]);

/** Deprecated `prefix:` forms on the target and the format (and script) they imply. */
const PREFIXES: [string, string, string | undefined][] = [
  ["tap:aio:", "raw", undefined],
  ["tap2:aio:", "raw", undefined],
  ["tap:qcow:", "qcow", undefined],
  ["tap:qcow2:", "qcow2", undefined],
  ["tap:vhd:", "vhd", undefined],
  ["phy:", "raw", undefined],
  ["file:", "raw", undefined],
  ["aio:", "raw", undefined],
  ["raw:", "raw", undefined],
  ["qcow:", "qcow", undefined],
  ["qcow2:", "qcow2", undefined],
  ["vhd:", "vhd", undefined],
  ["iscsi:", "raw", "block-iscsi"],
];

interface Disk {
  backend?: string;
  target?: string;
  vdev?: string;
  backendtype?: string;
  format?: string;
  script?: string;
  readwrite?: number;
  cdrom: boolean;
  directIoSafe: boolean;
  discard?: boolean;
  colo: boolean;
  specification?: string;
}

/** Parses one `disk=[...]` entry; a string result is the error after "in disk specification: ". */
export function parseDiskSpec(spec: string): JsonValue | string {
  const d: Disk = { cdrom: false, directIoSafe: false, colo: false };
  const near = (what: string, tok: string) => `${what}: near \`${tok}' in \`${spec}'`;
  let positional = 0; // 0 target, 1 format, 2 vdev, 3 access
  let rest = spec;
  const once = (
    key: "target" | "vdev" | "script" | "format" | "backendtype",
    v: string,
  ): string | null => {
    if (d[key] !== undefined) return near(`${key} respecified`, v);
    d[key] = v;
    return null;
  };
  const setAccess = (v: string, tok: string): string | null => {
    if (v === "r" || v === "ro") d.readwrite = 0;
    else if (v === "w" || v === "rw") d.readwrite = 1;
    else return near("unknown value for access", tok);
    return null;
  };
  while (rest.length > 0 || positional === 0) {
    const trimmed = rest.replace(/^[ \t\n]+/, "");
    rest = trimmed;
    if (rest.startsWith("target=")) {
      const e = once("target", rest.slice(7));
      if (e) return e;
      rest = "";
      break;
    }
    const comma = rest.indexOf(",");
    const field = comma < 0 ? rest : rest.slice(0, comma);
    const raw = comma < 0 ? rest : rest.slice(0, comma + 1);
    rest = comma < 0 ? "" : rest.slice(comma + 1);
    const eq = field.indexOf("=");
    let e: string | null = null;
    if (eq > 0 && /^[a-z-]+$/.test(field.slice(0, eq))) {
      const key = field.slice(0, eq);
      const v = field.slice(eq + 1);
      switch (key) {
        case "format":
          if (!FORMATS.has(v)) return near("unknown value for format", v);
          e = once("format", v);
          break;
        case "vdev":
          e = once("vdev", v);
          break;
        case "access":
          e = setAccess(v, v);
          break;
        case "backend":
          d.backend = v;
          break;
        case "backendtype":
          if (!BACKENDTYPES.has(v)) return near("unknown value for backendtype", v);
          e = once("backendtype", v);
          break;
        case "script":
          e = once("script", v);
          break;
        case "devtype":
          if (v === "cdrom") d.cdrom = true;
          else if (v !== "disk") return near("unknown value for type", field);
          break;
        case "specification":
          d.specification = v;
          break;
        default:
          return near("unknown parameter", raw);
      }
      if (e) return e;
      if (comma < 0) break;
      continue;
    }
    if (field === "cdrom") d.cdrom = true;
    else if (field === "direct-io-safe") d.directIoSafe = true;
    else if (field === "discard") d.discard = true;
    else if (field === "no-discard") d.discard = false;
    else if (field === "colo") d.colo = true;
    else {
      switch (positional) {
        case 0: {
          let t = field;
          for (const [prefix, format, script] of PREFIXES) {
            if (t.startsWith(prefix)) {
              t = t.slice(prefix.length);
              d.format = format;
              if (script) d.script = script;
              positional = 1;
              break;
            }
          }
          e = once("target", t);
          break;
        }
        case 1:
          if (field !== "") {
            if (!FORMATS.has(field)) return near("unknown value for format", field);
            e = once("format", field);
          }
          break;
        case 2: {
          let v = field;
          if (v.endsWith(":cdrom")) {
            v = v.slice(0, -6);
            d.cdrom = true;
          }
          e = once("vdev", v);
          break;
        }
        case 3:
          if (field !== "") e = setAccess(field, field);
          break;
        default:
          return near("too many positional parameters", field);
      }
      positional++;
      if (e) return e;
    }
    if (comma < 0) break;
  }
  if (d.vdev === undefined) return `no vdev specified in \`${spec}'`;
  const pairs: [string, JsonValue][] = [];
  if (d.backend !== undefined) pairs.push(["backend_domname", d.backend]);
  if (d.target !== undefined) pairs.push(["pdev_path", d.target]);
  pairs.push(["vdev", d.vdev]);
  if (d.backendtype !== undefined) pairs.push(["backend", d.backendtype]);
  let format = d.format ?? "raw";
  if (d.cdrom && (d.target === undefined || d.target === "")) format = "empty";
  pairs.push(["format", format]);
  if (d.script !== undefined) pairs.push(["script", d.script]);
  if (d.cdrom) pairs.push(["removable", 1]);
  const rw = d.readwrite ?? (d.cdrom ? 0 : 1);
  if (rw) pairs.push(["readwrite", rw]);
  if (d.cdrom) pairs.push(["is_cdrom", 1]);
  if (d.directIoSafe) pairs.push(["direct_io_safe", true]);
  if (d.discard !== undefined) pairs.push(["discard_enable", d.discard ? "True" : "False"]);
  if (d.specification !== undefined) pairs.push(["specification", d.specification]);
  if (d.colo) pairs.push(["colo_enable", "True"]);
  return obj(pairs);
}

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** xl's rate syntax: `N{,k,M,G}{B,b}/s[@N{us,ms,s}]` into bytes per interval and the interval. */
function parseRate(v: string): [number, number] | null {
  const m = /^(\d+)([kKMG]?)([Bb])\/s(?:@(\d+)(us|ms|s))?$/.exec(v);
  if (!m) return null;
  const mult: Record<string, number> = { "": 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9 };
  let bytesPerSec = Number(m[1]) * (mult[m[2] as string] as number);
  if (m[3] === "b") bytesPerSec /= 8;
  let usecs = 50000;
  if (m[4] !== undefined) {
    const unit: Record<string, number> = { us: 1, ms: 1000, s: 1e6 };
    usecs = Number(m[4]) * (unit[m[5] as string] as number);
  }
  return [Math.floor((bytesPerSec * usecs) / 1e6), usecs];
}

/** Parses one `vif=[...]` entry as xl's parse_nic_config does; warnings go to `say`. */
export function parseVifSpec(spec: string, index: number, say: (s: string) => void): JsonValue {
  const f: Record<string, JsonValue> = {};
  f.devid = index;
  for (const item of spec.split(",")) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    const v = eq < 0 ? "" : item.slice(eq + 1);
    switch (key) {
      case "mac":
        if (MAC_RE.test(v)) f.mac = v.toLowerCase();
        else say("Invalid parameter `mac'.\n");
        break;
      case "bridge":
        f.bridge = v;
        break;
      case "ip":
        f.ip = v;
        break;
      case "script":
        f.script = v;
        break;
      case "model":
        f.model = v;
        break;
      case "vifname":
        f.ifname = v;
        break;
      case "backend":
        f.backend_domname = v;
        break;
      case "gatewaydev":
        f.gatewaydev = v;
        break;
      case "type":
        f.nictype = v === "ioemu" ? "vif_ioemu" : "vif";
        break;
      case "mtu":
        f.mtu = Number.parseInt(v, 10) || 0;
        break;
      case "devid":
        f.devid = Number.parseInt(v, 10) || 0;
        break;
      case "rate": {
        const r = parseRate(v);
        if (r) {
          f.rate_bytes_per_interval = r[0];
          f.rate_interval_usecs = r[1];
        }
        break;
      }
      default:
        say(`unrecognized argument \`${item}'\n`);
    }
  }
  const order = [
    "backend_domname",
    "devid",
    "mtu",
    "model",
    "mac",
    "ip",
    "bridge",
    "ifname",
    "script",
    "nictype",
    "rate_bytes_per_interval",
    "rate_interval_usecs",
    "gatewaydev",
  ];
  const pairs: [string, JsonValue][] = [];
  for (const k of order)
    if (f[k] !== undefined && !(k === "mtu" && f[k] === 0)) pairs.push([k, f[k] as JsonValue]);
  return obj(pairs);
}

/** A pci spec error: what xl prints before "unable to parse ..." and its exit status. */
export interface PciSpecError {
  readonly message: string;
  readonly exitCode: number;
}

function hexField(s: string, max: number): number | null {
  if (!/^[0-9a-fA-F]+$/.test(s)) return null;
  const v = Number.parseInt(s, 16);
  return v > max ? null : v;
}

/** Parses `[DDDD:]BB:DD.F[@VSLOT][,key=value...]` (or all key=value) as xlu's pci parser does. */
export function parsePciSpec(spec: string): JsonValue | PciSpecError {
  const bad: PciSpecError = { message: "", exitCode: 6 };
  const f: Record<string, JsonValue> = {};
  let haveBdf = false;
  const setBdf = (s: string): boolean => {
    const m = /^(?:([^:]+):)?([^:]+):([^.]+)\.(.+)$/.exec(s);
    if (!m) return false;
    const dom = m[1] === undefined ? 0 : hexField(m[1], 0xffff);
    const bus = hexField(m[2] as string, 0xff);
    const dev = hexField(m[3] as string, 0x1f);
    const func = m[4] === "*" ? 0 : hexField(m[4] as string, 7);
    if (dom === null || bus === null || dev === null || func === null) return false;
    f.func = func;
    f.dev = dev;
    f.bus = bus;
    f.domain = dom;
    f.vfunc_mask = m[4] === "*" ? 0xffffffff : 1;
    haveBdf = true;
    return true;
  };
  const setVslot = (s: string): boolean => {
    const v = hexField(s, 0xff);
    if (v === null) return false;
    f.vdevfn = v << 3;
    return true;
  };
  let rest = spec;
  const comma = spec.indexOf(",");
  const first = comma < 0 ? spec : spec.slice(0, comma);
  if (!first.includes("=")) {
    const at = first.indexOf("@");
    if (!setBdf(at < 0 ? first : first.slice(0, at))) return bad;
    if (at >= 0 && !setVslot(first.slice(at + 1))) return bad;
    rest = comma < 0 ? "" : spec.slice(comma + 1);
  }
  while (rest.length > 0) {
    const eq = rest.indexOf("=");
    if (eq < 0) return bad;
    const key = rest.slice(0, eq);
    const after = rest.slice(eq + 1);
    const c = after.indexOf(",");
    const value = c < 0 ? after : after.slice(0, c);
    rest = c < 0 ? "" : after.slice(c + 1);
    switch (key) {
      case "bdf":
        if (!setBdf(value)) return bad;
        break;
      case "vslot":
        if (!setVslot(value)) return bad;
        break;
      case "permissive":
      case "msitranslate":
      case "power_mgmt":
      case "seize":
        f[key] = atoi(value) !== 0;
        break;
      case "rdm_policy":
        if (value !== "strict" && value !== "relaxed")
          return { message: `Unknown RDM policy: ${value}`, exitCode: 3 };
        f.rdm_policy = value;
        break;
      case "name":
        f.name = value;
        break;
      default:
        return { message: `Unknown PCI_SPEC_STRING option: ${key}`, exitCode: 6 };
    }
  }
  if (!haveBdf && f.name === undefined) return bad;
  f.rdm_policy ??= "strict";
  const order = [
    "func",
    "dev",
    "bus",
    "domain",
    "vdevfn",
    "vfunc_mask",
    "msitranslate",
    "power_mgmt",
    "permissive",
    "seize",
    "rdm_policy",
    "name",
  ];
  const pairs: [string, JsonValue][] = [];
  for (const k of order) {
    const v = f[k];
    if (v === undefined || v === 0 || v === false) continue;
    pairs.push([k, v]);
  }
  return obj(pairs);
}

/** C's atoi: optional blanks and sign, then decimal digits; anything else stops it. */
function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s);
  return m ? Number.parseInt(m[1] as string, 10) : 0;
}
