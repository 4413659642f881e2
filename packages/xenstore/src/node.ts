/*
 * One node of the tree as C xenstored's struct node holds it.
 *
 * Invariants: `childLen` is the sum of (name length + 1) over `children`. `value` and `perms`
 * are never mutated once attached (writers replace them); a `children` set marked shared
 * (referenced by a transaction's copy, or NO_CHILDREN) is copied before it is changed, and
 * NO_CHILDREN is never marked unshared, so it stays empty.
 */
import type { XsPerms } from "./perms";

/** The generation of a node that does not exist (yet). */
export const NO_GEN = -1;
/** sizeof(struct xs_tdb_record_hdr) and sizeof(struct xs_permissions) in C xenstored. */
export const RECORD_HDR = 24;
export const RECORD_PERM = 8;
export const EMPTY = new Uint8Array(0);
/**
 * The child list every new leaf starts with: one empty Set shared by all of them, marked
 * shared, so the first addChild copies it (a Set per leaf was a tenth of the heap at 100k keys).
 */
export const NO_CHILDREN: Set<string> = new Set();

export class XsNode {
  constructor(
    readonly name: string,
    public gen: number,
    public perms: XsPerms,
    public value: Uint8Array,
    public children: Set<string>,
    public childLen: number,
    public sharedChildren: boolean,
  ) {}

  /** A transaction's copy: shares value, perms and (copy-on-write) children. */
  txnCopy(): XsNode {
    this.sharedChildren = true;
    return new XsNode(
      this.name,
      this.gen,
      this.perms,
      this.value,
      this.children,
      this.childLen,
      true,
    );
  }

  ownChildren(): Set<string> {
    if (this.sharedChildren) {
      this.children = new Set(this.children);
      this.sharedChildren = false;
    }
    return this.children;
  }

  addChild(name: string): void {
    this.ownChildren().add(name);
    this.childLen += name.length + 1;
  }

  removeChild(name: string): void {
    if (this.ownChildren().delete(name)) this.childLen -= name.length + 1;
  }

  recordSize(extraChild = 0, value = this.value, nperms = this.perms.length): number {
    return RECORD_HDR + RECORD_PERM * nperms + value.length + this.childLen + extraChild;
  }
}
