/*
 * Verbs parse their flags with commander. This module turns commander's outcomes into the
 * CLI's: help on stdout with status 0, and every parse error as one line on stderr that
 * names the flag as the user typed it and says what to do, with status 2.
 *
 * Invariant: a parse never throws at the caller; it returns the options or an exit status.
 */
import { Command, CommanderError, InvalidArgumentError, type Option } from "commander";
import type { CliIo } from "./io";

/** A commander program for `hyperlab VERB` whose output goes to `io` and never exits. */
export function verbProgram(verb: string, description: string, io: CliIo): Command {
  return new Command(`hyperlab ${verb}`)
    .description(description)
    .helpOption("-h, --help", "show this help")
    .allowExcessArguments(false)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: () => {},
    });
}

/** For an argParser: a value that looks like a flag is a missing value. */
export function flagValue(s: string): string {
  if (s.startsWith("-") && s.length > 1) {
    throw new InvalidArgumentError(`needs a value; got the flag '${s}'`);
  }
  return s;
}

/** The token the user typed for `opt` (its short form, long form or --long=value). */
function typedFlag(opt: Option | undefined, args: readonly string[], value?: string): string {
  if (opt === undefined) return "an option";
  const names = [opt.short, opt.long].filter((x): x is string => x !== undefined);
  let found: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    for (const n of names) {
      const glued = a.startsWith(`${n}=`) && n.startsWith("--");
      if (a === n && (value === undefined || args[i + 1] === value)) found = n;
      else if (glued && (value === undefined || a === `${n}=${value}`)) found = n;
      else if (n.length === 2 && a.startsWith(n) && a.length > 2 && !n.startsWith("--")) {
        if (value === undefined || a.slice(2) === value) found = n;
      }
    }
  }
  return found ?? opt.long ?? opt.short ?? "an option";
}

function optionIn(cmd: Command, message: string): Option | undefined {
  const m = /option '([^']+)'/.exec(message);
  return m === null ? undefined : cmd.options.find((o) => o.flags === m[1]);
}

/**
 * Parses `args` with `cmd`: resolves to its options, or to an exit status after writing help
 * (0) or an error (2). `verb` names the command in messages.
 */
export function parseVerb<T>(
  cmd: Command,
  args: readonly string[],
  io: CliIo,
  verb: string,
  /** What to say when a flag's value is missing, by long flag (default: "FLAG needs a value"). */
  missing: Record<string, string> = {},
): { ok: true; opts: T; operands: string[] } | { ok: false; status: number } {
  const hint = `Run 'hyperlab ${verb} --help' for the options.`;
  try {
    cmd.parse([...args], { from: "user" });
    return { ok: true, opts: cmd.opts() as T, operands: [...cmd.args] };
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.code === "commander.helpDisplayed" || e.code === "commander.help") {
      return { ok: false, status: 0 };
    }
    const msg = e.message.replace(/^error: /, "");
    let line: string;
    switch (e.code) {
      case "commander.unknownOption": {
        const m = /unknown option '([^']*)'/.exec(msg);
        const did = /\(Did you mean (.*)\?\)/.exec(msg);
        line = `unknown option '${m?.[1] ?? "?"}'${did === null ? "" : ` (did you mean ${did[1]}?)`}. ${hint}`;
        break;
      }
      case "commander.optionMissingArgument": {
        const opt = optionIn(cmd, msg);
        const flag = typedFlag(opt, args);
        const what = opt?.long === undefined ? undefined : missing[opt.long];
        line = `${flag} needs ${what ?? "a value"}. ${hint}`;
        break;
      }
      case "commander.invalidArgument": {
        const m = /argument '([\s\S]*)' is invalid\. ([\s\S]*)$/.exec(msg);
        const flag = typedFlag(optionIn(cmd, msg), args, m?.[1]);
        line = `${flag} ${m?.[2] ?? msg}`;
        break;
      }
      case "commander.excessArguments": {
        const extra = cmd.args.length > 0 ? cmd.args : args.filter((a) => !a.startsWith("-"));
        line = `unexpected argument '${extra.at(-1) ?? ""}': this command takes options only. ${hint}`;
        break;
      }
      default:
        line = `${msg} ${hint}`;
    }
    io.err(`hyperlab ${verb}: ${line}\n`);
    return { ok: false, status: 2 };
  }
}
