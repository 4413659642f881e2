/*
 * The driver of the machine's NIC (@hyperlab/machine's Nic: vendor 0x4859, device 0x0e71),
 * written as a Linux Ethernet driver is: probe enables the function, maps BAR0, reads the MAC,
 * sets the DMA mask, allocates the tx and rx descriptor rings with dma_alloc_coherent, posts
 * receive buffers mapped DMA_FROM_DEVICE, requests the interrupt (INTx or MSI) and turns tx
 * and rx on. xmit copies a frame into the slot's page, maps it DMA_TO_DEVICE and advances
 * TX_TAIL; the interrupt handler acknowledges the device, reclaims sent descriptors
 * (unmapping them), and for each received one unmaps its buffer (a bounce is copied back),
 * hands the frame up and posts the buffer again.
 *
 * Invariants: a failed probe gives back everything it took (rings, pages, rx mappings);
 * tx slots [txHead, txTail) are the frames handed to the device, each mapped;
 * rx slots [rxHead, rxTail) hold posted buffers, each mapped, and slot rxTail is the one
 * free slot; every mapping is unmapped exactly once; nothing the device or a frame's bytes
 * hold throws: a bad descriptor status counts an error and the frame is dropped.
 */
import { EBUSY, EINVAL, EIO, ENODEV, ENOMEM } from "@hyperlab/abi";
import {
  ETH_FRAME_LEN,
  ETH_HLEN,
  HYPERLAB_VENDOR_ID,
  NIC_CTRL_RESET,
  NIC_CTRL_RX_EN,
  NIC_CTRL_TX_EN,
  NIC_DESC_DD,
  NIC_DESC_ERR,
  NIC_DESC_SIZE,
  NIC_DEVICE_ID,
  NIC_INT_ERROR,
  NIC_INT_RX,
  NIC_INT_RX_NOBUF,
  NIC_INT_TX,
  NIC_MAGIC,
  NIC_REG_CONTROL,
  NIC_REG_DMA_BITS,
  NIC_REG_INT_ACK,
  NIC_REG_INT_MASK,
  NIC_REG_INT_STATUS,
  NIC_REG_MAC_HI,
  NIC_REG_MAC_LO,
  NIC_REG_RX_BASE_LO,
  NIC_REG_RX_HEAD,
  NIC_REG_RX_TAIL,
  NIC_REG_TX_BASE_LO,
  NIC_REG_TX_HEAD,
  NIC_REG_TX_TAIL,
} from "@hyperlab/machine";
import { DMA_FROM_DEVICE, DMA_MAPPING_ERROR, DMA_TO_DEVICE, type DmaDevice } from "../dma-api";
import { readl, writel } from "../io";
import type { GuestKernel } from "../kernel";
import { type PciIrq, type PciIrqMode, requestIrq } from "./irq";
import { type PciDev, pciEnableDevice, pciIomap } from "./pci";

/** Bytes a receive buffer offers (a whole frame fits). */
export const HLNIC_RX_BUF = 2048;

export interface HlnicCounts {
  txFrames: number;
  txErrors: number;
  rxFrames: number;
  rxErrors: number;
  interrupts: number;
  spurious: number;
}

export interface Hlnic {
  readonly dev: PciDev;
  readonly irq: PciIrq;
  readonly mac: Uint8Array;
  readonly regs: number;
  readonly dmaDev: DmaDevice;
  readonly counts: HlnicCounts;
  /** ndo_start_xmit: 0, or -EINVAL (length), -EBUSY (ring full), -EIO (mapping refused). */
  xmit(frame: Uint8Array): number;
  /** Frames handed to the device and not yet reclaimed. */
  txInFlight(): number;
}

export interface HlnicOptions {
  irq?: PciIrqMode;
  /** Descriptors per ring (2 to 256, one coherent page each); default 32. */
  ringSize?: number;
  /** Called with each frame received (a copy the callee may keep). */
  onReceive?(frame: Uint8Array): void;
}

/** Whether the driver claims `dev`. */
export function hlnicMatch(dev: PciDev): boolean {
  return dev.vendorId === HYPERLAB_VENDOR_ID && dev.deviceId === NIC_DEVICE_ID;
}

