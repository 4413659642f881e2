// The plug-in point between the host and a device type's split drivers, in a module of its own
// so host.ts and the drivers it plugs in (split-devices.ts) do not import each other.
import type { GnttabGuest, XenbusDriver, XenbusKernel } from "@hyperlab/split-drivers";

/**
 * A device type's two drivers: the backend dom0's kernel runs, and the frontend each domU's
 * kernel runs, given the domain's one grant table. The console's pair is always there;
 * blkback/blkfront and netback/netfront (split-devices.ts) are plugged in by default.
 */
export interface DeviceDriverPair {
  type: string;
  backend: (dom0: XenbusKernel) => XenbusDriver;
  frontend: (domU: XenbusKernel, gnttab: GnttabGuest) => XenbusDriver;
}
