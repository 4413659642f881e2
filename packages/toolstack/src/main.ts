/*
 * The `hyperlab` command: a small dispatcher of subcommands. So far it has one,
 * `xenstored`, which runs @hyperlab/xenstore's daemon in the foreground.
 *
 * Invariant: every user mistake ends with a message on stderr that says what to do and a
 * non-zero exit status (2 for usage, 1 for a failure); nothing here throws at the user.
 */
import { runXenstored, XenstoreError } from "@hyperlab/xenstore";
import { ringCommand } from "./ring-command";
import { studyCommand } from "./study-command";

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const processIo: CliIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

const USAGE = `usage: hyperlab <command> [options]

Commands:
  xenstored --socket PATH   run a xenstore daemon on a unix socket (foreground)
  study [options]           list or run comparative MMU studies and write their report
  ring replay SCRIPT|layout step a Xen shared ring through a script; print ring layouts

Options:
  -h, --help                show this help (or: hyperlab <command> --help)
`;

const XENSTORED_USAGE = `usage: hyperlab xenstored --socket PATH

Runs a xenstore daemon (Xen 4.17 semantics) in the foreground, serving the unix socket
PATH. libxenstore clients reach it with XENSTORED_PATH=PATH, e.g.
  XENSTORED_PATH=PATH xenstore-ls /
Logs one line per connection event and error to stderr. SIGTERM or SIGINT closes the
socket, removes its file and exits 0.

Options:
  --socket PATH   the socket to create (required)
  -h, --help      show this help
`;

interface Command {
  summary: string;
  run: (args: string[], io: CliIo) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  xenstored: { summary: "run a xenstore daemon", run: xenstored },
  study: {
    summary: "run comparative MMU studies",
    run: (args, io) => studyCommand(args, io, io === processIo && process.stderr.isTTY === true),
  },
  ring: { summary: "replay Xen shared rings step by step", run: ringCommand },
};

/** Run the CLI with `argv` (without node and the script); resolves to the exit status. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    io.err(USAGE);
    return 2;
  }
  if (cmd === "-h" || cmd === "--help" || cmd === "help") {
    io.out(USAGE);
    return 0;
  }
  const c = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (c === undefined) {
    io.err(
      `hyperlab: unknown command '${cmd}'. Run 'hyperlab --help' to see the commands (${Object.keys(COMMANDS).join(", ")}).\n`,
    );
    return 2;
  }
  return c.run(rest, io);
}

async function xenstored(args: string[], io: CliIo): Promise<number> {
  let socket: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") {
      io.out(XENSTORED_USAGE);
      return 0;
    }
    if (a === "--socket") {
      socket = args[++i];
      if (socket === undefined || socket.startsWith("-")) {
        io.err("hyperlab xenstored: --socket needs a path, e.g. --socket /run/xenstored/socket\n");
        return 2;
      }
      continue;
    }
    if (a.startsWith("--socket=")) {
      socket = a.slice("--socket=".length);
      continue;
    }
    io.err(
      `hyperlab xenstored: unknown option '${a}'. Run 'hyperlab xenstored --help' for the options.\n`,
    );
    return 2;
  }
  if (socket === undefined || socket.length === 0) {
    io.err(
      "hyperlab xenstored: --socket PATH is required, e.g. hyperlab xenstored --socket /run/xenstored/socket\n",
    );
    return 2;
  }
  try {
    const running = await runXenstored({
      socketPath: socket,
      log: (line) => io.err(`xenstored: ${line}\n`),
    });
    await running.stopped;
    return 0;
  } catch (e) {
    if (e instanceof XenstoreError) {
      io.err(`hyperlab xenstored: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
