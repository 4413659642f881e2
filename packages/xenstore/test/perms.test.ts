import {
  XS_DIRECTORY,
  XS_GET_PERMS,
  XS_MKDIR,
  XS_READ,
  XS_RM,
  XS_SET_PERMS,
  XS_WATCH,
  XS_WRITE,
} from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import { parsePerm, permToString, Xenstored } from "../src/index";
import { Raw, z } from "./helpers";

function setup() {
  const d = new Xenstored();
  const dom0 = new Raw(d);
  // The toolstack's layout: each domain owns its home.
  for (const id of [1, 2]) {
    dom0.q(XS_MKDIR, z(`/local/domain/${id}`));
    dom0.q(XS_SET_PERMS, z(`/local/domain/${id}`, `n${id}`));
  }
  return { d, dom0, g1: new Raw(d, 1), g2: new Raw(d, 2) };
}

describe("permission strings", () => {
  it("parse and print as C's xs_strings_to_perms / xs_perm_to_string", () => {
    expect(parsePerm("r5")).toEqual({ perms: 1, id: 5 });
    expect(parsePerm("b0x10")).toEqual({ perms: 3, id: 16 });
    expect(parsePerm("w010")).toEqual({ perms: 2, id: 8 });
    for (const bad of ["", "r", "x1", "r1a", "r 1x", "n08"]) expect(parsePerm(bad), bad).toBeNull();
    expect(permToString({ perms: 3, id: 2 })).toBe("b2");
    expect(permToString({ perms: 0, id: 0 })).toBe("n0");
    expect(permToString({ perms: 16 | 1, id: 4 })).toBe("r4");
  });
});

