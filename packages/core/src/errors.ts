/**
 * A mistake by the user of the library: a composition error, bad configuration, API misuse.
 * Guest-controlled input never produces one (it gets Xen's errno); anything else thrown is a
 * bug in the model.
 */
export class HyperlabError extends Error {
  override readonly name = "HyperlabError";
  /** A stable, machine-readable code such as "SLOT_MISSING_PROVIDER". */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}
