/*
 * What xl's verbs share: getopt_long's behaviour on top of commander (the "h" option, "option
 * `x' not supported." and exit 2, the required-argument count), find_domain's name-or-number
 * lookup, and reaching the host.
 *
 * Invariant: nothing here throws at the user: each outcome is xl's text and xl's exit status.
 */
import { Command, CommanderError } from "commander";
import type { CliIo } from "../../cli/io";
import { LIBXL_ERROR, type XlHost } from "../types";
import { XL_HELP } from "./help";

/** One option of a verb, as in xl's `struct option` table. */
export interface XlOpt {
  short: string;
  long: string;
  /** Takes a value (getopt's "x:"). */
  arg: boolean;
}

export type XlParse =
  | { ok: true; opts: Record<string, string | true | undefined>; operands: string[] }
  | { ok: false; status: number };

/** The connector the verbs use when the CliIo has none (the host daemon's client sets it). */
let defaultConnector: (() => Promise<XlHost>) | undefined;

/** Sets how xl's verbs reach the running host when the CliIo names none. */
export function setXlHostConnector(connect: (() => Promise<XlHost>) | undefined): void {
  defaultConnector = connect;
}

/** The host for `verb`, or an exit status after saying why there is none. */
export async function connectHost(verb: string, io: CliIo): Promise<XlHost | number> {
  const connect = io.connectHost ?? defaultConnector;
  if (connect === undefined) {
    io.err(`hyperlab ${verb}: no host is running here; start one with 'hyperlab up'.\n`);
    return 1;
  }
  try {
    return await connect();
  } catch (e) {
    io.err(
      `hyperlab ${verb}: cannot reach the host (${e instanceof Error ? e.message : String(e)}); is 'hyperlab up' running?\n`,
    );
    return 1;
  }
}

/** xl's help() for `verb`, on stdout. */
export function help(verb: string, io: CliIo): void {
  io.out(XL_HELP[verb] ?? `command "${verb}" not implemented\n`);
}

/** getopt_long accepts any unambiguous prefix of a long option; commander does not. */
function expandLong(a: string, opts: readonly XlOpt[]): string {
  if (!a.startsWith("--") || a === "--") return a;
  const eq = a.indexOf("=");
  const name = a.slice(2, eq < 0 ? undefined : eq);
  const rest = eq < 0 ? "" : a.slice(eq);
  const longs = [...opts.map((o) => o.long), "help"];
  if (longs.includes(name)) return a;
  const hits = longs.filter((l) => l.startsWith(name));
  return hits.length === 1 && name !== "" ? `--${hits[0]}${rest}` : a;
}

/**
 * Parses `args` as xl's SWITCH_FOREACH_OPT(opt, SHORTS, opts, verb, required) does: -h and
 * --help print xl's help and exit 0; an unknown option or a missing value prints
 * "option `x' not supported." and exits 2; fewer than `required` operands print
 * "'xl VERB' requires at least N argument(s)." and the help, and exit 2.
 */
