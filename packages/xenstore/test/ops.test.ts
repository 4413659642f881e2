import {
  XS_CONTROL,
  XS_DIRECTORY,
  XS_DIRECTORY_PART,
  XS_GET_DOMAIN_PATH,
  XS_GET_PERMS,
  XS_INTRODUCE,
  XS_IS_DOMAIN_INTRODUCED,
  XS_MKDIR,
  XS_READ,
  XS_RELEASE,
  XS_RESET_WATCHES,
  XS_RESUME,
  XS_RM,
  XS_SET_PERMS,
  XS_SET_TARGET,
  XS_TRANSACTION_END,
  XS_TRANSACTION_START,
  XS_WATCH,
  XS_WRITE,
} from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import { Xenstored, XenstoreError } from "../src/index";
import { Raw, z } from "./helpers";

function fresh() {
  const d = new Xenstored();
  return { d, r: new Raw(d) };
}

describe("the initial tree", () => {
  it("has /, /tool, /tool/xenstored owned by dom0 with no access for others", () => {
    const { r } = fresh();
    expect(r.q(XS_DIRECTORY, z("/"))).toBe("tool|");
    expect(r.q(XS_DIRECTORY, z("/tool"))).toBe("xenstored|");
    for (const p of ["/", "/tool", "/tool/xenstored"]) expect(r.q(XS_GET_PERMS, z(p))).toBe("n0|");
  });
});

describe("paths", () => {
  it("rejects invalid names with EINVAL", () => {
    const { r } = fresh();
    for (const p of ["", "/a/", "/a//b", "/a b", "/a\u00e9", "/a.b", "/a:b", "//"]) {
      expect(r.q(XS_WRITE, `${p}\0v`), p).toBe("E:EINVAL");
      expect(r.q(XS_READ, z(p)), p).toBe("E:EINVAL");
    }
    expect(r.q(XS_READ, "/a")).toBe("E:EINVAL"); // no NUL
    expect(r.q(XS_READ, "/a\0/b\0")).toBe("E:EINVAL"); // two strings
    expect(r.q(XS_WRITE, "/nonul")).toBe("E:EINVAL");
    expect(r.q(XS_WRITE, z("/a-b_c@D9"))).toBe("OK|");
  });

  it("prefixes relative paths with /local/domain/0 for sockets and the domain's home otherwise", () => {
    const { d, r } = fresh();
    expect(r.q(XS_WRITE, "rel/x\0v")).toBe("OK|");
    expect(r.q(XS_READ, z("/local/domain/0/rel/x"))).toBe("v");
    r.q(XS_MKDIR, z("/local/domain/7"));
    r.q(XS_SET_PERMS, z("/local/domain/7", "n7"));
    const g = new Raw(d, 7);
    expect(g.q(XS_WRITE, "data\0w")).toBe("OK|");
    expect(r.q(XS_READ, z("/local/domain/7/data"))).toBe("w");
    expect(g.q(XS_READ, z("data"))).toBe("w");
  });

  it("limits path length below /local/domain/<id>/ to path-max, and elsewhere in total", () => {
    const { r } = fresh();
    const long = "a".repeat(2048);
    expect(r.q(XS_WRITE, `/local/domain/3/${long}\0v`)).toBe("OK|");
    expect(r.q(XS_WRITE, `/local/domain/3/${long}b\0v`)).toBe("E:EINVAL");
    expect(r.q(XS_WRITE, `/${"b".repeat(2047)}\0v`)).toBe("OK|");
    expect(r.q(XS_WRITE, `/${"b".repeat(2048)}\0v`)).toBe("E:EINVAL");
  });
});

