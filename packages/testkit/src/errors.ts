/*
 * The codes of the errors testkit's checkers throw. A checker's throw reports a broken
 * invariant (a bug in the model under test), so it is an InvariantError of testkit's own, not
 * a HyperlabError (which means a user's mistake); it carries the violations one per line.
 */
export const TESTKIT_ERROR_CODES = [
  /** assertFrameInvariants found frame-table violations. */
  "FRAME_INVARIANTS_BROKEN",
  /** assertGrantInvariants found grant violations. */
  "GRANT_INVARIANTS_BROKEN",
  /** assertIrqRoutingInvariants found interrupt-routing violations. */
  "IRQ_ROUTING_INVARIANTS_BROKEN",
  /** assertIomemInvariants found I/O memory violations. */
  "IOMEM_INVARIANTS_BROKEN",
  /** A write audit saw stores outside the acting domain's frames. */
  "WRITE_AUDIT_STRAY",
] as const;

export type TestkitErrorCode = (typeof TESTKIT_ERROR_CODES)[number];

/** A checker found violations; `violations` lists them as the message does. */
export class InvariantError extends Error {
  override readonly name = "InvariantError";
  readonly code: TestkitErrorCode;
  readonly violations: readonly string[];

  constructor(code: TestkitErrorCode, what: string, violations: readonly string[]) {
    super(`${what} broken:\n  ${violations.join("\n  ")}`);
    this.code = code;
    this.violations = violations;
  }
}

/** Codes of the HyperlabErrors testkit throws for a caller's mistake (not a model bug). */
export type TestkitUsageCode = "WRITE_AUDIT_NESTED" | "WRITE_AUDIT_DISPOSED";
