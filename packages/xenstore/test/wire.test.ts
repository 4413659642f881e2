import {
  XENSTORE_PAYLOAD_MAX,
  XS_DIRECTORY,
  XS_ERROR,
  XS_READ,
  XS_TRANSACTION_START,
  XS_WATCH_EVENT,
  XS_WRITE,
} from "@hyperlab/abi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeMessage, MessageReader, Xenstored } from "../src/index";
import { decodeLatin1 } from "../src/wire";
import { enc, Raw, z } from "./helpers";

describe("framing (xs_wire.h)", () => {
  it("encodes the golden READ vector byte for byte", () => {
    const m = encodeMessage(XS_READ, 0, 6, z("/a/b/c"));
    expect([...m]).toEqual([
      2,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      6,
      0,
      0,
      0,
      7,
      0,
      0,
      0,
      ...enc.encode("/a/b/c\0"),
    ]);
  });

  it("answers messages split byte by byte and several in one chunk", () => {
    const d = new Xenstored();
    const r = new Raw(d);
    const w = encodeMessage(XS_WRITE, 7, 0, enc.encode("/x\0val"));
    const rd = encodeMessage(XS_READ, 8, 0, z("/x"));
    for (const b of w) r.feed(new Uint8Array([b]));
    expect(r.replies.map((x) => [x.reqId, x.text])).toEqual([[7, "OK|"]]);
    const both = new Uint8Array(w.length + rd.length);
    both.set(w);
    both.set(rd, w.length);
    r.feed(both);
    expect(r.replies.map((x) => [x.reqId, x.text])).toEqual([
      [7, "OK|"],
      [7, "OK|"],
      [8, "val"],
    ]);
    // Half a header, then the rest together with another whole message.
    r.feed(rd.subarray(0, 5));
    expect(r.replies.length).toBe(3);
    const rest = new Uint8Array(rd.length - 5 + rd.length);
    rest.set(rd.subarray(5));
    rest.set(rd, rd.length - 5);
    r.feed(rest);
    expect(r.replies.slice(3).map((x) => x.text)).toEqual(["val", "val"]);
  });

  it("echoes type, req_id and tx_id; errors carry the request's ids", () => {
    const d = new Xenstored();
    const r = new Raw(d);
    const tx = r.req(XS_TRANSACTION_START, z(""));
    expect(tx.type).toBe(XS_TRANSACTION_START);
    expect(tx.text).toBe("1|");
    const rep = r.req(XS_READ, z("/nope"), 1);
    expect([rep.type, rep.txId, rep.text]).toEqual([XS_ERROR, 1, "ENOENT|"]);
  });

  it("READ replies carry no trailing NUL, DIRECTORY one NUL per child, empty dir empty", () => {
    const d = new Xenstored();
    const r = new Raw(d);
    r.q(XS_WRITE, "/d/a\0x");
    r.q(XS_WRITE, "/d/b\0y");
    expect([...r.req(XS_READ, z("/d/a")).payload]).toEqual([120]);
    expect(r.q(XS_DIRECTORY, z("/d"))).toBe("a|b|");
    expect(r.req(XS_DIRECTORY, z("/d/a")).payload.length).toBe(0);
  });

  it("drops a connection announcing a payload over XENSTORE_PAYLOAD_MAX, as C does", () => {
    const d = new Xenstored();
    const r = new Raw(d);
    r.q(XS_WRITE, "/w\0v");
    const hdr = new Uint8Array(16);
    new DataView(hdr.buffer).setUint32(0, XS_READ, true);
    new DataView(hdr.buffer).setUint32(12, XENSTORE_PAYLOAD_MAX + 1, true);
    expect(r.feed(hdr)).toBe(false);
    expect(r.dropped).toMatch(/payload/);
    expect(r.conn.isClosed).toBe(true);
    expect(d.connectionCount).toBe(0);
    expect(r.feed(encodeMessage(XS_READ, 1, 0, z("/w")))).toBe(false);
    // Exactly XENSTORE_PAYLOAD_MAX is fine.
    const ok = new Raw(d);
    const big = new Uint8Array(XENSTORE_PAYLOAD_MAX);
    big.set(enc.encode("/big\0"));
    expect(ok.q(XS_WRITE, big)).toBe("OK|");
    expect(d.checkInvariants()).toEqual([]);
  });

  it("answers unknown and reply-only types with ENOSYS", () => {
    const r = new Raw(new Xenstored());
    for (const t of [XS_WATCH_EVENT, XS_ERROR, 20, 23, 24, 25, 26, 0xffff, 0xffffffff]) {
      expect(r.q(t, z("/"))).toBe("E:ENOSYS");
    }
  });

  it("MessageReader reports what it still needs", () => {
    const mr = new MessageReader();
    expect(mr.needed).toBe(16);
    const m = encodeMessage(XS_READ, 1, 0, z("/a"));
    const got: number[] = [];
    mr.push(m.subarray(0, 16), (x) => got.push(x.type));
    expect(mr.needed).toBe(3);
    mr.push(m.subarray(16), (x) => got.push(x.type));
    expect(got).toEqual([XS_READ]);
    expect(mr.needed).toBe(16);
  });
});