describe("read, write, mkdir, rm, directory", () => {
  it("write creates missing parents with empty values and inherited perms", () => {
    const { r } = fresh();
    r.q(XS_MKDIR, z("/p"));
    r.q(XS_SET_PERMS, z("/p", "n0", "r4"));
    expect(r.q(XS_WRITE, "/p/q/r/s\0val")).toBe("OK|");
    expect(r.req(XS_READ, z("/p/q")).payload.length).toBe(0);
    expect(r.q(XS_GET_PERMS, z("/p/q/r"))).toBe("n0|r4|");
    expect(r.q(XS_READ, z("/p/q/r/s"))).toBe("val");
  });

  it("keeps binary values, NULs included", () => {
    const { r } = fresh();
    const p = new Uint8Array([...new TextEncoder().encode("/bin\0"), 0, 1, 255, 0]);
    r.q(XS_WRITE, p);
    expect([...r.req(XS_READ, z("/bin")).payload]).toEqual([0, 1, 255, 0]);
  });

  it("mkdir of an existing node acks without change", () => {
    const { r } = fresh();
    r.q(XS_WRITE, "/m\0keep");
    expect(r.q(XS_MKDIR, z("/m"))).toBe("OK|");
    expect(r.q(XS_READ, z("/m"))).toBe("keep");
  });

  it("rm: subtree goes; missing node under an existing parent is OK; missing parent ENOENT; / EINVAL", () => {
    const { d, r } = fresh();
    r.q(XS_WRITE, "/t/a/b\0x");
    r.q(XS_WRITE, "/t/c\0y");
    expect(r.q(XS_RM, z("/t/a"))).toBe("OK|");
    expect(r.q(XS_DIRECTORY, z("/t"))).toBe("c|");
    expect(r.q(XS_READ, z("/t/a/b"))).toBe("E:ENOENT");
    expect(r.q(XS_RM, z("/t/zz"))).toBe("OK|");
    expect(r.q(XS_RM, z("/t/zz/yy"))).toBe("E:ENOENT");
    expect(r.q(XS_RM, z("/"))).toBe("E:EINVAL");
    expect(r.q(XS_RM, z("bad//"))).toBe("E:EINVAL");
    expect(d.checkInvariants()).toEqual([]);
  });

  it("directory lists children in creation order", () => {
    const { r } = fresh();
    for (const n of ["z", "a", "m"]) r.q(XS_WRITE, `/o/${n}\0`);
    expect(r.q(XS_DIRECTORY, z("/o"))).toBe("z|a|m|");
    r.q(XS_RM, z("/o/a"));
    r.q(XS_WRITE, "/o/a\0");
    expect(r.q(XS_DIRECTORY, z("/o"))).toBe("z|m|a|");
    expect(r.q(XS_DIRECTORY, z("/o/none"))).toBe("E:ENOENT");
  });

  it("a DIRECTORY reply over XENSTORE_PAYLOAD_MAX becomes E2BIG; DIRECTORY_PART pages it", () => {
    const { r } = fresh();
    const names: string[] = [];
    for (let i = 0; i < 300; i++) {
      const n = `child-number-${i}`;
      names.push(n);
      r.q(XS_WRITE, `/big/${n}\0`);
    }
    expect(r.q(XS_DIRECTORY, z("/big"))).toBe("E:E2BIG");
    const got: string[] = [];
    let off = 0;
    let gen: string | null = null;
    for (;;) {
      const rep = r.req(XS_DIRECTORY_PART, z("/big", String(off)));
      expect(rep.payload.length).toBeLessThanOrEqual(4096);
      const parts = rep.text.split("|");
      gen ??= parts[0];
      expect(parts[0]).toBe(gen);
      const body = parts.slice(1);
      const done = rep.text.endsWith("||");
      const kids = body.filter((s) => s.length > 0);
      got.push(...kids);
      off += kids.reduce((a, k) => a + k.length + 1, 0);
      if (done) break;
    }
    expect(got).toEqual(names);
    expect(r.q(XS_DIRECTORY_PART, z("/big", "999999"))).toBe(`${gen}||`);
    expect(r.q(XS_DIRECTORY_PART, z("/big"))).toBe("E:EINVAL");
    expect(r.q(XS_DIRECTORY_PART, z("/nope", "0"))).toBe("E:ENOENT");
    // An empty directory's first chunk is just the end marker.
    r.q(XS_MKDIR, z("/empty"));
    expect(r.q(XS_DIRECTORY_PART, z("/empty", "0"))).toMatch(/^\d+\|\|$/);
  });
});

