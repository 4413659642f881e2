// The toolstack's benchmarks, in turn: the xl read-side verbs over an in-memory host
// (formatting cost alone), then the host daemon (create/destroy, list over the control socket,
// save/restore). Run: pnpm bench (tsx bench/index.ts).
export {};

await import("./xl-list");
await import("./host");
