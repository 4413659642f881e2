/*
 * A batch of GNTTABOP_copy operations, as netback fills queue->tx_copy_ops and
 * queue->rx_copy.op and flushes them with one hypercall (gnttab_batch_copy).
 *
 * Invariant: the op objects are allocated once and reused; a batch holds at most `capacity`
 * ops (the caller flushes before that), and a copy touches a foreign page only through a
 * grant reference the hypervisor checks: the local side is always DOMID_SELF by frame.
 */
import {
  __HYPERVISOR_grant_table_op,
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTTABOP_copy,
} from "@hyperlab/abi";
import type { Domain, Hypervisor } from "@hyperlab/core";

interface CopyPtr {
  u: { ref: number; gmfn: number };
  domid: number;
  offset: number;
}

interface CopyOp {
  source: CopyPtr;
  dest: CopyPtr;
  len: number;
  flags: number;
  status: number;
}

const ptr = (): CopyPtr => ({ u: { ref: 0, gmfn: 0 }, domid: 0, offset: 0 });

/** One kernel's reusable GNTTABOP_copy batch. */
export class GnttabCopyBatch {
  readonly capacity: number;
  /** Ops queued since the last flush. */
  count = 0;
  /** Hypercalls made (one per non-empty flush). */
  hypercalls = 0;
  /** Copy ops issued, and the bytes they named. */
  ops = 0;
  bytes = 0;
  private readonly uops: CopyOp[];
  private readonly args: { cmd: number; uops: CopyOp[]; count: number };
  private readonly hv: Hypervisor;
  private readonly domain: Domain;

  constructor(hv: Hypervisor, domain: Domain, capacity: number) {
    this.hv = hv;
    this.domain = domain;
    this.capacity = capacity;
    this.uops = [];
    for (let i = 0; i < capacity; i++) {
      this.uops.push({ source: ptr(), dest: ptr(), len: 0, flags: 0, status: 0 });
    }
    this.args = { cmd: GNTTABOP_copy, uops: this.uops, count: 0 };
  }

  /** Room for `n` more ops? */
  hasRoom(n: number): boolean {
    return this.count + n <= this.capacity;
  }

  /** Queue a copy from `domid`'s grant `ref` at `refOff` into our frame `mfn` at `off`. */
  fromGrant(
    domid: number,
    ref: number,
    refOff: number,
    mfn: number,
    off: number,
    len: number,
  ): number {
    const op = this.uops[this.count]!;
    op.source.domid = domid;
    op.source.u.ref = ref;
    op.source.u.gmfn = 0;
    op.source.offset = refOff;
    op.dest.domid = DOMID_SELF;
    op.dest.u.gmfn = mfn;
    op.dest.u.ref = 0;
    op.dest.offset = off;
    op.len = len;
    op.flags = GNTCOPY_source_gref;
    op.status = 0;
    return this.count++;
  }

  /** Queue a copy from our frame `mfn` at `off` into `domid`'s grant `ref` at `refOff`. */
  toGrant(
    mfn: number,
    off: number,
    domid: number,
    ref: number,
    refOff: number,
    len: number,
  ): number {
    const op = this.uops[this.count]!;
    op.source.domid = DOMID_SELF;
    op.source.u.gmfn = mfn;
    op.source.u.ref = 0;
    op.source.offset = off;
    op.dest.domid = domid;
    op.dest.u.ref = ref;
    op.dest.u.gmfn = 0;
    op.dest.offset = refOff;
    op.len = len;
    op.flags = GNTCOPY_dest_gref;
    op.status = 0;
    return this.count++;
  }

  /** GNTST_* status of op `i` of the last flush. */
  status(i: number): number {
    return this.uops[i]!.status;
  }

  /**
   * gnttab_batch_copy: one GNTTABOP_copy hypercall for the queued ops. Returns its rc (a
   * negative rc marks every op failed with it). The statuses stay readable until the next op
   * is queued; `count` is reset by `reset()`.
   */
  flush(): number {
    const n = this.count;
    if (n === 0) return 0;
    this.args.count = n;
    this.hypercalls++;
    this.ops += n;
    for (let i = 0; i < n; i++) this.bytes += this.uops[i]!.len;
    const rc = this.hv.hypercall(this.domain.vcpus[0]!, __HYPERVISOR_grant_table_op, this.args);
    if (rc < 0) for (let i = 0; i < n; i++) this.uops[i]!.status = rc;
    return rc;
  }

  /** Forget the queued ops (after their statuses were read). */
  reset(): void {
    this.count = 0;
  }
}
