import {
  ACCESS_FETCH,
  ACCESS_USER,
  ACCESS_WRITE,
  PAGING_4LEVEL,
  tlbGrants,
} from "@hyperlab/paging";
import { describe, expect, it } from "vitest";
import { grantIndex, TLB_GRANTS } from "../src/shadow";

// translate's TLB hit reads paging's rights check from a table (TLB_GRANTS) instead of
// calling tlbGrants: the table must answer as tlbGrants does for every rights value a TLB
// entry can hold and every access, whatever other bits they carry.
describe("the TLB hit's rights table", () => {
  it("answers tlbGrants(perms, access, PAGING_4LEVEL) for every perms and access", () => {
    const accesses = [0, ACCESS_WRITE, ACCESS_USER, ACCESS_FETCH];
    let checked = 0;
    for (let perms = 0; perms < 1 << 16; perms++) {
      for (let access = 0; access < 0x20; access++) {
        const want = tlbGrants(perms, access, PAGING_4LEVEL);
        if ((TLB_GRANTS[grantIndex(perms, access)] !== 0) !== want) {
          expect({ perms, access, table: TLB_GRANTS[grantIndex(perms, access)] }).toEqual({
            perms,
            access,
            table: want ? 1 : 0,
          });
        }
        checked++;
      }
    }
    expect(checked).toBe((1 << 16) * 0x20);
    // Both answers occur for each access kind (the table is not all one value).
    for (const access of accesses) {
      const answers = new Set<number>();
      for (let perms = 0; perms < 0x200; perms++)
        answers.add(TLB_GRANTS[grantIndex(perms, access)]);
      expect(access === 0 ? [...answers] : [...answers].sort()).toEqual(
        access === 0 ? [1] : [0, 1],
      );
    }
  });

  it("the index translate writes out with literals is grantIndex", () => {
    for (let perms = 0; perms < 0x200; perms++) {
      for (let access = 0; access < 0x20; access++) {
        expect(((perms & 0x4e) << 4) | (access & 0x16)).toBe(grantIndex(perms, access));
      }
    }
  });
});
