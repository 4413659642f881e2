import {
  XS_MKDIR,
  XS_READ,
  XS_SET_PERMS,
  XS_TRANSACTION_END,
  XS_TRANSACTION_START,
  XS_WATCH,
  XS_WRITE,
  xenstore_domain_interface,
} from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import { encodeMessage, XENSTORED_DEFAULT_QUOTAS, Xenstored } from "../src/index";
import { Raw, RingHost, z } from "./helpers";

function guest(domid = 1, opts = {}) {
  const d = new Xenstored(opts);
  const dom0 = new Raw(d);
  dom0.q(XS_MKDIR, z(`/local/domain/${domid}`));
  dom0.q(XS_SET_PERMS, z(`/local/domain/${domid}`, `n${domid}`));
  return { d, dom0, g: new Raw(d, domid) };
}

describe("quotas (C xenstored 4.17 defaults, unprivileged domains only)", () => {
  it("has 4.17's defaults", () => {
    expect(XENSTORED_DEFAULT_QUOTAS).toMatchObject({
      nodes: 1000,
      watches: 128,
      transactions: 10,
      outstanding: 20,
      transactionNodes: 1024,
      nodeSize: 2048,
      pathMax: 2048,
      permissions: 5,
    });
  });

  it("nodes per domain: 1000, then ENOSPC; dom0 is not limited", () => {
    const { d, dom0, g } = guest();
    // Spread over sub-directories: one directory's child list would hit node-size first.
    let i = 0;
    for (; ; i++) {
      const r = g.q(XS_WRITE, `/local/domain/1/d${Math.floor(i / 100)}/n${i}\0`);
      if (r !== "OK|") {
        expect(r).toBe("E:ENOSPC");
        break;
      }
    }
    // The home (handed over by dom0) + 10 directories + the leaves = 1000 nodes.
    expect(dom0.q(0, z("quota", "1"))).toMatch(/nodes\s+:\s+1000\n/);
    expect(i).toBe(1000 - 1 - 10);
    // A multi-level create that would cross the limit fails as a whole.
    expect(g.q(XS_WRITE, "/local/domain/1/d0/n0\0still-writable")).toBe("OK|");
    for (let i = 0; i < 1100; i++) expect(dom0.q(XS_WRITE, `/dom0/n${i}\0`)).toBe("OK|");
    expect(d.checkInvariants()).toEqual([]);
  });

  it("node size: record (header, perms, value, child names) must stay under 2048 bytes", () => {
    const { dom0, g } = guest();
    // 24-byte header + one 8-byte perm + value < 2048.
    expect(g.q(XS_WRITE, `/local/domain/1/v\0${"x".repeat(2048 - 24 - 8 - 1)}`)).toBe("OK|");
    expect(g.q(XS_WRITE, `/local/domain/1/v\0${"x".repeat(2048 - 24 - 8)}`)).toBe("E:ENOSPC");
    expect(dom0.q(XS_WRITE, `/local/domain/1/v\0${"x".repeat(4000)}`)).toBe("OK|");
    // A directory whose child list grows past the limit refuses more children.
    let r = "OK|";
    let i = 0;
    for (; r === "OK|"; i++) r = g.q(XS_WRITE, `/local/domain/1/d/${"c".repeat(60)}${i}\0`);
    expect(r).toBe("E:ENOSPC");
    expect(i).toBeLessThan(40);
  });

  it("watches per domain: C allows 129 (its check is `> 128`), then E2BIG", () => {
    const { g } = guest();
    let n = 0;
    for (;;) {
      const r = g.q(XS_WATCH, z(`/local/domain/1/w${n}`, "t"));
      if (r !== "OK|") {
        expect(r).toBe("E:E2BIG");
        break;
      }
      n++;
    }
    expect(n).toBe(129);
  });

  it("transactions per connection: C allows 11 (its check is `> 10`), then ENOSPC", () => {
    const { g } = guest();
    let n = 0;
    for (;;) {
      const r = g.q(XS_TRANSACTION_START, z(""));
      if (!/^\d+\|$/.test(r)) {
        expect(r).toBe("E:ENOSPC");
        break;
      }
      n++;
    }
    expect(n).toBe(11);
  });

  it("nodes touched per transaction: 1024, then ENOSPC and the transaction fails", () => {
    const { dom0, g } = guest(1);
    for (let i = 0; i < 1100; i++) dom0.q(XS_WRITE, `/local/domain/1/r${i}\0`);
    dom0.q(XS_SET_PERMS, z("/local/domain/1", "n1"));
    const t = Number.parseInt(g.q(XS_TRANSACTION_START, z("")), 10);
    let failedAt = -1;
    for (let i = 0; i < 1100; i++) {
      if (g.q(XS_READ, z(`/local/domain/1/r${i}`), t) === "E:ENOSPC") {
        failedAt = i;
        break;
      }
    }
    expect(failedAt).toBe(1024);
    expect(g.q(XS_TRANSACTION_END, z("T"), t)).toBe("E:ENOMEM");
  });

  it("quotas can be lowered per daemon", () => {
    const { g } = guest(1, { quotas: { nodes: 3 } });
    expect(g.q(XS_WRITE, "/local/domain/1/a\0")).toBe("OK|");
    expect(g.q(XS_WRITE, "/local/domain/1/b\0")).toBe("OK|");
    expect(g.q(XS_WRITE, "/local/domain/1/c\0")).toBe("E:ENOSPC");
  });

  it("a hostile domain that never reads replies stalls at `outstanding` instead of queueing", () => {
    const h = new RingHost();
    const dom0 = new Raw(h.daemon);
    dom0.q(XS_MKDIR, z("/local/domain/9"));
    dom0.q(XS_SET_PERMS, z("/local/domain/9", "n9"));
    // No frontend: the test writes requests straight into the page.
    const daemon = h.daemon;
    expect(new Raw(daemon).q(0 + 8, z("9", "40", "1"))).toBe("OK|");
    const ring = h.rings.get(9)!;
    const base = 40 * 4096;
    const F = xenstore_domain_interface.fields;
    dom0.q(XS_WRITE, `/local/domain/9/v\0${"v".repeat(100)}`);
    const msg = encodeMessage(XS_READ, 1, 0, z("/local/domain/9/v"));
    let prod = 0;
    const n = Math.floor(1024 / msg.length);
    for (let k = 0; k < n; k++) {
      for (const b of msg) h.ram.write8(base + F.req.offset + (prod++ & 1023), b);
    }
    h.ram.write32(base + F.req_prod.offset, prod);
    ring.onEvent();
    // Replies are 116 bytes: 8 fill the reply ring (and part of a 9th), 20 wait in the
    // daemon ("outstanding"), the rest of the requests stay in the request ring.
    expect(h.ram.read32(base + F.req_cons.offset) / msg.length).toBe(8 + 20);
    expect(h.ram.read32(base + F.rsp_prod.offset)).toBe(1024);
    // The domain reads its replies: the daemon goes on until every request is answered.
    let answered = 0;
    for (let k = 0; k < 10; k++) {
      const p = h.ram.read32(base + F.rsp_prod.offset);
      answered += p - h.ram.read32(base + F.rsp_cons.offset);
      h.ram.write32(base + F.rsp_cons.offset, p);
      ring.onEvent();
    }
    expect(h.ram.read32(base + F.req_cons.offset)).toBe(prod);
    expect(answered).toBe(n * 116);
  });
});
