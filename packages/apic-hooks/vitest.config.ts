import { hyperlabProject } from "../../vitest.shared.ts";

export default hyperlabProject("apic-hooks");
