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
