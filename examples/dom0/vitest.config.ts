import { hyperlabProject } from "../../vitest.shared.ts";

export default hyperlabProject("example-dom0");
