// Prints values the way libxl's yajl generator does in beautify mode: four-space indent, and an
// empty map or array still opens a blank line. Objects keep their key order.
export interface JsonObject {
  readonly obj: [string, JsonValue][];
}
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

export const obj = (pairs: [string, JsonValue][]): JsonObject => ({ obj: pairs });

export function printJson(v: JsonValue, indent = ""): string {
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  const inner = `${indent}    `;
  if (Array.isArray(v)) {
    if (v.length === 0) return `[\n\n${indent}]`;
    return `[\n${v.map((x) => inner + printJson(x, inner)).join(",\n")}\n${indent}]`;
  }
  if (v.obj.length === 0) return `{\n\n${indent}}`;
  return `{\n${v.obj.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${printJson(x, inner)}`).join(",\n")}\n${indent}}`;
}
