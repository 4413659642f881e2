// Invariant: parsing never throws on file content. Every input ends as a settings table plus
// the diagnostics libxlutil 4.17 would print (FILE:LINE: config parsing error near ...), with
// `failed` set exactly when libxlutil's parse returns an error.

import { checkXlCfgArgs } from "./errors";

export type CfgValue = { kind: "string"; value: string } | { kind: "list"; values: string[] };

export interface CfgSetting {
  readonly name: string;
  value: CfgValue;
  lineno: number;
  /** Built or extended with `+=`: numeric reads of it fail, as in libxlutil. */
  appended: boolean;
}

export interface ParsedCfg {
  readonly settings: Map<string, CfgSetting>;
  readonly diagnostics: string;
  readonly failed: boolean;
  readonly looksLikePython: boolean;
}

type TokKind =
  | "IDENT"
  | "STRING"
  | "NUMBER"
  | "NEWLINE"
  | "+="
  | "="
  | ";"
  | "["
  | "]"
  | ","
  | "$end";

interface Tok {
  kind: TokKind;
  text: string;
  line: number;
}

const TOKEN_NAME: Record<TokKind, string> = {
  IDENT: "IDENT",
  STRING: "STRING",
  NUMBER: "NUMBER",
  NEWLINE: "NEWLINE",
  "+=": "+=",
  "=": "'='",
  ";": "';'",
  "[": "'['",
  "]": "']'",
  ",": "','",
  $end: "$end",
};

const VALID_ESCAPE = new Set([
  '"',
  "'",
  "\\",
  "a",
  "b",
  "f",
  "n",
  "r",
  "t",
  "v",
  "x",
  "0",
  "1",
  "2",
  "3",
  "4",
  "5",
  "6",
  "7",
]);
const SIMPLE_ESCAPE: Record<string, string> = {
  '"': '"',
  "'": "'",
  "\\": "\\",
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
};

class Ctx {
  out = "";
  err = false;
  lexErrLine = -1;
  python = false;
  constructor(readonly fileName: string) {}

  report(line: number, text: string, msg: string): void {
    let lineno = line;
    if (lineno <= this.lexErrLine) return;
    let len = text.length;
    let newline = "";
    if (len > 0 && text[len - 1] === "\n") {
      len--;
      lineno--;
      if (len === 0) newline = "<newline>";
    }
    while (len > 0 && (text[len - 1] === "\t" || text[len - 1] === " ")) len--;
    const cut = text.indexOf("\0");
    const shown = text.slice(0, cut >= 0 && cut < len ? cut : len);
    this.out += `${this.fileName}:${lineno}: config parsing error near ${len ? "`" : ""}${shown}${len ? "'" : ""}${newline}: ${msg}\n`;
    this.err = true;
  }

  lexical(line: number, text: string, msg: string): void {
    this.report(line, text, msg);
    this.lexErrLine = line;
    this.err = true;
  }
}

const isIdentStart = (c: string) => c >= "a" && c <= "z";
const isIdentRest = (c: string) =>
  isIdentStart(c) || (c >= "0" && c <= "9") || c === "_" || c === ".";
const isNumRest = (c: string) => (c >= "0" && c <= "9") || (c >= "a" && c <= "f") || c === "x";

