import { hyperlabProject } from "../../vitest.shared.ts";

export default hyperlabProject("example-split-drivers", { testTimeout: 120_000 });
