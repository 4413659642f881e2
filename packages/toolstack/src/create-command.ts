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

const HELP = `usage: hyperlab [-N] create [-n] FILE

Parses FILE in xl.cfg(5) syntax exactly as xl 4.17 does. With -N (before the verb) or -n
(after it) this is xl's dry run: the domain configuration is printed as libxl's JSON and
nothing is started.

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
    // xl takes further arguments as key=value overrides; they are not modelled (see README).
    else {
      io.err(
        `hyperlab create: '${a}': extra key=value settings after FILE are not supported; put them in the file.\n`,
      );
      return 2;
    }
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
  if (!dry) {
    io.err(
      "hyperlab create: starting a domain needs a running host, which this version does not have yet; " +
        `'hyperlab -N create ${file}' prints the configuration it would build.\n`,
    );
    return 1;
  }
  const r = dryRunCreate(text, file);
  io.out(r.stdout);
  io.err(r.stderr);
  return r.exitCode;
}
