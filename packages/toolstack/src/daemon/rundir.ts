/*
 * Where a host's sockets live: xl keeps its state under /var/run/xen (XEN_RUN_DIR); a host
 * here is a user's process, so its run directory is $XDG_RUNTIME_DIR/hyperlab when that is
 * set (the per-user runtime directory of the XDG spec), else /tmp/hyperlab-$UID; `--run-dir`
 * or HYPERLAB_RUN_DIR chooses another. Inside it: hyperlabd.sock (the control socket),
 * xenstored.sock (xenstored, for XENSTORED_PATH), hyperlabd.pid and hyperlabd.log.
 *
 * Invariant: every socket path handed to listen() fits in sun_path (107 bytes) and its
 * directory exists; otherwise a typed error names the flag that chose it.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { libxlError } from "../libxl/errors";

/** sizeof(sockaddr_un.sun_path) on Linux, less the terminating NUL. */
export const SUN_PATH_MAX = 107;

export interface RunPaths {
  dir: string;
  control: string;
  xenstored: string;
  pid: string;
  log: string;
  /** Where coredump-* actions write (xl: /var/lib/xen/dump). */
  dump: string;
}

/** The default run directory (see the file comment). */
export function defaultRunDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HYPERLAB_RUN_DIR !== undefined && env.HYPERLAB_RUN_DIR !== "")
    return env.HYPERLAB_RUN_DIR;
  if (env.XDG_RUNTIME_DIR !== undefined && env.XDG_RUNTIME_DIR !== "")
    return join(env.XDG_RUNTIME_DIR, "hyperlab");
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  return `/tmp/hyperlab-${uid}`;
}

export function runPaths(dir: string): RunPaths {
  return {
    dir,
    control: join(dir, "hyperlabd.sock"),
    xenstored: join(dir, "xenstored.sock"),
    pid: join(dir, "hyperlabd.pid"),
    log: join(dir, "hyperlabd.log"),
    dump: join(dir, "dump"),
  };
}

/**
 * Checks a socket path before listen(): at most 107 bytes, in a directory that exists.
 * `flag` is what the user typed to choose it (e.g. "--run-dir").
 */
export function checkSocketPath(path: string, flag: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > SUN_PATH_MAX) {
    throw libxlError(
      "TOOLSTACK_RUN_DIR",
      `${flag}: the socket path ${path} is ${bytes} bytes; a unix socket path may have at most ${SUN_PATH_MAX} (sun_path). Choose a shorter ${flag}.`,
    );
  }
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw libxlError(
      "TOOLSTACK_RUN_DIR",
      `${flag}: the directory ${dir} does not exist. Create it (mkdir -p ${dir}) or choose another ${flag}.`,
    );
  }
}
