#!/usr/bin/env node
// The `hyperlab` executable: hands its arguments to runCli and exits with its status.
import { runCli } from "./main";

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(
      `hyperlab: internal error (a bug, please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exit(70);
  },
);
