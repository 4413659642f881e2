import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { resolveConfig, STUDY_CONFIG_FIELDS, studyConfigJsonSchema } from "../src/index";

const file = new URL("../config.schema.json", import.meta.url);

describe("the published JSON Schema of a study config", () => {
  it("is up to date with the zod schema (run `pnpm --filter @hyperlab/study run schema`)", () => {
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual(studyConfigJsonSchema());
  });

  it("is shipped in the package and exported", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect(pkg.files).toContain("config.schema.json");
    expect(pkg.exports["./config.schema.json"]).toBe("./config.schema.json");
  });

  it("names every field resolveConfig accepts, and rejects others", () => {
    const schema = studyConfigJsonSchema() as {
      properties: Record<string, unknown>;
      additionalProperties: boolean;
    };
    expect(Object.keys(schema.properties).filter((k) => k !== "$schema")).toEqual([
      ...STUDY_CONFIG_FIELDS,
    ]);
    expect(schema.additionalProperties).toBe(false);
    expect(() => resolveConfig({ $schema: "./config.schema.json", seed: 2 })).not.toThrow();
  });
});
