/*
 * hyperlabd: a host that keeps running. It boots a host (Xen-style by default: hypervisor,
 * dom0 with xenstored and xenconsoled; KVM-style with `kvm`), serves xenstored on a unix
 * socket that libxenstore clients reach with XENSTORED_PATH (Debian's xenstore-ls,
 * xenstore-read, ...), and serves the control socket (protocol.ts). `hyperlab up` runs it as a
 * detached child; `hyperlab down` (op "stop") or SIGTERM stops it.
 *
 * Invariant: after `stop()` resolves both sockets are closed and their files removed, the pid
 * file is gone, and the signal handlers this module installed are removed.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { listenUnix, type XenstoredSocketServer } from "@hyperlab/xenstore";
import { createHost, type Host, type HostOptions, startHostServices } from "../libxl/host";
import { coreDump } from "../libxl/lifecycle";
import { checkSocketPath, type RunPaths, runPaths } from "./rundir";
import { type ControlServer, serveControl } from "./server";

export interface DaemonOptions extends HostOptions {
  /** The run directory (must exist; see rundir.ts). */
  runDir: string;
  /** The flag that chose runDir, for error messages (default "--run-dir"). */
  runDirFlag?: string;
  /** Stop on SIGTERM and SIGINT (default true). */
  handleSignals?: boolean;
  log?: (line: string) => void;
  /**
   * More services over the host, started after the sockets and closed before them (the
   * dashboard of `up --http PORT` plugs in here).
   */
  services?: readonly ((host: Host) => Promise<{ close(): Promise<void> }>)[];
}

export interface RunningDaemon {
  readonly host: Host;
  readonly paths: RunPaths;
  readonly control: ControlServer;
  readonly xenstored: XenstoredSocketServer | null;
  /** Resolves once the daemon stopped. */
  readonly stopped: Promise<void>;
  stop(): Promise<void>;
}

/** Starts hyperlabd in this process. */
export async function runDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const flag = options.runDirFlag ?? "--run-dir";
  const paths = runPaths(options.runDir);
  checkSocketPath(paths.control, flag);
  checkSocketPath(paths.xenstored, flag);
  const log = options.log ?? (() => {});
  const host = createHost(options);
  await startHostServices(host);
  mkdirSync(paths.dump, { recursive: true });
  coreDump.dir = paths.dump;
  let xenstored: XenstoredSocketServer | null = null;
  if (host.xsd !== null) {
    rmSync(paths.xenstored, { force: true });
    xenstored = await listenUnix(host.xsd.daemon, paths.xenstored, (l) => log(`xenstored: ${l}`));
  }
  rmSync(paths.control, { force: true });
  const control = await serveControl(host, paths.control, {
    pid: process.pid,
    kind: host.kind,
    control: paths.control,
    xenstored: xenstored === null ? null : paths.xenstored,
  });
  const extra: { close(): Promise<void> }[] = [];
  for (const start of options.services ?? []) extra.push(await start(host));
  writeFileSync(paths.pid, `${process.pid}\n`);
  log(
    `hyperlabd: ${host.kind} host up (pid ${process.pid}); control ${paths.control}${xenstored ? `, xenstored ${paths.xenstored}` : ""}`,
  );

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });
  const handlers: [NodeJS.Signals, () => void][] = [];
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      for (const [sig, h] of handlers) process.off(sig, h);
      for (const x of extra) await x.close();
      await control.close();
      await xenstored?.close();
      rmSync(paths.control, { force: true });
      rmSync(paths.xenstored, { force: true });
      rmSync(paths.pid, { force: true });
      log("hyperlabd: stopped");
      resolveStopped();
    })();
    return stopping;
  };
  if (options.handleSignals !== false) {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      const h = () => void stop();
      handlers.push([sig, h]);
      process.on(sig, h);
    }
  }
  void control.stopRequested.then(() => setImmediate(() => void stop()));
  return { host, paths, control, xenstored, stopped, stop };
}