export function xlGetopt(
  verb: string,
  opts: readonly XlOpt[],
  args: readonly string[],
  io: CliIo,
  required: number,
): XlParse {
  const cmd = new Command(verb)
    .exitOverride()
    .helpOption(false)
    .allowExcessArguments(true)
    .argument("[operands...]")
    .option("-h, --help")
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
  for (const o of opts) cmd.option(`-${o.short}, --${o.long}${o.arg ? " <value>" : ""}`);
  // xl's main() parses its global flags with getopt("+...") and resets optind to 1, not 0,
  // so glibc keeps that "+": a verb's options end at its first operand (or at "--").
  const argv: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      i++;
      break;
    }
    if (a.length < 2 || a[0] !== "-") break;
    if (a[1] === "-") {
      const long = expandLong(a, opts);
      argv.push(long);
      const o = opts.find((x) => `--${x.long}` === long);
      if (o?.arg && i + 1 < args.length) argv.push(args[++i]);
      continue;
    }
    argv.push(a);
    // A short-option cluster: getopt takes "-0" or "-5" as options too (commander would take
    // them as numbers), so check each letter here as getopt does.
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      const o = opts.find((x) => x.short === c);
      if (c === "h") {
        help(verb, io);
        return { ok: false, status: 0 };
      }
      if (o === undefined) {
        io.err(`option \`${c}' not supported.\n`);
        return { ok: false, status: 2 };
      }
      if (o.arg) {
        if (j === a.length - 1) {
          if (i + 1 >= args.length) {
            io.err(`option \`${c}' not supported.\n`);
            return { ok: false, status: 2 };
          }
          argv.push(args[++i]); // the value, whatever it looks like
        }
        break;
      }
    }
  }
  const rest = args.slice(i);
  try {
    cmd.parse(argv, { from: "user" });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    let letter = "\0";
    if (e.code === "commander.unknownOption") {
      const m = /unknown option '([^']*)'/.exec(e.message);
      const bad = m?.[1] ?? "";
      // A short cluster names its first unknown letter; a long option has no letter (xl
      // prints optopt, 0, as a NUL byte).
      if (!bad.startsWith("--")) letter = bad.slice(1, 2);
      if (letter === "h") {
        help(verb, io);
        return { ok: false, status: 0 };
      }
    } else if (e.code === "commander.optionMissingArgument") {
      const m = /option '-(\w)/.exec(e.message);
      letter = m?.[1] ?? "\0";
    } else throw e;
    io.err(`option \`${letter}' not supported.\n`);
    return { ok: false, status: 2 };
  }
  const o = cmd.opts() as Record<string, string | true | undefined>;
  if (o.help === true) {
    help(verb, io);
    return { ok: false, status: 0 };
  }
  const operands = [...cmd.args, ...rest];
  if (operands.length < required) {
    io.err(`'xl ${verb}' requires at least ${required} argument${required > 1 ? "s" : ""}.\n\n`);
    help(verb, io);
    return { ok: false, status: 2 };
  }
  const named: Record<string, string | true | undefined> = {};
  for (const x of opts) named[x.long] = o[camel(x.long)];
  return { ok: true, opts: named, operands };
}

/** commander's attribute name for a long option. */
function camel(long: string): string {
  return long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** C's strtoul(s, NULL, 10) of an all-digit string, cast to uint32_t. */
function digitsToDomid(s: string): number {
  if (s === "") return 0;
  const v = BigInt(s);
  if (v > 0xffff_ffff_ffff_ffffn) return 0xffff_ffff; // ULONG_MAX, truncated
  return Number(BigInt.asUintN(32, v));
}

/**
 * libxl_domain_qualifier_to_domid: all digits (the empty string too) is a domid, anything
 * else a name. Resolves to the domid, or to a LIBXL_ERROR value (INVAL for an unknown name).
 */
export async function qualifierToDomid(host: XlHost, q: string): Promise<number> {
  if (/^[0-9]*$/.test(q)) return digitsToDomid(q);
  const id = await host.domid(q);
  return id === undefined ? LIBXL_ERROR.INVAL : id;
}

/**
 * xl's find_domain: the domid, or (after "X is an invalid domain identifier (rc=N)" on
 * stderr) undefined, upon which the verb exits 1.
 */
export async function findDomain(host: XlHost, q: string, io: CliIo): Promise<number | undefined> {
  const id = await qualifierToDomid(host, q);
  if (id < 0) {
    io.err(`${q} is an invalid domain identifier (rc=${id})\n`);
    return undefined;
  }
  return id;
}

/** libxl_domid_to_name, using the name a listing already carries. */
export async function nameOf(
  host: XlHost,
  domid: number,
  known?: string,
): Promise<string | undefined> {
  return known ?? (await host.domname(domid));
}

/**
 * C's strtol(s, &end, 10): leading white space, a sign, decimal digits; clamped to the
 * 64-bit long range. `consumed` is false when no digit was read.
 */
export function strtol(s: string): { value: number; consumed: boolean } {
  const m = /^[\t\n\v\f\r ]*([+-]?)([0-9]+)/.exec(s);
  if (m === null) return { value: 0, consumed: false };
  let v = BigInt(m[2]);
  if (m[1] === "-") v = -v;
  const max = 0x7fff_ffff_ffff_ffffn;
  if (v > max) v = max;
  if (v < -max - 1n) v = -max - 1n;
  return { value: Number(BigInt.asIntN(32, v)), consumed: true };
}
