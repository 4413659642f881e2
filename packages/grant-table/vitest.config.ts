import { hyperlabProject } from "../../vitest.shared.ts";

export default hyperlabProject("grant-table");
