/*
 * The conformance test: every export of @hyperlab/abi against Xen 4.17's installed headers.
 *
 * One C program includes the headers (see support/headers.ts for __XEN_TOOLS__) and prints
 * the value of each exported constant, the sizeof of each exported layout and the offsetof,
 * sizeof and element count of each of its fields; gcc builds it, the test runs it and
 * compares. The program's DWARF then says whether a layout names every member of its C
 * type. An export the program cannot check fails the test: it must be a number, a string,
 * a StructLayout, or a table listed in TABLES. The one exemption is src/x86-pte.ts, whose
 * bits no Xen header defines; test/x86-pte.test.ts checks them against hand-written values.
 */
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as errnoModule from "../src/errno";
import * as abi from "../src/index";
import type { StructLayout } from "../src/layout";
import * as pteModule from "../src/x86-pte";
import { type DwarfTypes, readDwarf } from "./support/dwarf";
import { type Built, buildAndRun, cString, PRELUDE, requirePeers } from "./support/headers";

/** Exports that are neither numbers, strings nor layouts; each has its own check below. */
const TABLES = new Set(["xsd_errors", "XEN_ERRNO_NAMES", "RING_SIZE_4K"]);

/** 64-bit constants exported as NAME_HI / NAME_LO halves: the C name of the whole. */
const HALVES = new Set([
  "HYPERVISOR_VIRT_START",
  "HYPERVISOR_VIRT_END",
  "MACH2PHYS_VIRT_START",
  "MACH2PHYS_VIRT_END",
  "XEN_RUNSTATE_UPDATE",
  "XENMEM_SHARING_OP_FIELD_IS_GREF_FLAG",
]);

/** Exports whose C spelling is an expression rather than the same name. */
const C_EXPR: Record<string, string> = {
  // A function-like macro in C: the mask it applies.
  MASK_XENSTORE_IDX: "MASK_XENSTORE_IDX(0xffffffffu)",
};

/** Errno names that the header hides behind __XEN__ (so the XEN_ enum lacks them). */
const ERRNO_XEN_ONLY = new Set(["EINTR", "ERESTART"]);

/**
 * Macros of the headers, in the families this package covers, that it deliberately does
 * not export. Any other macro of these families missing from the exports fails the test.
 */
const NOT_EXPORTED: Record<string, string> = {
  __HYPERVISOR_VIRT_START: "raw spelling of HYPERVISOR_VIRT_START (exported as halves)",
  __HYPERVISOR_VIRT_END: "raw spelling of HYPERVISOR_VIRT_END (exported as halves)",
  GNTTABOP_error_msgs: "an initializer of message strings for logs; GNTST_* carry the codes",
};
const COVERED_FAMILIES =
  /^(__HYPERVISOR_|MMUEXT_|MMU_|UVMF_|DOMID_|VMASST_|SIF_|VIRQ_|EVTCHNOP_|EVTCHNSTAT_|EVTCHN_|BIND_PIRQ_|GNTTABOP_|GTF_|_GTF_|GNTMAP_|_GNTMAP_|GNTST_|GNTCOPY_|_GNTCOPY_|GNTTAB_|XENMEM_|XENMEMF_|XENMAP|PHYSDEVOP_|XENIRQSTAT_|_XENIRQSTAT_|MAP_PIRQ_TYPE_|SCHEDOP_|SHUTDOWN_|VCPUOP_|RUNSTATE_|_VCPU_|VCPU_|XENSTORE_|XS_|BLKIF_|VDISK_|NETTXF_|_NETTXF_|NETRXF_|_NETRXF_|NETIF_RSP_|XEN_NETIF_|_XEN_NETIF_)/;

const exportsOf = (m: object) => new Set(Object.keys(m));
const errnoNames = exportsOf(errnoModule);
const pteNames = exportsOf(pteModule);

function isLayout(v: unknown): v is StructLayout {
  if (typeof v !== "object" || v === null) return false;
  const l = v as Partial<StructLayout>;
  return (
    typeof l.cName === "string" && typeof l.sizeof === "number" && typeof l.fields === "object"
  );
}

type Kind = "number" | "string" | "layout" | "table" | "exempt";

function classify(name: string, value: unknown): Kind | undefined {
  if (pteNames.has(name)) return "exempt";
  if (TABLES.has(name)) return "table";
  if (typeof value === "number") return "number";
  if (typeof value === "string") return "string";
  if (isLayout(value)) return "layout";
  return undefined;
}

