/*
 * Reads struct and union layouts out of DWARF, as `readelf --debug-dump=info` prints it, so
 * the conformance test can check that a layout names every member of its C type.
 *
 * Invariant: a "leaf" is a member that is neither a struct nor a union, or an array (an
 * array of structs is one leaf: its elements cannot be named by a dotted path). Paths are
 * C member designators ("arch.max_pfn", "u.ref").
 */
import { execFileSync } from "node:child_process";

interface Die {
  tag: string;
  attrs: Record<string, string>;
  children: Die[];
}

export interface DwarfMember {
  offset: number;
  /** sizeof of the member, or of one element for an array. */
  size: number;
  /** Element count for an array member. */
  count?: number;
  /** True when the member is a struct or union (not an array of them). */
  aggregate: boolean;
}

export interface DwarfTypes {
  /** Byte size of `struct name` / `union name`, or undefined when the object lacks it. */
  sizeOf(cName: string): number | undefined;
  /** Every member path of the C type, aggregates and their members alike. */
  members(cName: string): Map<string, DwarfMember>;
}

const DIE_RE = /^\s*<(\d+)><([0-9a-f]+)>: Abbrev Number: \d+ \((DW_TAG_\w+)\)/;
const ATTR_RE = /^\s*<[0-9a-f]+>\s+(DW_AT_\w+)\s*:\s*(.*)$/;

function parse(text: string): { byOffset: Map<string, Die>; top: Die[] } {
  const byOffset = new Map<string, Die>();
  const stack: Die[] = [];
  const top: Die[] = [];
  let current: Die | undefined;
  for (const line of text.split("\n")) {
    const d = DIE_RE.exec(line);
    if (d) {
      const depth = Number(d[1]);
      current = { tag: d[3], attrs: {}, children: [] };
      byOffset.set(d[2], current);
      stack.length = depth;
      if (depth > 0 && stack[depth - 1]) stack[depth - 1].children.push(current);
      else top.push(current);
      stack[depth] = current;
      continue;
    }
    if (line.includes("Abbrev Number: 0")) {
      current = undefined;
      continue;
    }
    const a = ATTR_RE.exec(line);
    if (a && current) {
      let v = a[2].trim();
      const indirect = /^\(indirect (?:line )?string, offset: (?:0x[0-9a-f]+|0)\): (.*)$/.exec(v);
      if (indirect) v = indirect[1];
      current.attrs[a[1]] = v;
    }
  }
  return { byOffset, top };
}

/** Compiles nothing: reads the DWARF of an object file that gcc built with -g. */
export function readDwarf(objectFile: string): DwarfTypes {
  const text = execFileSync("readelf", ["--debug-dump=info", objectFile], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  const { byOffset } = parse(text);
  const ref = (die: Die): Die => {
    const m = /<0x([0-9a-f]+)>/.exec(die.attrs.DW_AT_type ?? "");
    if (!m) throw new Error(`DWARF: ${die.tag} without a type`);
    const t = byOffset.get(m[1]);
    if (!t) throw new Error(`DWARF: dangling type reference <0x${m[1]}>`);
    return t;
  };
  const strip = (t: Die): Die => {
    let x = t;
    while (
      x.tag === "DW_TAG_typedef" ||
      x.tag === "DW_TAG_const_type" ||
      x.tag === "DW_TAG_volatile_type"
    ) {
      x = ref(x);
    }
    return x;
  };
  const sizeOfType = (t: Die): number => {
    const s = strip(t);
    if (s.tag === "DW_TAG_array_type") {
      const { elem, count } = arrayInfo(s);
      return sizeOfType(elem) * count;
    }
    const b = s.attrs.DW_AT_byte_size;
    if (b === undefined) throw new Error(`DWARF: ${s.tag} without a size`);
    return Number(b);
  };
  const arrayInfo = (arr: Die): { elem: Die; count: number } => {
    let count = 1;
    for (const sub of arr.children) {
      if (sub.tag !== "DW_TAG_subrange_type") continue;
      if (sub.attrs.DW_AT_count !== undefined) count *= Number(sub.attrs.DW_AT_count);
      else if (sub.attrs.DW_AT_upper_bound !== undefined)
        count *= Number(sub.attrs.DW_AT_upper_bound) + 1;
      else count *= 0; // flexible array member
    }
    return { elem: ref(arr), count };
  };
  const isAggregate = (t: Die) =>
    t.tag === "DW_TAG_structure_type" || t.tag === "DW_TAG_union_type";

  const find = (cName: string): Die | undefined => {
    const [kw, name] = cName.split(/\s+/);
    const tag = kw === "union" ? "DW_TAG_union_type" : "DW_TAG_structure_type";
    for (const die of byOffset.values()) {
      if (die.tag === tag && die.attrs.DW_AT_name === name && die.children.length > 0) return die;
    }
    return undefined;
  };

  const walk = (agg: Die, base: number, prefix: string, out: Map<string, DwarfMember>) => {
    for (const m of agg.children) {
      if (m.tag !== "DW_TAG_member") continue;
      const off = base + Number(m.attrs.DW_AT_data_member_location ?? 0);
      const t = strip(ref(m));
      const name = m.attrs.DW_AT_name;
      if (name === undefined) {
        // Anonymous struct/union: its members are named as if they were the parent's.
        walk(t, off, prefix, out);
        continue;
      }
      const path = prefix + name;
      if (t.tag === "DW_TAG_array_type") {
        const { elem, count } = arrayInfo(t);
        out.set(path, { offset: off, size: sizeOfType(elem), count, aggregate: false });
      } else if (isAggregate(t)) {
        out.set(path, { offset: off, size: sizeOfType(t), aggregate: true });
        walk(t, off, `${path}.`, out);
      } else {
        out.set(path, { offset: off, size: sizeOfType(t), aggregate: false });
      }
    }
  };

  return {
    sizeOf(cName) {
      const d = find(cName);
      return d ? sizeOfType(d) : undefined;
    },
    members(cName) {
      const d = find(cName);
      if (!d) throw new Error(`DWARF: no definition of ${cName} in the test program`);
      const out = new Map<string, DwarfMember>();
      walk(d, 0, "", out);
      return out;
    },
  };
}
