/*
 * The client end of hyperlabd's control socket: requests with answers matched by id, the
 * raw console mode, and XlHost over the socket (so xl's read-side verbs print from a running
 * host).
 *
 * Invariant: a request resolves or rejects exactly once; a closed socket rejects every
 * request still waiting with TOOLSTACK_NO_HOST.
 */
import { connect, type Socket } from "node:net";
import { HyperlabError } from "@hyperlab/core";
import { libxlError } from "../libxl/errors";
import type { XlHost } from "../xl/types";
import { type ControlResponse, LineSplitter } from "./protocol";

export class ControlClient {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  private readonly lines: LineSplitter;
  private closed = false;
  /** Raw bytes after a console answer go here. */
  private rawSink: ((b: Buffer) => void) | null = null;

  private constructor(readonly socket: Socket) {
    this.lines = new LineSplitter((line) => this.onLine(line));
    socket.on("data", (b: Buffer) => {
      if (this.rawSink !== null) this.rawSink(b);
      else this.lines.push(b.toString("latin1"));
    });
    const fail = () => {
      this.closed = true;
      for (const w of this.waiting.values()) {
        w.reject(libxlError("TOOLSTACK_NO_HOST", "the host closed the control connection"));
      }
      this.waiting.clear();
    };
    socket.on("close", fail);
    socket.on("error", fail);
  }

  /** Connects to the control socket at `path`; rejects with TOOLSTACK_NO_HOST when nothing listens. */
  static connect(path: string): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once("connect", () => resolve(new ControlClient(s)));
      s.once("error", (e: NodeJS.ErrnoException) =>
        reject(
          libxlError(
            "TOOLSTACK_NO_HOST",
            `no host is running at ${path} (${e.code ?? e.message}); start one with 'hyperlab up'.`,
          ),
        ),
      );
    });
  }

  private onLine(line: string): void {
    let res: ControlResponse;
    try {
      res = JSON.parse(line) as ControlResponse;
    } catch {
      return;
    }
    const w = this.waiting.get(res.id);
    if (w === undefined) return;
    this.waiting.delete(res.id);
    if (res.ok) w.resolve(res.result);
    else w.reject(new HyperlabError(res.error.code, res.error.message));
  }

  /** Sends one request; resolves to its result or rejects with the daemon's typed error. */
  request<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.closed)
      return Promise.reject(libxlError("TOOLSTACK_NO_HOST", "the control connection is closed"));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  /**
   * Attaches to a domain's console: after the daemon's ok, `onOutput` gets the console's bytes
   * (everything so far, then as they come) and `write` sends input. Close with `close()`.
   */
  async console(
    dom: string,
    onOutput: (b: Buffer) => void,
  ): Promise<{ write: (b: Buffer | string) => void }> {
    const id = this.nextId++;
    const answered = new Promise<unknown>((resolve, reject) =>
      this.waiting.set(id, { resolve, reject }),
    );
    // Bytes that arrive right behind the answer belong to the console.
    const origOnLine = this.onLine.bind(this);
    this.onLine = (line: string) => {
      origOnLine(line);
      if (!this.waiting.has(id)) {
        this.rawSink = onOutput;
        const rest = this.lines.rest();
        if (rest.length > 0) onOutput(Buffer.from(rest, "latin1"));
      }
    };
    this.socket.write(`${JSON.stringify({ id, op: "console", args: { dom } })}\n`);
    await answered;
    return { write: (b) => this.socket.write(b) };
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

/** XlHost over the control socket: each method one "xl.METHOD" request. */
export function xlHostOverSocket(client: ControlClient): XlHost {
  const call =
    (m: string) =>
    (...params: unknown[]) =>
      client.request(`xl.${m}`, { params });
  const methods = [
    "listDomains",
    "domainInfo",
    "domid",
    "domname",
    "vcpuList",
    "physInfo",
    "cpupools",
    "domainSchedParams",
    "setDomainSchedParams",
    "schedCreditParams",
    "setSchedCreditParams",
    "schedCredit2Params",
    "setSchedCredit2Params",
    "blockList",
    "networkList",
    "domainConfig",
    "dmesg",
  ] as const;
  const host = Object.fromEntries(methods.map((m) => [m, call(m)])) as unknown as XlHost;
  // JSON has no undefined: a missing domain comes back as null.
  for (const m of methods) {
    const f = host[m] as (...p: unknown[]) => Promise<unknown>;
    (host as unknown as Record<string, unknown>)[m] = async (...p: unknown[]) => {
      const v = await f(...p);
      return v === null ? undefined : v;
    };
  }
  return host;
}
