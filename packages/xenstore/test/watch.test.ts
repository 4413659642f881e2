import {
  XS_MKDIR,
  XS_RM,
  XS_SET_PERMS,
  XS_TRANSACTION_END,
  XS_TRANSACTION_START,
  XS_UNWATCH,
  XS_WATCH,
  XS_WRITE,
} from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import { Xenstored } from "../src/index";
import { Raw, z } from "./helpers";

describe("watches", () => {
  it("fire once on registration, then for the node, its descendants, never for reads", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    const b = new Raw(d);
    expect(a.q(XS_WATCH, z("/w", "tok"))).toBe("OK|");
    expect(a.takeEvents()).toEqual(["/w|tok"]);
    b.q(XS_WRITE, "/w\0x");
    b.q(XS_WRITE, "/w/deep/er\0x");
    b.q(XS_WRITE, "/other\0x");
    b.q(XS_WRITE, "/wx\0x");
    expect(a.takeEvents()).toEqual(["/w|tok", "/w/deep/er|tok"]);
  });

  it("mkdir of an existing node fires nothing; creating one fires", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    a.q(XS_WATCH, z("/m", "t"));
    a.takeEvents();
    a.q(XS_MKDIR, z("/m"));
    expect(a.takeEvents()).toEqual(["/m|t"]);
    a.q(XS_MKDIR, z("/m"));
    expect(a.takeEvents()).toEqual([]);
  });

  it("a recursive rm fires watches on removed descendants with their own path", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    a.q(XS_WRITE, "/r/a/b\0x");
    a.q(XS_WATCH, z("/r/a/b", "deep"));
    a.q(XS_WATCH, z("/r", "top"));
    a.takeEvents();
    a.q(XS_RM, z("/r/a"));
    // Descendants fire exact watches only; ancestors see the removed root once.
    expect(a.takeEvents()).toEqual(["/r/a/b|deep", "/r/a|top"]);
  });

  it("relative watches report relative paths; the home itself is the empty path", () => {
    const d = new Xenstored();
    const dom0 = new Raw(d);
    dom0.q(XS_MKDIR, z("/local/domain/4"));
    dom0.q(XS_SET_PERMS, z("/local/domain/4", "n4"));
    const g = new Raw(d, 4);
    expect(g.q(XS_WATCH, z("device", "dev"))).toBe("OK|");
    expect(g.takeEvents()).toEqual(["device|dev"]);
    dom0.q(XS_WRITE, "/local/domain/4/device/vif/0\0x");
    expect(g.takeEvents()).toEqual(["device/vif/0|dev"]);
  });

  it("duplicate EEXIST, bad path EINVAL, wrong arity EINVAL, unwatch ENOENT when missing", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    expect(a.q(XS_WATCH, z("/x", "t"))).toBe("OK|");
    expect(a.q(XS_WATCH, z("/x", "t"))).toBe("E:EEXIST");
    expect(a.q(XS_WATCH, z("/x", "t2"))).toBe("OK|");
    expect(a.q(XS_WATCH, z("/x//y", "t"))).toBe("E:EINVAL");
    expect(a.q(XS_WATCH, z("/x"))).toBe("E:EINVAL");
    expect(a.q(XS_WATCH, z("/x", "t", "0"))).toBe("E:EINVAL");
    expect(a.q(XS_WATCH, z(`@${"a".repeat(2048)}`, "t"))).toBe("E:EINVAL");
    expect(a.q(XS_UNWATCH, z("/x", "t"))).toBe("OK|");
    expect(a.q(XS_UNWATCH, z("/x", "t"))).toBe("E:ENOENT");
    expect(a.q(XS_UNWATCH, z("/x"))).toBe("E:EINVAL");
    a.takeEvents();
    a.q(XS_WRITE, "/x\0v");
    expect(a.takeEvents()).toEqual(["/x|t2"]);
  });

  it("ignores tx_id on WATCH/UNWATCH", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    expect(a.q(XS_WATCH, z("/x", "t"), 999)).toBe("OK|");
    expect(a.q(XS_UNWATCH, z("/x", "t"), 999)).toBe("OK|");
  });

  it("transaction changes fire only at a successful commit; aborts fire nothing", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    const w = new Raw(d);
    w.q(XS_WATCH, z("/t", "t"));
    w.takeEvents();
    const id = Number.parseInt(a.q(XS_TRANSACTION_START, z("")), 10);
    a.q(XS_WRITE, "/t/x\0v", id);
    expect(w.takeEvents()).toEqual([]);
    a.q(XS_TRANSACTION_END, z("F"), id);
    expect(w.takeEvents()).toEqual([]);
    const id2 = Number.parseInt(a.q(XS_TRANSACTION_START, z("")), 10);
    a.q(XS_WRITE, "/t/x\0v", id2);
    expect(a.q(XS_TRANSACTION_END, z("T"), id2)).toBe("OK|");
    // C fires for the written node only, not for the parents the write created.
    expect(w.takeEvents()).toEqual(["/t/x|t"]);
  });

  it("@introduceDomain/@releaseDomain are not seen by a watch on /", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    a.q(XS_WATCH, z("/", "root"));
    a.q(XS_WATCH, z("@releaseDomain", "rel"));
    expect(a.takeEvents()).toEqual(["/|root", "@releaseDomain|rel"]);
  });

  it("identical pending events coalesce", () => {
    const d = new Xenstored();
    // A client that does not read: its output stays queued.
    const conn = d.connect({ onOutput: () => {} });
    const w = new Raw(d);
    const watch = new TextEncoder().encode("/c\0t\0");
    const hdr = new Uint8Array(16);
    new DataView(hdr.buffer).setUint32(0, XS_WATCH, true);
    new DataView(hdr.buffer).setUint32(12, watch.length, true);
    conn.feed(hdr);
    conn.feed(watch);
    for (const v of ["a", "b", "c"]) w.q(XS_WRITE, `/c\0${v}`);
    w.q(XS_WRITE, "/c/sub\0x");
    w.q(XS_WRITE, "/c/sub\0y");
    const types: number[] = [];
    for (let b = conn.peekOutput(); b !== undefined; b = conn.peekOutput()) {
      types.push(b[0]);
      conn.consumeOutput(b.length);
    }
    // OK, the registration event (the writes' events are identical to it), one /c/sub event.
    expect(types).toEqual([4, 15, 15]);
  });

  it("a dropped connection's watches are freed", () => {
    const d = new Xenstored();
    const a = new Raw(d);
    a.q(XS_WATCH, z("/x", "t"));
    a.q(XS_WATCH, z("/y", "t"));
    expect(d.watchCount).toBe(2);
    a.conn.close();
    expect(d.watchCount).toBe(0);
    new Raw(d).q(XS_WRITE, "/x\0v");
    expect(a.events.length).toBe(2);
    expect(d.checkInvariants()).toEqual([]);
  });
});
