/*
 * A study end to end: resolve the configuration, run the matrix on worker threads with a
 * progress display, derive the figures and write the files.
 */
import { readFileSync } from "node:fs";
import { HyperlabError } from "@hyperlab/core";
import { BACKENDS } from "./backends";
import { resolveConfig, type StudyConfigInput } from "./config";
import { buildResults, type StudyResults, writeResults } from "./report";
import { type ProgressFn, runMatrix } from "./run";
import { WORKLOADS } from "./workloads";

/** Where progress goes: a stream with write and, if a terminal, isTTY. */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

/**
 * Progress to `stream`: a bar redrawn in place on a terminal, otherwise one plain line per
 * finished run.
 */
export function progressReporter(stream: ProgressStream): ProgressFn {
  if (stream.isTTY === true) {
    return (done, total, last) => {
      const width = 30;
      const fill = Math.round((done / total) * width);
      const bar = `${"#".repeat(fill)}${"-".repeat(width - fill)}`;
      stream.write(`\r\x1b[K[${bar}] ${done}/${total} ${last.key}`);
      if (done === total) stream.write("\n");
    };
  }
  return (done, total, last) => {
    stream.write(`study: ${done}/${total} done: ${last.key} (checksum ${last.checksum})\n`);
  };
}

export interface StudyOptions {
  /** Directory for config.json, results.json, results.csv and report.html; none if absent. */
  outDir?: string;
  /** Overrides the config's worker count. */
  workers?: number;
  /** Progress display; default none. Pass progressReporter(process.stderr) for the CLI's. */
  onProgress?: ProgressFn;
}

export interface StudyOutcome {
  results: StudyResults;
  /** Paths written (empty without outDir). */
  files: string[];
}

/** Runs a study from a (partial) configuration. */
export async function runStudy(
  input: StudyConfigInput = {},
  options: StudyOptions = {},
): Promise<StudyOutcome> {
  const config = resolveConfig(input);
  if (options.workers !== undefined)
    config.workers = resolveConfig({ workers: options.workers }).workers;
  const { runs, skipped } = await runMatrix(config, { onProgress: options.onProgress });
  const results = buildResults(config, runs, skipped);
  const files = options.outDir === undefined ? [] : writeResults(options.outDir, results, config);
  return { results, files };
}

/** Reads a study configuration file (JSON). */
export function loadStudyConfig(path: string): StudyConfigInput {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new HyperlabError(
      "STUDY_CONFIG_UNREADABLE",
      `Cannot read study config ${path}: ${(e as Error).message}. Pass the path of a JSON file.`,
    );
  }
  try {
    return JSON.parse(text) as StudyConfigInput;
  } catch (e) {
    throw new HyperlabError(
      "STUDY_CONFIG_INVALID",
      `Study config ${path} is not valid JSON (${(e as Error).message}). Fix the file; see the study README for its fields.`,
    );
  }
}

/** The default study: every workload on every backend, small enough for under a minute. */
export const DEFAULT_STUDY: StudyConfigInput = {
  seed: 1,
  workingSetBytes: [8 * 2 ** 20],
  guestPageSizes: ["4K"],
  hostPageSizes: ["4K"],
  processes: [2],
};

/** Runs the default study and writes its report into `outDir`. */
export function runDefaultStudy(
  outDir: string,
  options: Omit<StudyOptions, "outDir"> = {},
): Promise<StudyOutcome> {
  return runStudy(DEFAULT_STUDY, { ...options, outDir });
}

/** The workloads a study can run: name, what one operation is, and a description. */
export function listWorkloads(): {
  name: string;
  operationUnit: string;
  defaultOperations: number;
  description: string;
}[] {
  return WORKLOADS.map((w) => ({
    name: w.name,
    operationUnit: w.operationUnit,
    defaultOperations: w.defaultOperations,
    description: w.description,
  }));
}

/** The MMU backends a study can compare. */
export function listBackends(): { name: string; description: string }[] {
  return BACKENDS.map((b) => ({ name: b.name, description: b.description }));
}
