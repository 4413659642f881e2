import {
  XENSTORE_PAYLOAD_MAX,
  XS_DIRECTORY,
  XS_ERROR,
  XS_READ,
  XS_TRANSACTION_START,
  XS_WATCH_EVENT,
  XS_WRITE,
} from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import { encodeMessage, MessageReader, Xenstored } from "../src/index";
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
