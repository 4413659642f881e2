/*
 * `hyperlab ring replay SCRIPT` and `hyperlab ring layout`: the CLI face of
 * @hyperlab/split-drivers' ring replay (see /work/shared/reference/ring-replay.md). This file
 * only reads the script and prints; the interpreter lives in split-drivers.
 *
 * Invariant: every user mistake ends with a message on stderr that says what to do and a
 * non-zero exit status (2 for usage, 1 for an unreadable script or a failed command);
 * nothing here throws at the user.
 */
import { readFileSync } from "node:fs";
import { ringLayout, ringReplay } from "@hyperlab/split-drivers";
import type { CliIo } from "./cli/io";

export const RING_USAGE = `usage: hyperlab ring replay SCRIPT | hyperlab ring layout

Steps one Xen shared ring (io/ring.h) or console page (io/console.h) through a script and
prints every index after every step; the format and commands are those of ring-replay.md.
Exit status 1 when a command of the script failed (its line says ERROR).

  replay SCRIPT   run the script in the file SCRIPT
  layout          print sizes, offsets and constants of the ring protocols as NAME VALUE
  -h, --help      show this help
`;

/** Run `hyperlab ring ARGS`; resolves to the exit status. */
export async function ringCommand(args: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "-h" || sub === "--help" || sub === "help") {
    io.out(RING_USAGE);
    return 0;
  }
  if (sub === "layout" && rest.length === 0) {
    io.out(ringLayout());
    return 0;
  }
  if (sub === "replay" && rest.length === 1) {
    const path = rest[0]!;
    let script: Uint8Array;
    try {
      script = readFileSync(path);
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? String(e);
      io.err(
        `hyperlab ring: cannot read the script '${path}' (${why}); pass the path of a replay script file\n`,
      );
      return 1;
    }
    const r = ringReplay(script);
    io.out(r.output);
    return r.status;
  }
  io.err(
    sub === undefined
      ? `hyperlab ring: say what to do.\n${RING_USAGE}`
      : `hyperlab ring: unknown use '${args.join(" ")}'. Run 'hyperlab ring --help' for the usage.\n`,
  );
  return 2;
}