/** Lexes the whole text; lexical errors are reported as they are met, like flex would. */
function* lex(src: string, ctx: Ctx): Generator<Tok> {
  let i = 0;
  let line = 1;
  const n = src.length;
  let endText = "\0";
  // No token starts here: the run of non-blank characters is one lexical error; a lone byte
  // (other than a CR) takes a newline right after it too, which moves the error line past it.
  const lexError = (from: number): number => {
    let j = from + 1;
    while (j < n && src[j] !== " " && src[j] !== "\t" && src[j] !== "\n") j++;
    if (src[j] === "\n" && j === from + 1 && src[from] !== "\r") {
      j++;
      line++;
    }
    const bad = src.slice(from, j);
    if ("-+.(:".includes(bad[0] as string)) ctx.python = true;
    // A single stray byte that ends the input is not reported: the scanner meets the end first.
    if (j === n && j === from + 1) {
      endText = bad;
      return j;
    }
    ctx.lexical(line, bad, "lexical error");
    return j;
  };
  while (i < n) {
    const c = src[i] as string;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    if (c === "\n") {
      yield { kind: "NEWLINE", text: "\n", line };
      line++;
      i++;
      continue;
    }
    if (c === "#") {
      const nl = src.indexOf("\n", i);
      if (nl < 0) {
        i = lexError(i);
        continue;
      }
      yield { kind: "NEWLINE", text: src.slice(i, nl + 1), line };
      line++;
      i = nl + 1;
      continue;
    }
    if (c === "+" && src[i + 1] === "=") {
      yield { kind: "+=", text: "+=", line };
      i += 2;
      continue;
    }
    if (c === "=" || c === ";" || c === "[" || c === "]" || c === ",") {
      yield { kind: c, text: c, line };
      i++;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentRest(src[j] as string)) j++;
      yield { kind: "IDENT", text: src.slice(i, j), line };
      i = j;
      continue;
    }
    if (c >= "0" && c <= "9") {
      let j = i + 1;
      while (j < n && isNumRest(src[j] as string)) j++;
      yield { kind: "NUMBER", text: src.slice(i, j), line };
      i = j;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let closed = false;
      while (j < n && src[j] !== "\n") {
        const d = src[j] as string;
        if (d === "\\") {
          const e = src[j + 1];
          if (e === undefined || e === "\n") break;
          j += 2;
          continue;
        }
        if (d === c) {
          closed = true;
          break;
        }
        j++;
      }
      if (!closed) {
        i = lexError(i);
        continue;
      }
      const text = src.slice(i, j + 1);
      i = j + 1;
      yield { kind: "STRING", text, line };
      continue;
    }
    i = lexError(i);
  }
  yield { kind: "$end", text: endText, line };
}

/** strtoul's view of a prefix: how many characters it consumes in base 10. */
function strtoulConsumed(s: string): number {
  let k = 0;
  while (k < s.length && " \t\n\v\f\r".includes(s[k] as string)) k++;
  if (s[k] === "+" || s[k] === "-") k++;
  const digitsFrom = k;
  while (k < s.length && (s[k] as string) >= "0" && (s[k] as string) <= "9") k++;
  return k === digitsFrom ? 0 : k;
}

/** Removes the quotes and applies libxlutil's escapes, including its two numeric-escape quirks. */
function dequote(tok: Tok, ctx: Ctx): string {
  const src = tok.text;
  const end = src.length - 1;
  let out = "";
  let p = 1;
  while (p < end) {
    const c = src[p++] as string;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const nc = src[p++] as string;
    const simple = SIMPLE_ESCAPE[nc];
    if (simple !== undefined) {
      out += simple;
    } else if (nc === "x") {
      // The hex form can never succeed in 4.17: it wants more digits than it reads.
      ctx.lexical(
        tok.line,
        src,
        "invalid digit after backslash hexnumerical character escape in quoted string",
      );
      return out;
    } else if (!VALID_ESCAPE.has(nc)) {
      ctx.lexical(tok.line, src, "invalid character after backlash in quoted string");
      return out;
    } else if (nc >= "0" && nc <= "7") {
      const buf = `${src}\0`.slice(p, p + 3).split("\0")[0] as string;
      const used = strtoulConsumed(buf);
      if (used <= 1) {
        ctx.lexical(
          tok.line,
          src,
          "invalid digit after backslash octalnumerical character escape in quoted string",
        );
        return out;
      }
      p += used;
    }
  }
  return out;
}

class Parser {
  private readonly it: Generator<Tok>;
  /** Tokens still to shift before syntax errors are reported again (bison's yyerrstatus). */
  private quiet = 0;
  private la: Tok;
  readonly settings = new Map<string, CfgSetting>();

  constructor(
    src: string,
    private readonly ctx: Ctx,
  ) {
    this.it = lex(src, ctx);
    this.la = this.next();
  }

  private lastLine = 1;

  /** The next token; the end of input takes the location of the token before it, as in bison. */
  private next(): Tok {
    const r = this.it.next();
    const t: Tok = r.done ? { kind: "$end", text: "\0", line: 1 } : r.value;
    if (t.kind === "$end") return { ...t, line: this.lastLine };
    this.lastLine = t.line;
    return t;
  }

  private peek(): TokKind {
    return this.la.kind;
  }

  private shift(): Tok {
    if (this.quiet > 0) this.quiet--;
    const t = this.la;
    this.la = this.next();
    return t;
  }

  private syntax(expecting: string[]): void {
    const t = this.la;
    let msg = `syntax error, unexpected ${TOKEN_NAME[t.kind]}`;
    if (expecting.length > 0) msg += `, expecting ${expecting.join(" or ")}`;
    this.ctx.report(t.line, t.text, msg);
  }

