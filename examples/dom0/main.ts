// The dom0 hardware path, end to end: a Xen-style host whose dom0 owns the disk controller and
// the NIC. dom0's driver finds the disk on the PCI bus, maps its BAR through iomap
// (_PAGE_IOMAP), DMAs two sectors into a buffer that swiotlb-xen bounces (machine addresses),
// the device raises its GSI, Xen turns it into an event on dom0's event channel, and dom0
// handles it as the same irq number Linux would use on bare metal. Then the same program on
// bare metal. Run with `pnpm demo` from the repository root.
import { runDom0Demo } from "./dom0";

for (const build of ["xen", "native"] as const) {
  console.log(
    `\n== ${build === "xen" ? "Xen-style host, dom0 owns the devices" : "bare metal, the same driver"}`,
  );
  for (const line of runDom0Demo(build)) console.log(line);
}
