import { fileURLToPath } from "node:url";
import { defineProject } from "vitest/config";

const packagesDir = fileURLToPath(new URL("./packages/", import.meta.url));

/**
 * The vitest project of one package. Workspace imports (`@hyperlab/x`) resolve to the
 * sibling package's source, so tests never wait for a build.
 */
export function hyperlabProject(name: string, extra: { testTimeout?: number } = {}) {
  return defineProject({
    resolve: {
      alias: [{ find: /^@hyperlab\/([a-z0-9-]+)$/, replacement: `${packagesDir}$1/src/index.ts` }],
    },
    test: {
      name,
      include: ["test/**/*.test.ts"],
      testTimeout: extra.testTimeout ?? 60_000,
    },
  });
}
