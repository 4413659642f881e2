import { hyperlabProject } from "../../vitest.shared";

export default hyperlabProject("xenstore");
