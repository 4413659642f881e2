import {
  XS_DIRECTORY,
  XS_MKDIR,
  XS_READ,
  XS_RM,
  XS_SET_PERMS,
  XS_TRANSACTION_END,
  XS_TRANSACTION_START,
  XS_WRITE,
} from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import { Xenstored } from "../src/index";
import { Raw, z } from "./helpers";

function start(r: Raw): number {
  return Number.parseInt(r.q(XS_TRANSACTION_START, z("")), 10);
}

describe("transactions", () => {
  it("ids start at 1 and differ per open transaction", () => {
    const r = new Raw(new Xenstored());
    expect([start(r), start(r), start(r)]).toEqual([1, 2, 3]);
  });

  it("see their own writes; others see them only after commit", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    const b = new Raw(d);
    a.q(XS_WRITE, "/k\0a");
    const t = start(a);
    a.q(XS_WRITE, "/k\0b", t);
    a.q(XS_WRITE, "/k/new\0n", t);
    expect(a.q(XS_READ, z("/k"), t)).toBe("b");
    expect(a.q(XS_READ, z("/k"))).toBe("a");
    expect(b.q(XS_READ, z("/k/new"))).toBe("E:ENOENT");
    expect(a.q(XS_DIRECTORY, z("/k"), t)).toBe("new|");
    expect(a.q(XS_TRANSACTION_END, z("T"), t)).toBe("OK|");
    expect(b.q(XS_READ, z("/k"))).toBe("b");
    expect(b.q(XS_READ, z("/k/new"))).toBe("n");
    expect(d.checkInvariants()).toEqual([]);
  });

  it("keep the value they read first even if it changes outside (snapshot per node)", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    a.q(XS_WRITE, "/k\0a");
    const t = start(a);
    expect(a.q(XS_READ, z("/k"), t)).toBe("a");
    a.q(XS_WRITE, "/k\0b");
    expect(a.q(XS_READ, z("/k"), t)).toBe("a");
    expect(a.q(XS_TRANSACTION_END, z("T"), t)).toBe("E:EAGAIN");
    expect(a.q(XS_READ, z("/k"))).toBe("b");
  });

  it("conflict: a node read first and changed (or deleted) since fails the commit with EAGAIN", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    const b = new Raw(d);
    a.q(XS_WRITE, "/c\0v");
    const t1 = start(a);
    a.q(XS_READ, z("/c"), t1);
    a.q(XS_WRITE, "/other\0x", t1);
    b.q(XS_RM, z("/c"));
    expect(a.q(XS_TRANSACTION_END, z("T"), t1)).toBe("E:EAGAIN");
    expect(b.q(XS_READ, z("/other"))).toBe("E:ENOENT");
    // Unrelated outside changes do not conflict.
    a.q(XS_WRITE, "/c\0v");
    const t2 = start(a);
    a.q(XS_READ, z("/c"), t2);
    b.q(XS_WRITE, "/elsewhere\0y");
    expect(a.q(XS_TRANSACTION_END, z("T"), t2)).toBe("OK|");
  });

  it("two transactions creating children of one parent: the second commit gets EAGAIN (C)", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    a.q(XS_MKDIR, z("/p"));
    const t1 = start(a);
    const t2 = start(a);
    a.q(XS_WRITE, "/p/one\x001", t1);
    a.q(XS_WRITE, "/p/two\x002", t2);
    expect(a.q(XS_TRANSACTION_END, z("T"), t1)).toBe("OK|");
    expect(a.q(XS_TRANSACTION_END, z("T"), t2)).toBe("E:EAGAIN");
    expect(a.q(XS_DIRECTORY, z("/p"))).toBe("one|");
  });

  it("rm inside a transaction, then recreate, commits consistently", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    a.q(XS_WRITE, "/s/a/b\0x");
    a.q(XS_WRITE, "/s/c\0y");
    const t = start(a);
    expect(a.q(XS_RM, z("/s/a"), t)).toBe("OK|");
    expect(a.q(XS_READ, z("/s/a/b"), t)).toBe("E:ENOENT");
    expect(a.q(XS_READ, z("/s/a/b"))).toBe("x");
    a.q(XS_WRITE, "/s/a\0again", t);
    expect(a.q(XS_TRANSACTION_END, z("T"), t)).toBe("OK|");
    expect(a.q(XS_READ, z("/s/a"))).toBe("again");
    expect(a.q(XS_DIRECTORY, z("/s/a"))).toBe("");
    expect(a.q(XS_DIRECTORY, z("/s"))).toBe("c|a|");
    expect(d.checkInvariants()).toEqual([]);
  });

  it("END takes T or F only; unknown ids ENOENT; START inside a transaction EBUSY", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    const t = start(a);
    expect(a.q(XS_TRANSACTION_END, z("X"), t)).toBe("E:EINVAL");
    expect(a.q(XS_TRANSACTION_END, "T", t)).toBe("E:EINVAL");
    expect(a.q(XS_TRANSACTION_START, z(""), t)).toBe("E:EBUSY");
    expect(a.q(XS_READ, z("/"), 77)).toBe("E:ENOENT");
    expect(a.q(XS_TRANSACTION_END, z("T"))).toBe("E:ENOENT");
    expect(a.q(XS_TRANSACTION_END, z("F"), t)).toBe("OK|");
    expect(a.q(XS_TRANSACTION_END, z("F"), t)).toBe("E:ENOENT");
    // Transactions are per connection.
    const t2 = start(a);
    expect(new Raw(d).q(XS_READ, z("/"), t2)).toBe("E:ENOENT");
  });

  it("a failed node creation marks the transaction failed: commit is refused (ENOMEM in 4.17)", () => {
    const d = new Xenstored();
    const dom0 = new Raw(d);
    dom0.q(XS_MKDIR, z("/local/domain/3"));
    dom0.q(XS_SET_PERMS, z("/local/domain/3", "n3"));
    const g = new Raw(d, 3);
    const t = start(g);
    expect(g.q(XS_WRITE, `/local/domain/3/a/b\0${"v".repeat(3000)}`, t)).toBe("E:ENOSPC");
    expect(g.q(XS_WRITE, "/local/domain/3/ok\0v", t)).toBe("OK|");
    expect(g.q(XS_TRANSACTION_END, z("T"), t)).toBe("E:ENOMEM");
    expect(g.q(XS_READ, z("/local/domain/3/ok"))).toBe("E:ENOENT");
  });

  it("a dropped connection's transactions are discarded", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    const t = start(a);
    a.q(XS_WRITE, "/gone\0v", t);
    a.conn.close();
    expect(new Raw(d).q(XS_READ, z("/gone"))).toBe("E:ENOENT");
    expect(d.checkInvariants()).toEqual([]);
  });
});
