/*
 * The control socket's protocol: JSON lines over a unix stream socket. Each request is one
 * line `{"id":N,"op":"NAME","args":{...}}`; each answer one line
 * `{"id":N,"ok":true,"result":...}` or `{"id":N,"ok":false,"error":{"code":"...","message":"..."}}`.
 * The one exception is `console`: after its ok answer the connection carries raw console bytes
 * both ways until either end closes it (xenconsole's pty, here a socket).
 *
 * Ops: every XlHost method as "xl.METHOD" with args {params: [...]} (list, info, ...);
 * create {text, file, extra}, destroy {dom}, pause {dom}, unpause {dom},
 * shutdown {dom, reboot?, wait?}, save {dom, file}, restore {file}, memSet {dom, kb},
 * vcpuPin {dom, vcpu, cpus, soft?}, blockAttach {dom, spec}, blockDetach {dom, dev},
 * networkAttach {dom, spec}, networkDetach {dom, dev}, console {dom}, hello {}, stop {}.
 * `dom` is a name or a domid, resolved as xl's find_domain does.
 */

export interface ControlRequest {
  id: number;
  op: string;
  args?: Record<string, unknown>;
}

export interface ControlError {
  code: string;
  message: string;
}

export type ControlResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: ControlError };

/** The most bytes one request line may have (a config file, with room). */
export const MAX_LINE = 1 << 20;

/** Splits a byte stream into lines; calls `onLine` per complete line. */
export class LineSplitter {
  private buf = "";
  overflow = false;
  constructor(private readonly onLine: (line: string) => void) {}
  push(chunk: string): void {
    this.buf += chunk;
    for (;;) {
      const i = this.buf.indexOf("\n");
      if (i < 0) break;
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      if (line.length > 0) this.onLine(line);
    }
    if (this.buf.length > MAX_LINE) {
      this.overflow = true;
      this.buf = "";
    }
  }
  /** What is left after the last newline (raw bytes that followed a switch to raw mode). */
  rest(): string {
    const r = this.buf;
    this.buf = "";
    return r;
  }
}
