/*
 * `hyperlab study`: lists the study's workloads and backends, or runs a matrix of them from
 * flags and/or a JSON config file, with progress on stderr, the summary table (or --json) on
 * stdout, and config.json, results.json, results.csv and report.html written to --out.
 *
 * Invariant: every user mistake ends with a message on stderr that says what to do and a
 * non-zero exit status (2 for usage and configuration, 1 for a failure); nothing here throws
 * at the user. Errors are told apart by their typed codes, never by a prefix.
 */
import { isHyperlabError } from "@hyperlab/core";
import {
  backendByName,
  compareResults,
  comparisonTable,
  DEFAULT_STUDY,
  listBackends,
  listWorkloads,
  loadResults,
  loadStudyConfig,
  PAGE_SIZES,
  type PageSize,
  progressDisplay,
  resolveCosts,
  runStudy,
  STUDY_CONFIG_ERROR_CODES,
  STUDY_ERROR_CODES,
  type StudyConfigInput,
  summaryTable,
  workloadByName,
} from "@hyperlab/study";
import { InvalidArgumentError } from "commander";
import type { CliIo } from "./cli/io";
import { flagValue, parseVerb, verbProgram } from "./cli/parse";

const DESCRIPTION = `Lists the study's workloads and MMU backends, or runs a matrix of workloads x parameters x backends and prints a summary (counts are exact; cycles are cost-model estimates, see docs/cost-model.md). With --out, writes config.json, results.json, results.csv and report.html (offline, inline SVG) into DIR; DIR is checked before any run. Progress (elapsed time, accesses per second, ETA) goes to stderr when it is a terminal, or with --progress. A config file follows the JSON Schema in @hyperlab/study/config.schema.json.`;

function listOf(s: string): string[] {
  return s.split(",").filter((x) => x.length > 0);
}

function sizeOf(s: string): number {
  const m = /^(\d+)([KMG])?$/i.exec(s);
  if (m === null) throw new InvalidArgumentError(`takes sizes such as 64K, 16M or 1G; got '${s}'`);
  const mult = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 }[(m[2] ?? "").toUpperCase()] ?? 1;
  return Number(m[1]) * mult;
}

function intOf(s: string): number {
  if (!/^-?\d+$/.test(s)) throw new InvalidArgumentError(`takes whole numbers; got '${s}'`);
  return Number(s);
}

/** Checks a name with the study's own lookup, so the message lists the choices. */
function known(check: (name: string) => unknown) {
  return (s: string): string[] => {
    const names = listOf(flagValue(s));
    for (const n of names) {
      try {
        check(n);
      } catch (e) {
        if (isHyperlabError(e, STUDY_ERROR_CODES)) throw new InvalidArgumentError(e.message);
        throw e;
      }
    }
    return names;
  };
}

function pagesOf(field: string) {
  return (s: string): PageSize[] => {
    const xs = listOf(s);
    for (const x of xs) {
      if (!(PAGE_SIZES as readonly string[]).includes(x)) {
        throw new InvalidArgumentError(
          `takes ${PAGE_SIZES.join(", ")} (the config field ${field}); got '${x}'`,
        );
      }
    }
    return xs as PageSize[];
  };
}

function costOf(s: string, prev: Record<string, number> = {}): Record<string, number> {
  const m = /^([A-Za-z]+)=(\d+(?:\.\d+)?)$/.exec(s);
  if (m === null) {
    throw new InvalidArgumentError(`takes NAME=CYCLES, e.g. --cost vmExits=800; got '${s}'`);
  }
  try {
    resolveCosts({ [m[1]]: Number(m[2]) });
  } catch (e) {
    if (isHyperlabError(e, STUDY_ERROR_CODES)) throw new InvalidArgumentError(e.message);
    throw e;
  }
  return { ...prev, [m[1]]: Number(m[2]) };
}

interface StudyFlags {
  list?: boolean;
  config?: string;
  default?: boolean;
  out?: string;
  workloads?: string[];
  backends?: string[];
  workingSet?: number[];
  guestPages?: PageSize[];
  hostPages?: PageSize[];
  processes?: number[];
  ops?: number[];
  seed?: number;
  workers?: number;
  cost?: Record<string, number>;
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
  skipMemoryCheck?: boolean;
  queue?: string;
}

