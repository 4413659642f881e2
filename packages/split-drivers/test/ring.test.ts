import { blkif_sring, netif_rx_sring, netif_tx_sring, RING_SIZE_4K } from "@hyperlab/abi";
import { createMachine } from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BackRing,
  FrontRing,
  RING_ENTRY_BYTES,
  RingError,
  ringSize,
  ringSizeFor,
  roundDownPow2,
  SharedRing,
} from "../src/index";

const LONG = process.env.HYPERLAB_LONG !== undefined;

describe("ring sizes", () => {
  it("are __RING_SIZE for orders 0..4 and agree with abi's one-page table and slot sizes", () => {
    expect([0, 1, 2, 3, 4].map((o) => ringSize("blkif", o))).toEqual([32, 64, 128, 256, 512]);
    expect([0, 1, 2, 3, 4].map((o) => ringSize("netif_tx", o))).toEqual([
      256, 512, 1024, 2048, 4096,
    ]);
    expect([0, 1, 2, 3, 4].map((o) => ringSize("netif_rx", o))).toEqual([
      256, 512, 1024, 2048, 4096,
    ]);
    for (const n of ["blkif", "netif_tx", "netif_rx"] as const)
      expect(ringSize(n)).toBe(RING_SIZE_4K[n]);
    expect(RING_ENTRY_BYTES.blkif).toBe(blkif_sring.fields.ring!.size);
    expect(RING_ENTRY_BYTES.netif_tx).toBe(netif_tx_sring.fields.ring!.size);
    expect(RING_ENTRY_BYTES.netif_rx).toBe(netif_rx_sring.fields.ring!.size);
    expect(roundDownPow2(0)).toBe(0);
    expect(roundDownPow2(0xffffffff)).toBe(0x80000000);
    expect(ringSizeFor(12, 4096)).toBe(256); // (4096-64)/12 = 336 -> 256
  });

  it("throws a RingError that says what to pass for a bad order, page or slot size", () => {
    const bad = (f: () => unknown, code: string, msg: RegExp) => {
      try {
        f();
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(RingError);
        expect((e as RingError).code).toBe(code);
        expect((e as Error).message).toMatch(msg);
      }
    };
    bad(() => ringSize("blkif", 5), "RING_BAD_ORDER", /from 0 to 4, got 5/);
    bad(() => SharedRing.create("blkif", -1), "RING_BAD_ORDER", /whole number/);
    bad(
      () => new SharedRing(new Uint8Array(4096), 112, 1),
      "RING_BAD_PAGES",
      /exactly 8192 bytes, got 4096/,
    );
    bad(
      () => new SharedRing(new Uint8Array(8192).subarray(2, 4098), 112),
      "RING_BAD_PAGES",
      /aligned/,
    );
    bad(
      () => new SharedRing(new Uint8Array(4096), 0),
      "RING_BAD_ENTRY",
      /sizeof the request\/response union/,
    );
  });
});

describe("a ring in machine RAM", () => {
  it("keeps its indices and slots in the frame, where the peer reads them", () => {
    const m = createMachine({ ramBytes: 1 << 20, cpus: 1, seed: 1 });
    const mfn = 9;
    const sring = new SharedRing(m.ram.frameBytes(mfn), RING_ENTRY_BYTES.blkif);
    sring.init();
    const base = mfn * 4096;
    expect([0, 4, 8, 12].map((o) => m.ram.read32(base + o))).toEqual([0, 1, 0, 1]);
    const front = new FrontRing(sring, 0);
    for (let i = 0; i < 33; i++) {
      const off = front.nextRequestOffset();
      sring.view.setUint32(off + 8, 1000 + i, true);
      front.produceRequest();
    }
    front.pushRequests();
    expect(m.ram.read32(base)).toBe(33);
    // Index 32 wrapped onto slot 0 (64 + 0 * 112): no flow control in the macros themselves.
    expect(m.ram.read32(base + 64 + 8)).toBe(1032);
    expect(m.ram.read32(base + 64 + 112 + 8)).toBe(1001);
    expect(front.freeRequests()).toBe(0xffffffff); // RING_SIZE - 33 in u32
  });

  it("copies a request out, so a front end rewriting the slot cannot change it", () => {
    const sring = SharedRing.create("blkif");
    sring.init();
    const front = new FrontRing(sring);
    const back = new BackRing(sring);
    sring.view.setUint8(front.nextRequestOffset() + 1, 2); // nr_segments = 2
    front.produceRequest();
    front.pushRequests();
    const copy = new Uint8Array(112);
    expect(back.consumeRequest(copy)).toBe(0);
    sring.view.setUint8(64 + 1, 200); // the front end changes its mind
    expect(copy[1]).toBe(2);
    expect(back.reqCons).toBe(1);
  });

  it("lets a response overwrite only its own bytes of the slot", () => {
    const sring = SharedRing.create("netif_tx");
    sring.init();
    sring.bytes.fill(0xaa, 64, 64 + 12);
    const back = new BackRing(sring);
    const off = back.nextResponseOffset(4);
    expect(Array.from(sring.bytes.subarray(off, off + 12))).toEqual([
      0,
      0,
      0,
      0,
      ...new Array(8).fill(0xaa),
    ]);
  });
});

