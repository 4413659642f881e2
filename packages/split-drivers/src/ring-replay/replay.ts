/*
 * `hyperlab ring replay`: a script of ring and console steps, each run through this
 * package's ring code (ring.ts, console/xencons.ts) and printed with every index after it,
 * as /work/shared/reference/ring-replay.md specifies.
 *
 * Invariant: a command either succeeds and prints its result with the state after it, or
 * fails, prints `LINE OP ERROR MESSAGE` and changes nothing (every argument is checked before
 * the first write). The script is bytes: a string is taken as UTF-8, every byte of DATA is
 * one console byte, and the output is bytes too. Numbers are C's strtoull (strtoll when
 * negative) with base 0, stored truncated to the field's width. A script cannot make the
 * interpreter throw.
 */
import type { RingName } from "@hyperlab/abi";
import { XenconsInterface } from "../console/xencons";
import { BackRing, FrontRing, RING_ENTRY_BYTES, SharedRing } from "../ring";
import {
  BLKIF_REQUEST_HEAD,
  BLKIF_SEG_FIELDS,
  type ReplayField,
  type ReplayView,
  RING_VIEWS,
} from "./fields";

/** What a replay printed and how it ended (0: every command succeeded, 1: some failed). */
export interface ReplayResult {
  /** The output as bytes, exactly what the CLI writes. */
  readonly outputBytes: Uint8Array;
  /** The output decoded as UTF-8. */
  readonly output: string;
  readonly status: 0 | 1;
}

/** Longest line (bytes, without its newline) and most tokens a script line may have. */
export const REPLAY_MAX_LINE = 8191;
export const REPLAY_MAX_TOKENS = 64;

const USAGE_RING = "usage: ring blkif|netif_tx|netif_rx [order=0..4] [start=N]";
const NO_RING = "no ring: start the script with 'ring TYPE'";
const U64 = (1n << 64n) - 1n;

class CmdError {
  constructor(readonly message: string) {}
}

/** C strtoull/strtoll with base 0 over a whole token, as a u64 two's complement; undefined if bad. */
export function parseCNumber(tok: string): bigint | undefined {
  let i = 0;
  let neg = false;
  const c0 = tok.charCodeAt(0);
  if (c0 === 0x2b || c0 === 0x2d) {
    neg = c0 === 0x2d;
    i = 1;
  }
  let base = 10;
  if (tok.charCodeAt(i) === 0x30) {
    const x = tok.charCodeAt(i + 1);
    if ((x === 0x78 || x === 0x58) && /^[0-9a-fA-F]$/.test(tok.charAt(i + 2))) {
      base = 16;
      i += 2;
    } else {
      base = 8;
    }
  }
  const digits = tok.slice(i);
  if (digits.length === 0) return undefined;
  const re = base === 16 ? /^[0-9a-fA-F]+$/ : base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!re.test(digits)) return undefined;
  const mag = BigInt(base === 16 ? `0x${digits}` : base === 8 ? `0o${digits}` : digits);
  if (neg) {
    if (mag > 1n << 63n) return undefined; // strtoll: ERANGE below LLONG_MIN
    return -mag & U64;
  }
  if (mag > U64) return undefined; // strtoull: ERANGE above ULLONG_MAX
  return mag;
}

function num(tok: string): bigint {
  const v = parseCNumber(tok);
  if (v === undefined) throw new CmdError(`bad number '${tok}'`);
  return v;
}

function u32(tok: string): number {
  return Number(num(tok) & 0xffffffffn);
}

/** Decode DATA's escapes into bytes (each char of `tok` is one byte). */
export function unescapeData(tok: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < tok.length; i++) {
    const c = tok.charCodeAt(i);
    if (c !== 0x5c || i + 1 >= tok.length) {
      out.push(c);
      continue;
    }
    const e = tok.charAt(++i);
    if (e === "n") out.push(10);
    else if (e === "t") out.push(9);
    else if (e === "s") out.push(32);
    else if (e === "x" && isHex(tok.charAt(i + 1))) {
      let v = Number.parseInt(tok.charAt(++i), 16);
      if (isHex(tok.charAt(i + 1))) v = v * 16 + Number.parseInt(tok.charAt(++i), 16);
      out.push(v);
    } else out.push(e.charCodeAt(0));
  }
  return Uint8Array.from(out);
}

