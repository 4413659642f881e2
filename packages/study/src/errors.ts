/*
 * The study's error codes. Every HyperlabError the study throws carries one of these, so a
 * caller (the CLI) tells configuration mistakes from failed runs by comparing codes, never
 * by matching a prefix.
 */
import { HyperlabError } from "@hyperlab/core";

/** Mistakes in what the user asked for: the configuration, its file, the results to compare. */
export const STUDY_CONFIG_ERROR_CODES = [
  "STUDY_BAD_CONFIG",
  "STUDY_BAD_COST",
  "STUDY_UNKNOWN_WORKLOAD",
  "STUDY_UNKNOWN_BACKEND",
  "STUDY_CONFIG_UNREADABLE",
  "STUDY_CONFIG_INVALID",
  "STUDY_BAD_RESULTS",
  "STUDY_BAD_CACHE",
  "STUDY_BAD_QUEUE",
] as const;

/**
 * What the host cannot give the study: a writable output directory, enough memory, a
 * reachable queue.
 */
export const STUDY_HOST_ERROR_CODES = [
  "STUDY_BAD_OUT_DIR",
  "STUDY_HOST_MEMORY",
  "STUDY_QUEUE_UNREACHABLE",
] as const;

/** A run that failed: the guest, the workload or a backend did not finish. */
export const STUDY_RUN_ERROR_CODES = [
  "STUDY_UNSUPPORTED",
  "STUDY_NO_PROCESS",
  "STUDY_GUEST_FAILED",
  "STUDY_OUT_OF_MEMORY",
  "STUDY_SEGV",
  "STUDY_BAD_MMAP",
  "STUDY_WORKER_FAILED",
  "STUDY_IO_FAILED",
] as const;

export type StudyConfigErrorCode = (typeof STUDY_CONFIG_ERROR_CODES)[number];
export type StudyHostErrorCode = (typeof STUDY_HOST_ERROR_CODES)[number];
export type StudyRunErrorCode = (typeof STUDY_RUN_ERROR_CODES)[number];
/** Every code of a HyperlabError thrown by @hyperlab/study. */
export type StudyErrorCode = StudyConfigErrorCode | StudyHostErrorCode | StudyRunErrorCode;

export const STUDY_ERROR_CODES: readonly StudyErrorCode[] = [
  ...STUDY_CONFIG_ERROR_CODES,
  ...STUDY_HOST_ERROR_CODES,
  ...STUDY_RUN_ERROR_CODES,
];

/** A study error with its typed code. */
export function studyError(code: StudyErrorCode, message: string): HyperlabError<StudyErrorCode> {
  return new HyperlabError<StudyErrorCode>(code, message);
}
