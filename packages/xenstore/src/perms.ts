/*
 * Node permissions as C xenstored keeps them: entry 0 names the owner and the default
 * access of every other domain; later entries grant one domain its own access; the first
 * matching entry wins. A flag marks entries of domains that no longer exist (XSA-322).
 *
 * Invariant: a perm list is never empty and is never mutated once attached to a node
 * (writers build a new array).
 */

export const XS_PERM_NONE = 0;
export const XS_PERM_READ = 1;
export const XS_PERM_WRITE = 2;
/** Internal: the connection owns the node (or is privileged). */
export const XS_PERM_OWNER = 8;
/** Internal: the entry names a domain that is gone; it grants nothing. */
export const XS_PERM_IGNORE = 16;

export interface XsPerm {
  /** XS_PERM_* bits. */
  readonly perms: number;
  readonly id: number;
}

export type XsPerms = readonly XsPerm[];

/**
 * "r5", "b0", "n3", "w7" for one entry (the IGNORE flag is not shown, as in C). C prints the
 * unsigned domid with %i, so an entry written as -1 (or 4294967295) reads back as "-1".
 */
export function permToString(p: XsPerm): string {
  const bits = p.perms & (XS_PERM_READ | XS_PERM_WRITE);
  const c =
    bits === (XS_PERM_READ | XS_PERM_WRITE)
      ? "b"
      : bits === XS_PERM_READ
        ? "r"
        : bits === XS_PERM_WRITE
          ? "w"
          : "n";
  return `${c}${p.id | 0}`;
}

/**
 * C's xs_strings_to_perms for one string: a letter then a decimal domid (strtol base 0,
 * so "0x10" is 16). Anything else is null (EINVAL).
 */
export function parsePerm(s: string): XsPerm | null {
  let perms: number;
  switch (s[0]) {
    case "r":
      perms = XS_PERM_READ;
      break;
    case "w":
      perms = XS_PERM_WRITE;
      break;
    case "b":
      perms = XS_PERM_READ | XS_PERM_WRITE;
      break;
    case "n":
      perms = XS_PERM_NONE;
      break;
    default:
      return null;
  }
  const id = strtolBase0(s.slice(1));
  if (id === null) return null;
  return { perms, id: id >>> 0 };
}

function strtolBase0(s: string): number | null {
  let i = 0;
  while (i < s.length && " \t\n\v\f\r".includes(s[i])) i++;
  let neg = false;
  if (s[i] === "+" || s[i] === "-") {
    neg = s[i] === "-";
    i++;
  }
  let base = 10;
  if (
    s[i] === "0" &&
    (s[i + 1] === "x" || s[i + 1] === "X") &&
    /[0-9a-fA-F]/.test(s[i + 2] ?? "")
  ) {
    base = 16;
    i += 2;
  } else if (s[i] === "0") {
    base = 8;
  }
  const start = i;
  let v = 0;
  while (i < s.length) {
    const d = parseInt(s[i], base);
    if (Number.isNaN(d)) break;
    v = v * base + d;
    i++;
  }
  // C rejects an empty id ("r") and any trailing character.
  if (s.length === 0 || i !== s.length || i === start) return null;
  return neg ? -v : v;
}
