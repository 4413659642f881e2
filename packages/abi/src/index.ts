export * from "./layout";
export * from "./xs-wire";