describe("access control", () => {
  it("a domain reads and writes only what its entries allow", () => {
    const { dom0, g1, g2 } = setup();
    expect(g1.q(XS_WRITE, "/local/domain/1/mine\0x")).toBe("OK|");
    expect(g2.q(XS_READ, z("/local/domain/1/mine"))).toBe("E:EACCES");
    expect(g2.q(XS_WRITE, "/local/domain/1/mine\0y")).toBe("E:EACCES");
    expect(g2.q(XS_WRITE, "/local/domain/1/new\0y")).toBe("E:EACCES");
    expect(g2.q(XS_DIRECTORY, z("/local/domain/1"))).toBe("E:EACCES");
    expect(g2.q(XS_RM, z("/local/domain/1/mine"))).toBe("E:EACCES");
    expect(g1.q(XS_WRITE, "/outside\0x")).toBe("E:EACCES");
    expect(g1.q(XS_READ, z("/tool"))).toBe("E:EACCES");
    // Grant domain 2 read.
    expect(g1.q(XS_SET_PERMS, z("/local/domain/1/mine", "n1", "r2"))).toBe("OK|");
    expect(g2.q(XS_READ, z("/local/domain/1/mine"))).toBe("x");
    expect(g2.q(XS_WRITE, "/local/domain/1/mine\0y")).toBe("E:EACCES");
    // Write-only for 2 via w; default letter for others.
    g1.q(XS_SET_PERMS, z("/local/domain/1/mine", "r1", "w2"));
    expect(g2.q(XS_WRITE, "/local/domain/1/mine\0z")).toBe("OK|");
    expect(g2.q(XS_READ, z("/local/domain/1/mine"))).toBe("E:EACCES");
    expect(dom0.q(XS_READ, z("/local/domain/1/mine"))).toBe("z");
    // The first matching entry wins.
    g1.q(XS_SET_PERMS, z("/local/domain/1/mine", "n1", "r2", "b2"));
    expect(g2.q(XS_WRITE, "/local/domain/1/mine\0q")).toBe("E:EACCES");
  });

  it("hides existence: ENOENT only when the closest existing ancestor grants the access", () => {
    const { g1, g2 } = setup();
    expect(g2.q(XS_READ, z("/local/domain/1/none"))).toBe("E:EACCES");
    expect(g2.q(XS_READ, z("/local/domain/1/none/deeper"))).toBe("E:EACCES");
    expect(g1.q(XS_READ, z("/local/domain/1/none/deeper"))).toBe("E:ENOENT");
    expect(g1.q(XS_READ, z("/local/domain/2/x"))).toBe("E:EACCES");
  });

  it("an unprivileged creator owns what it creates; a privileged one inherits the parent's owner", () => {
    const { dom0, g1 } = setup();
    dom0.q(XS_MKDIR, z("/shared"));
    dom0.q(XS_SET_PERMS, z("/shared", "n0", "b1"));
    expect(g1.q(XS_WRITE, "/shared/g1\0x")).toBe("OK|");
    expect(dom0.q(XS_GET_PERMS, z("/shared/g1"))).toBe("n1|b1|");
    dom0.q(XS_WRITE, "/shared/d0\0x");
    expect(dom0.q(XS_GET_PERMS, z("/shared/d0"))).toBe("n0|b1|");
  });

  it("SET_PERMS: owner only, no owner change by domains (EPERM), at most 5 entries, well-formed", () => {
    const { dom0, g1, g2 } = setup();
    g1.q(XS_WRITE, "/local/domain/1/n\0x");
    expect(g1.q(XS_SET_PERMS, z("/local/domain/1/n", "n2"))).toBe("E:EPERM");
    expect(g1.q(XS_SET_PERMS, z("/local/domain/1/n", "b1", "r2", "r3", "r4", "r5", "r6"))).toBe(
      "E:ENOSPC",
    );
    expect(g1.q(XS_SET_PERMS, z("/local/domain/1/n", "b1", "r2", "r3", "r4", "r5"))).toBe("OK|");
    expect(g1.q(XS_SET_PERMS, z("/local/domain/1/n", "q1"))).toBe("E:EINVAL");
    expect(g1.q(XS_SET_PERMS, z("/local/domain/1/n"))).toBe("E:EINVAL");
    // Write access is not ownership.
    g1.q(XS_SET_PERMS, z("/local/domain/1/n", "n1", "b2"));
    expect(g2.q(XS_WRITE, "/local/domain/1/n\0w")).toBe("OK|");
    expect(g2.q(XS_SET_PERMS, z("/local/domain/1/n", "b1"))).toBe("E:EACCES");
    // dom0 may hand a node to anyone, with any number of entries.
    expect(
      dom0.q(XS_SET_PERMS, z("/local/domain/1/n", "n2", "r1", "r3", "r4", "r5", "r6", "r7")),
    ).toBe("OK|");
    expect(g2.q(XS_SET_PERMS, z("/local/domain/1/n", "b2"))).toBe("OK|");
    // A domain that does not exist cannot own a node.
    const d2 = new Xenstored({ domainExists: (id) => id < 10 });
    const r = new Raw(d2);
    r.q(XS_MKDIR, z("/x"));
    expect(r.q(XS_SET_PERMS, z("/x", "n50"))).toBe("E:ENOENT");
    expect(r.q(XS_SET_PERMS, z("/x", "n0", "r50"))).toBe("OK|");
    expect(r.q(XS_GET_PERMS, z("/x"))).toBe("n0|r50|");
  });

  it("entries for live domains keep working through creates, rewrites and SET_PERMS", () => {
    const { d, dom0 } = setup();
    dom0.q(XS_MKDIR, z("/fe"));
    dom0.q(XS_SET_PERMS, z("/fe", "n0", "r1"));
    // A domain that appears after the node was written, then gets an entry.
    const g9 = new Raw(d, 9);
    dom0.q(XS_WRITE, "/fe/dev/x\0v");
    expect(new Raw(d, 1).q(XS_READ, z("/fe/dev/x"))).toBe("v");
    dom0.q(XS_WRITE, "/fe/dev/x\0w");
    expect(new Raw(d, 1).q(XS_READ, z("/fe/dev/x"))).toBe("w");
    expect(dom0.q(XS_SET_PERMS, z("/fe/dev/x", "n0", "r9"))).toBe("OK|");
    expect(g9.q(XS_READ, z("/fe/dev/x"))).toBe("w");
    // A domain first named by SET_PERMS (no connection yet) is not stale either.
    expect(dom0.q(XS_SET_PERMS, z("/fe/dev/x", "n0", "r33"))).toBe("OK|");
    dom0.q(XS_WRITE, "/fe/dev/x\0y");
    expect(new Raw(d, 33).q(XS_READ, z("/fe/dev/x"))).toBe("y");
  });

  it("GET_PERMS on @-names is EINVAL; SET_PERMS on them needs dom0-like rights", () => {
    const { dom0, g1 } = setup();
    expect(dom0.q(XS_GET_PERMS, z("@releaseDomain"))).toBe("E:EINVAL");
    expect(g1.q(XS_SET_PERMS, z("@releaseDomain", "n1"))).toBe("E:EACCES");
    expect(dom0.q(XS_SET_PERMS, z("@releaseDomain", "n0", "r1"))).toBe("OK|");
    expect(dom0.q(XS_SET_PERMS, z("@other", "n0"))).toBe("E:EINVAL");
  });

  it("watch events reach only watchers who may read the node or its parent", () => {
    const { dom0, g1, g2 } = setup();
    g1.q(XS_WRITE, "/local/domain/1/secret\0x");
    expect(g2.q(XS_WATCH, z("/local/domain/1", "spy"))).toBe("OK|");
    expect(g2.q(XS_WATCH, z("/", "all"))).toBe("OK|");
    g2.takeEvents();
    g1.q(XS_WRITE, "/local/domain/1/secret\0y");
    dom0.q(XS_WRITE, "/local/domain/1/secret\0z");
    expect(g2.takeEvents()).toEqual([]);
    // Readable parent is enough.
    g1.q(XS_SET_PERMS, z("/local/domain/1", "n1", "r2"));
    g2.takeEvents();
    g1.q(XS_WRITE, "/local/domain/1/secret\0w");
    expect(g2.takeEvents().sort()).toEqual([
      "/local/domain/1/secret|all",
      "/local/domain/1/secret|spy",
    ]);
  });

  it("a watcher losing access by SET_PERMS still gets that event (old perms count)", () => {
    const { g1, g2 } = setup();
    g1.q(XS_WRITE, "/local/domain/1/x\0v");
    g1.q(XS_SET_PERMS, z("/local/domain/1/x", "n1", "r2"));
    g2.q(XS_WATCH, z("/local/domain/1/x", "t"));
    g2.takeEvents();
    g1.q(XS_SET_PERMS, z("/local/domain/1/x", "n1"));
    expect(g2.takeEvents()).toEqual(["/local/domain/1/x|t"]);
    g1.q(XS_WRITE, "/local/domain/1/x\0v2");
    expect(g2.takeEvents()).toEqual([]);
  });
});
