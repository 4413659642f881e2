export { CHUNK_FRAMES, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, Ram, type RamOptions } from "./ram";
