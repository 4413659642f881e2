/*
 * The configuration of the split-driver I/O cases, shaped like the study's `io` section (disk
 * patterns: name, op, bytes, access; NIC patterns: name, frameBytes), plus the blkback modes
 * to run. The zod schema checks what a user writes; resolveSplitIoConfig applies defaults.
 *
 * Invariant: a resolved SplitIoConfig names everything a run depends on (no default is applied
 * later), and a case's seed depends on the study seed and the pattern's name only, never on
 * the mode, so every mode runs the same requests on the same image.
 */
import { z } from "zod";
import { studyError } from "../errors";

/** blkback's data modes on the Xen host, and "virtio" for the KVM-style build. */
export const SPLIT_IO_MODES = ["map", "copy", "persistent", "virtio"] as const;
export type SplitIoMode = (typeof SPLIT_IO_MODES)[number];

const KiB = 1024;

const diskPattern = z.strictObject({
  name: z.string().min(1).max(64).describe("label of the pattern in the report"),
  op: z.enum(["read", "write"]).describe("read from or write to the disk"),
  bytes: z
    .number()
    .int()
    .min(512)
    .max(1024 * KiB)
    .multipleOf(512)
    .describe("bytes per request (whole 512-byte sectors, at most 1 MiB)"),
  access: z.enum(["random", "sequential"]).describe("where each request starts on the disk"),
});

const nicPattern = z.strictObject({
  name: z.string().min(1).max(64).describe("label of the pattern in the report"),
  frameBytes: z.number().int().min(60).max(1514).describe("Ethernet frame size (60 to 1514)"),
});

export const splitIoConfigSchema = z
  .strictObject({
    seed: z
      .number()
      .int()
      .min(0)
      .max(0xffffffff)
      .optional()
      .describe("seed (default: the study seed's low 32 bits, or 1 outside a study)"),
    modes: z
      .array(z.enum(SPLIT_IO_MODES))
      .min(1)
      .optional()
      .describe(
        'data paths to run (default all): blkback "map", "copy", "persistent" on Xen; "virtio" on the KVM-style build',
      ),
    requests: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .optional()
      .describe("measured requests (or frames) per pattern (default 64)"),
    warmup: z
      .number()
      .int()
      .min(0)
      .max(10_000)
      .optional()
      .describe("requests run before counting starts (default 8)"),
    disk: z.array(diskPattern).optional().describe("disk patterns (default as the io section)"),
    nic: z.array(nicPattern).optional().describe("frame sizes (default 64 and 1514 bytes)"),
    diskBytes: z
      .number()
      .int()
      .min(1024 * KiB)
      .max(64 * 1024 * KiB)
      .multipleOf(512)
      .optional()
      .describe("size of the raw image in bytes (default 4 MiB)"),
  })
  .describe("The split-driver I/O cases: blkfront/blkback and netfront/netback on Xen.");

export type SplitIoConfigInput = z.input<typeof splitIoConfigSchema>;
export type SplitIoDiskPattern = z.output<typeof diskPattern>;
export type SplitIoNicPattern = z.output<typeof nicPattern>;

export interface SplitIoConfig {
  seed: number;
  modes: SplitIoMode[];
  requests: number;
  warmup: number;
  disk: SplitIoDiskPattern[];
  nic: SplitIoNicPattern[];
  diskBytes: number;
}

export const SPLIT_IO_DEFAULT_DISK: readonly SplitIoDiskPattern[] = [
  { name: "4k-random-read", op: "read", bytes: 4 * KiB, access: "random" },
  { name: "4k-random-write", op: "write", bytes: 4 * KiB, access: "random" },
  { name: "64k-seq-read", op: "read", bytes: 64 * KiB, access: "sequential" },
  { name: "64k-seq-write", op: "write", bytes: 64 * KiB, access: "sequential" },
];

export const SPLIT_IO_DEFAULT_NIC: readonly SplitIoNicPattern[] = [
  { name: "frame-64", frameBytes: 64 },
  { name: "frame-1514", frameBytes: 1514 },
];

/**
 * Checks `input` and applies the defaults; a mistake throws STUDY_BAD_CONFIG saying what to do.
 * `where` names the section in messages (the study passes "io.split"); `seed` is the default
 * seed (the study's).
 */
export function resolveSplitIoConfig(
  input: unknown = {},
  where = "Split-driver I/O config",
  seed = 1,
): SplitIoConfig {
  const r = splitIoConfigSchema.safeParse(input);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw studyError(
      "STUDY_BAD_CONFIG",
      `${where}: ${i.path.join(".") || "(top)"}: ${i.message}. Fix that field (the schema describes each).`,
    );
  }
  const c = r.data;
  const disk = (c.disk ?? SPLIT_IO_DEFAULT_DISK).map((p) => ({ ...p }));
  const nic = (c.nic ?? SPLIT_IO_DEFAULT_NIC).map((p) => ({ ...p }));
  const diskBytes = c.diskBytes ?? 4096 * KiB;
  const names = new Set<string>();
  for (const p of [...disk, ...nic]) {
    if (names.has(p.name)) {
      throw studyError(
        "STUDY_BAD_CONFIG",
        `${where}: two patterns are named "${p.name}". Give each its own name.`,
      );
    }
    names.add(p.name);
  }
  for (const p of disk) {
    if (p.bytes > diskBytes) {
      throw studyError(
        "STUDY_BAD_CONFIG",
        `${where}: disk pattern "${p.name}" moves ${p.bytes} bytes, more than the ${diskBytes}-byte image. Raise diskBytes or lower its bytes.`,
      );
    }
  }
  return {
    seed: c.seed ?? seed,
    modes: [...new Set(c.modes ?? SPLIT_IO_MODES)],
    requests: c.requests ?? 64,
    warmup: c.warmup ?? 8,
    disk,
    nic,
    diskBytes,
  };
}

/** A pattern's seed: FNV-1a of its name folded into the study seed (never the mode). */
export function splitIoCaseSeed(seed: number, pattern: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < pattern.length; i++) h = Math.imul(h ^ pattern.charCodeAt(i), 0x01000193);
  return h >>> 0 || 1;
}
