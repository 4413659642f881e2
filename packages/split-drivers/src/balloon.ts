/*
 * The guest's balloon driver, as Linux's drivers/xen/xen-balloon.c and balloon.c do it for a
 * PV guest: a watch on memory/target (KiB, written by the toolstack's mem-set) sets the
 * target; the driver then moves the kernel's pages toward it. Going down it takes free pages
 * from the kernel's allocator, unmaps each from the direct map
 * (xenmem_reservation_va_mapping_reset), gives the frames back with
 * XENMEM_decrease_reservation and marks their P2M entries invalid. Going up it asks
 * XENMEM_populate_physmap for frames for the ballooned pfns (Xen sets their M2P), maps them
 * back in the direct map, writes the P2M and frees the pages into the allocator.
 *
 * Invariants: a ballooned pfn is held by the driver (allocated in the kernel, so nothing else
 * uses it), has no direct-map entry and an invalid P2M entry; `currentPages` is the kernel's
 * pages less the ballooned ones. Nothing the toolstack writes makes this throw; a target the
 * kernel cannot reach (no free page, Xen refusing frames) leaves it as close as it got.
 */
import {
  __HYPERVISOR_memory_op,
  __HYPERVISOR_update_va_mapping,
  DOMID_SELF,
  UVMF_INVLPG,
  XENMEM_decrease_reservation,
  XENMEM_populate_physmap,
} from "@hyperlab/abi";
import { type GuestKernel, PAGE_KERNEL, PAGE_OFFSET } from "@hyperlab/guest";
import type { XsWatch } from "@hyperlab/xenstore";
import type { XenbusKernel } from "./xenbus/device";

/** Linux's INVALID_P2M_ENTRY (~0UL), as the kernel's P2M holds numbers. */
export const INVALID_P2M_ENTRY = -1;

/** Most pages moved per hypercall (Linux's ARRAY_SIZE(frame_list) for a 4 KiB page). */
const BATCH = 512;

export interface XenBalloon {
  /** Pages the kernel holds now. */
  readonly currentPages: number;
  /** Pages memory/target asks for. */
  readonly targetPages: number;
  /** pfns given back to Xen. */
  readonly ballooned: readonly number[];
  /** Move toward the target now (the watch does this by itself). */
  balloonProcess(): number;
  stop(): Promise<void>;
}

export interface XenBalloonOptions {
  /** pfns already ballooned out (a kernel resumed after a restore keeps its balloon). */
  ballooned?: readonly number[];
}

/** Starts the balloon driver of kernel `k`, whose xenbus connection is `kernel`. */
export async function xenBalloon(
  kernel: XenbusKernel,
  k: GuestKernel,
  options: XenBalloonOptions = {},
): Promise<XenBalloon> {
  const xen = k.xen;
  const held: number[] = [...(options.ballooned ?? [])];
  let target = xen?.nrPages ?? 0;
  const hc = (op: number, args: object) => k.port.hypercall(0, op, args);
  const directVa = (pfn: number) => PAGE_OFFSET + pfn * 4096;

  /** decrease_reservation: up to `n` pages back to Xen; pages moved. */
  const decrease = (n: number): number => {
    if (xen === null) return 0;
    const pfns: number[] = [];
    for (let i = 0; i < n; i++) {
      const pfn = k.allocPage();
      if (pfn < 0) break;
      pfns.push(pfn);
    }
    const mfns: number[] = [];
    const unmapped: number[] = [];
    for (const pfn of pfns) {
      if (
        hc(__HYPERVISOR_update_va_mapping, { va: directVa(pfn), val: 0, flags: UVMF_INVLPG }) !== 0
      ) {
        k.freePage(pfn);
        continue;
      }
      unmapped.push(pfn);
      mfns.push(xen.p2m[pfn]!);
    }
    const done = hc(__HYPERVISOR_memory_op, {
      cmd: XENMEM_decrease_reservation,
      extent_start: mfns,
      nr_extents: mfns.length,
      extent_order: 0,
      domid: DOMID_SELF,
    });
    const ok = Math.max(done, 0);
    for (let i = 0; i < unmapped.length; i++) {
      const pfn = unmapped[i]!;
      if (i < ok) {
        xen.m2p[mfns[i]!] = -1;
        xen.p2m[pfn] = INVALID_P2M_ENTRY;
        held.push(pfn);
      } else {
        // Xen kept it: map it again and give it back to the allocator.
        hc(__HYPERVISOR_update_va_mapping, {
          va: directVa(pfn),
          val: mfns[i]! * 4096 + PAGE_KERNEL,
          flags: UVMF_INVLPG,
        });
        k.freePage(pfn);
      }
    }
    return ok;
  };

  /** populate_physmap: up to `n` ballooned pfns back; pages moved. */
  const increase = (n: number): number => {
    if (xen === null) return 0;
    const pfns = held.slice(-n);
    const list = [...pfns];
    const done = hc(__HYPERVISOR_memory_op, {
      cmd: XENMEM_populate_physmap,
      extent_start: list,
      nr_extents: list.length,
      extent_order: 0,
      domid: DOMID_SELF,
    });
    const ok = Math.max(done, 0);
    for (let i = 0; i < ok; i++) {
      const pfn = pfns[i]!;
      const mfn = list[i]!;
      xen.p2m[pfn] = mfn;
      if (mfn < xen.m2p.length) xen.m2p[mfn] = pfn;
      k.ram.clearFrame(mfn);
      hc(__HYPERVISOR_update_va_mapping, {
        va: directVa(pfn),
        val: mfn * 4096 + PAGE_KERNEL,
        flags: UVMF_INVLPG,
      });
      k.freePage(pfn);
    }
    held.splice(held.length - pfns.length, ok);
    return ok;
  };

  const current = () => (xen?.nrPages ?? 0) - held.length;
  const balloonProcess = (): number => {
    let moved = 0;
    for (;;) {
      const diff = target - current();
      if (diff === 0) break;
      const step =
        diff < 0 ? decrease(Math.min(-diff, BATCH)) : increase(Math.min(diff, BATCH, held.length));
      if (step === 0) break;
      moved += step;
    }
    return moved;
  };

  const xs = kernel.client;
  const watch: XsWatch = await xs.watch("memory/target", "balloon");
  watch.on(async () => {
    let v = "";
    try {
      v = await xs.read("memory/target");
    } catch {
      return;
    }
    if (!/^\d+$/.test(v)) return;
    target = Math.min(xen?.nrPages ?? 0, Math.floor(Number(v) / 4));
    balloonProcess();
  });
  return {
    get currentPages() {
      return current();
    },
    get targetPages() {
      return target;
    },
    get ballooned() {
      return held;
    },
    balloonProcess,
    async stop() {
      try {
        await watch.unwatch();
      } catch {
        // The connection is gone already.
      }
    },
  };
}
