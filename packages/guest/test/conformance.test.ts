import {
  assertFrameInvariants,
  type GuestBuildFactory,
  guestConformanceCases,
} from "@hyperlab/testkit";
import { describe, expect, it } from "vitest";
import { conformanceBuildOf } from "../src/index";
import { type Built, hwBuild, nativeBuild, xenBuild } from "./helpers";

function factory(make: () => Built, invariants: boolean): GuestBuildFactory {
  return () => {
    const { hv, kernel } = make();
    return conformanceBuildOf(kernel, invariants ? () => assertFrameInvariants(hv) : undefined);
  };
}

const builds: [string, GuestBuildFactory][] = [
  ["native ops on the native MMU", factory(() => nativeBuild(2048), false)],
  ["Xen PV ops, batching on", factory(() => xenBuild(2048, true), true)],
  ["Xen PV ops, batching off", factory(() => xenBuild(2048, false), true)],
  ["native ops, THP always, on the native MMU", factory(() => hwBuild("native", 2048), false)],
  [
    "native ops, THP always, through guestStore",
    factory(() => hwBuild("guest-store", 2048), false),
  ],
];

const transcripts = new Map<string, Map<string, unknown[]>>();

for (const [name, build] of builds) {
  describe(`guest conformance: ${name}`, () => {
    for (const c of guestConformanceCases) {
      it(c.name, () => {
        const t = c.run(build);
        const m = transcripts.get(c.name) ?? new Map<string, unknown[]>();
        transcripts.set(c.name, m);
        m.set(name, t);
      });
    }
  });
}

describe("guest conformance: backends agree", () => {
  it("every case has the same transcript on every backend", () => {
    expect(transcripts.size).toBe(guestConformanceCases.length);
    for (const [, m] of transcripts) {
      const [first, ...rest] = [...m.values()];
      for (const t of rest) expect(t).toEqual(first);
    }
  });
});
