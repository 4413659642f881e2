/*
 * The daemon as a foreground process (`hyperlab xenstored`): one Xenstored served on a unix
 * socket, one log line per connection event and error, a clean stop on SIGTERM/SIGINT.
 *
 * Invariant: after `stop()` resolves the socket is closed and its file removed, and the
 * signal handlers this module installed are gone.
 */
import { listenUnix, type XenstoredSocketServer } from "./socket";
import { Xenstored, type XenstoredOptions } from "./xenstored";

export interface RunXenstoredOptions extends Omit<XenstoredOptions, "log"> {
  /** Unix socket path clients reach (set XENSTORED_PATH to it for libxenstore). */
  socketPath: string;
  /** Where log lines go (default: stderr, prefixed "xenstored: "). */
  log?: (line: string) => void;
  /** Stop on SIGTERM and SIGINT (default true). */
  handleSignals?: boolean;
}

export interface RunningXenstored {
  readonly daemon: Xenstored;
  readonly socket: XenstoredSocketServer;
  /** Resolves once the daemon stopped (signal or stop()); with the signal name if any. */
  readonly stopped: Promise<string | null>;
  /** Stop: close the socket, remove its file. */
  stop(): Promise<void>;
}

/** Start xenstored on a unix socket, in this process. */
export async function runXenstored(opts: RunXenstoredOptions): Promise<RunningXenstored> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`xenstored: ${line}\n`));
  const daemon = new Xenstored({ ...opts, log });
  const socket = await listenUnix(daemon, opts.socketPath, log);
  log(`listening on ${opts.socketPath} (pid ${process.pid})`);
  let resolveStopped!: (s: string | null) => void;
  const stopped = new Promise<string | null>((r) => {
    resolveStopped = r;
  });
  const handlers: [NodeJS.Signals, () => void][] = [];
  let stopping: Promise<void> | null = null;
  const stop = (signal: string | null): Promise<void> => {
    stopping ??= (async () => {
      for (const [sig, h] of handlers) process.off(sig, h);
      if (signal !== null) log(`${signal}: shutting down`);
      await socket.close();
      log("stopped");
      resolveStopped(signal);
    })();
    return stopping;
  };
  if (opts.handleSignals !== false) {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      const h = () => void stop(sig);
      handlers.push([sig, h]);
      process.on(sig, h);
    }
  }
  return { daemon, socket, stopped, stop: () => stop(null) };
}
