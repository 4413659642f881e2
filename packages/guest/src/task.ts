/*
 * What the kernel's task list holds of a process (Linux's task_struct as the kernel's tables
 * see it). The Process class (process.ts) is the one implementation; the kernel keeps only
 * this view, so the kernel's modules never import the program interface.
 */
import type { Vma } from "./mm";

export type ProcessState = "running" | "exited" | "killed";

/** What a process looks like from outside, comparable across backends. */
export interface ProcessSnapshot {
  pid: number;
  ppid: number;
  state: ProcessState;
  exitCode: number;
  signal: number;
  vmas: Vma[];
  /** Resident user pages (present PTEs). */
  rss: number;
}

/** A task in the kernel's pid table. */
export interface Task {
  readonly pid: number;
  readonly ppid: number;
  readonly state: ProcessState;
  snapshot(): ProcessSnapshot;
}
