/*
 * The `hyperlab` command: a table of verbs, one module each (study-command.ts,
 * xenstored-command.ts, ...), each parsing its own flags with commander. This module only
 * dispatches; no verb imports it, so there is no import circle.
 *
 * Invariant: every user mistake ends with a message on stderr that says what to do and a
 * non-zero exit status (2 for usage, 1 for a failure); nothing here throws at the user.
 */
import { type CliIo, processIo, type Verb } from "./cli/io";
import { VERSION } from "./cli/version";
import { createCommand } from "./create-command";
import { LIFECYCLE_COMMANDS } from "./lifecycle-commands";
import { ringCommand } from "./ring-command";
import { studyCommand } from "./study-command";
import { workerCommand } from "./worker-command";
import { xenstoredCommand } from "./xenstored-command";
import { XL_READ_COMMANDS } from "./xl-commands";

export type { CliIo, Verb } from "./cli/io";

/** The verbs, in the order the help lists them. */
export const COMMANDS: Record<string, Verb> = {
  create: {
    summary:
      "create [-n] FILE [K=V...] create a domain from an xl.cfg file; with -N or -n print libxl's JSON (xl's dry run)",
    run: (args, io) => createCommand(args, io),
  },
  xenstored: {
    summary: "xenstored --socket PATH   run a xenstore daemon on a unix socket (foreground)",
    run: xenstoredCommand,
  },
  study: {
    summary: "study [options]           list or run comparative MMU studies and write their report",
    run: studyCommand,
  },
  worker: {
    summary: "worker URL                run study cells from the queue of 'study --queue URL'",
    run: (args, io) => workerCommand(args, io),
  },
  ring: {
    summary:
      "ring replay SCRIPT|layout step a Xen shared ring through a script; print ring layouts",
    run: ringCommand,
  },
  ...XL_READ_COMMANDS,
  ...LIFECYCLE_COMMANDS,
};

function usage(): string {
  const verbs = Object.values(COMMANDS)
    .map((c) => `  ${c.summary}`)
    .join("\n");
  return `usage: hyperlab <command> [options]

Commands:
${verbs}
  help [COMMAND]            show this help, or a command's

Options:
  -h, --help                show this help (or: hyperlab <command> --help)
  -V, --version             print the version
  -N                        dry run, as xl's -N: e.g. hyperlab -N create guest.cfg
`;
}

function verbOf(name: string): Verb | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

function unknown(cmd: string, io: CliIo): number {
  io.err(
    `hyperlab: unknown command '${cmd}'. Run 'hyperlab --help' to see the commands (${Object.keys(COMMANDS).join(", ")}).\n`,
  );
  return 2;
}

/** Run the CLI with `argv` (without node and the script); resolves to the exit status. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    io.err(usage());
    return 2;
  }
  if (cmd === "-h" || cmd === "--help") {
    io.out(usage());
    return 0;
  }
  if (cmd === "-V" || cmd === "--version") {
    io.out(`hyperlab ${VERSION}\n`);
    return 0;
  }
  if (cmd === "-N") {
    // xl's global dry-run flag; of the verbs here only create has a dry run.
    if (rest[0] === "create") return createCommand(rest.slice(1), io, true);
    io.err("hyperlab: -N is a dry run of create: hyperlab -N create FILE\n");
    return 2;
  }
  if (cmd === "help") {
    if (rest.length === 0) {
      io.out(usage());
      return 0;
    }
    const v = verbOf(rest[0]);
    if (v === undefined) return unknown(rest[0], io);
    if (rest.length > 1) {
      io.err("hyperlab help: takes one command, e.g. hyperlab help study\n");
      return 2;
    }
    return v.run(["--help"], io);
  }
  if (cmd.startsWith("-")) {
    io.err(`hyperlab: unknown option '${cmd}'. Run 'hyperlab --help' for the options.\n`);
    return 2;
  }
  const v = verbOf(cmd);
  if (v === undefined) return unknown(cmd, io);
  return v.run(rest, io);
}
