/*
 * `hyperlab study`: lists the study's workloads and backends, or runs a matrix of them from
 * flags and/or a JSON config file, with progress on stderr, the summary table on stdout, and
 * config.json, results.json, results.csv and report.html written to --out.
 *
 * Invariant: every user mistake ends with a message on stderr that says what to do and a
 * non-zero exit status (2 for usage and configuration, 1 for a failure); nothing here throws
 * at the user.
 */
import { HyperlabError } from "@hyperlab/core";
import {
  DEFAULT_STUDY,
  listBackends,
  listWorkloads,
  loadStudyConfig,
  progressReporter,
  runStudy,
  type StudyConfigInput,
  summaryTable,
} from "@hyperlab/study";
import type { CliIo } from "./main";

export const STUDY_USAGE = `usage: hyperlab study [options]

Lists the study's workloads and MMU backends, or runs a matrix of workloads x parameters x
backends and prints a summary (counts are exact; cycles are cost-model estimates, see
docs/cost-model.md). With --out, writes config.json, results.json, results.csv and
report.html (offline, inline SVG) into DIR. Progress goes to stderr.

Options:
  --list               list workloads and backends, then exit
  --config FILE        read the study configuration from a JSON file (flags override it)
  --default            start from the short default study
  --out DIR            write config.json, results.json, results.csv and report.html into DIR
  --workloads LIST     comma-separated workload names (default: all)
  --backends LIST      comma-separated backend names (default: all)
  --working-set LIST   working-set sizes, e.g. 16M,256M (K, M, G suffixes; plain = bytes)
  --guest-pages LIST   guest page sizes: 4K,2M
  --host-pages LIST    host page sizes (nested paging only): 4K,2M,1G
  --processes LIST     process counts, e.g. 1,4
  --ops LIST           operations per run (default: each workload's own)
  --seed N             seed of the whole study (default 1)
  --workers N          worker threads (default 2; 0 runs on the main thread)
  --cost NAME=CYCLES   override one cost-model figure; repeatable (e.g. --cost vmExits=800)
  -h, --help           show this help
`;

class UsageError extends Error {}

function sizeOf(flag: string, s: string): number {
  const m = /^(\d+)([KMG])?$/i.exec(s);
  if (m === null) {
    throw new UsageError(`${flag} takes sizes such as 64K, 16M or 1G; got '${s}'`);
  }
  const mult = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 }[(m[2] ?? "").toUpperCase()] ?? 1;
  return Number(m[1]) * mult;
}

function intOf(flag: string, s: string): number {
  if (!/^-?\d+$/.test(s)) throw new UsageError(`${flag} takes whole numbers; got '${s}'`);
  return Number(s);
}

function listOf(s: string): string[] {
  return s.split(",").filter((x) => x.length > 0);
}

interface Parsed {
  help: boolean;
  list: boolean;
  out?: string;
  config: StudyConfigInput;
}

function parse(args: readonly string[]): Parsed {
  const p: Parsed = { help: false, list: false, config: {} };
  let file: string | undefined;
  let useDefault = false;
  const flags: StudyConfigInput = {};
  const costs: Record<string, number> = {};
  for (let i = 0; i < args.length; i++) {
    let a = args[i];
    let value: string | undefined;
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    if (eq > 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const need = (): string => {
      const v = value ?? args[++i];
      if (v === undefined || (value === undefined && v.startsWith("-"))) {
        throw new UsageError(`${a} needs a value; run 'hyperlab study --help' for the options`);
      }
      return v;
    };
    switch (a) {
      case "-h":
      case "--help":
        p.help = true;
        break;
      case "--list":
        p.list = true;
        break;
      case "--default":
        useDefault = true;
        break;
      case "--config":
        file = need();
        break;
      case "--out":
        p.out = need();
        break;
      case "--workloads":
        flags.workloads = listOf(need());
        break;
      case "--backends":
        flags.backends = listOf(need());
        break;
      case "--working-set":
        flags.workingSetBytes = listOf(need()).map((s) => sizeOf(a, s));
        break;
      case "--guest-pages":
        flags.guestPageSizes = listOf(need()) as StudyConfigInput["guestPageSizes"];
        break;
      case "--host-pages":
        flags.hostPageSizes = listOf(need()) as StudyConfigInput["hostPageSizes"];
        break;
      case "--processes":
        flags.processes = listOf(need()).map((s) => intOf(a, s));
        break;
      case "--ops":
        flags.operations = listOf(need()).map((s) => intOf(a, s));
        break;
      case "--seed":
        flags.seed = intOf(a, need());
        break;
      case "--workers":
        flags.workers = intOf(a, need());
        break;
      case "--cost": {
        const v = need();
        const m = /^([A-Za-z]+)=(\d+(?:\.\d+)?)$/.exec(v);
        if (m === null) {
          throw new UsageError(`--cost takes NAME=CYCLES, e.g. --cost vmExits=800; got '${v}'`);
        }
        costs[m[1]] = Number(m[2]);
        break;
      }
      default:
        throw new UsageError(
          `unknown option '${args[i]}'. Run 'hyperlab study --help' for the options.`,
        );
    }
  }
  const base: StudyConfigInput = useDefault ? { ...DEFAULT_STUDY } : {};
  const fromFile = file === undefined ? {} : loadStudyConfig(file);
  p.config = { ...base, ...fromFile, ...flags };
  if (Object.keys(costs).length > 0) p.config.costs = { ...(p.config.costs ?? {}), ...costs };
  return p;
}

function listing(): string {
  const lines = ["Workloads (one operation):"];
  for (const w of listWorkloads()) {
    lines.push(`  ${w.name.padEnd(14)} (${w.operationUnit}, default ${w.defaultOperations})`);
    lines.push(`  ${"".padEnd(14)} ${w.description}`);
  }
  lines.push("", "Backends:");
  for (const b of listBackends()) lines.push(`  ${b.name.padEnd(14)} ${b.description}`);
  return `${lines.join("\n")}\n`;
}

/** Runs `hyperlab study ARGS`; resolves to the exit status. */
export async function studyCommand(
  args: readonly string[],
  io: CliIo,
  stderrIsTTY = false,
): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parse(args);
  } catch (e) {
    if (e instanceof UsageError || e instanceof HyperlabError) {
      io.err(`hyperlab study: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (parsed.help) {
    io.out(STUDY_USAGE);
    return 0;
  }
  if (parsed.list) {
    io.out(listing());
    return 0;
  }
  try {
    const { results, files } = await runStudy(parsed.config, {
      outDir: parsed.out,
      onProgress: progressReporter({ write: (s) => io.err(s), isTTY: stderrIsTTY }),
    });
    io.out(summaryTable(results));
    for (const f of files) io.out(`wrote ${f}\n`);
    return 0;
  } catch (e) {
    if (e instanceof HyperlabError) {
      io.err(`hyperlab study: ${e.message}\n`);
      return e.code.startsWith("STUDY_BAD") || e.code.startsWith("STUDY_UNKNOWN") ? 2 : 1;
    }
    if (e instanceof Error && "code" in e && typeof e.code === "string" && e.code.startsWith("E")) {
      // A file-system error writing the report.
      io.err(`hyperlab study: cannot write the results: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
