/*
 * The unix-socket transport: xenstored's listening socket (what libxenstore reaches through
 * XENSTORED_PATH) and one XsConnection per accepted client.
 *
 * Invariants: bytes from a socket go to its connection in arrival order, however they are
 * split; a connection's output is written in queue order; a socket that closes (or errors)
 * closes its connection, freeing its watches and transactions; the daemon dropping a
 * connection destroys its socket.
 */
import { existsSync, lstatSync, statSync, unlinkSync } from "node:fs";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { XenstoreError } from "./errors";
import type { Xenstored } from "./xenstored";

/** sizeof(sockaddr_un.sun_path) on Linux, less the terminating NUL. */
export const UNIX_PATH_MAX = 107;

export interface XenstoredSocketServer {
  /** The socket file. */
  readonly path: string;
  readonly server: Server;
  /** Stop listening, disconnect every client, remove the socket file. */
  close(): Promise<void>;
}

function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Listen on a unix socket at `path` and serve `daemon` there. */
export async function listenUnix(
  daemon: Xenstored,
  path: string,
  log: (line: string) => void = () => {},
): Promise<XenstoredSocketServer> {
  if (typeof path !== "string" || path.length === 0) {
    throw new XenstoreError(
      "XS_BAD_ARGUMENT",
      "give the socket a path, e.g. /run/xenstored/socket",
    );
  }
  const bytes = Buffer.byteLength(path);
  if (bytes > UNIX_PATH_MAX) {
    throw new XenstoreError(
      "XS_SOCKET_PATH",
      `socket path ${path} is ${bytes} bytes; a unix socket path may have at most ${UNIX_PATH_MAX} (sun_path), so choose a shorter --socket path`,
    );
  }
  const parent = dirname(path);
  if (!existsSync(parent)) {
    throw new XenstoreError(
      "XS_SOCKET_PATH",
      `the directory ${parent} for socket ${path} does not exist; create it (mkdir -p ${parent}) or choose another --socket path`,
    );
  }
  if (!statSync(parent).isDirectory()) {
    throw new XenstoreError(
      "XS_SOCKET_PATH",
      `${parent} is not a directory, so socket ${path} cannot be made there; choose another --socket path`,
    );
  }
  if (existsSync(path)) {
    const st = lstatSync(path);
    if (!st.isSocket()) {
      throw new XenstoreError(
        "XS_SOCKET",
        `${path} exists and is not a socket; remove it or choose another --socket path`,
      );
    }
    if (await probe(path)) {
      throw new XenstoreError(
        "XS_SOCKET",
        `another xenstored is listening on ${path}; stop it or choose another --socket path`,
      );
    }
    unlinkSync(path);
  }
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    const conn = daemon.connect({
      onOutput: (c) => {
        // One write per connection per turn, of a Buffer (pooled; no Uint8Array conversion).
        const b = c.takeAllOutput(Buffer.allocUnsafe);
        if (b !== undefined && !sock.destroyed) sock.write(b);
      },
      onDrop: () => sock.destroy(),
    });
    // A Buffer is a Uint8Array; the reader copies what it keeps, so the chunk is not held.
    sock.on("data", (chunk: Buffer) => {
      conn.feed(chunk);
    });
    sock.on("error", (e) => log(`connection ${conn.id}: ${e.message}`));
    sock.on("close", () => {
      sockets.delete(sock);
      conn.close();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(new XenstoreError("XS_SOCKET", `cannot listen on ${path}: ${e.message}`)),
    );
    server.listen(path, () => resolve());
  });
  server.on("error", (e) => log(`socket error: ${e.message}`));
  let closing: Promise<void> | null = null;
  return {
    path,
    server,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          try {
            if (existsSync(path)) unlinkSync(path);
          } catch {
            // Already gone.
          }
          resolve();
        });
      });
      return closing;
    },
  };
}