function program(io: CliIo) {
  return verbProgram("study", DESCRIPTION, io)
    .option("--list", "list workloads and backends, then exit")
    .option(
      "--config <FILE>",
      "read the study configuration from a JSON file (flags override it)",
      flagValue,
    )
    .option("--default", "start from the short default study")
    .option(
      "--out <DIR>",
      "write config.json, results.json, results.csv and report.html into DIR",
      flagValue,
    )
    .option(
      "--workloads <LIST>",
      "comma-separated workload names (default: all)",
      known(workloadByName),
    )
    .option(
      "--backends <LIST>",
      "comma-separated backend names (default: all)",
      known(backendByName),
    )
    .option(
      "--working-set <LIST>",
      "working-set sizes, e.g. 16M,256M (K, M, G suffixes; plain = bytes)",
      (s: string) => listOf(s).map(sizeOf),
    )
    .option("--guest-pages <LIST>", "guest page sizes: 4K,2M", pagesOf("guestPageSizes"))
    .option(
      "--host-pages <LIST>",
      "host page sizes (nested paging only): 4K,2M,1G",
      pagesOf("hostPageSizes"),
    )
    .option("--processes <LIST>", "process counts, e.g. 1,4", (s: string) => listOf(s).map(intOf))
    .option("--ops <LIST>", "operations per run (default: each workload's own)", (s: string) =>
      listOf(s).map(intOf),
    )
    .option("--seed <N>", "seed of the whole study (default 1)", intOf)
    .option("--workers <N>", "worker threads (default 2; 0 runs on the main thread)", intOf)
    .option(
      "--cost <NAME=CYCLES>",
      "override one cost-model figure; repeatable (e.g. --cost vmExits=800)",
      costOf,
    )
    .option("--json", "print the results as JSON on stdout instead of the summary table")
    .option("--quiet", "print nothing but errors (and --json's output)")
    .option("--progress", "show progress even when stderr is not a terminal")
    .option("--no-progress", "never show progress")
    .option(
      "--queue <URL>",
      "run the cells as jobs on the BullMQ queue in this Redis (redis://HOST:PORT); 'hyperlab worker URL' processes run them",
      flagValue,
    )
    .option("--skip-memory-check", "run even if the memory estimate exceeds the host's free memory")
    .addHelpText(
      "after",
      "\nAlso: hyperlab study compare A B   B/A ratios of two results.json, run by run (see its --help)",
    );
}

function configOf(f: StudyFlags): StudyConfigInput {
  const flags: StudyConfigInput = {};
  if (f.workloads !== undefined) flags.workloads = f.workloads;
  if (f.backends !== undefined) flags.backends = f.backends;
  if (f.workingSet !== undefined) flags.workingSetBytes = f.workingSet;
  if (f.guestPages !== undefined) flags.guestPageSizes = f.guestPages;
  if (f.hostPages !== undefined) flags.hostPageSizes = f.hostPages;
  if (f.processes !== undefined) flags.processes = f.processes;
  if (f.ops !== undefined) flags.operations = f.ops;
  if (f.seed !== undefined) flags.seed = f.seed;
  if (f.workers !== undefined) flags.workers = f.workers;
  const base: StudyConfigInput = f.default === true ? { ...DEFAULT_STUDY } : {};
  const fromFile = f.config === undefined ? {} : loadStudyConfig(f.config);
  const config: StudyConfigInput = { ...base, ...fromFile, ...flags };
  if (f.cost !== undefined) config.costs = { ...(config.costs ?? {}), ...f.cost };
  return config;
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

/** `hyperlab study compare A B`: two results.json side by side as ratios. */
async function compareCommand(args: readonly string[], io: CliIo): Promise<number> {
  const cmd = verbProgram(
    "study compare",
    "Compares two study results (results.json files, or the --out directories that hold them) run by run: estimated cycles of each, and B/A ratios of cycles and of the exact counts behind them. Runs are matched by their key. When either has split-driver cases (io.split), a second table compares them per request (est. cycles, hypercalls, grant ops, notifications, VM exits, copies), matched by kind/pattern platform.",
    io,
  )
    .argument("<A>", "the results to compare against")
    .argument("<B>", "the results compared")
    .option("--json", "print the comparison as JSON");
  const p = parseVerb<{ json?: boolean }>(cmd, args, io, "study compare");
  if (!p.ok) return p.status;
  try {
    const [a, b] = p.operands.map(loadResults);
    const c = compareResults(a, b);
    io.out(p.opts.json === true ? `${JSON.stringify(c, null, 2)}\n` : comparisonTable(c));
    return 0;
  } catch (e) {
    if (isHyperlabError(e, STUDY_CONFIG_ERROR_CODES)) {
      io.err(`hyperlab study compare: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

/** Runs `hyperlab study ARGS` (or `hyperlab study compare A B`); resolves to the exit status. */
export async function studyCommand(
  args: readonly string[],
  io: CliIo,
  stderrIsTTY = io.errIsTTY === true,
): Promise<number> {
  if (args[0] === "compare") return compareCommand(args.slice(1), io);
  const p = parseVerb<StudyFlags>(program(io), args, io, "study");
  if (!p.ok) return p.status;
  const f = p.opts;
  if (f.list === true) {
    io.out(listing());
    return 0;
  }
  try {
    const config = configOf(f);
    const showProgress = f.quiet !== true && (f.progress ?? stderrIsTTY);
    const display = showProgress
      ? progressDisplay({ write: (s) => io.err(s) }, { isTTY: stderrIsTTY })
      : undefined;
    const { results, files } = await runStudy(config, {
      outDir: f.out,
      onProgress: display?.onProgress,
      onTick: display?.onTick,
      skipMemoryCheck: f.skipMemoryCheck === true,
      queue: f.queue,
    });
    if (f.json === true) {
      io.out(`${JSON.stringify({ files, results }, null, 2)}\n`);
    } else if (f.quiet !== true) {
      io.out(summaryTable(results));
      for (const file of files) io.out(`wrote ${file}\n`);
    }
    return 0;
  } catch (e) {
    if (isHyperlabError(e, STUDY_CONFIG_ERROR_CODES)) {
      io.err(`hyperlab study: ${e.message}\n`);
      return 2;
    }
    if (isHyperlabError(e, STUDY_ERROR_CODES)) {
      io.err(`hyperlab study: ${e.message}\n`);
      return 1;
    }
    if (e instanceof Error && "errno" in e && "syscall" in e) {
      // A system error writing the report after the runs (the directory was checked before).
      io.err(`hyperlab study: cannot write the results: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
