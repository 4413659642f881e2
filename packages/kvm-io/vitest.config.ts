import { hyperlabProject } from "../../vitest.shared.ts";

export default hyperlabProject("kvm-io");
