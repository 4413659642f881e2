/*
 * A study's configuration and its matrix of runs.
 *
 * Invariants: a resolved configuration names everything a run depends on (no defaults are
 * applied later), so it is written beside the results and reproduces them; the cells of a
 * matrix are in one fixed order (workload, parameters, backend), and a cell's seed depends
 * on the study seed, the workload, working set, processes and operations only (never on the
 * backend or the page sizes), so every backend and page size runs the same operations.
 */
import type { z } from "zod";
import { BACKENDS, type PageSize, type StudyBackend } from "./backends";
import { STUDY_CONFIG_FIELDS, studyConfigSchema } from "./config-schema";
import { type CostTable, resolveCosts } from "./cost-model";
import { studyError } from "./errors";
import { type IoConfig, resolveIoConfig } from "./io/config";
import { WORKLOADS, type WorkloadParams, workloadByName } from "./workloads";

/** What a user writes (every field optional): the input type of the config schema. */
export type StudyConfigInput = z.input<typeof studyConfigSchema>;

/** A configuration with every default applied: written beside the results. */
export interface StudyConfig {
  seed: number;
  workloads: string[];
  backends: string[];
  workingSetBytes: number[];
  guestPageSizes: PageSize[];
  hostPageSizes: PageSize[];
  processes: number[];
  operations: number[];
  costs: CostTable;
  workers: number;
  /** The I/O workload (src/io), or null when the study does not run it. */
  io: IoConfig | null;
}

/** One run of the matrix. */
export interface StudyCell {
  /** Position in the matrix: results are reported in this order. */
  index: number;
  /** Unique, readable name of the run. */
  key: string;
  /** The run's key without the backend. */
  caseKey: string;
  /** The key without backend and host page size: runs compared with native share it. */
  baseKey: string;
  workload: string;
  backend: string;
  params: WorkloadParams;
  /** Seed of the workload's PRNG and of the machine. */
  seed: number;
}

export const PAGE_SIZES: readonly PageSize[] = ["4K", "2M", "1G"];
const MiB = 2 ** 20;

/** What a field left out resolves to (workloads and backends: all of them). */
export const CONFIG_DEFAULTS = {
  seed: 1,
  workloads: "all",
  backends: "all",
  workingSetBytes: [16 * MiB],
  guestPageSizes: ["4K"] as PageSize[],
  hostPageSizes: ["4K"] as PageSize[],
  processes: [1],
  operations: "each workload's defaultOperations",
  costs: "the cost model's defaults",
  workers: 2,
  io: "not run",
};

/** A backend by name; throws with the list of names when there is none. */
export function backendByName(name: string): StudyBackend {
  const b = BACKENDS.find((x) => x.name === name);
  if (b === undefined) {
    throw studyError(
      "STUDY_UNKNOWN_BACKEND",
      `There is no backend "${name}". Choose from: ${BACKENDS.map((x) => x.name).join(", ")}.`,
    );
  }
  return b;
}

/** What each field must be, for messages (the schema says the same in JSON Schema). */
const WHAT: Record<string, string> = {
  seed: "a safe integer",
  workloads: "a non-empty list of workload names",
  backends: "a non-empty list of backend names",
  workingSetBytes: "a non-empty list of byte counts from 65536 to 64 GiB",
  guestPageSizes: 'a non-empty list of "4K", "2M" or "1G"',
  hostPageSizes: 'a non-empty list of "4K", "2M" or "1G"',
  processes: "a non-empty list of process counts from 1 to 64",
  operations: "a list of operation counts from 1 to 1e9",
  workers: "a whole number from 0 to 64",
};

function bad(field: string, got: unknown): never {
  throw studyError(
    "STUDY_BAD_CONFIG",
    `Study config field "${field}" must be ${WHAT[field] ?? "as the schema says"}; got ${JSON.stringify(got)}.`,
  );
}

