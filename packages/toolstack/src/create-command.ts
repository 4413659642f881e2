/*
 * `hyperlab create [-n] FILE` and `hyperlab -N create FILE`: xl's create verb. With `-N`
 * (xl's global dry-run flag) or `-n` (create's own), it parses FILE as xl 4.17 does and prints
 * the domain configuration as libxl's JSON, starting nothing; stdout, stderr and the exit
 * status are xl's own (checked against Debian's xl in test/xlcfg/diff.test.ts).
 *
 * Invariant: nothing here throws at the user; every outcome is xl's text and xl's exit code.
 */
import { readFileSync } from "node:fs";
import type { CliIo } from "./cli/io";
import { createOnHost } from "./lifecycle-commands";
import { dryRunCreate } from "./xlcfg/index";

/** strerror(3) for the errors reading a config file can give. */
const STRERROR: Record<string, string> = {
  ENOENT: "No such file or directory",
  EACCES: "Permission denied",
  EISDIR: "Is a directory",
  ENOTDIR: "Not a directory",
  ELOOP: "Too many levels of symbolic links",
  ENAMETOOLONG: "File name too long",
  EIO: "Input/output error",
};

const HELP = `usage: hyperlab [-N] create [-n] FILE [KEY=VALUE...]

Parses FILE in xl.cfg(5) syntax exactly as xl 4.17 does and creates the domain on the host
that 'hyperlab up' started. With -N (before the verb) or -n (after it) this is xl's dry run:
the domain configuration is printed as libxl's JSON and nothing is started.

Options:
  -n, --dryrun   print the configuration as JSON; start nothing
  -h, --help     show this help
`;

/** Runs `hyperlab create ARGS` (`dryRun` when the global -N was given). */
export async function createCommand(
  args: readonly string[],
  io: CliIo,
  dryRun = false,
): Promise<number> {
  let file: string | undefined;
  let dry = dryRun;
  const extra: string[] = [];
  for (const a of args) {
    if (a === "-h" || a === "--help") {
      io.out(HELP);
      return 0;
    }
    if (a === "-n" || a === "--dryrun") dry = true;
    else if (a.startsWith("-") && a !== "-") {
      io.err(`hyperlab create: unknown option '${a}'. Run 'hyperlab help create'.\n`);
      return 2;
    } else if (file === undefined) file = a;
    // Further arguments are xl's key=value overrides (appended to the file's text).
    else extra.push(a);
  }
  if (file === undefined) {
    io.err("Config file not specified and none in save file\n");
    return 6;
  }
  let text: string;
  try {
    text = readFileSync(file, "latin1");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    io.err(`Failed to read config file: ${file}: ${STRERROR[code] ?? code}\n`);
    return 3;
  }
  if (!dry) return createOnHost(text, file, extra, io);
  const r = dryRunCreate(
    extra.length === 0 ? text : `${text}${text.endsWith("\n") ? "" : "\n"}${extra.join("\n")}\n`,
    file,
  );
  io.out(r.stdout);
  io.err(r.stderr);
  return r.exitCode;
}