describe("domain queries", () => {
  it("GET_DOMAIN_PATH answers for any number, needs one argument", () => {
    const { d, r } = fresh();
    expect(r.q(XS_GET_DOMAIN_PATH, z("5"))).toBe("/local/domain/5|");
    expect(r.q(XS_GET_DOMAIN_PATH, z("-1"))).toBe("/local/domain/4294967295|");
    expect(r.q(XS_GET_DOMAIN_PATH, "5")).toBe("E:EINVAL");
    expect(new Raw(d, 9).q(XS_GET_DOMAIN_PATH, z("9"))).toBe("/local/domain/9|");
  });

  it("IS_DOMAIN_INTRODUCED: dom0 and DOMID_SELF yes, unknown no; privileged only", () => {
    const { d, r } = fresh();
    expect(r.q(XS_IS_DOMAIN_INTRODUCED, z("0"))).toBe("T|");
    expect(r.q(XS_IS_DOMAIN_INTRODUCED, z("32752"))).toBe("T|");
    expect(r.q(XS_IS_DOMAIN_INTRODUCED, z("12"))).toBe("F|");
    expect(r.q(XS_IS_DOMAIN_INTRODUCED, "")).toBe("E:EINVAL");
    const g = new Raw(d, 3);
    for (const t of [
      XS_IS_DOMAIN_INTRODUCED,
      XS_INTRODUCE,
      XS_RELEASE,
      XS_RESUME,
      XS_SET_TARGET,
      XS_CONTROL,
    ]) {
      expect(g.q(t, z("3"))).toBe("E:EACCES");
    }
  });

  it("INTRODUCE without a way to map pages, RELEASE/RESUME/SET_TARGET of unknown domains", () => {
    const { r } = fresh();
    expect(r.q(XS_INTRODUCE, z("4", "100", "0"))).toBe("E:EINVAL");
    expect(r.q(XS_INTRODUCE, z("4", "100"))).toBe("E:EINVAL");
    expect(r.q(XS_RELEASE, z("4"))).toBe("E:ENOENT");
    expect(r.q(XS_SET_TARGET, z("4", "5"))).toBe("E:ENOENT");
    // On its own the daemon accepts the introduction (as C does) with a ring nobody uses.
    expect(r.q(XS_INTRODUCE, z("4", "100", "5"))).toBe("OK|");
    expect(r.q(XS_IS_DOMAIN_INTRODUCED, z("4"))).toBe("T|");
    expect(r.q(XS_RELEASE, z("4"))).toBe("OK|");
    expect(r.q(XS_IS_DOMAIN_INTRODUCED, z("4"))).toBe("F|");
    expect(r.q(XS_RELEASE, z("4"))).toBe("E:ENOENT");
    expect(r.q(XS_RELEASE, z("0"))).toBe("E:EINVAL");
    expect(r.q(XS_RESUME, z("4"))).toBe("E:ENOENT");
    expect(r.q(XS_RESUME, "4")).toBe("E:EINVAL");
    expect(r.q(XS_SET_TARGET, z("4", "5"))).toBe("E:ENOENT");
    expect(r.q(XS_SET_TARGET, z("4"))).toBe("E:EINVAL");
  });
});