describe("framing fast paths (whole messages read in place, output gathered once)", () => {
  const runs = process.env.HYPERLAB_LONG === "1" ? 2000 : 200;

  it("MessageReader yields the same messages however a byte stream is cut", () => {
    const msg = fc.record({
      type: fc.nat(0xffff_ffff),
      reqId: fc.nat(0xffff_ffff),
      txId: fc.nat(0xffff_ffff),
      payload: fc.uint8Array({ maxLength: 200 }),
    });
    fc.assert(
      fc.property(fc.array(msg, { maxLength: 12 }), fc.array(fc.nat(300)), (msgs, cuts) => {
        const wire = msgs.map((m) => encodeMessage(m.type, m.reqId, m.txId, m.payload));
        const all = new Uint8Array(wire.reduce((n, w) => n + w.length, 0));
        let o = 0;
        for (const w of wire) {
          all.set(w, o);
          o += w.length;
        }
        const r = new MessageReader();
        const got: { type: number; reqId: number; txId: number; payload: Uint8Array }[] = [];
        let at = 0;
        for (const c of [...cuts, all.length]) {
          const end = Math.min(all.length, at + c);
          // A Buffer chunk, as a socket delivers, scribbled over after the reader saw it:
          // the payloads it handed out must be copies, and plain Uint8Arrays.
          const chunk = Buffer.from(all.subarray(at, end));
          expect(r.push(chunk, (m) => got.push(m))).toBe(true);
          chunk.fill(0xee);
          at = end;
        }
        expect(r.partial).toBe(0);
        expect(got.length).toBe(msgs.length);
        for (let i = 0; i < msgs.length; i++) {
          expect(got[i].type).toBe(msgs[i].type);
          expect(got[i].reqId).toBe(msgs[i].reqId);
          expect(got[i].txId).toBe(msgs[i].txId);
          expect(Object.getPrototypeOf(got[i].payload)).toBe(Uint8Array.prototype);
          expect([...got[i].payload]).toEqual([...msgs[i].payload]);
        }
      }),
      { seed: 0x5eed29, numRuns: runs },
    );
  });

  it("decodes paths as Latin-1, byte for char, 0x80-0xff included (not windows-1252)", () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const s = decodeLatin1(bytes);
    expect(s.length).toBe(256);
    for (let i = 0; i < 256; i++) expect(s.charCodeAt(i)).toBe(i);
    expect(decodeLatin1(bytes, 0x80, 0x83)).toBe("\u0080\u0081\u0082");
    expect(decodeLatin1(bytes, 5, 5)).toBe("");
  });

  it("takeAllOutput gathers every queued message, after a partial send, into alloc's array", () => {
    const d = new Xenstored();
    const c = d.connect({ onOutput: () => {} });
    const w = encodeMessage(XS_WRITE, 1, 0, enc.encode("/x\0".concat("v".repeat(100))));
    c.feed(w);
    c.feed(encodeMessage(XS_READ, 2, 0, z("/x")));
    c.feed(encodeMessage(XS_READ, 3, 0, z("/nope")));
    const whole = [...c.peekOutput()!];
    c.consumeOutput(5);
    const sizes: number[] = [];
    const out = c.takeAllOutput((n) => {
      sizes.push(n);
      return Buffer.alloc(n);
    });
    expect(Buffer.isBuffer(out)).toBe(true);
    const ok = encodeMessage(XS_WRITE, 1, 0, z("OK"));
    const val = encodeMessage(XS_READ, 2, 0, enc.encode("v".repeat(100)));
    const err = encodeMessage(XS_ERROR, 3, 0, z("ENOENT"));
    expect(whole).toEqual([...ok]);
    const expected = [...ok.subarray(5), ...val, ...err];
    expect(sizes).toEqual([expected.length]);
    expect([...out!]).toEqual(expected);
    expect(c.takeAllOutput(Buffer.allocUnsafe)).toBeUndefined();
    expect(c.stats).toEqual({ watches: 0, transactions: 0 });
  });
});
