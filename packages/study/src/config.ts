/*
 * A study's configuration and its matrix of runs.
 *
 * Invariants: a resolved configuration names everything a run depends on (no defaults are
 * applied later), so it is written beside the results and reproduces them; the cells of a
 * matrix are in one fixed order (workload, parameters, backend), and a cell's seed depends
 * on the study seed, the workload, working set, processes and operations only (never on the
 * backend or the page sizes), so every backend and page size runs the same operations.
 */
import { HyperlabError } from "@hyperlab/core";
import { BACKENDS, type PageSize, type StudyBackend } from "./backends";
import { type CostTable, resolveCosts } from "./cost-model";
import { WORKLOADS, type WorkloadParams, workloadByName } from "./workloads";

/** What a user writes (every field optional). */
export interface StudyConfigInput {
  seed?: number;
  workloads?: string[];
  backends?: string[];
  workingSetBytes?: number[];
  guestPageSizes?: PageSize[];
  hostPageSizes?: PageSize[];
  processes?: number[];
  /** Operations per run; absent or empty: each workload's default. */
  operations?: number[];
  /** Cycles per event overriding the defaults (see docs/cost-model.md). */
  costs?: Partial<Record<string, number>>;
  /** Worker threads; 0 runs every cell on the calling thread. Default: 2. */
  workers?: number;
}

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

/** A backend by name; throws with the list of names when there is none. */
export function backendByName(name: string): StudyBackend {
  const b = BACKENDS.find((x) => x.name === name);
  if (b === undefined) {
    throw new HyperlabError(
      "STUDY_UNKNOWN_BACKEND",
      `There is no backend "${name}". Choose from: ${BACKENDS.map((x) => x.name).join(", ")}.`,
    );
  }
  return b;
}

function bad(field: string, what: string, got: unknown): never {
  throw new HyperlabError(
    "STUDY_BAD_CONFIG",
    `Study config field "${field}" must be ${what}; got ${JSON.stringify(got)}.`,
  );
}

function list<T>(
  field: string,
  v: T[] | undefined,
  dflt: T[],
  ok: (x: unknown) => boolean,
  what: string,
): T[] {
  if (v === undefined) return dflt;
  if (!Array.isArray(v) || v.length === 0 || !v.every(ok))
    bad(field, `a non-empty list of ${what}`, v);
  return [...new Set(v)];
}

const KNOWN = new Set([
  "seed",
  "workloads",
  "backends",
  "workingSetBytes",
  "guestPageSizes",
  "hostPageSizes",
  "processes",
  "operations",
  "costs",
  "workers",
]);

/** Applies the defaults and checks every field; throws HyperlabError naming the bad one. */
export function resolveConfig(input: StudyConfigInput = {}): StudyConfig {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    bad("(config)", "an object", input);
  }
  for (const k of Object.keys(input)) {
    if (k === "kernel") {
      throw new HyperlabError(
        "STUDY_BAD_CONFIG",
        'Study config field "kernel" is gone: every study runs on the guest kernel (@hyperlab/guest). Remove the field.',
      );
    }
    if (!KNOWN.has(k)) {
      throw new HyperlabError(
        "STUDY_BAD_CONFIG",
        `Study config has an unknown field "${k}". Known fields: ${[...KNOWN].join(", ")}.`,
      );
    }
  }
  const seed = input.seed ?? 1;
  if (!Number.isSafeInteger(seed)) bad("seed", "a safe integer", seed);
  const isInt = (lo: number, hi: number) => (x: unknown) =>
    typeof x === "number" && Number.isInteger(x) && x >= lo && x <= hi;
  const workloads = list(
    "workloads",
    input.workloads,
    WORKLOADS.map((w) => w.name),
    (x) => typeof x === "string",
    "workload names",
  );
  for (const w of workloads) workloadByName(w);
  const backends = list(
    "backends",
    input.backends,
    BACKENDS.map((b) => b.name),
    (x) => typeof x === "string",
    "backend names",
  );
  for (const b of backends) backendByName(b);
  const isPage = (x: unknown) =>
    typeof x === "string" && (PAGE_SIZES as readonly string[]).includes(x);
  const cfg: StudyConfig = {
    seed,
    workloads,
    backends,
    workingSetBytes: list(
      "workingSetBytes",
      input.workingSetBytes,
      [16 * MiB],
      isInt(64 * 1024, 64 * 1024 * MiB),
      "byte counts from 65536 to 64 GiB",
    ),
    guestPageSizes: list(
      "guestPageSizes",
      input.guestPageSizes,
      ["4K"],
      isPage,
      '"4K", "2M" or "1G"',
    ),
    hostPageSizes: list("hostPageSizes", input.hostPageSizes, ["4K"], isPage, '"4K", "2M" or "1G"'),
    processes: list("processes", input.processes, [1], isInt(1, 64), "process counts from 1 to 64"),
    operations:
      input.operations === undefined ||
      (Array.isArray(input.operations) && input.operations.length === 0)
        ? []
        : list("operations", input.operations, [], isInt(1, 1e9), "operation counts from 1 to 1e9"),
    costs: resolveCosts(input.costs ?? {}),
    workers: input.workers ?? 2,
  };
  if (!isInt(0, 64)(cfg.workers)) bad("workers", "a whole number from 0 to 64", cfg.workers);
  return cfg;
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
