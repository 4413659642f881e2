// The "Shared rings" example of README.md, run as written.
import { describe, expect, it } from "vitest";
import { BackRing, FrontRing, ringReplay, SharedRing } from "../src/index";

describe("README: Shared rings", () => {
  it("runs the example", () => {
    const sring = SharedRing.create("blkif"); // one zeroed 4 KiB ring page
    sring.init(); // SHARED_RING_INIT: producers 0, events 1
    const front = new FrontRing(sring);
    const back = new BackRing(sring);

    // Front end: a write request with id 7 in the slot at req_prod_pvt, then push.
    let off = front.nextRequestOffset();
    sring.view.setUint8(off, 1); // operation = BLKIF_OP_WRITE
    sring.view.setUint32(off + 8, 7, true); // id (low half)
    front.produceRequest();
    const kickBack = front.pushRequestsAndCheckNotify(); // true: req_event was 1

    // Back end: copy the request out before looking at it, answer it, push.
    const req = new Uint8Array(112);
    back.consumeRequest(req);
    off = back.nextResponseOffset(16); // zeroes the 16 bytes of blkif_response only
    sring.view.setUint32(off, req[8]!, true); // id
    sring.view.setUint8(off + 8, req[0]!); // operation
    back.produceResponse();
    const kickFront = back.pushResponsesAndCheckNotify(); // true: rsp_event was 1
    const idle = back.finalCheckForRequests(); // 0, and req_event is now req_cons + 1 = 2

    // The same exchange as a replay script.
    const { output, status } = ringReplay("ring blkif\nf.req operation=1 id=7\nf.push_notify\n");

    expect(kickBack).toBe(true);
    expect(kickFront).toBe(true);
    expect(idle).toBe(0);
    expect(sring.reqEvent).toBe(2);
    expect(sring.rspProd).toBe(1);
    expect(status).toBe(0);
    const lines = output.split("\n");
    expect(lines[0]).toMatch(/^1 ring size=32 entry=112 \| /);
    expect(lines[1]).toMatch(/^2 f\.req idx=0 slot=0 free_before=32 \| /);
    expect(lines[2]).toMatch(/^3 f\.push_notify notify=1 \| /);
    // The response kept the request's bytes beyond its own 16 (nr_segments.. sector_number).
    expect(sring.view.getUint32(64, true)).toBe(7);
  });
});
