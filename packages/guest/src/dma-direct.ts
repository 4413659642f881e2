/*
 * The DMA API's native default (Linux's kernel/dma/direct.c): a device names memory by bus address, and on bare metal the bus
 * address of a byte is its physical address (phys_to_dma is the identity), so mapping is
 * arithmetic plus the device's mask check, and x86's coherent caches make every sync a no-op.
 *
 * Invariants: a mapping either fits the device's mask whole (dma_capable) or is
 * DMA_MAPPING_ERROR; a failed mapSg leaves no entry mapped; coherent memory is zeroed,
 * contiguous, under the coherent mask, and goes back to the allocator only through
 * freeCoherent. A bad direction or mask is a driver bug and throws HyperlabError; nothing a
 * device does reaches here.
 */
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_MIN_MASK_BITS,
  DMA_TO_DEVICE,
  type DmaDevice,
  dmaCapable,
} from "./dma-api";
import { guestError } from "./errors";
import type { KernelPages } from "./pages";
import type { PvDmaOps } from "./pv-ops";

function checkDirection(dir: number): void {
  if (dir !== DMA_BIDIRECTIONAL && dir !== DMA_TO_DEVICE && dir !== DMA_FROM_DEVICE) {
    throw guestError(
      "DMA_BAD_DIRECTION",
      `DMA direction ${dir} is not DMA_BIDIRECTIONAL, DMA_TO_DEVICE or DMA_FROM_DEVICE. Map with the direction the transfer goes.`,
    );
  }
}

/** dma_set_mask: 0, or -EIO (-5) when pv_ops.dma cannot serve a device of that width. */
export function dmaSetMask(ops: PvDmaOps, dev: DmaDevice, bits: number): number {
  if (!Number.isInteger(bits) || bits < 1 || bits > 64) {
    throw guestError("DMA_BAD_MASK", `A DMA mask is 1 to 64 bits wide, got ${bits}.`);
  }
  if (!ops.dmaSupported(dev, bits)) return -5;
  dev.dmaMaskBits = bits;
  return 0;
}

/** dma_set_coherent_mask: as dmaSetMask, for coherent allocations. */
export function dmaSetCoherentMask(ops: PvDmaOps, dev: DmaDevice, bits: number): number {
  if (!Number.isInteger(bits) || bits < 1 || bits > 64) {
    throw guestError("DMA_BAD_MASK", `A DMA mask is 1 to 64 bits wide, got ${bits}.`);
  }
  if (!ops.dmaSupported(dev, bits)) return -5;
  dev.coherentDmaMaskBits = bits;
  return 0;
}

/** Counts the native DMA ops keep. */
export interface DmaDirectCounts {
  maps: number;
  unmaps: number;
  mappingErrors: number;
  coherentPages: number;
}

/**
 * dma-direct: bus address = physical address = pfn << 12 | offset (on bare metal the pfn
 * is the machine frame; under Xen PV it is not, which is why a Xen kernel replaces this group).
 */
export function dmaDirectOps(k: KernelPages, counts?: DmaDirectCounts): PvDmaOps {
  const c = counts ?? { maps: 0, unmaps: 0, mappingErrors: 0, coherentPages: 0 };
  const map = (dev: DmaDevice, pfn: number, offset: number, size: number): number => {
    if (
      !Number.isInteger(pfn) ||
      pfn < 0 ||
      pfn >= k.nrPfns ||
      !Number.isInteger(offset) ||
      offset < 0 ||
      !Number.isInteger(size) ||
      size <= 0 ||
      pfn * 4096 + offset + size > k.nrPfns * 4096
    ) {
      c.mappingErrors++;
      return DMA_MAPPING_ERROR;
    }
    const bus = pfn * 4096 + offset;
    if (!dmaCapable(dev.dmaMaskBits, bus, size)) {
      c.mappingErrors++;
      return DMA_MAPPING_ERROR;
    }
    c.maps++;
    return bus;
  };
  return {
    mapPage(dev, pfn, offset, size, dir) {
      checkDirection(dir);
      return map(dev, pfn, offset, size);
    },
    unmapPage(_dev, _bus, _size, dir) {
      checkDirection(dir);
      c.unmaps++;
    },
    mapSg(dev, sg, dir) {
      checkDirection(dir);
      for (let i = 0; i < sg.length; i++) {
        const e = sg[i];
        const bus = map(dev, e.pfn, e.offset, e.length);
        if (bus === DMA_MAPPING_ERROR) {
          for (let j = 0; j < i; j++) {
            sg[j].busAddr = DMA_MAPPING_ERROR;
            sg[j].busLength = 0;
            c.unmaps++;
          }
          return 0;
        }
        e.busAddr = bus;
        e.busLength = e.length;
      }
      return sg.length;
    },
    unmapSg(_dev, sg, dir) {
      checkDirection(dir);
      for (const e of sg) {
        e.busAddr = DMA_MAPPING_ERROR;
        e.busLength = 0;
        c.unmaps++;
      }
    },
    // x86 DMA is cache-coherent: nothing to write back or invalidate.
    syncSingleForCpu: (_d, _b, _s, dir) => checkDirection(dir),
    syncSingleForDevice: (_d, _b, _s, dir) => checkDirection(dir),
    syncSgForCpu: (_d, _sg, dir) => checkDirection(dir),
    syncSgForDevice: (_d, _sg, dir) => checkDirection(dir),
    allocCoherent(dev, size) {
      if (!Number.isInteger(size) || size <= 0) return null;
      const n = Math.ceil(size / 4096);
      const got: number[] = [];
      const giveBack = () => {
        for (const p of got) k.freePage(p);
        return null;
      };
      for (let i = 0; i < n; i++) {
        const pfn = k.allocPage();
        if (pfn < 0) return giveBack();
        got.push(pfn);
        // The allocator hands out ascending pfns from a free run; a gap means no run this long.
        if (i > 0 && pfn !== got[0] + i) return giveBack();
      }
      const bus = got[0] * 4096;
      if (!dmaCapable(dev.coherentDmaMaskBits, bus, n * 4096)) return giveBack();
      for (const p of got) k.clearPage(p);
      c.coherentPages += n;
      return { pfn: got[0], va: k.physVa(got[0]), busAddr: bus };
    },
    freeCoherent(_dev, size, pfn) {
      const n = Math.ceil(size / 4096);
      for (let i = 0; i < n; i++) k.freePage(pfn + i);
      c.coherentPages -= n;
    },
    dmaSupported(_dev, bits) {
      return Number.isInteger(bits) && bits >= DMA_MIN_MASK_BITS && bits <= 64;
    },
  };
}
