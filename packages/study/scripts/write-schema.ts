// Writes config.schema.json from the zod schema of a study configuration.
import { writeFileSync } from "node:fs";
import { studyConfigJsonSchema } from "../src/config-schema";

const path = new URL("../config.schema.json", import.meta.url);
writeFileSync(path, `${JSON.stringify(studyConfigJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${path.pathname}\n`);
