import { hyperlabProject } from "../../vitest.shared.ts";

export default hyperlabProject("split-drivers");