/** One step of a well-behaved exchange, chosen at random. */
type Step =
  | "produce"
  | "push"
  | "consume"
  | "respond"
  | "pushRsp"
  | "backIdle"
  | "take"
  | "frontIdle";

describe("the protocol between well-behaved ends (fast-check)", () => {
  const step = fc.constantFrom<Step>(
    "produce",
    "push",
    "consume",
    "respond",
    "pushRsp",
    "backIdle",
    "take",
    "frontIdle",
  );
  const starts = fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0xffffff00, max: 0xffffffff }),
    fc.nat(),
  );

  it("never loses a wakeup, never overflows, and answers requests in order", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("blkif", "netif_tx", "netif_rx" as const),
        fc.integer({ min: 0, max: 2 }),
        starts,
        fc.array(step, { maxLength: 400 }),
        (name, order, start, steps) => {
          const sring = SharedRing.create(name, order);
          sring.reqProd = start;
          sring.rspProd = start;
          sring.reqEvent = (start + 1) >>> 0;
          sring.rspEvent = (start + 1) >>> 0;
          const front = new FrontRing(sring, start);
          const back = new BackRing(sring, start);
          const size = sring.size;
          let backAsleep = false;
          let frontAsleep = false;
          let nextId = 0;
          const pending: number[] = []; // ids the back end has consumed, unanswered
          let expectId = 0;
          const req = new Uint8Array(sring.entryBytes);
          const reqDv = new DataView(req.buffer);
          const rsp = new Uint8Array(sring.entryBytes);
          const rspDv = new DataView(rsp.buffer);
          for (const s of steps) {
            switch (s) {
              case "produce":
                if (front.full()) break;
                sring.view.setUint32(front.nextRequestOffset(), nextId++, true);
                front.produceRequest();
                break;
              case "push":
                if (front.pushRequestsAndCheckNotify()) backAsleep = false;
                break;
              case "consume":
                if (backAsleep || back.unconsumedRequests() === 0) break;
                expect(back.requestConsOverflow(back.reqCons)).toBe(false);
                back.consumeRequest(req);
                pending.push(reqDv.getUint32(0, true));
                break;
              case "respond": {
                const id = pending.shift();
                if (id === undefined) break;
                sring.view.setUint32(back.nextResponseOffset(4), id, true);
                back.produceResponse();
                break;
              }
              case "pushRsp":
                if (back.pushResponsesAndCheckNotify()) frontAsleep = false;
                break;
              case "backIdle":
                if (!backAsleep && back.finalCheckForRequests() === 0) backAsleep = true;
                break;
              case "take":
                if (frontAsleep || front.unconsumedResponses() === 0) break;
                front.consumeResponse(rsp);
                expect(rspDv.getUint32(0, true)).toBe(expectId++);
                break;
              case "frontIdle":
                if (!frontAsleep && front.finalCheckForResponses() === 0) frontAsleep = true;
                break;
            }
            // No lost wakeup: a sleeping end has nothing published it has not been told about.
            if (backAsleep) expect(back.unconsumedRequests()).toBe(0);
            if (frontAsleep) expect(front.unconsumedResponses()).toBe(0);
            expect(back.requestProdOverflow(sring.reqProd)).toBe(false);
            expect(front.responseProdOverflow(sring.rspProd)).toBe(false);
            expect((front.freeRequests() + ((front.reqProdPvt - front.rspCons) >>> 0)) >>> 0).toBe(
              size,
            );
            expect(front.freeRequests()).toBeLessThanOrEqual(size);
          }
        },
      ),
      { seed: 0x71a6, numRuns: LONG ? 3000 : 200 },
    );
  });

  it("keeps a back end inside its ring whatever req_prod a hostile front end writes", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 40 }),
        (start, reqProd, answered) => {
          const sring = SharedRing.create("blkif");
          const back = new BackRing(sring, start);
          // The back end has consumed `answered` requests and answered them.
          back.reqCons = (start + answered) >>> 0;
          back.rspProdPvt = (start + answered) >>> 0;
          sring.reqProd = reqProd;
          const copy = new Uint8Array(112);
          let taken = 0;
          while (back.unconsumedRequests() !== 0) {
            expect(back.requestConsOverflow(back.reqCons)).toBe(false);
            back.consumeRequest(copy);
            taken++;
          }
          // Never more than a ring of unanswered requests, however far req_prod runs.
          expect(taken).toBeLessThanOrEqual(sring.size);
          expect(back.requestConsOverflow(back.reqCons)).toBe(taken === sring.size);
          expect(back.requestProdOverflow(reqProd)).toBe(
            (reqProd - back.rspProdPvt) >>> 0 > sring.size,
          );
        },
      ),
      { seed: 0x40571e, numRuns: LONG ? 20000 : 1000 },
    );
  });
});
