// Shared-ring throughput: blkif requests pushed by a front end, consumed (copied out) by a back
// end, answered, and the responses consumed, over a ring page in machine RAM; then the console
// copy loops.
import { blkif_request, blkif_response } from "@hyperlab/abi";
import { createMachine } from "@hyperlab/machine";
import { BackRing, FrontRing, RING_ENTRY_BYTES, SharedRing, XenconsInterface } from "../src/index";
import { benchBlk } from "./blk";
import { benchNet } from "./net";

function rate(label: string, unit: string, count: number, fn: () => void): void {
  fn(); // warm up
  const t0 = process.hrtime.bigint();
  fn();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`${label}: ${((count / ns) * 1e3).toFixed(2)} M${unit}/s`);
}

const F = blkif_request.fields;
const R = blkif_response.fields;
const SEG = F.seg!;

function blkifRoundTrips(sring: SharedRing, n: number): void {
  sring.init();
  const front = new FrontRing(sring);
  const back = new BackRing(sring);
  const dv = sring.view;
  const req = new Uint8Array(RING_ENTRY_BYTES.blkif);
  const reqDv = new DataView(req.buffer);
  const rsp = new Uint8Array(blkif_response.sizeof);
  const rspDv = new DataView(rsp.buffer);
  let sent = 0;
  let done = 0;
  let check = 0;
  while (done < n) {
    // Front end: fill the free slots with 4 KiB reads of two segments, push, maybe kick.
    while (sent < n && !front.full()) {
      const o = front.nextRequestOffset();
      dv.setUint8(o + F.operation!.offset, 0);
      dv.setUint8(o + F.nr_segments!.offset, 2);
      dv.setUint16(o + F.handle!.offset, 51712, true);
      dv.setUint32(o + F.id!.offset, sent, true);
      dv.setUint32(o + F.id!.offset + 4, 0, true);
      dv.setUint32(o + F.sector_number!.offset, sent * 8, true);
      dv.setUint32(o + F.sector_number!.offset + 4, 0, true);
      for (let s = 0; s < 2; s++) {
        const so = o + SEG.offset + s * SEG.size;
        dv.setUint32(so, 100 + s, true);
        dv.setUint8(so + 4, 0);
        dv.setUint8(so + 5, 3);
      }
      front.produceRequest();
      sent++;
    }
    front.pushRequestsAndCheckNotify();
    // Back end: take every request (copied out first), answer each.
    for (;;) {
      while (back.unconsumedRequests() !== 0) {
        back.consumeRequest(req);
        const o = back.nextResponseOffset(blkif_response.sizeof);
        dv.setUint32(o + R.id!.offset, reqDv.getUint32(F.id!.offset, true), true);
        dv.setUint32(o + R.id!.offset + 4, reqDv.getUint32(F.id!.offset + 4, true), true);
        dv.setUint8(o + R.operation!.offset, req[F.operation!.offset]!);
        dv.setInt16(o + R.status!.offset, 0, true);
        back.produceResponse();
      }
      if (back.finalCheckForRequests() === 0) break;
    }
    back.pushResponsesAndCheckNotify();
    // Front end: consume the responses.
    for (;;) {
      while (front.unconsumedResponses() !== 0) {
        front.consumeResponse(rsp);
        check += rspDv.getInt16(R.status!.offset, true);
        done++;
      }
      if (front.finalCheckForResponses() === 0) break;
    }
  }
  if (check !== 0 || done !== n) throw new Error("bench: lost a response");
}

const machine = createMachine({ ramBytes: 16 << 20, cpus: 1, seed: 1 });
const page = new SharedRing(machine.ram.frameBytes(7), RING_ENTRY_BYTES.blkif, 0);
const N = 2_000_000;
rate("blkif ring (order 0, 32 slots) request+response round trips", "req", N, () =>
  blkifRoundTrips(page, N),
);
const big = SharedRing.create("blkif", 4);
rate("blkif ring (order 4, 512 slots) request+response round trips", "req", N, () =>
  blkifRoundTrips(big, N),
);

const cons = XenconsInterface.create();
const line = new TextEncoder().encode("Linux version 6.1.0 (hyperlab) console line of output\n");
const sink = new Uint8Array(4096);
const LINES = 1_000_000;
rate("console out ring write+read", "bytes", LINES * line.length, () => {
  for (let i = 0; i < LINES; i++) {
    cons.writeOut(line);
    cons.readOut(sink);
  }
});

// Block split drivers end to end, one run per backend data mode.
await benchBlk();
// Network split drivers: packets per second through dom0's bridge.
await benchNet();
