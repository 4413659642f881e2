/*
 * Starts Debian's C xenstored 4.17 (via start.sh and the LD_PRELOAD shim next to this file)
 * and gives raw wire clients for it and for our daemon, so a differential test can send one
 * sequence to both and compare every reply and watch event.
 *
 * Invariant: a client's `events` hold exactly the watch events that arrived before the reply
 * of its latest request, in arrival order; `sync()` makes "arrived" mean "queued by the
 * daemon before it answered", which both daemons guarantee for one connection.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { XS_ERROR, XS_READ, XS_WATCH_EVENT } from "@hyperlab/abi";
import { encodeMessage, MessageReader } from "../../../src/index";

const run = promisify(execFile);
const here = fileURLToPath(new URL(".", import.meta.url));
export const repoRoot = fileURLToPath(new URL("../../../../../", import.meta.url));
const XENSTORED = join(repoRoot, ".peers/usr/lib/xen-4.17/bin/xenstored");

export interface CPeer {
  readonly socket: string;
  stop(): Promise<void>;
}

/**
 * Start C xenstored with `domains` existing (XSSHIM_DOMAINS syntax). Throws with what to do
 * when it cannot run (missing .peers extraction, libraries, gcc or make).
 */
export async function startCXenstored(domains: string): Promise<CPeer> {
  if (!existsSync(XENSTORED)) {
    throw new Error(
      `C xenstored is missing (${XENSTORED}); run \`node scripts/peers.mjs\` as root from the repository root`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "hyperlab-cxs-"));
  try {
    await run("sh", [join(here, "start.sh"), dir], {
      env: {
        ...process.env,
        XSPEER_XENSTORED: XENSTORED,
        XSPEER_CACHE: join(repoRoot, ".peers/c-xenstored"),
        XSSHIM_DOMAINS: domains,
      },
      timeout: 120_000,
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const err = e as { stderr?: string; message: string };
    throw new Error(
      `cannot start C xenstored: ${err.stderr || err.message}\nrun \`node scripts/peers.mjs\` as root from the repository root`,
    );
  }
  return {
    socket: join(dir, "socket"),
    async stop() {
      await run("sh", [join(here, "stop.sh"), dir]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One reply or event, as text: "TYPE payload" with NULs shown as |. */
function show(type: number, payload: Uint8Array): string {
  const text = Buffer.from(payload).toString("latin1").replaceAll("\0", "|");
  return type === XS_ERROR ? `ERROR ${text}` : `${type} ${text}`;
}

/** A raw wire client over a unix socket, one request at a time. */
export class WireClient {
  readonly events: string[] = [];
  private readonly reader = new MessageReader();
  private pending: ((r: string) => void) | null = null;
  private reqId = 1;

  private constructor(private readonly sock: Socket) {
    sock.on("data", (chunk: Buffer) => {
      this.reader.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length), (m) => {
        if (m.type === XS_WATCH_EVENT) {
          this.events.push(show(m.type, m.payload).slice(3));
          return;
        }
        const p = this.pending;
        this.pending = null;
        p?.(show(m.type, m.payload));
      });
    });
  }

  static open(path: string): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once("connect", () => resolve(new WireClient(s)));
      s.once("error", reject);
    });
  }

  /** Send one request of NUL-terminated strings (or raw bytes) and wait for its reply. */
  req(type: number, args: readonly string[] | Uint8Array, txId = 0): Promise<string> {
    const payload =
      args instanceof Uint8Array
        ? args
        : new Uint8Array(Buffer.from(args.map((a) => `${a}\0`).join(""), "latin1"));
    return new Promise((resolve) => {
      this.pending = resolve;
      this.sock.write(encodeMessage(type, this.reqId++, txId, payload));
    });
  }

  /** A round trip, so every event queued for this connection before it has arrived. */
  async sync(): Promise<void> {
    await this.req(XS_READ, ["/"]);
  }

  /** The events so far, emptying the list. */
  take(): string[] {
    return this.events.splice(0);
  }

  close(): void {
    this.sock.destroy();
  }
}