/** Turns the first schema issue into the study's own error, naming the field and value. */
function explain(input: Record<string, unknown>, issue: z.core.$ZodIssue): never {
  if (issue.code === "unrecognized_keys" && issue.path.length === 0) {
    const k = issue.keys[0];
    if (k === "kernel") {
      throw studyError(
        "STUDY_BAD_CONFIG",
        'Study config field "kernel" is gone: every study runs on the guest kernel (@hyperlab/guest). Remove the field.',
      );
    }
    throw studyError(
      "STUDY_BAD_CONFIG",
      `Study config has an unknown field "${k}". Known fields: ${STUDY_CONFIG_FIELDS.join(", ")}.`,
    );
  }
  if (issue.path.length > 1 && typeof issue.path[1] === "string") {
    // A nested field (io.split.requests, io.disk.0.bytes): name the whole path and its value.
    let value: unknown = input;
    for (const k of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[k];
    throw studyError(
      "STUDY_BAD_CONFIG",
      `Study config field "${issue.path.join(".")}": ${issue.message}; got ${JSON.stringify(value)}. Fix that field (config.schema.json describes each).`,
    );
  }
  const field = String(issue.path[0]);
  const value = input[field];
  if (field === "workloads" && Array.isArray(value)) {
    for (const w of value) if (typeof w === "string") workloadByName(w);
  }
  if (field === "backends" && Array.isArray(value)) {
    for (const b of value) if (typeof b === "string") backendByName(b);
  }
  if (field === "costs") {
    resolveCosts(value as Partial<Record<string, number>>);
  }
  bad(field, value);
}

/** Applies the defaults and checks every field; throws HyperlabError naming the bad one. */
export function resolveConfig(input: StudyConfigInput = {}): StudyConfig {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw studyError(
      "STUDY_BAD_CONFIG",
      `A study config is an object of fields; got ${JSON.stringify(input)}.`,
    );
  }
  // The worker count of a resolved config may be passed back in; it is a known field.
  const parsed = studyConfigSchema.safeParse(input);
  if (!parsed.success) explain(input as Record<string, unknown>, parsed.error.issues[0]);
  const v = parsed.data;
  if (v.seed !== undefined && !Number.isSafeInteger(v.seed)) bad("seed", v.seed);
  const uniq = <T>(xs: T[] | undefined, dflt: T[]): T[] =>
    xs === undefined ? [...dflt] : [...new Set(xs)];
  return {
    seed: v.seed ?? CONFIG_DEFAULTS.seed,
    workloads: uniq(
      v.workloads,
      WORKLOADS.map((w) => w.name),
    ),
    backends: uniq(
      v.backends,
      BACKENDS.map((b) => b.name),
    ),
    workingSetBytes: uniq(v.workingSetBytes, CONFIG_DEFAULTS.workingSetBytes),
    guestPageSizes: uniq(v.guestPageSizes, CONFIG_DEFAULTS.guestPageSizes),
    hostPageSizes: uniq(v.hostPageSizes, CONFIG_DEFAULTS.hostPageSizes),
    processes: uniq(v.processes, CONFIG_DEFAULTS.processes),
    operations: uniq(v.operations, []),
    costs: resolveCosts(v.costs ?? {}),
    workers: v.workers ?? CONFIG_DEFAULTS.workers,
    io:
      v.io === undefined || v.io === null
        ? null
        : resolveIoConfig(
            v.io,
            (m) => {
              throw studyError("STUDY_BAD_CONFIG", m);
            },
            v.seed ?? CONFIG_DEFAULTS.seed,
          ),
  };
}

/** FNV-1a of a string, mixed with the study seed: a cell's seed. */
function cellSeed(seed: number, caseKey: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < caseKey.length; i++) h = Math.imul(h ^ caseKey.charCodeAt(i), 0x01000193);
  return (h >>> 0) + (Math.floor(seed / 0x1_0000_0000) % 1024) * 0x1_0000_0000;
}

function sizeName(bytes: number): string {
  if (bytes % (1024 * MiB) === 0) return `${bytes / (1024 * MiB)}GiB`;
  if (bytes % MiB === 0) return `${bytes / MiB}MiB`;
  return `${bytes / 1024}KiB`;
}

/** Which backends take a host page size (a second translation dimension). */
function hasHostPages(backend: string): boolean {
  return backend === "nested";
}

/**
 * The matrix: every workload x parameter combination x backend, in that order. Combinations
 * a backend cannot run are listed in `skipped` with the reason; a host page size other than
 * the first is only crossed with backends that have a second dimension.
 */
export function expandMatrix(config: StudyConfig): {
  cells: StudyCell[];
  skipped: { key: string; reason: string }[];
} {
  const cells: StudyCell[] = [];
  const skipped: { key: string; reason: string }[] = [];
  for (const wname of config.workloads) {
    const w = workloadByName(wname);
    const ops = config.operations.length === 0 ? [w.defaultOperations] : config.operations;
    for (const ws of config.workingSetBytes)
      for (const gps of config.guestPageSizes)
        for (const hps of config.hostPageSizes)
          for (const processes of config.processes)
            for (const operations of ops) {
              const params: WorkloadParams = {
                workingSetBytes: ws,
                guestPageSize: gps,
                hostPageSize: hps,
                processes,
                operations,
              };
              const baseKey = `${wname} ws=${sizeName(ws)} page=${gps} procs=${processes} ops=${operations}`;
              const caseKey = `${wname} ws=${sizeName(ws)} page=${gps}/${hps} procs=${processes} ops=${operations}`;
              for (const bname of config.backends) {
                const key = `${caseKey} ${bname}`;
                if (hps !== config.hostPageSizes[0] && !hasHostPages(bname)) continue;
                const why = backendByName(bname).unsupported(params);
                if (why !== null) {
                  skipped.push({ key, reason: why });
                  continue;
                }
                cells.push({
                  index: cells.length,
                  key,
                  caseKey,
                  baseKey,
                  workload: wname,
                  backend: bname,
                  params,
                  seed: cellSeed(
                    config.seed,
                    `${wname} ws=${sizeName(ws)} procs=${processes} ops=${operations}`,
                  ),
                });
              }
            }
  }
  return { cells, skipped };
}
