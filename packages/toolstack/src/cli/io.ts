// Where the CLI writes: the process's streams, or a test's capture.
import type { XlHost } from "../xl/types";

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Whether stderr is a terminal (progress is drawn in place there). Default false. */
  errIsTTY?: boolean;
  /**
   * Reaches the running host for xl's verbs (list, info, ...). Tests pass an in-memory
   * XlHost; when absent the verbs use the connector set with setXlHostConnector.
   */
  connectHost?: () => Promise<XlHost>;
}

export const processIo: CliIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  errIsTTY: process.stderr.isTTY === true,
};

/** One verb of `hyperlab`: a line for the top-level help, and how to run it. */
export interface Verb {
  summary: string;
  /** Runs `hyperlab VERB ARGS`; resolves to the exit status (0 ok, 1 failure, 2 usage). */
  run: (args: string[], io: CliIo) => Promise<number>;
}