/** The driver's probe: the NIC, or -errno. */
export function hlnicProbe(
  k: GuestKernel,
  dev: PciDev,
  options: HlnicOptions = {},
): Hlnic | number {
  if (!hlnicMatch(dev)) return -ENODEV;
  const size = options.ringSize ?? 32;
  if (!(Number.isInteger(size) && size >= 2 && size <= 4096 / NIC_DESC_SIZE)) return -EINVAL;
  pciEnableDevice(k, dev);
  const regs = pciIomap(k, dev, 0, 4096);
  if (regs < 0) return regs;
  if (readl(k, regs) !== NIC_MAGIC) return -ENODEV;
  const bits = readl(k, regs + NIC_REG_DMA_BITS);
  const dmaDev: DmaDevice = { name: "hlnic", dmaMaskBits: bits, coherentDmaMaskBits: bits };
  if (!(bits >= 24 && bits <= 64) || !k.ops.dma.dmaSupported(dmaDev, bits)) return -EIO;
  const dma = k.ops.dma;
  const txRing = dma.allocCoherent(dmaDev, 4096);
  const rxRing = dma.allocCoherent(dmaDev, 4096);
  // The probe's one cleanup path: what it allocated goes back, in reverse.
  const pagesTaken: number[] = [];
  let posted = 0;
  const unwind = (rc: number): number => {
    for (let i = 0; i < posted; i++) dma.unmapPage(dmaDev, rxBus[i], HLNIC_RX_BUF, DMA_FROM_DEVICE);
    for (const p of pagesTaken) k.freePage(p);
    if (rxRing !== null) dma.freeCoherent(dmaDev, 4096, rxRing.pfn, rxRing.busAddr);
    if (txRing !== null) dma.freeCoherent(dmaDev, 4096, txRing.pfn, txRing.busAddr);
    return rc;
  };
  const rxBus = new Float64Array(size);
  if (txRing === null || rxRing === null) return unwind(-ENOMEM);
  const view = (pfn: number) => {
    const b = k.ram.frameBytes(k.frameOf(pfn));
    return new DataView(b.buffer, b.byteOffset, 4096);
  };
  const txd = view(txRing.pfn);
  const rxd = view(rxRing.pfn);
  const lo = readl(k, regs + NIC_REG_MAC_LO);
  const hi = readl(k, regs + NIC_REG_MAC_HI);
  const mac = Uint8Array.of(lo, lo >>> 8, lo >>> 16, lo >>> 24, hi, hi >>> 8);
  const counts: HlnicCounts = {
    txFrames: 0,
    txErrors: 0,
    rxFrames: 0,
    rxErrors: 0,
    interrupts: 0,
    spurious: 0,
  };
  // One page per slot in each ring, allocated once (the driver's skb pool).
  const txPfn = new Int32Array(size);
  const rxPfn = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    txPfn[i] = k.allocPage();
    if (txPfn[i] >= 0) pagesTaken.push(txPfn[i]);
    rxPfn[i] = k.allocPage();
    if (rxPfn[i] >= 0) pagesTaken.push(rxPfn[i]);
    if (txPfn[i] < 0 || rxPfn[i] < 0) return unwind(-ENOMEM);
  }
  const txBus = new Float64Array(size);
  const txLen = new Int32Array(size);
  let txHead = 0;
  let txTail = 0;
  let rxHead = 0;
  let rxTail = 0;

  writel(k, regs + NIC_REG_CONTROL, NIC_CTRL_RESET);
  // BASE_LO, BASE_HI and SIZE follow each other in both rings' register blocks.
  const ring = (base: number, r: { busAddr: number }) => {
    writel(k, regs + base, r.busAddr % 2 ** 32);
    writel(k, regs + base + 4, Math.floor(r.busAddr / 2 ** 32));
    writel(k, regs + base + 8, size);
  };
  ring(NIC_REG_TX_BASE_LO, txRing);
  ring(NIC_REG_RX_BASE_LO, rxRing);

  /** Maps slot rxTail's page and posts it; false when the mapping is refused. */
  const postRx = (): boolean => {
    const slot = rxTail;
    const b = dma.mapPage(dmaDev, rxPfn[slot], 0, HLNIC_RX_BUF, DMA_FROM_DEVICE);
    if (b === DMA_MAPPING_ERROR) return false;
    rxBus[slot] = b;
    const at = slot * NIC_DESC_SIZE;
    rxd.setUint32(at, b % 2 ** 32, true);
    rxd.setUint32(at + 4, Math.floor(b / 2 ** 32), true);
    rxd.setUint32(at + 8, HLNIC_RX_BUF, true); // room; status byte 0
    rxTail = (rxTail + 1) % size;
    return true;
  };
  for (; posted < size - 1; posted++) if (!postRx()) return unwind(-EIO);

  const reclaimTx = (): void => {
    const hw = readl(k, regs + NIC_REG_TX_HEAD);
    while (txHead !== txTail && txHead !== hw) {
      const slot = txHead;
      txHead = (txHead + 1) % size;
      dma.unmapPage(dmaDev, txBus[slot], txLen[slot], DMA_TO_DEVICE);
      const st = txd.getUint8(slot * NIC_DESC_SIZE + 10);
      if ((st & NIC_DESC_ERR) !== 0 || (st & NIC_DESC_DD) === 0) counts.txErrors++;
      else counts.txFrames++;
    }
  };
  const receive = (): void => {
    const hw = readl(k, regs + NIC_REG_RX_HEAD);
    while (rxHead !== hw && rxHead !== rxTail) {
      const slot = rxHead;
      rxHead = (rxHead + 1) % size;
      dma.unmapPage(dmaDev, rxBus[slot], HLNIC_RX_BUF, DMA_FROM_DEVICE);
      const at = slot * NIC_DESC_SIZE;
      const n = rxd.getUint16(at + 8, true);
      const st = rxd.getUint8(at + 10);
      const page = rxPfn[slot];
      if (
        (st & NIC_DESC_ERR) !== 0 ||
        (st & NIC_DESC_DD) === 0 ||
        n < ETH_HLEN ||
        n > ETH_FRAME_LEN
      ) {
        counts.rxErrors++;
      } else {
        counts.rxFrames++;
        const bytes = k.ram.frameBytes(k.frameOf(page));
        options.onReceive?.(bytes.slice(0, n));
      }
      // The free slot (rxTail) takes this page back, and the ring moves on by one.
      rxPfn[slot] = rxPfn[rxTail];
      rxPfn[rxTail] = page;
      postRx();
    }
    writel(k, regs + NIC_REG_RX_TAIL, rxTail);
  };
  const handler = (): void => {
    const st = readl(k, regs + NIC_REG_INT_STATUS);
    if (st <= 0 || st === 0xffff_ffff) {
      counts.spurious++;
      return;
    }
    counts.interrupts++;
    writel(k, regs + NIC_REG_INT_ACK, st);
    if ((st & (NIC_INT_TX | NIC_INT_ERROR)) !== 0) reclaimTx();
    if ((st & (NIC_INT_RX | NIC_INT_RX_NOBUF | NIC_INT_ERROR)) !== 0) receive();
  };
  const irq = requestIrq(k, dev, handler, options.irq ?? "intx");
  if (typeof irq === "number") return unwind(irq);
  writel(k, regs + NIC_REG_RX_TAIL, rxTail);
  writel(k, regs + NIC_REG_INT_MASK, NIC_INT_TX | NIC_INT_RX | NIC_INT_ERROR | NIC_INT_RX_NOBUF);
  writel(k, regs + NIC_REG_CONTROL, NIC_CTRL_TX_EN | NIC_CTRL_RX_EN);

  const xmit = (frame: Uint8Array): number => {
    if (!(frame instanceof Uint8Array) || frame.length < ETH_HLEN || frame.length > ETH_FRAME_LEN) {
      return -EINVAL;
    }
    if ((txTail + 1) % size === txHead) return -EBUSY;
    const slot = txTail;
    k.ram.frameBytes(k.frameOf(txPfn[slot])).set(frame);
    const b = dma.mapPage(dmaDev, txPfn[slot], 0, frame.length, DMA_TO_DEVICE);
    if (b === DMA_MAPPING_ERROR) return -EIO;
    txBus[slot] = b;
    txLen[slot] = frame.length;
    const at = slot * NIC_DESC_SIZE;
    txd.setUint32(at, b % 2 ** 32, true);
    txd.setUint32(at + 4, Math.floor(b / 2 ** 32), true);
    txd.setUint32(at + 8, frame.length, true); // length; status byte 0
    txTail = (txTail + 1) % size;
    writel(k, regs + NIC_REG_TX_TAIL, txTail);
    return 0;
  };

  return {
    dev,
    irq,
    mac,
    regs,
    dmaDev,
    counts,
    xmit,
    txInFlight: () => (txTail - txHead + size) % size,
  };
}
