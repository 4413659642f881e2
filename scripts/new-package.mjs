#!/usr/bin/env node
// Creates the skeleton of a workspace package: node scripts/new-package.mjs <name> "<description>" [dep ...]
// Every package has the same build (tsup to ESM, CJS and .d.ts), test, lint, typecheck and
// package checks, so the root turbo tasks treat them all alike.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [name, description, ...deps] = process.argv.slice(2);
if (!name || !description) {
  console.error('usage: node scripts/new-package.mjs <name> "<description>" [dep ...]');
  process.exit(2);
}
const dir = join("packages", name);
mkdirSync(join(dir, "src"), { recursive: true });
mkdirSync(join(dir, "test"), { recursive: true });
const pkg = {
  name: `@hyperlab/${name}`,
  version: "0.1.0",
  description,
  license: "MIT",
  type: "module",
  sideEffects: false,
  main: "./dist/index.cjs",
  module: "./dist/index.js",
  types: "./dist/index.d.cts",
  exports: {
    ".": {
      import: { types: "./dist/index.d.ts", default: "./dist/index.js" },
      require: { types: "./dist/index.d.cts", default: "./dist/index.cjs" },
    },
    "./package.json": "./package.json",
  },
  files: ["dist", "README.md"],
  scripts: {
    build: "tsup src/index.ts --format esm,cjs --dts --clean --target node20",
    test: "vitest run",
    typecheck: "tsc --noEmit",
    lint: "biome check .",
    "check:package": "publint --strict && attw --pack . --quiet",
  },
  dependencies: Object.fromEntries(deps.map((d) => [`@hyperlab/${d}`, "workspace:*"])),
  engines: { node: ">=20" },
};
writeFileSync(join(dir, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
writeFileSync(
  join(dir, "tsconfig.json"),
  `${JSON.stringify({ extends: "../../tsconfig.base.json", include: ["src", "test", "bench"] }, null, 2)}\n`,
);
writeFileSync(
  join(dir, "vitest.config.ts"),
  `import { hyperlabProject } from "../../vitest.shared.ts";\n\nexport default hyperlabProject("${name}");\n`,
);
if (!existsSync(join(dir, "src/index.ts")))
  writeFileSync(join(dir, "src/index.ts"), "export {};\n");
execFileSync("pnpm", ["exec", "biome", "format", "--write", dir], { stdio: "ignore" });
console.log(`created ${dir}`);