describe("RESET_WATCHES and CONTROL", () => {
  it("RESET_WATCHES removes the caller's watches and transactions", () => {
    const { d, r } = fresh();
    r.q(XS_WATCH, z("/", "t"));
    const tx = r.q(XS_TRANSACTION_START, z(""));
    expect(r.conn.stats).toEqual({ watches: 1, transactions: 1 });
    expect(r.q(XS_RESET_WATCHES, z(""))).toBe("OK|");
    expect(r.conn.stats).toEqual({ watches: 0, transactions: 0 });
    expect(d.watchCount).toBe(0);
    expect(r.q(XS_READ, z("/"), Number.parseInt(tx, 10))).toBe("E:ENOENT");
  });

  it("CONTROL: check, print, log, quota show/set/per domain, help; unknown EINVAL", () => {
    const { d, r } = fresh();
    expect(r.q(XS_CONTROL, z("check"))).toBe("OK|");
    expect(r.q(XS_CONTROL, z("print", "hello"))).toBe("OK|");
    expect(r.q(XS_CONTROL, z("log", "on"))).toBe("OK|");
    expect(r.q(XS_CONTROL, z("log", "maybe"))).toBe("E:EINVAL");
    expect(r.q(XS_CONTROL, z("quota"))).toMatch(/nodes\s+:\s+1000 Nodes per domain/);
    expect(r.q(XS_CONTROL, z("quota", "set", "nodes", "7"))).toBe("OK|");
    expect(d.quotas.nodes).toBe(7);
    expect(r.q(XS_CONTROL, z("quota", "set", "nodes", "0"))).toBe("E:EINVAL");
    expect(r.q(XS_CONTROL, z("quota", "set", "bogus", "3"))).toBe("E:EINVAL");
    expect(r.q(XS_CONTROL, z("quota", "0"))).toMatch(/^Domain 0:\|?\n?/);
    expect(r.q(XS_CONTROL, z("quota", "77"))).toBe("E:ENOENT");
    expect(r.q(XS_CONTROL, z("quota-soft"))).toMatch(/memory/);
    expect(r.q(XS_CONTROL, z("help"))).toMatch(/quota/);
    expect(r.q(XS_CONTROL, z("frobnicate"))).toBe("E:EINVAL");
    expect(r.q(XS_CONTROL, "")).toBe("E:EINVAL");
  });
});

describe("API misuse", () => {
  it("throws typed errors for bad options and domids", () => {
    expect(() => new Xenstored({ quotas: { nodes: 0 } })).toThrow(XenstoreError);
    const d = new Xenstored();
    expect(() => d.connect({ domid: -1, onOutput: () => {} })).toThrow(/domid/);
    expect(() => d.connect({ domid: 1.5, onOutput: () => {} })).toThrow(XenstoreError);
  });
});

describe("leaves share one empty child list until they get a child", () => {
  it("a child added under one leaf appears there only, in and out of transactions", () => {
    const { d, r } = fresh();
    for (const p of ["/s/a", "/s/b", "/s/c"]) expect(r.q(XS_WRITE, `${p}\0v`)).toBe("OK|");
    expect(r.q(XS_WRITE, "/s/a/x\0v")).toBe("OK|");
    expect(r.q(XS_DIRECTORY, z("/s/a"))).toBe("x|");
    expect(r.q(XS_DIRECTORY, z("/s/b"))).toBe("");
    const tx = Number(r.q(XS_TRANSACTION_START, z("")).replace("|", ""));
    expect(r.q(XS_WRITE, "/s/b/y\0v", tx)).toBe("OK|");
    expect(r.q(XS_DIRECTORY, z("/s/b"), tx)).toBe("y|");
    expect(r.q(XS_DIRECTORY, z("/s/c"), tx)).toBe("");
    expect(r.q(XS_DIRECTORY, z("/s/b"))).toBe("");
    expect(r.q(XS_TRANSACTION_END, z("T"), tx)).toBe("OK|");
    expect(r.q(XS_DIRECTORY, z("/s/b"))).toBe("y|");
    expect(r.q(XS_DIRECTORY, z("/s/c"))).toBe("");
    expect(r.q(XS_RM, z("/s/a/x"))).toBe("OK|");
    expect(r.q(XS_WRITE, "/s/d\0v")).toBe("OK|");
    expect(r.q(XS_DIRECTORY, z("/s/d"))).toBe("");
    expect(d.checkInvariants()).toEqual([]);
  });
});