function isHex(ch: string): boolean {
  return ch.length === 1 && /[0-9a-fA-F]/.test(ch);
}

/** Escape console bytes for output: printable ASCII as is, `\\`, `\s`, `\n`, else `\xHH`. */
export function escapeData(bytes: Uint8Array, n: number): string {
  if (n === 0) return "-";
  let s = "";
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === 0x5c) s += "\\\\";
    else if (b === 0x20) s += "\\s";
    else if (b === 0x0a) s += "\\n";
    else if (b >= 0x21 && b <= 0x7e) s += String.fromCharCode(b);
    else s += `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return s;
}

interface Ring {
  name: RingName;
  sring: SharedRing;
  front: FrontRing;
  back: BackRing;
}

const RING_OPS = new Set([
  "f.req",
  "f.push",
  "f.push_notify",
  "f.free",
  "f.has_rsp",
  "f.final_check",
  "f.get_rsp",
  "b.has_req",
  "b.final_check",
  "b.prod_overflow",
  "b.get_req",
  "b.rsp",
  "b.push",
  "b.push_notify",
  "s.set",
  "hexdump",
  "state",
]);

function readField(dv: DataView, base: number, fl: ReplayField): string {
  const o = base + fl.offset;
  switch (fl.size) {
    case 1:
      return String(fl.signed ? dv.getInt8(o) : dv.getUint8(o));
    case 2:
      return String(fl.signed ? dv.getInt16(o, true) : dv.getUint16(o, true));
    case 4:
      return String(fl.signed ? dv.getInt32(o, true) : dv.getUint32(o, true));
    default:
      return String(fl.signed ? dv.getBigInt64(o, true) : dv.getBigUint64(o, true));
  }
}

function writeField(dv: DataView, base: number, fl: ReplayField, v: bigint): void {
  const o = base + fl.offset;
  switch (fl.size) {
    case 1:
      dv.setUint8(o, Number(v & 0xffn));
      break;
    case 2:
      dv.setUint16(o, Number(v & 0xffffn), true);
      break;
    case 4:
      dv.setUint32(o, Number(v & 0xffffffffn), true);
      break;
    default:
      dv.setBigUint64(o, v & U64, true);
  }
}

/** Parse `k=v` tokens against a view, all before any write. */
function parseAssignments(v: ReplayView, toks: readonly string[]): [ReplayField, bigint][] {
  const out: [ReplayField, bigint][] = [];
  for (const t of toks) {
    const eq = t.indexOf("=");
    if (eq < 0) throw new CmdError(`expected name=value, got '${t}'`);
    const name = t.slice(0, eq);
    const fl = v.byName.get(name);
    if (fl === undefined) throw new CmdError(`unknown field '${name}'`);
    out.push([fl, num(t.slice(eq + 1))]);
  }
  return out;
}

function printFields(dv: DataView, base: number, fields: readonly ReplayField[]): string {
  let s = "";
  for (const fl of fields) s += ` ${fl.name}=${readField(dv, base, fl)}`;
  return s;
}

/** The interpreter's state: at most one ring and one console page. */
class Replay {
  ring: Ring | undefined;
  readonly cons = XenconsInterface.create();
  private readonly scratch = new Uint8Array(112);
  private readonly scratchDv = new DataView(this.scratch.buffer);

  ringState(): string {
    const r = this.ring!;
    const s = r.sring;
    return (
      ` | req_prod=${s.reqProd} req_event=${s.reqEvent} rsp_prod=${s.rspProd} rsp_event=${s.rspEvent}` +
      ` | f.req_prod_pvt=${r.front.reqProdPvt} f.rsp_cons=${r.front.rspCons}` +
      ` | b.rsp_prod_pvt=${r.back.rspProdPvt} b.req_cons=${r.back.reqCons}`
    );
  }

  consState(): string {
    const c = this.cons;
    return ` | in_cons=${c.inCons} in_prod=${c.inProd} out_cons=${c.outCons} out_prod=${c.outProd}`;
  }

  /** Run one command; returns the text after `LINE OP` (result and state, and hexdump rows). */
  run(op: string, args: readonly string[]): string {
    if (op === "ring") return this.ringCmd(args);
    if (op.startsWith("cons.")) return this.consCmd(op, args);
    if (!RING_OPS.has(op)) throw new CmdError("unknown op");
    const r = this.ring;
    if (r === undefined) throw new CmdError(NO_RING);
    const res = this.ringOp(r, op, args);
    return res + this.ringState() + (op === "hexdump" ? this.hexdumpRows(r, args) : "");
  }

  private ringCmd(args: readonly string[]): string {
    const name = args[0];
    if (name !== "blkif" && name !== "netif_tx" && name !== "netif_rx")
      throw new CmdError(USAGE_RING);
    let order = 0;
    let start: number | undefined;
    for (const a of args.slice(1)) {
      const ord = a.startsWith("order=") ? parseCNumber(a.slice(6)) : undefined;
      const st = a.startsWith("start=") ? parseCNumber(a.slice(6)) : undefined;
      if (ord !== undefined && ord <= 4n) order = Number(ord);
      else if (st !== undefined) start = Number(st & 0xffffffffn);
      else throw new CmdError(USAGE_RING);
    }
    const sring = SharedRing.create(name, order);
    if (start === undefined) {
      sring.init();
      start = 0;
    } else {
      sring.reqProd = start;
      sring.rspProd = start;
      sring.reqEvent = (start + 1) >>> 0;
      sring.rspEvent = (start + 1) >>> 0;
    }
    this.ring = {
      name,
      sring,
      front: new FrontRing(sring, start),
      back: new BackRing(sring, start),
    };
    return ` size=${sring.size} entry=${RING_ENTRY_BYTES[name]}${this.ringState()}`;
  }

  private ringOp(r: Ring, op: string, args: readonly string[]): string {
    const { sring, front, back } = r;
    const noArgs = (): void => {
      if (args.length !== 0) throw new CmdError("bad value");
    };
    switch (op) {
      case "f.req": {
        const [v, toks] = this.leadingView(RING_VIEWS[r.name].req, args);
        const sets = parseAssignments(v, toks);
        const freeBefore = front.freeRequests();
        const off = front.nextRequestOffset();
        sring.bytes.fill(0, off, off + sring.entryBytes);
        for (const [fl, val] of sets) writeField(sring.view, off, fl, val);
        const idx = front.produceRequest();
        return ` idx=${idx} slot=${sring.slot(idx)} free_before=${freeBefore}`;
      }
      case "f.push":
        noArgs();
        front.pushRequests();
        return "";
      case "f.push_notify":
        noArgs();
        return ` notify=${front.pushRequestsAndCheckNotify() ? 1 : 0}`;
      case "f.free":
        noArgs();
        return ` free=${front.freeRequests()} full=${front.full() ? 1 : 0}`;
      case "f.has_rsp":
        noArgs();
        return ` unconsumed=${front.unconsumedResponses()}`;
      case "f.final_check":
        noArgs();
        return ` work=${front.finalCheckForResponses()}`;
      case "f.get_rsp": {
        const v = this.pickView(RING_VIEWS[r.name].rsp, args);
        const buf = this.scratch.subarray(0, sring.entryBytes);
        const idx = front.consumeResponse(buf);
        const overflow = front.responseProdOverflow(sring.rspProd);
        return ` idx=${idx}${printFields(this.scratchDv, 0, v.fields)} rsp_prod_overflow=${overflow ? 1 : 0}`;
      }
      case "b.has_req":
        noArgs();
        return ` unconsumed=${back.unconsumedRequests()}`;
      case "b.final_check":
        noArgs();
        return ` work=${back.finalCheckForRequests()}`;
      case "b.prod_overflow":
        noArgs();
        return ` overflow=${back.requestProdOverflow(sring.reqProd) ? 1 : 0}`;
      case "b.get_req": {
        const views = RING_VIEWS[r.name].req;
        let v = this.pickView(views, args);
        const consOverflow = back.requestConsOverflow(back.reqCons);
        const buf = this.scratch.subarray(0, sring.entryBytes);
        const idx = back.consumeRequest(buf);
        let fields = v.fields;
        if (r.name === "blkif" && args.length === 0) {
          const opn = buf[0];
          if (opn === 5) v = views.discard!;
          else if (opn === 6) v = views.indirect!;
          fields = v.fields;
          if (opn !== 5 && opn !== 6) {
            const nseg = Math.min(buf[1]!, 11);
            fields = fields.slice(0, BLKIF_REQUEST_HEAD + nseg * BLKIF_SEG_FIELDS);
          }
        }
        return ` idx=${idx} cons_overflow=${consOverflow ? 1 : 0}${printFields(this.scratchDv, 0, fields)}`;
      }
      case "b.rsp": {
        const [v, toks] = this.leadingView(RING_VIEWS[r.name].rsp, args);
        const sets = parseAssignments(v, toks);
        const off = back.nextResponseOffset(v.bytes);
        for (const [fl, val] of sets) writeField(sring.view, off, fl, val);
        const idx = back.produceResponse();
        return ` idx=${idx} slot=${sring.slot(idx)}`;
      }
      case "b.push":
        noArgs();
        back.pushResponses();
        return "";
      case "b.push_notify":
        noArgs();
        return ` notify=${back.pushResponsesAndCheckNotify() ? 1 : 0}`;
      case "s.set": {
        if (args.length !== 2) throw new CmdError("bad value");
        const which = args[0]!;
        if (
          which !== "req_prod" &&
          which !== "req_event" &&
          which !== "rsp_prod" &&
          which !== "rsp_event"
        ) {
          throw new CmdError(`unknown shared index '${which}'`);
        }
        const v = u32(args[1]!);
        if (which === "req_prod") sring.reqProd = v;
        else if (which === "req_event") sring.reqEvent = v;
        else if (which === "rsp_prod") sring.rspProd = v;
        else sring.rspEvent = v;
        return "";
      }
      case "hexdump":
        this.hexRange(r, args);
        return "";
      default: // state
        noArgs();
        return "";
    }
  }

  /** An optional view name before `k=v` fields (`f.req`, `b.rsp`): the view and the rest. */
  private leadingView(
    views: Readonly<Record<string, ReplayView>>,
    args: readonly string[],
  ): [ReplayView, readonly string[]] {
    const first = args[0];
    if (first !== undefined && first !== "" && !first.includes("=") && Object.hasOwn(views, first))
      return [views[first]!, args.slice(1)];
    return [views[""]!, args];
  }

  private pickView(
    views: Readonly<Record<string, ReplayView>>,
    args: readonly string[],
  ): ReplayView {
    if (args.length === 0) return views[""]!;
    const name = args[0]!;
    if (args.length > 1 || name === "" || !Object.hasOwn(views, name))
      throw new CmdError("bad value");
    return views[name]!;
  }

  private hexRange(r: Ring, args: readonly string[]): [number, number] {
    if (args.length > 2) throw new CmdError("bad value");
    const len = BigInt(r.sring.bytes.length);
    const from = args[0] === undefined ? 0n : num(args[0]);
    let to = args[1] === undefined ? len : num(args[1]);
    if (to > len) to = len;
    if (from > to) throw new CmdError("bad value");
    return [Number(from), Number(to)];
  }

  private hexdumpRows(r: Ring, args: readonly string[]): string {
    const [from, to] = this.hexRange(r, args);
    const b = r.sring.bytes;
    let s = "";
    for (let row = from & ~15; row < to; row += 16) {
      let any = false;
      for (let i = 0; i < 16; i++) if (b[row + i] !== 0) any = true;
      if (!any) continue;
      s += `\n  ${row.toString(16).padStart(6, "0")}:`;
      for (let i = 0; i < 16; i++) s += ` ${b[row + i]!.toString(16).padStart(2, "0")}`;
    }
    return s;
  }

  private consCmd(op: string, args: readonly string[]): string {
    const c = this.cons;
    switch (op) {
      case "cons.init":
        if (args.length !== 0) throw new CmdError("bad value");
        c.clear();
        return this.consState();
      case "cons.set": {
        if (args.length !== 2) throw new CmdError("bad value");
        const which = args[0]!;
        if (
          which !== "in_cons" &&
          which !== "in_prod" &&
          which !== "out_cons" &&
          which !== "out_prod"
        ) {
          throw new CmdError(`unknown index '${which}'`);
        }
        const v = u32(args[1]!);
        if (which === "in_cons") c.inCons = v;
        else if (which === "in_prod") c.inProd = v;
        else if (which === "out_cons") c.outCons = v;
        else c.outProd = v;
        return this.consState();
      }
      case "cons.write_out":
      case "cons.write_in": {
        if (args.length !== 1) throw new CmdError("bad value");
        const data = unescapeData(args[0]!);
        const n = op === "cons.write_out" ? c.writeOut(data) : c.writeIn(data);
        return ` written=${n} of=${data.length}${this.consState()}`;
      }
      case "cons.read_out":
      case "cons.read_in": {
        if (args.length > 1) throw new CmdError("bad value");
        const lim = args[0] === undefined ? undefined : num(args[0]);
        const out = op === "cons.read_out";
        const pending = out ? c.outPending() : c.inPending();
        const max = lim === undefined || lim > BigInt(pending) ? pending : Number(lim);
        const dst = new Uint8Array(max);
        const n = out ? c.readOut(dst, 0, max) : c.readIn(dst, 0, max);
        return ` read=${n} data=${escapeData(dst, n)}${this.consState()}`;
      }
      default:
        throw new CmdError("unknown console op");
    }
  }
}

function latin1(bytes: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, Math.min(to, i + 4096)));
  }
  return s;
}

/**
 * Run a replay script (ring-replay.md) and return what it prints. A string is encoded as
 * UTF-8 first; pass the file's bytes to replay exactly what C would read.
 */
export function ringReplay(script: string | Uint8Array): ReplayResult {
  const bytes = typeof script === "string" ? new TextEncoder().encode(script) : script;
  const st = new Replay();
  const out: string[] = [];
  let status: 0 | 1 = 0;
  let lineNo = 0;
  let pos = 0;
  while (pos < bytes.length) {
    let end = bytes.indexOf(0x0a, pos);
    if (end < 0) end = bytes.length;
    lineNo++;
    const raw = latin1(bytes, pos, end);
    pos = end + 1;
    const hash = raw.indexOf("#");
    const text = hash < 0 ? raw : raw.slice(0, hash);
    const toks = text.split(/[ \t]+/).filter((t) => t.length > 0);
    if (toks.length === 0) continue;
    const op = toks[0]!;
    try {
      if (raw.length > REPLAY_MAX_LINE || toks.length > REPLAY_MAX_TOKENS)
        throw new CmdError("bad value");
      out.push(`${lineNo} ${op}${st.run(op, toks.slice(1))}\n`);
    } catch (e) {
      if (!(e instanceof CmdError)) throw e;
      status = 1;
      out.push(`${lineNo} ${op} ERROR ${e.message}\n`);
    }
  }
  const text = out.join("");
  const outputBytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) outputBytes[i] = text.charCodeAt(i);
  return { outputBytes, output: new TextDecoder().decode(outputBytes), status };
}
