/*
 * The I/O workload's configuration: which platforms run it, the disk request patterns and NIC
 * frame sizes, how many requests each does, and which interrupt each device uses. The zod
 * schema is the one the study configuration file's `io` field is checked against.
 *
 * Invariant: a resolved IoConfig names everything a run depends on (no default is applied
 * later), so it is written beside the results and reproduces them.
 */
import { z } from "zod";
import { IO_COST_INFO, type IoCostName, type IoCostTable, resolveIoCosts } from "./cost";
import { resolveSplitIoConfig, type SplitIoConfig, splitIoConfigSchema } from "./split-config";

/** A platform the I/O workload can run on (see IO_PLATFORMS for what each is). */
export const IO_PLATFORM_NAMES = ["native", "xen-dom0", "kvm-guest"] as const;
export type IoPlatformName = (typeof IO_PLATFORM_NAMES)[number];

const DISK_MAX_BYTES = 2048 * 512;
const KiB = 1024;

const diskPattern = z.strictObject({
  name: z.string().min(1).max(64).describe("label of the pattern in the report"),
  op: z.enum(["read", "write"]).describe("read from or write to the disk"),
  bytes: z
    .number()
    .int()
    .min(512)
    .max(DISK_MAX_BYTES)
    .multipleOf(512)
    .describe("bytes per request (whole 512-byte sectors, at most 1 MiB)"),
  access: z.enum(["random", "sequential"]).describe("where each request starts on the disk"),
  bufferOffset: z
    .number()
    .int()
    .min(0)
    .max(4095)
    .optional()
    .describe("offset of the buffer in its first page (default 0; non-zero straddles pages)"),
});

const ioCosts = z.strictObject(
  Object.fromEntries(
    IO_COST_INFO.map((c) => [
      c.name,
      z.number().min(0).optional().describe(`cycles per event (default ${c.cycles}; ${c.source})`),
    ]),
  ) as Record<IoCostName, z.ZodOptional<z.ZodNumber>>,
);

const nicPattern = z.strictObject({
  name: z.string().min(1).max(64).describe("label of the pattern in the report"),
  frameBytes: z.number().int().min(60).max(1514).describe("Ethernet frame size (60 to 1514)"),
});

/** The `io` field of a study configuration. */
export const ioConfigSchema = z
  .strictObject({
    platforms: z
      .array(z.enum(IO_PLATFORM_NAMES))
      .min(1)
      .optional()
      .describe("platforms to run on (default: all)"),
    requests: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .describe("requests (or frames) per pattern (default 64)"),
    disk: z
      .array(diskPattern)
      .optional()
      .describe("disk request patterns (default 4 KiB random read and write, 64 KiB sequential)"),
    nic: z.array(nicPattern).optional().describe("NIC frame sizes (default 64 and 1514 bytes)"),
    diskIrq: z.enum(["intx", "msi"]).optional().describe('disk interrupt (default "intx")'),
    nicIrq: z.enum(["intx", "msi"]).optional().describe('NIC interrupt (default "msi")'),
    diskBytes: z
      .number()
      .int()
      .min(64 * KiB)
      .max(256 * 1024 * KiB)
      .multipleOf(512)
      .optional()
      .describe("size of the disk image in bytes (default 8 MiB)"),
    costs: ioCosts.optional().describe("cycles per I/O event overriding the defaults"),
    split: splitIoConfigSchema
      .nullable()
      .optional()
      .describe(
        "the split-driver cases: blkback grant map, grant copy, persistent grants, and virtio (default: not run)",
      ),
  })
  .describe("The I/O workload: disk requests and NIC frames through the guest drivers.");

export type IoConfigInput = z.input<typeof ioConfigSchema>;
export type IoDiskPattern = z.output<typeof diskPattern> & { bufferOffset: number };
export type IoNicPattern = z.output<typeof nicPattern>;

/** An I/O configuration with every default applied. */
export interface IoConfig {
  platforms: IoPlatformName[];
  requests: number;
  disk: IoDiskPattern[];
  nic: IoNicPattern[];
  diskIrq: "intx" | "msi";
  nicIrq: "intx" | "msi";
  diskBytes: number;
  costs: IoCostTable;
  /** The split-driver cases (io.split), or null when the study does not run them. */
  split: SplitIoConfig | null;
}

export const IO_DEFAULT_DISK: readonly IoDiskPattern[] = [
  { name: "4k-random-read", op: "read", bytes: 4 * KiB, access: "random", bufferOffset: 0 },
  { name: "4k-random-write", op: "write", bytes: 4 * KiB, access: "random", bufferOffset: 0 },
  { name: "64k-seq-read", op: "read", bytes: 64 * KiB, access: "sequential", bufferOffset: 0 },
  { name: "64k-seq-write", op: "write", bytes: 64 * KiB, access: "sequential", bufferOffset: 0 },
];

export const IO_DEFAULT_NIC: readonly IoNicPattern[] = [
  { name: "frame-64", frameBytes: 64 },
  { name: "frame-1514", frameBytes: 1514 },
];

/**
 * Applies the defaults to a parsed `io` field. Pattern names must be unique (they key the
 * results); a user mistake, so it throws through `fail` with what to do.
 */
export function resolveIoConfig(
  input: z.output<typeof ioConfigSchema>,
  fail: (message: string) => never,
  seed = 1,
): IoConfig {
  const disk = (input.disk ?? IO_DEFAULT_DISK).map((p) => ({
    ...p,
    bufferOffset: p.bufferOffset ?? 0,
  }));
  const nic = (input.nic ?? IO_DEFAULT_NIC).map((p) => ({ ...p }));
  const diskBytes = input.diskBytes ?? 8 * 1024 * KiB;
  const names = new Set<string>();
  for (const p of [...disk, ...nic]) {
    if (names.has(p.name)) {
      fail(`io: two patterns are named "${p.name}". Give each disk and NIC pattern its own name.`);
    }
    names.add(p.name);
  }
  for (const p of disk) {
    if (p.bytes > diskBytes) {
      fail(
        `io: disk pattern "${p.name}" moves ${p.bytes} bytes per request, more than the ${diskBytes}-byte disk. Raise io.diskBytes or lower its bytes.`,
      );
    }
  }
  return {
    platforms: [...new Set(input.platforms ?? IO_PLATFORM_NAMES)],
    requests: input.requests ?? 64,
    disk,
    nic,
    diskIrq: input.diskIrq ?? "intx",
    nicIrq: input.nicIrq ?? "msi",
    diskBytes,
    costs: resolveIoCosts(input.costs as Partial<IoCostTable> | undefined),
    split:
      input.split === undefined || input.split === null
        ? null
        : resolveSplitIoConfig(input.split, "io.split", seed >>> 0),
  };
}
