#!/usr/bin/env node
// The `hyperlab` command. In a clone (src/ present) it runs the sources through tsx, with
// workspace packages mapped to their sources, so it works right after `pnpm install` and is
// never stale; an installed package has no src/ and runs the built dist/cli.js.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const src = new URL("../src/cli.ts", import.meta.url);
if (existsSync(fileURLToPath(src))) {
  const { register } = await import("tsx/esm/api");
  register({ tsconfig: fileURLToPath(new URL("../tsconfig.source.json", import.meta.url)) });
  await import(src.href);
} else {
  await import(new URL("../dist/cli.js", import.meta.url).href);
}
