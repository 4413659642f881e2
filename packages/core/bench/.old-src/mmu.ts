/* The `mmu` slot moved to slots/mmu.ts; this re-export keeps older import paths working. */
export * from "./slots/mmu";