/** The C expression whose value the export must equal. */
function cExprOf(name: string): string {
  if (C_EXPR[name]) return C_EXPR[name];
  if (errnoNames.has(name)) return `XEN_${name}`;
  const half = /^(.+)_(HI|LO)$/.exec(name);
  if (half && HALVES.has(half[1])) {
    return half[2] === "HI"
      ? `((unsigned long long)(${half[1]}) >> 32)`
      : `((unsigned long long)(${half[1]}) & 0xffffffffULL)`;
  }
  return name;
}

const entries = Object.entries(abi) as [string, unknown][];
const layouts = entries.filter(([n, v]) => classify(n, v) === "layout") as [string, StructLayout][];

function program(): string {
  let c = PRELUDE;
  // One object of each type, so that gcc emits its DWARF.
  layouts.forEach(([, l], i) => {
    c += `${l.cName} dwarf_${i};\n`;
  });
  c += "\nint main(void) {\n";
  for (const [name, value] of entries) {
    const kind = classify(name, value);
    if (kind === "number" && !(errnoNames.has(name) && ERRNO_XEN_ONLY.has(name))) {
      c += `  printf("N %s %lld\\n", ${cString(name)}, (long long)(${cExprOf(name)}));\n`;
    } else if (kind === "string") {
      c += `  printf("S %s %s\\n", ${cString(name)}, ${name});\n`;
    }
  }
  for (const [name, l] of layouts) {
    const t = l.cName;
    c += `  printf("Z %s %zu\\n", ${cString(name)}, sizeof(${t}));\n`;
    for (const [field, f] of Object.entries(l.fields)) {
      const m = `((${t} *)0)->${field}`;
      const key = cString(`${name}|${field}`);
      c +=
        f.count === undefined
          ? `  printf("F %s %zu %zu 0\\n", ${key}, offsetof(${t}, ${field}), sizeof(${m}));\n`
          : `  printf("F %s %zu %zu %zu\\n", ${key}, offsetof(${t}, ${field}), sizeof(${m}[0]), sizeof(${m}) / sizeof(${m}[0]));\n`;
    }
  }
  // errno.h, read again as Xen itself reads it: the whole list in header order.
  c += '#define __XEN__ 1\n#define XEN_ERRNO(name, value) printf("E %s %d\\n", #name, value);\n';
  c += "#include <xen/errno.h>\n#undef __XEN__\n";
  c += `  for (unsigned i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)\n`;
  c += `    printf("X %u %d %s\\n", i, xsd_errors[i].errnum, xsd_errors[i].errstring);\n`;
  for (const ring of Object.keys(abi.RING_SIZE_4K)) {
    c += `  printf("R %s %lu\\n", ${cString(ring)}, (unsigned long)__CONST_RING_SIZE(${ring}, 4096));\n`;
  }
  c += "  return 0;\n}\n";
  return c;
}

interface Results {
  numbers: Map<string, number>;
  strings: Map<string, string>;
  sizes: Map<string, number>;
  fields: Map<string, { offset: number; size: number; count: number }>;
  errnoList: [string, number][];
  xsdErrors: { errnum: number; errstring: string }[];
  rings: Map<string, number>;
}

function parse(stdout: string): Results {
  const r: Results = {
    numbers: new Map(),
    strings: new Map(),
    sizes: new Map(),
    fields: new Map(),
    errnoList: [],
    xsdErrors: [],
    rings: new Map(),
  };
  for (const line of stdout.split("\n")) {
    if (line === "") continue;
    const [tag, key, ...rest] = line.split(" ");
    if (tag === "N") r.numbers.set(key, Number(rest[0]));
    else if (tag === "S") r.strings.set(key, rest.join(" "));
    else if (tag === "Z") r.sizes.set(key, Number(rest[0]));
    else if (tag === "F")
      r.fields.set(key, { offset: Number(rest[0]), size: Number(rest[1]), count: Number(rest[2]) });
    else if (tag === "E") r.errnoList.push([key, Number(rest[0])]);
    else if (tag === "X") r.xsdErrors.push({ errnum: Number(rest[0]), errstring: rest[1] });
    else if (tag === "R") r.rings.set(key, Number(rest[0]));
  }
  return r;
}

