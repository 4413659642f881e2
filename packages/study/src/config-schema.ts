/*
 * The schema of a study configuration file (zod), and the JSON Schema published from it as
 * packages/study/config.schema.json. resolveConfig validates with this schema, so the file
 * a user's editor checks against and the checks the study makes are one definition.
 *
 * Invariant: config.schema.json equals studyConfigJsonSchema() (a test compares them;
 * `pnpm --filter @hyperlab/study run schema` rewrites the file).
 */
import { z } from "zod";
import { BACKENDS } from "./backends";
import { COST_INFO } from "./cost-model";
import { ioConfigSchema } from "./io/config";
import { WORKLOADS } from "./workloads";

const MiB = 2 ** 20;
const pageSize = z.enum(["4K", "2M", "1G"]);
const list = <T extends z.ZodType>(item: T) => z.array(item).min(1);

const costs = z.strictObject(
  Object.fromEntries(
    COST_INFO.map((c) => [
      c.name,
      z.number().min(0).optional().describe(`cycles per event (default ${c.cycles}; ${c.source})`),
    ]),
  ) as Record<(typeof COST_INFO)[number]["name"], z.ZodOptional<z.ZodNumber>>,
);

/** A study configuration as a user writes it: every field optional. */
export const studyConfigSchema = z
  .strictObject({
    $schema: z.string().optional().describe("the JSON Schema this file follows (ignored)"),
    seed: z.number().int().optional().describe("seed of the whole study (default 1)"),
    workloads: list(z.enum(WORKLOADS.map((w) => w.name) as [string, ...string[]]))
      .optional()
      .describe("workloads to run (default: all)"),
    backends: list(z.enum(BACKENDS.map((b) => b.name) as [string, ...string[]]))
      .optional()
      .describe("MMU backends to compare (default: all)"),
    workingSetBytes: list(
      z
        .number()
        .int()
        .min(64 * 1024)
        .max(64 * 1024 * MiB),
    )
      .optional()
      .describe("working-set sizes in bytes (default [16777216])"),
    guestPageSizes: list(pageSize).optional().describe('guest page sizes (default ["4K"])'),
    hostPageSizes: list(pageSize)
      .optional()
      .describe('host page sizes of nested paging (default ["4K"])'),
    processes: list(z.number().int().min(1).max(64))
      .optional()
      .describe("process counts (default [1])"),
    operations: z
      .array(z.number().int().min(1).max(1e9))
      .optional()
      .describe("operations per run (default or empty: each workload's own)"),
    costs: costs.optional().describe("cycles per event overriding the cost model's defaults"),
    workers: z
      .number()
      .int()
      .min(0)
      .max(64)
      .optional()
      .describe("worker threads; 0 runs every cell on the calling thread (default 2)"),
    io: ioConfigSchema
      .nullable()
      .optional()
      .describe("the I/O workload (default or null: not run)"),
  })
  .describe("A Hyperlab study: a matrix of workloads x parameters x MMU backends.");

/** The fields a configuration may have. */
export const STUDY_CONFIG_FIELDS: readonly string[] = Object.keys(studyConfigSchema.shape).filter(
  (k) => k !== "$schema",
);

/** The JSON Schema of a study configuration file (draft 2020-12). */
export function studyConfigJsonSchema(): object {
  return {
    title: "Hyperlab study configuration",
    ...z.toJSONSchema(studyConfigSchema, { io: "input", target: "draft-2020-12" }),
  };
}
