// Property: no config text makes the xl.cfg code throw. Every outcome is either a parsed config
// (exit 0, JSON on stdout) or xl's messages on stderr with a non-zero exit, as xl would give.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { dryRunCreate, XlCfgError } from "../../src/index";

const LONG = process.env.HYPERLAB_LONG !== undefined;
const RUNS = LONG ? 20000 : 600;

const piece = fc.constantFrom(
  "name",
  "kernel",
  "memory",
  "vcpus",
  "maxvcpus",
  "cpus",
  "disk",
  "vif",
  "pci",
  "on_crash",
  "type",
  "uuid",
  "extra",
  "root",
  "cmdline",
  "=",
  "+=",
  " ",
  "\t",
  "\n",
  "\r\n",
  ";",
  ",",
  "[",
  "]",
  "#c\n",
  "#",
  '"',
  "'",
  "\\",
  "\\x41",
  "\\101",
  "\\7",
  "\\q",
  "\\n",
  "0x1f",
  "012",
  "1a",
  "-3",
  "99999999999999999999",
  '"/x.img,raw,xvda,rw"',
  '"vdev=xvdb,target=/a"',
  '"02:03.4@2,seize=1"',
  '"mac=00:16:3e:00:00:01,rate=10Mb/s@20ms"',
  '"0-3,^1"',
  '"g"',
  '"/k"',
  "@",
  "Z",
);

const base =
  'name = "g"\nkernel = "/k"\nvcpus = 2\ndisk = [ "/a,raw,xvda,rw" ]\nvif = [ "bridge=xenbr0" ]\n';

function checkOutcome(text: string): void {
  const r = dryRunCreate(text, "fuzz.cfg");
  expect(r.stderr.startsWith("Parsing config from fuzz.cfg\n")).toBe(true);
  if (r.exitCode === 0) {
    expect(r.stdout.startsWith("{\n")).toBe(true);
    expect(r.stdout.endsWith("\n}\n")).toBe(true);
  } else {
    expect(r.stdout).toBe("");
    expect([1, 3, 6]).toContain(r.exitCode);
    expect(r.stderr.length).toBeGreaterThan("Parsing config from fuzz.cfg\n".length);
  }
}

describe("xl.cfg never throws on file content", () => {
  it("random token soup", () => {
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (parts) => checkOutcome(parts.join(""))),
      { seed: 0x5eed14, numRuns: RUNS },
    );
  });

  it("a valid config with random mutations", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length), fc.nat(3), fc.string({ maxLength: 4 })), {
          maxLength: 6,
        }),
        (edits) => {
          let text = base;
          for (const [at, del, ins] of edits) text = text.slice(0, at) + ins + text.slice(at + del);
          checkOutcome(text);
        },
      ),
      { seed: 0x5eed15, numRuns: RUNS },
    );
  });

  it("arbitrary text, including NUL and non-ASCII", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (text) => checkOutcome(text)),
      { seed: 0x5eed16, numRuns: RUNS },
    );
  });
});

describe("API misuse throws typed errors", () => {
  it("rejects non-string text and an empty file name", () => {
    expect(() => dryRunCreate(42 as unknown as string, "a.cfg")).toThrow(XlCfgError);
    try {
      dryRunCreate("", "");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(XlCfgError);
      expect((e as XlCfgError).code).toBe("XLCFG_BAD_FILE_NAME");
    }
  });
});