let built: Built | undefined;
let res: Results;
let dwarf: DwarfTypes;

beforeAll(() => {
  requirePeers();
  built = buildAndRun(program());
  res = parse(built.stdout);
  dwarf = readDwarf(built.exe);
});

afterAll(() => built?.cleanup());

describe("every export of @hyperlab/abi", () => {
  it("is a number, a string, a StructLayout or a listed table", () => {
    const unchecked = entries
      .filter(([n, v]) => classify(n, v) === undefined)
      .map(([n, v]) => `${n} (${typeof v})`);
    expect(unchecked, "exports the conformance test cannot check").toEqual([]);
    for (const t of TABLES) expect(abi, `table ${t} is listed but not exported`).toHaveProperty(t);
  });

  it("is checked by the C program (none silently dropped)", () => {
    const missing: string[] = [];
    for (const [name, value] of entries) {
      const kind = classify(name, value);
      if (kind === "number" && !ERRNO_XEN_ONLY.has(name) && !res.numbers.has(name))
        missing.push(name);
      if (kind === "string" && !res.strings.has(name)) missing.push(name);
      if (kind === "layout" && !res.sizes.has(name)) missing.push(name);
    }
    expect(missing).toEqual([]);
  });
});

describe("constants", () => {
  it("equal the headers' values", () => {
    const wrong: string[] = [];
    for (const [name, value] of entries) {
      const kind = classify(name, value);
      if (kind === "number" && res.numbers.has(name) && res.numbers.get(name) !== value) {
        wrong.push(`${name}: ours ${value}, ${cExprOf(name)} is ${res.numbers.get(name)}`);
      }
      if (kind === "string" && res.strings.get(name) !== value) {
        wrong.push(
          `${name}: ours ${JSON.stringify(value)}, C has ${JSON.stringify(res.strings.get(name))}`,
        );
      }
    }
    expect(wrong).toEqual([]);
  });

  it("cover every macro of the families this package mirrors", () => {
    const macros = execFileSync("gcc", ["-dM", "-E", "-x", "c", "-"], {
      input: PRELUDE,
      encoding: "utf8",
    })
      .split("\n")
      .map((l) => /^#define ([A-Za-z_]\w*) /.exec(l)?.[1])
      .filter((n): n is string => n !== undefined && COVERED_FAMILIES.test(n));
    expect(macros.length).toBeGreaterThan(300);
    const halvesOf = (n: string) => `${n}_HI` in abi && `${n}_LO` in abi;
    const missing = macros.filter(
      (n) => !(n in abi) && !(n in C_EXPR) && !halvesOf(n) && !(n in NOT_EXPORTED),
    );
    expect(
      missing,
      "header macros with no export (export them or list them in NOT_EXPORTED)",
    ).toEqual([]);
  });
});

describe("errno", () => {
  it("exports each entry of errno.h under its macro argument name, with its value", () => {
    const ours = Object.fromEntries(
      entries.filter(([n]) => errnoNames.has(n) && n !== "XEN_ERRNO_NAMES"),
    );
    expect(ours).toEqual(Object.fromEntries(res.errnoList));
  });

  it("XEN_ERRNO_NAMES maps each number to the header's first name for it", () => {
    const first: Record<number, string> = {};
    for (const [name, value] of res.errnoList) first[value] ??= name;
    expect({ ...abi.XEN_ERRNO_NAMES }).toEqual(first);
    expect(Object.isFrozen(abi.XEN_ERRNO_NAMES)).toBe(true);
    expect(abi.XEN_ERRNO_NAMES[abi.EAGAIN]).toBe("EAGAIN");
    expect(abi.XEN_ERRNO_NAMES[abi.EDEADLOCK]).toBe("EDEADLK");
  });
});

describe("xs_wire.h xsd_errors", () => {
  it("matches the header's table entry by entry, in order", () => {
    expect(abi.xsd_errors.map((e) => ({ ...e }))).toEqual(res.xsdErrors);
  });

  it("is frozen and uses Xen's errno numbers", () => {
    expect(Object.isFrozen(abi.xsd_errors)).toBe(true);
    for (const e of abi.xsd_errors) {
      expect(Object.isFrozen(e)).toBe(true);
      expect((abi as unknown as Record<string, number>)[e.errstring]).toBe(e.errnum);
    }
  });
});

describe("ring.h", () => {
  it("RING_SIZE_4K equals __CONST_RING_SIZE(name, 4096)", () => {
    expect({ ...abi.RING_SIZE_4K }).toEqual(Object.fromEntries(res.rings));
    expect(Object.isFrozen(abi.RING_SIZE_4K)).toBe(true);
  });

  it("each shared ring's entries start after the 64-byte header and are one entry union wide", () => {
    const rings = [
      [abi.blkif_sring, abi.blkif_sring_entry],
      [abi.netif_tx_sring, abi.netif_tx_sring_entry],
      [abi.netif_rx_sring, abi.netif_rx_sring_entry],
    ] as const;
    for (const [sring, entry] of rings) {
      expect(sring.fields.ring.offset).toBe(64);
      expect(sring.fields.ring.size).toBe(entry.sizeof);
    }
  });
});

describe("struct layouts", () => {
  it("have the headers' sizeof, and each field its offsetof, size and count", () => {
    const wrong: string[] = [];
    for (const [name, l] of layouts) {
      if (res.sizes.get(name) !== l.sizeof) {
        wrong.push(`${name}: sizeof ours ${l.sizeof}, C ${res.sizes.get(name)}`);
      }
      for (const [field, f] of Object.entries(l.fields)) {
        const c = res.fields.get(`${name}|${field}`);
        if (!c) {
          wrong.push(`${name}.${field}: not printed`);
          continue;
        }
        const ours = `${f.offset}/${f.size}/${f.count ?? 0}`;
        const theirs = `${c.offset}/${c.size}/${c.count}`;
        if (ours !== theirs)
          wrong.push(`${name}.${field}: offset/size/count ours ${ours}, C ${theirs}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("name every member of their C type (from the program's DWARF), and nothing else", () => {
    const problems: string[] = [];
    for (const [name, l] of layouts) {
      const members = dwarf.members(l.cName);
      for (const path of members.keys()) {
        if (!(path in l.fields)) problems.push(`${name}: missing member ${path}`);
      }
      for (const field of Object.keys(l.fields)) {
        if (!members.has(field)) problems.push(`${name}: ${field} is not a member of ${l.cName}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("keep every field inside the struct", () => {
    const outside: string[] = [];
    for (const [name, l] of layouts) {
      for (const [field, f] of Object.entries(l.fields)) {
        if (f.offset + f.size * (f.count ?? 1) > l.sizeof) outside.push(`${name}.${field}`);
      }
    }
    expect(outside).toEqual([]);
  });
});

describe("the check program itself", () => {
  it("fails to compile when an export names something the headers lack", () => {
    requirePeers();
    expect(() =>
      buildAndRun(`${PRELUDE}int main(void) { return (int)(NO_SUCH_XEN_CONSTANT); }\n`),
    ).toThrow(/could not compile/);
  });

  it("fails, saying what to run, when the headers are missing", () => {
    expect(() => requirePeers("/nonexistent/xen/xen.h")).toThrow(
      /Xen's public headers \(\/nonexistent\/xen\/xen.h\).*node scripts\/peers\.mjs/,
    );
  });

  it("fails, saying why, on a host gcc would not build x86_64 layouts for", () => {
    expect(() => requirePeers(undefined, "arm64")).toThrow(
      /needs an x86_64 host \(this one is arm64\)/,
    );
  });

  it("reads DWARF for the layouts' types and refuses a type the program lacks", () => {
    expect(dwarf.sizeOf("struct vcpu_info_x86_64")).toBe(64);
    expect(dwarf.members("struct vcpu_info_x86_64").get("time.system_time")).toEqual({
      offset: 48,
      size: 8,
      aggregate: false,
    });
    expect(dwarf.sizeOf("struct no_such_struct")).toBeUndefined();
    expect(() => dwarf.members("struct no_such_struct")).toThrow(/no definition/);
  });

  it("rejects an export that is neither a number, a string, a layout nor a listed table", () => {
    expect(classify("someFunction", () => 1)).toBeUndefined();
    expect(classify("someObject", { a: 1 })).toBeUndefined();
    expect(classify("someArray", [1, 2])).toBeUndefined();
    expect(classify("someBigInt", 1n)).toBeUndefined();
    expect(classify("EINVAL", 22)).toBe("number");
    expect(classify("_PAGE_NX_HI", 0x80000000)).toBe("exempt");
  });
});
