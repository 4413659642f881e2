/*
 * The dependency rule of docs/architecture.md ("How the layout grows"), checked by
 * dependency-cruiser in `pnpm test`:
 *
 * - floors: a package's src imports only packages on floors below its own, never one on its
 *   own floor or above;
 * - floor-4 hypervisor plugins import only abi, machine, paging and core (siblings are reached
 *   through core's slots);
 * - guest-side packages (guest, swiotlb-dma, split-drivers) never import a hypervisor plugin;
 * - no module imports itself in a circle, in src, tests and benches alike.
 *
 * Tests and benches are exempt from the floor rules (a test may compose a whole system) but
 * not from the circle rule. A workspace import is matched both as resolved to
 * `packages/<name>/` and, when the sibling is not built, as the bare `@hyperlab/<name>`.
 * packages/testkit/test/dependency-rule.test.ts runs this file against a fixture tree.
 */

/** The floors, ground = 1, as ARCHITECTURE.md numbers them (future packages included). Every
 * folder under packages/ must be listed: testkit's dependency-rule test fails otherwise. */
const FLOORS = {
  abi: 1,
  machine: 1,
  paging: 2,
  xenstore: 2,
  core: 3,
  "pv-mmu": 4,
  "npt-mmu": 4,
  "shadow-mmu": 4,
  "native-mmu": 4,
  evtchn: 4,
  "grant-table": 4,
  "apic-hooks": 4,
  iomap: 4,
  "pv-cpu": 4,
  "kvm-io": 4,
  testkit: 4,
  guest: 5,
  "swiotlb-dma": 6,
  "split-drivers": 7,
  study: 8,
  toolstack: 9,
};

/** Floor-4 hypervisor plugins: they may import only these. */
const HYPERVISOR_PLUGINS = [
  "pv-mmu",
  "npt-mmu",
  "shadow-mmu",
  "native-mmu",
  "evtchn",
  "grant-table",
  "apic-hooks",
  "iomap",
  "pv-cpu",
  "kvm-io",
];
const PLUGIN_MAY_IMPORT = ["abi", "machine", "paging", "core"];
const GUEST_SIDE = ["guest", "swiotlb-dma", "split-drivers"];

const esc = (s) => s.replace(/[-/\\^$*+?.()|[\]{}]/g, "\\$&");
const alt = (names) => names.map(esc).join("|");
/** A module of one of `names`, resolved into its folder or left as the bare package name. */
const pkgs = (names) => `^(packages/(${alt(names)})/|@hyperlab/(${alt(names)})$)`;
const srcOf = (name) => `^packages/${esc(name)}/src/`;
const names = Object.keys(FLOORS);

const floorRules = names
  .map((p) => {
    const notBelow = names.filter((q) => q !== p && FLOORS[q] >= FLOORS[p]);
    if (notBelow.length === 0) return null;
    return {
      name: `floor-${p}`,
      severity: "error",
      comment:
        `${p} is on floor ${FLOORS[p]}: its src imports only packages on lower floors ` +
        "(ARCHITECTURE.md, How the layout grows). Reach a sibling through a core slot instead.",
      from: { path: srcOf(p) },
      to: { path: pkgs(notBelow) },
    };
  })
  .filter((r) => r !== null);

const allOthers = (list) => names.filter((q) => !list.includes(q));

module.exports = {
  forbidden: [
    ...floorRules,
    ...HYPERVISOR_PLUGINS.map((p) => ({
      name: `plugin-imports-${p}`,
      severity: "error",
      comment:
        `${p} is a hypervisor plugin: its src imports only ${PLUGIN_MAY_IMPORT.join(", ")}; ` +
        "it needs a sibling through `requires` and the contract type from core/src/slots/.",
      from: { path: srcOf(p) },
      to: { path: pkgs(allOthers([...PLUGIN_MAY_IMPORT, p])) },
    })),
    {
      name: "guest-side-no-hypervisor-plugin",
      severity: "error",
      comment:
        "Guest-side code reaches the hypervisor only through hypercalls and shared memory, " +
        "never by importing a hypervisor plugin.",
      from: { path: `^packages/(${alt(GUEST_SIDE)})/src/` },
      to: { path: pkgs(HYPERVISOR_PLUGINS) },
    },
    {
      name: "no-circular",
      severity: "error",
      comment: "Modules must not import each other in a circle: split the shared part out.",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: ["node_modules", "(^|/)dist/"] },
    // dist/ and node_modules/ are not excluded (that would drop the edges into them), only not
    // followed; the dependency-rule fixtures are a tree of their own.
    exclude: { path: "^packages/[^/]+/test/fixtures/" },
    tsPreCompilationDeps: true,
    moduleSystems: ["es6", "cjs"],
    enhancedResolveOptions: {
      extensions: [".ts", ".mts", ".cts", ".js", ".mjs", ".cjs", ".json"],
    },
  },
};
