/**
 * A mistake by the user of the library: a composition error, bad configuration, API misuse.
 * Guest-controlled input never produces one (it gets Xen's errno); anything else thrown is a
 * bug in the model.
 *
 * `C` is the union of codes the throwing package exports (`CoreErrorCode`,
 * `GuestErrorCode`, ...). Callers tell errors apart by comparing `code` with a member of that
 * union, never by matching a prefix of it.
 */
export class HyperlabError<C extends string = string> extends Error {
  override readonly name = "HyperlabError";
  /** A stable, machine-readable code such as "SLOT_MISSING_PROVIDER". */
  readonly code: C;

  constructor(code: C, message: string) {
    super(message);
    this.code = code;
  }
}

/** Whether `e` is a HyperlabError whose code is one of `codes`. */
export function isHyperlabError<C extends string>(
  e: unknown,
  codes: readonly C[],
): e is HyperlabError<C> {
  return e instanceof HyperlabError && (codes as readonly string[]).includes(e.code);
}

/**
 * Every code core throws, grouped by what went wrong. `isHyperlabError(e, CORE_ERROR_CODES)`
 * tells a core error from others; test/errors.test.ts checks that src throws no code outside
 * this list.
 */
export const CORE_ERROR_CODES = [
  // Composition (registry, slots, plugins).
  "PLUGIN_CYCLE",
  "PLUGIN_DUPLICATE",
  "PLUGIN_INVALID",
  "PLUGIN_OVERRIDE_WITHOUT_PROVIDE",
  "SLOT_CONFLICTING_OVERRIDES",
  "SLOT_DUPLICATE_PROVIDER",
  "SLOT_EMPTY",
  "SLOT_MISSING_PROVIDER",
  "SLOT_NOT_FILLED",
  "SLOT_TABLE_FROZEN",
  "SLOT_UNDECLARED_PROVIDE",
  "SLOT_UNDECLARED_REQUIRE",
  // The hypervisor's life and hypercall table.
  "HYPERVISOR_BOOTED",
  "HYPERVISOR_NOT_BOOTED",
  "HYPERVISOR_NO_MACHINE",
  "HYPERCALL_BAD_NUMBER",
  "HYPERCALL_DUPLICATE",
  "HYPERCALL_NOT_REGISTERED",
  "HYPERCALL_UNDECLARED",
  // Domains and frames.
  "DOMAIN_BAD_ADDRESS_SIZE",
  "DOMAIN_BAD_DOMID",
  "DOMAIN_BAD_MAXPAGES",
  "DOMAIN_BAD_VCPUS",
  "DOMAIN_EXISTS",
  "DOMAIN_GONE",
  "DOMAIN_NOT_PAUSED",
  "DOMAIN_NO_MEMORY",
  "FRAME_POD_ORDER",
  "FRAME_TYPE_HOOKS_TAKEN",
  // PCI passthrough (slots/passthrough.ts).
  "PASSTHROUGH_BAR_UNASSIGNED",
  // The scheduler.
  "SCHED_BAD_CAP",
  "SCHED_BAD_CPU",
  "SCHED_BAD_OPTION",
  "SCHED_BAD_WEIGHT",
  "SCHED_BAD_WORK",
  "SCHED_UNKNOWN",
  "SCHED_UNKNOWN_DOMAIN",
  "SCHED_UNKNOWN_VCPU",
  // Stats.
  "STAT_DUPLICATE",
] as const;

/** The codes of the HyperlabErrors core throws. */
export type CoreErrorCode = (typeof CORE_ERROR_CODES)[number];
