export { IOMAP_ERROR_CODES, type IomapErrorCode } from "./errors";
export { iomap } from "./plugin";
export { Rangeset } from "./rangeset";
export { IOMEM_FRAME_LIMIT, Iomap, type IomapOptions } from "./service";
