// Packets per second from one domU through netfront, netback, dom0's bridge and netback
// again into another domU's netfront, for 64-byte and 1500-byte frames, with the per-packet
// counts of hypercalls, grant copies, notifications and bytes copied.
import { ethFrame, netWorld } from "../test/net-world";

const MAC_A = "00:16:3e:00:00:0a";
const MAC_B = "00:16:3e:00:00:0b";

type Snap = Record<string, number>;
function snap(
  w: Awaited<ReturnType<typeof netWorld>>,
  fronts: { stats: { snapshot(): Record<string, { name: string; value: number }[]> } }[],
): Snap {
  const out: Snap = {};
  for (const s of w.back.stats.snapshot().netback!) out[`back.${s.name}`] = s.value;
  for (const f of fronts)
    for (const s of f.stats.snapshot().netfront!)
      out[`front.${s.name}`] = (out[`front.${s.name}`] ?? 0) + s.value;
  return out;
}

export async function benchNet(): Promise<void> {
  for (const [size, n] of [
    [64, 20_000],
    [1500, 10_000],
  ] as const) {
    const w = await netWorld({ back: { rxStagePages: 64 } });
    const a = await w.bootVif(MAC_A, { txPages: 96, rxBuffers: 16 }, 0, false);
    const b = await w.bootVif(MAC_B, { txPages: 8, rxBuffers: 128 }, 0, false);
    let got = 0;
    b.dev.onReceive(() => void got++);
    // B announces itself so the bridge has learned it: unicast, not flooding.
    b.dev.send(ethFrame(MAC_A, MAC_B, 64));
    while (w.bridge.bridge.lookup(new Uint8Array([0, 0x16, 0x3e, 0, 0, 0x0b])) < 0)
      await new Promise((r) => setImmediate(r));
    const frame = ethFrame(MAC_B, MAC_A, size);
    const before = snap(w, [a.front, b.front]);
    const t0 = process.hrtime.bigint();
    let sent = 0;
    while (got < n) {
      while (sent < n && a.dev.send(frame) === 0) sent++;
      await new Promise((r) => setImmediate(r));
    }
    const ns = Number(process.hrtime.bigint() - t0);
    const after = snap(w, [a.front, b.front]);
    const per = (k: string) => ((after[k]! - before[k]!) / n).toFixed(3);
    console.log(
      `net domU->bridge->domU ${size} B: ${((n / ns) * 1e9).toFixed(0)} packets/s (${n} packets, ${(((n * size) / ns) * 1e3).toFixed(1)} MB/s)`,
    );
    console.log(
      `  per packet: netback hypercalls ${per("back.hypercalls")}, grant copies ${per("back.grant_copies")}, ` +
        `grant-copied bytes ${per("back.grant_copy_bytes")}, dom0 CPU-copied bytes ${per("back.local_copy_bytes")}, ` +
        `backend notifications ${per("back.notifications")}, frontend notifications ${per("front.notifications")}, ` +
        `frontend grants ${per("front.grants")}, guest-copied bytes ${per("front.copy_bytes")}, ` +
        `backend events ${per("back.events")}, frontend events ${per("front.events")}`,
    );
  }
}
