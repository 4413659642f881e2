import { hyperlabProject } from "../../vitest.shared";

export default hyperlabProject("pv-mmu");
