// /tmp A/B probe (not committed): node ab.ts old|new
import { buildFixture } from "./fixture";
const which = process.argv[2];
const m = await import(which === "old" ? "/tmp/h62/old/src/index" : "../src/index");
const { ACCESS_READ, ACCESS_WRITE, PAGING_4LEVEL, PERM_RW, Tlb, WalkResult, walk } = m;
const fx = buildFixture();
const { ram, root, vas, order } = fx;
const R = order.length - 1;
const out = new WalkResult();
let sink = 0;
function best(name: string, ops: number, f: () => void) {
  f();
  let b = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = process.cpuUsage();
    f();
    const t = process.cpuUsage(t0);
    b = Math.min(b, (t.user + t.system) / 1e6);
  }
  console.log(`${which} ${name} ${(ops / b / 1e6).toFixed(2)} M/s`);
}
const N = 4_000_000;
const tlb = new Tlb();
const HOT = fx.hot;
for (let i = 0; i < HOT; i++) {
  walk(ram, root, vas[i], ACCESS_WRITE, PAGING_4LEVEL, out);
  tlb.insertWalk(out, 1);
}
best("tlb-hit", N * 5, () => {
  let s = 0;
  for (let i = 0; i < N * 5; i++) if (tlb.lookup(vas[i & (HOT - 1)] + 8, 1)) s += tlb.hitMfn;
  sink += s;
});
const tlb2 = new Tlb();
best("tlb-miss", N / 2, () => {
  let s = 0;
  for (let i = 0; i < N / 2; i++) {
    const va = order[i & R];
    if (tlb2.lookup(va, 1)) s += tlb2.hitMfn;
    else if (walk(ram, root, va, ACCESS_READ, PAGING_4LEVEL, out, tlb2.pwc, 1)) {
      tlb2.insertWalk(out, 1);
      s += out.pageMfn & PERM_RW;
    }
  }
  sink += s;
});
// STLB hits with refill: 1024 pages round robin (fit the STLB, not the dTLB).
const tlb3 = new Tlb();
const P = 1024;
for (let i = 0; i < P; i++) {
  walk(ram, root, vas[i], ACCESS_READ, PAGING_4LEVEL, out);
  tlb3.insertWalk(out, 1);
}
best("stlb-refill", N, () => {
  let s = 0;
  for (let i = 0; i < N; i++) if (tlb3.lookup(vas[i & (P - 1)], 1)) s += tlb3.hitMfn;
  sink += s;
});
console.log(which, "stlb hits", tlb3.counters[6], "dtlb hits", tlb3.counters[1], sink > 0);
