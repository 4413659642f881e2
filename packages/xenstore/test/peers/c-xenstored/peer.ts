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
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  MASK_XENSTORE_IDX,
  XENSTORE_RING_SIZE,
  XS_ERROR,
  XS_READ,
  XS_WATCH_EVENT,
  xenstore_domain_interface,
} from "@hyperlab/abi";
import { encodeMessage, MessageReader } from "../../../src/index";

const run = promisify(execFile);
const here = fileURLToPath(new URL(".", import.meta.url));
export const repoRoot = fileURLToPath(new URL("../../../../../", import.meta.url));
const XENSTORED = join(repoRoot, ".peers/usr/lib/xen-4.17/bin/xenstored");

export interface CPeer {
  readonly socket: string;
  /** The peer's directory: the shim keeps a domain's ring page in `ring-<domid>` there. */
  readonly dir: string;
  /** Wake the daemon as an event on its event channel would (it then checks every ring). */
  kick(): void;
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
        XSSHIM_KICK: join(dir, "kick"),
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
  let kickFd: number | null = null;
  return {
    socket: join(dir, "socket"),
    dir,
    kick() {
      // Port 1 is nobody's: the event only wakes the daemon's main loop.
      kickFd ??= openSync(join(dir, "kick"), "w");
      writeSync(kickFd, "1\n");
    },
    async stop() {
      if (kickFd !== null) closeSync(kickFd);
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

const IF = xenstore_domain_interface.fields;

/**
 * A domain's end of its xenstore page as C xenstored (under the shim) maps it: the file
 * `ring-<domid>` in the peer's directory, read and written with pread/pwrite, which share the
 * page cache with the daemon's MAP_SHARED mapping. One request at a time.
 */
export class FileRingClient {
  readonly events: string[] = [];
  private readonly reader = new MessageReader();
  private readonly fd: number;
  private readonly u32 = Buffer.alloc(4);
  private reqId = 1;
  private reply: string | null = null;

  constructor(
    path: string,
    private readonly kick: () => void,
  ) {
    this.fd = openSync(path, "r+");
  }

  private get(off: number): number {
    readSync(this.fd, this.u32, 0, 4, off);
    return this.u32.readUInt32LE(0);
  }

  private put(off: number, v: number): void {
    this.u32.writeUInt32LE(v >>> 0, 0);
    writeSync(this.fd, this.u32, 0, 4, off);
  }

  private send(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const cons = this.get(IF.req_cons.offset);
      const prod = this.get(IF.req_prod.offset);
      const idx = prod & MASK_XENSTORE_IDX;
      const n = Math.min(
        XENSTORE_RING_SIZE - idx,
        XENSTORE_RING_SIZE - ((prod - cons) >>> 0),
        bytes.length - done,
      );
      if (n === 0) throw new Error("C xenstored does not drain the ring");
      writeSync(this.fd, bytes, done, n, IF.req.offset + idx);
      this.put(IF.req_prod.offset, prod + n);
      done += n;
    }
  }

  private drain(): void {
    const cons = this.get(IF.rsp_cons.offset);
    const prod = this.get(IF.rsp_prod.offset);
    const avail = (prod - cons) >>> 0;
    if (avail === 0 || avail > XENSTORE_RING_SIZE) return;
    const idx = cons & MASK_XENSTORE_IDX;
    const n = Math.min(avail, XENSTORE_RING_SIZE - idx);
    const buf = new Uint8Array(n);
    readSync(this.fd, buf, 0, n, IF.rsp.offset + idx);
    this.put(IF.rsp_cons.offset, cons + n);
    this.reader.push(buf, (m) => {
      if (m.type === XS_WATCH_EVENT) this.events.push(show(m.type, m.payload).slice(3));
      else this.reply = show(m.type, m.payload);
    });
  }

  /** Send one request and wait (polling the page, kicking the daemon) for its reply. */
  async req(type: number, args: readonly string[], txId = 0): Promise<string> {
    const payload = new Uint8Array(Buffer.from(args.map((a) => `${a}\0`).join(""), "latin1"));
    this.reply = null;
    this.send(encodeMessage(type, this.reqId++, txId, payload));
    this.kick();
    for (let i = 0; this.reply === null; i++) {
      this.drain();
      if (this.reply !== null) break;
      if (i > 20_000) throw new Error("no reply from C xenstored over the ring");
      await new Promise((r) => setTimeout(r, i < 50 ? 0 : 1));
      if (i % 100 === 99) this.kick();
    }
    const r = this.reply;
    this.reply = null;
    return r;
  }

  take(): string[] {
    return this.events.splice(0);
  }

  close(): void {
    closeSync(this.fd);
  }
}
