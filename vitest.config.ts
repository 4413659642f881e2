import { defineConfig } from "vitest/config";

// One vitest project per package; `pnpm test:unit` at the root runs them all.
export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts"],
  },
});