  /** Parses the file; returns when the input ends or the parse aborts. */
  run(): void {
    for (;;) {
      const t = this.la;
      if (t.kind === "$end") return;
      if (t.kind === "NEWLINE" || t.kind === ";") {
        this.shift();
        continue;
      }
      let ok: "stored" | "end" | "error" | "abort";
      if (t.kind === "IDENT") ok = this.assignment();
      else {
        if (this.quiet === 0) this.syntax(["$end", "IDENT", "NEWLINE", "';'"]);
        else this.ctx.err = true;
        ok = "error";
      }
      if (ok === "end" || ok === "abort") return;
      if (ok === "error") {
        // error NEWLINE: drop tokens up to and including the next newline.
        while (this.peek() !== "NEWLINE") {
          if (this.peek() === "$end") return;
          this.shift();
        }
        this.quiet = 3;
        this.shift();
      }
    }
  }

  private assignment(): "stored" | "end" | "error" | "abort" {
    const name = this.shift();
    const fail = (expecting: string[]): "error" => {
      if (this.quiet === 0) this.syntax(expecting);
      else this.ctx.err = true;
      return "error";
    };
    if (this.peek() !== "=" && this.peek() !== "+=") return fail(["+=", "'='"]);
    const append = this.shift().kind === "+=";
    let value: CfgValue;
    this.lastValue = this.la;
    if (this.peek() === "STRING" || this.peek() === "NUMBER") {
      value = { kind: "string", value: this.atom(this.shift()) };
    } else if (this.peek() === "[") {
      this.shift();
      const values: string[] = [];
      const skipNl = () => {
        while (this.peek() === "NEWLINE") this.shift();
      };
      skipNl();
      for (;;) {
        if (this.peek() === "]") break;
        if (this.peek() === "STRING" || this.peek() === "NUMBER") {
          values.push(this.atom(this.shift()));
        } else if (this.peek() === "[") {
          const r = this.nestedList();
          if (r !== null) return fail(["']'"]);
        } else return fail(["']'"]);
        skipNl();
        if (this.peek() === ",") {
          this.shift();
          skipNl();
          continue;
        }
        if (this.peek() !== "]") return fail(["']'"]);
      }
      this.lastValue = this.shift();
      value = { kind: "list", values };
    } else return fail(["STRING", "NUMBER", "'['"]);
    this.store(name, value, append);
    const k = this.peek();
    if (k === "NEWLINE" || k === ";") return "stored";
    if (k === "$end") return "end";
    if (this.quiet === 0) this.syntax(["$end"]);
    this.ctx.err = true;
    return "abort";
  }

  /** A list inside a list is accepted by the grammar; its items do not become values. */
  private nestedList(): null | "error" {
    this.shift();
    let depth = 1;
    while (depth > 0) {
      const k = this.peek();
      if (k === "$end") return "error";
      if (k === "[") depth++;
      if (k === "]") depth--;
      if (k === "STRING") this.atom(this.la);
      this.shift();
    }
    return null;
  }

  private atom(t: Tok): string {
    if (t.kind === "NUMBER") return t.text;
    if (this.ctx.err) return "";
    return dequote(t, this.ctx);
  }

  private store(name: Tok, value: CfgValue, append: boolean): void {
    const prev = this.settings.get(name.text);
    if (append && prev) {
      if (prev.value.kind !== value.kind) {
        this.ctx.lexical(
          this.lastValue.line,
          this.lastValue.text,
          `can't add [list] to "string" or vice versa`,
        );
        return;
      }
      if (this.ctx.err) return;
      if (prev.value.kind === "string" && value.kind === "string") prev.value.value += value.value;
      else if (prev.value.kind === "list" && value.kind === "list")
        prev.value.values.push(...value.values);
      prev.lineno = name.line;
      prev.appended = true;
      return;
    }
    if (this.ctx.err) return;
    this.settings.delete(name.text);
    this.settings.set(name.text, { name: name.text, value, lineno: name.line, appended: append });
  }

  private lastValue: Tok = { kind: "$end", text: "", line: 1 };
}

/** Parses xl.cfg text as libxlutil 4.17 does; `fileName` is what messages name. */
export function parseXlCfg(text: string, fileName: string): ParsedCfg {
  checkXlCfgArgs(text, fileName);
  const ctx = new Ctx(fileName);
  const p = new Parser(text, ctx);
  p.run();
  return {
    settings: p.settings,
    diagnostics: ctx.out,
    failed: ctx.err,
    looksLikePython: ctx.python,
  };
}
