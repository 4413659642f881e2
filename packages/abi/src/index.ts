/*
 * @hyperlab/abi: Xen 4.17's public ABI as data. Every export is a number, a string, a
 * StructLayout, or one of the tables listed in test/abi-vs-headers.test.ts, and each is
 * checked against /usr/include/xen by that test.
 */
export * from "./blkif";
export * from "./console";
export * from "./errno";
export * from "./event-channel";
export * from "./grant-table";
export * from "./layout";
export * from "./memory";
export * from "./netif";
export * from "./physdev";
export * from "./pv-cpu";
export * from "./ring";
export * from "./sched";
export * from "./vcpu";
export * from "./x86-pte";
export * from "./xen";
export * from "./xenbus";
export * from "./xs-wire";
