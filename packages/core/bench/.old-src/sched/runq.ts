/*
 * Intrusive run queues over typed arrays, indexed by vCPU uid.
 *
 * Invariants: a vCPU is on at most one queue (`where[uid]` is that queue, or -1);
 * `next`/`prev` link the queue's members from `head[q]` to `tail[q]` (-1 ends a chain);
 * `len[q]` counts them. Every operation is O(1) except `insertSorted`, which walks from the
 * tail. Nothing allocates once the arrays are large enough.
 */

export class RunQueues {
  next = new Int32Array(0);
  prev = new Int32Array(0);
  where = new Int32Array(0);
  readonly head: Int32Array;
  readonly tail: Int32Array;
  readonly len: Int32Array;

  constructor(nrQueues: number) {
    this.head = new Int32Array(nrQueues).fill(-1);
    this.tail = new Int32Array(nrQueues).fill(-1);
    this.len = new Int32Array(nrQueues);
    this.grow(64);
  }

  /** Makes room for vCPU uids below `n`. */
  grow(n: number): void {
    if (n <= this.where.length) return;
    let cap = Math.max(64, this.where.length);
    while (cap < n) cap *= 2;
    const next = new Int32Array(cap).fill(-1);
    next.set(this.next);
    const prev = new Int32Array(cap).fill(-1);
    prev.set(this.prev);
    const where = new Int32Array(cap).fill(-1);
    where.set(this.where);
    this.next = next;
    this.prev = prev;
    this.where = where;
  }

  onQueue(uid: number): boolean {
    return this.where[uid] >= 0;
  }

  pushTail(q: number, uid: number): void {
    const t = this.tail[q];
    this.prev[uid] = t;
    this.next[uid] = -1;
    if (t < 0) this.head[q] = uid;
    else this.next[t] = uid;
    this.tail[q] = uid;
    this.where[uid] = q;
    this.len[q]++;
  }

  pushHead(q: number, uid: number): void {
    const h = this.head[q];
    this.next[uid] = h;
    this.prev[uid] = -1;
    if (h < 0) this.tail[q] = uid;
    else this.prev[h] = uid;
    this.head[q] = uid;
    this.where[uid] = q;
    this.len[q]++;
  }

  /**
   * Inserts after the last member whose key is not lower (keys descending, FIFO among
   * equals). Walks from the tail: a vCPU that just ran usually has the least credit.
   */
  insertSorted(q: number, uid: number, key: Float64Array): void {
    const k = key[uid];
    let at = this.tail[q];
    while (at >= 0 && key[at] < k) at = this.prev[at];
    if (at < 0) {
      this.pushHead(q, uid);
      return;
    }
    const n = this.next[at];
    this.prev[uid] = at;
    this.next[uid] = n;
    this.next[at] = uid;
    if (n < 0) this.tail[q] = uid;
    else this.prev[n] = uid;
    this.where[uid] = q;
    this.len[q]++;
  }

  remove(uid: number): void {
    const q = this.where[uid];
    if (q < 0) return;
    const p = this.prev[uid];
    const n = this.next[uid];
    if (p < 0) this.head[q] = n;
    else this.next[p] = n;
    if (n < 0) this.tail[q] = p;
    else this.prev[n] = p;
    this.next[uid] = -1;
    this.prev[uid] = -1;
    this.where[uid] = -1;
    this.len[q]--;
  }
}
