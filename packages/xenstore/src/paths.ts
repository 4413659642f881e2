/*
 * Node names: C xenstored 4.17's is_valid_nodename and canonicalize.
 *
 * Invariant: a valid name starts with "/", has no "//", no trailing "/" (except "/"),
 * only [A-Za-z0-9-/_@], and below /local/domain/<id>/ at most path-max chars after that
 * prefix (elsewhere at most path-max chars in all).
 */

const VALID = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-/_@") {
  VALID[c.charCodeAt(0)] = 1;
}

const LOCAL_DOMAIN = "/local/domain/";

/** The length of "/local/domain/<id>/" when the name starts with it (C's sscanf "%5u/"), else 0. */
function localOffset(name: string): number {
  if (!name.startsWith(LOCAL_DOMAIN)) return 0;
  let i = LOCAL_DOMAIN.length;
  // sscanf %u skips blanks and takes an optional sign; valid names have neither.
  const start = i;
  while (i < name.length && i - start < 5) {
    const c = name.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  if (i === start || name[i] !== "/") return 0;
  return i + 1;
}

export function isValidNodename(name: string, pathMax: number): boolean {
  const n = name.length;
  if (n === 0 || name.charCodeAt(0) !== 47) return false;
  if (n > 1 && name.charCodeAt(n - 1) === 47) return false;
  let prevSlash = false;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || VALID[c] === 0) return false;
    const slash = c === 47;
    if (slash && prevSlash) return false;
    prevSlash = slash;
  }
  return n <= localOffset(name) + pathMax;
}

/** Relative names are prefixed with the connection's home; "/..." and "@..." are left alone. */
export function canonicalize(home: string, name: string): string {
  const c = name.charCodeAt(0);
  if (c === 47 || c === 64) return name;
  return `${home}/${name}`;
}

/** C's get_parent: "/a/b" -> "/a", "/a" -> "/". */
export function parentOf(name: string): string {
  const i = name.lastIndexOf("/");
  return i <= 0 ? "/" : name.slice(0, i);
}

export function basename(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}

export function childPath(parent: string, child: string): string {
  return parent === "/" ? `/${child}` : `${parent}/${child}`;
}

/** Home path of a domain. */
export function domainPath(domid: number): string {
  return `/local/domain/${domid >>> 0}`;
}
