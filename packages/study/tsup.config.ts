// d3-scale and its d3 dependencies ship as ES modules only: bundle them, so the CommonJS
// build needs no require() of an ES module.
import { defineConfig } from "tsup";

export default defineConfig({ noExternal: [/^d3-/, "internmap"] });
