import {
  assertFrameInvariants,
  defineGuestConformance,
  type GuestBuildFactory,
} from "@hyperlab/testkit";
import { describe, it } from "vitest";
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

defineGuestConformance({ describe, it }, builds);
