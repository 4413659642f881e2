/*
 * `hyperlab xenstored`: runs @hyperlab/xenstore's daemon in the foreground on a unix socket.
 *
 * Invariant: every user mistake ends with a message on stderr that says what to do and a
 * non-zero exit status (2 for usage, 1 for a failure); nothing here throws at the user.
 */
import { runXenstored, XenstoreError } from "@hyperlab/xenstore";
import type { CliIo } from "./cli/io";
import { flagValue, parseVerb, verbProgram } from "./cli/parse";

const DESCRIPTION = `Runs a xenstore daemon (Xen 4.17 semantics) in the foreground, serving the unix socket PATH. libxenstore clients reach it with XENSTORED_PATH=PATH, e.g.
  XENSTORED_PATH=PATH xenstore-ls /
Logs one line per connection event and error to stderr. SIGTERM or SIGINT closes the socket, removes its file and exits 0.`;

/** Runs `hyperlab xenstored ARGS`; resolves to the exit status. */
export async function xenstoredCommand(args: readonly string[], io: CliIo): Promise<number> {
  const cmd = verbProgram("xenstored", DESCRIPTION, io)
    .option("--socket <PATH>", "the socket to create (required)", flagValue)
    .option(
      "--domains <LIST>",
      "the domids that exist, e.g. 0,1-8 (C xenstored learns them from Xen); default: every domid",
      flagValue,
    );
  const p = parseVerb<{ socket?: string; domains?: string }>(cmd, args, io, "xenstored", {
    "--socket": "a path, e.g. --socket /run/xenstored/socket",
    "--domains": "a list of domids, e.g. --domains 0,1-8",
  });
  if (!p.ok) return p.status;
  const socket = p.opts.socket;
  if (socket === undefined || socket.length === 0) {
    io.err(
      "hyperlab xenstored: --socket PATH is required, e.g. hyperlab xenstored --socket /run/xenstored/socket\n",
    );
    return 2;
  }
  try {
    const running = await runXenstored({
      socketPath: socket,
      domains: p.opts.domains,
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
