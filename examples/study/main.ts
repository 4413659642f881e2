// The default study: every workload on native, Xen PV direct paging, nested and shadow
// paging, plus the I/O workload and a small split-driver case (grant map, grant copy,
// persistent grants, virtio), from one seed. Prints the summary table and writes
// results.json, results.csv, report.html and config.json to out/study/ at the repository root.
import { fileURLToPath } from "node:url";
import { progressReporter, runDefaultStudy, summaryTable } from "@hyperlab/study";

const outDir = fileURLToPath(new URL("../../out/study/", import.meta.url));
const { results } = await runDefaultStudy(outDir, { onProgress: progressReporter(process.stderr) });
console.log(summaryTable(results));
console.log(`\nreport: ${outDir}report.html (results.json, results.csv, config.json beside it)`);
