/*
 * A hostile guest against an in-process daemon: random bytes, random well-formed requests,
 * and mutations of valid ones, from unprivileged domains and a socket, over in-memory
 * connections. After every run the daemon still answers correctly and its tree,
 * permission and quota invariants hold.
 */
import {
  XS_CONTROL,
  XS_GET_PERMS,
  XS_MKDIR,
  XS_READ,
  XS_SET_PERMS,
  XS_TYPE_COUNT,
  XS_WRITE,
} from "@hyperlab/abi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeMessage, Xenstored } from "../src/index";
import { enc, Raw, z } from "./helpers";

const RUNS = process.env.HYPERLAB_LONG ? 2000 : 60;
const SEED = 0x5eed;

const segment = fc.constantFrom(
  "a",
  "b",
  "local",
  "domain",
  "1",
  "2",
  "0",
  "tool",
  "x-y",
  "@introduceDomain",
  "",
);
const path = fc.oneof(
  fc.array(segment, { minLength: 0, maxLength: 5 }).map((s) => `/${s.join("/")}`),
  fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join("/")),
  fc.constantFrom(
    "@releaseDomain",
    "@introduceDomain",
    "/local/domain/1",
    "/local/domain/2/x",
    "/",
    "",
    "//",
    "/a/",
  ),
);
const word = fc.oneof(
  path,
  fc.constantFrom("T", "F", "0", "1", "2", "n1", "r2", "b0", "w1", "n0", "check", "quota"),
  fc.string({ maxLength: 6 }),
);

const structured = fc
  .record({
    type: fc.oneof(fc.integer({ min: 0, max: XS_TYPE_COUNT + 2 }), fc.constant(0xffff)),
    tx: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4 }), fc.constant(0xffffffff)),
    words: fc.array(word, { maxLength: 4 }),
    tail: fc.boolean(),
  })
  .map(({ type, tx, words, tail }) => {
    const body = words.join("\0") + (tail && words.length > 0 ? "\0" : "");
    return encodeMessage(type, 1, tx, enc.encode(body));
  });

const mutated = fc
  .tuple(
    structured,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
  )
  .map(([m, flips]) => {
    const out = m.slice();
    for (const [i, v] of flips) out[i % out.length] = v;
    return out;
  });

const chunk = fc.oneof(
  { weight: 6, arbitrary: structured },
  { weight: 2, arbitrary: mutated },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) },
);

const action = fc.record({
  who: fc.integer({ min: 0, max: 2 }),
  bytes: chunk,
  split: fc.nat(),
  reconnect: fc.integer({ min: 0, max: 30 }),
});

describe("fuzz: hostile input never breaks the daemon", () => {
  it("keeps answering correctly with sound invariants", () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 60 }), (actions) => {
        const d = new Xenstored({ quotas: { nodes: 20, watches: 4, transactions: 3 } });
        const admin = new Raw(d);
        admin.q(XS_WRITE, "/secret\0s3cret");
        for (const id of [1, 2]) {
          admin.q(XS_MKDIR, z(`/local/domain/${id}`));
          admin.q(XS_SET_PERMS, z(`/local/domain/${id}`, `n${id}`));
        }
        const make = (who: number) => (who === 0 ? new Raw(d) : new Raw(d, who));
        const conns = [make(0), make(1), make(2)];
        for (const a of actions) {
          let c = conns[a.who];
          if (c.conn.isClosed || a.reconnect === 0) {
            c.conn.close();
            c = make(a.who);
            conns[a.who] = c;
          }
          // The socket connection only ever gets raw garbage (it is privileged).
          const bytes =
            a.who === 0 ? a.bytes.map((b) => (b === 0 ? 1 : b)).subarray(0, 16) : a.bytes;
          const cut = a.split % (bytes.length + 1);
          c.feed(bytes.subarray(0, cut));
          c.feed(bytes.subarray(cut));
        }
        expect(d.checkInvariants()).toEqual([]);
        // Security: the domains never reached dom0's secret.
        expect(admin.q(XS_READ, z("/secret"))).toBe("s3cret");
        expect(admin.q(XS_GET_PERMS, z("/secret"))).toBe("n0|");
        const g = new Raw(d, 1);
        expect(g.q(XS_READ, z("/secret"))).toBe("E:EACCES");
        // Quotas held.
        for (const id of [1, 2]) {
          const q = admin.q(XS_CONTROL, z("quota", String(id)));
          const nodes = Number(/nodes\s+:\s+(\d+)/.exec(q)?.[1] ?? "0");
          expect(nodes).toBeLessThanOrEqual(20);
        }
        // Still answers a correct request correctly.
        const fresh = new Raw(d);
        expect(fresh.q(XS_WRITE, "/after\0ok")).toBe("OK|");
        expect(fresh.q(XS_READ, z("/after"))).toBe("ok");
        for (const c of conns) c.conn.close();
        g.conn.close();
        fresh.conn.close();
        admin.conn.close();
        expect(d.connectionCount).toBe(0);
        expect(d.watchCount).toBe(0);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("messages cut anywhere and abrupt disconnects leak nothing", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(structured, fc.nat()), { maxLength: 20 }), (msgs) => {
        const d = new Xenstored();
        for (const [m, cut] of msgs) {
          const c = new Raw(d, 1);
          c.feed(m);
          c.feed(m.subarray(0, cut % (m.length + 1)));
          c.conn.close();
        }
        expect(d.connectionCount).toBe(0);
        expect(d.watchCount).toBe(0);
        expect(d.checkInvariants()).toEqual([]);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });
});
