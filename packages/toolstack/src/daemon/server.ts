/*
 * hyperlabd's control socket: the host's libxl calls served over the JSON-lines protocol
 * (protocol.ts), one request at a time.
 *
 * Invariants:
 * - Requests from every client run one after another through one queue, each to its end,
 *   whether or not the client that sent it is still there: a client killed mid-command leaves
 *   the host as the command left it (created fully or not at all), and its answer is dropped.
 * - Shut-down domains get their on_* action from the same queue (the reaper), so an action
 *   never interleaves with a command.
 * - A malformed line gets an error answer (or, when it has no id, is dropped); nothing a
 *   client sends makes the daemon throw.
 */
import { createServer, type Server, type Socket } from "node:net";
import { HyperlabError } from "@hyperlab/core";
import { configFromXlCfg } from "../libxl/config";
import { domainCreate } from "../libxl/create";
import { attachDevice, detachDevice, diskDevice, nicDevice } from "../libxl/devices";
import { libxlError } from "../libxl/errors";
import { type DomainRecord, findDomain, type Host, settle } from "../libxl/host";
import { libxlHost } from "../libxl/info";
import {
  destroyDomainRecord,
  memSet,
  pauseDomain,
  reapShutdowns,
  requestShutdown,
  unpauseDomain,
  vcpuPin,
  waitShutdown,
} from "../libxl/lifecycle";
import { domainRestore, domainSave } from "../libxl/save";
import type { XlHost } from "../xl/types";
import { parseDiskSpec, parseVifSpec } from "../xlcfg/index";
import { guestOp } from "./guest-ops";
import { type ControlRequest, type ControlResponse, LineSplitter } from "./protocol";

export interface ControlServer {
  readonly server: Server;
  /** Resolves when a client asked the daemon to stop (op "stop"). */
  readonly stopRequested: Promise<void>;
  /** Runs `fn` in the command queue. */
  enqueue<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface ControlInfo {
  pid: number;
  kind: string;
  control: string;
  xenstored: string | null;
}

type Args = Record<string, unknown>;

function noDomain(dom: unknown): HyperlabError<string> {
  return libxlError(
    "TOOLSTACK_NO_DOMAIN",
    `${String(dom)} is an invalid domain identifier (rc=-6)`,
  );
}

/** xl's find_domain over the host's guests. */
function find(host: Host, dom: unknown): DomainRecord {
  if (typeof dom !== "string" && typeof dom !== "number") throw noDomain(dom);
  const r = findDomain(host, typeof dom === "number" ? dom : String(dom));
  if (r === undefined || r.destroying) throw noDomain(dom);
  return r;
}

function isDom0(host: Host, dom: unknown): boolean {
  return host.dom0 !== null && (dom === 0 || dom === "0" || dom === host.dom0Name);
}

function str(a: Args, k: string): string {
  const v = a[k];
  if (typeof v !== "string")
    throw libxlError("TOOLSTACK_PROTOCOL", `argument ${k} must be a string.`);
  return v;
}

/** The request handlers: one libxl call each. */
function handlers(host: Host, info: ControlInfo, xl: XlHost) {
  const h: Record<string, (a: Args) => Promise<unknown>> = {
    hello: async () => info,
    // Answered first; the daemon stops once the answer is out (see the connection handler).
    stop: async () => null,
    create: async (a) => {
      const extra = Array.isArray(a.extra) ? a.extra.map(String) : [];
      const c = configFromXlCfg(str(a, "text"), str(a, "file"), extra);
      if (!c.ok) throw libxlError("TOOLSTACK_BAD_ARGUMENT", c.stderr);
      const r = await domainCreate(host, c.config);
      return { domid: r.domid, name: r.name };
    },
    destroy: async (a) => {
      if (isDom0(host, a.dom)) {
        throw libxlError(
          "TOOLSTACK_BAD_ARGUMENT",
          "Not destroying domain 0; use -f to force.\nThis can only be done when using a disaggregated hardware domain and toolstack.\n",
        );
      }
      const r = find(host, a.dom);
      await destroyDomainRecord(host, r);
      return { domid: r.domid };
    },
    pause: async (a) => {
      const r = find(host, a.dom);
      pauseDomain(host, r);
      return { domid: r.domid };
    },
    unpause: async (a) => {
      const r = find(host, a.dom);
      unpauseDomain(host, r);
      return { domid: r.domid };
    },
    shutdown: async (a) => {
      const r = find(host, a.dom);
      await requestShutdown(host, r, a.reboot === true ? "reboot" : "poweroff");
      if (a.wait !== true) return { domid: r.domid };
      await waitShutdown(host, r, 100_000);
      return { domid: r.domid, reason: r.domain.shutdownCode };
    },
    memSet: async (a) => {
      const r = find(host, a.dom);
      await memSet(host, r, Number(a.kb));
      return { domid: r.domid };
    },
    vcpuPin: async (a) => {
      const r = find(host, a.dom);
      const cpus = a.cpus === null || a.cpus === undefined ? null : (a.cpus as number[]);
      const soft = a.soft === null || a.soft === undefined ? null : (a.soft as number[]);
      vcpuPin(host, r, Number(a.vcpu), cpus, soft);
      return { domid: r.domid };
    },
    blockAttach: async (a) => {
      const r = find(host, a.dom);
      const d = parseDiskSpec(str(a, "spec"));
      if (typeof d === "string")
        throw libxlError(
          "TOOLSTACK_BAD_ARGUMENT",
          `config parsing error in disk specification: ${d}`,
        );
      const j = d as unknown as { obj: [string, unknown][] };
      const m = Object.fromEntries(j.obj);
      const rec = await attachDevice(
        host,
        r,
        diskDevice(r, {
          target: String(m.pdev_path ?? ""),
          vdev: String(m.vdev ?? ""),
          format: String(m.format ?? "raw"),
          readwrite: m.readwrite === 1,
          backendDomid: 0,
        }),
      );
      return { devid: rec.devid };
    },
    blockDetach: async (a) => {
      const r = find(host, a.dom);
      const dev = String(a.dev);
      const d = r.devices.find(
        (x) => x.type === "vbd" && (String(x.devid) === dev || x.json.vdev === dev),
      );
      if (d === undefined)
        throw libxlError("TOOLSTACK_BAD_ARGUMENT", `Error: Device ${dev} not connected.`);
      await detachDevice(host, r, "vbd", d.devid);
      return { devid: d.devid };
    },
    networkAttach: async (a) => {
      const r = find(host, a.dom);
      const used = new Set(r.devices.filter((x) => x.type === "vif").map((x) => x.devid));
      let devid = 0;
      while (used.has(devid)) devid++;
      const warnings: string[] = [];
      const n = parseVifSpec(str(a, "spec"), devid, (s) => warnings.push(s));
      const m = Object.fromEntries((n as unknown as { obj: [string, unknown][] }).obj);
      const rec = await attachDevice(
        host,
        r,
        nicDevice(r, {
          devid: Number(m.devid ?? devid),
          mac: String(m.mac ?? ""),
          bridge: String(m.bridge ?? "xenbr0"),
          backendDomid: 0,
        }),
      );
      return { devid: rec.devid, warnings: warnings.join("") };
    },
    networkDetach: async (a) => {
      const r = find(host, a.dom);
      const dev = String(a.dev);
      const d = r.devices.find(
        (x) => x.type === "vif" && (String(x.devid) === dev || x.json.mac === dev),
      );
      if (d === undefined)
        throw libxlError("TOOLSTACK_BAD_ARGUMENT", `Error: Device ${dev} not connected.`);
      await detachDevice(host, r, "vif", d.devid);
      return { devid: d.devid };
    },
    save: async (a) => {
      const r = find(host, a.dom);
      return await domainSave(host, r, str(a, "file"));
    },
    restore: async (a) => {
      const r = await domainRestore(host, str(a, "file"));
      return { domid: r.domid, name: r.name };
    },
    guest: async (a) => await guestOp(find(host, a.dom), a),
  };
  for (const m of Object.keys(xl) as (keyof XlHost)[]) {
    h[`xl.${m}`] = async (a) => {
      const params = Array.isArray(a.params) ? a.params : [];
      return await (xl[m] as (...p: unknown[]) => Promise<unknown>)(...params);
    };
  }
  return h;
}

/** Listens on `path` (checked by the caller) and serves `host`. */
export async function serveControl(
  host: Host,
  path: string,
  info: ControlInfo,
): Promise<ControlServer> {
  let queue: Promise<unknown> = Promise.resolve();
  const enqueue = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => undefined);
    return p;
  };
  let stopResolve!: () => void;
  const stopRequested = new Promise<void>((r) => {
    stopResolve = r;
  });
  const xl = libxlHost(host);
  const ops = handlers(host, info, xl);
  const sockets = new Set<Socket>();

  const serveConsole = (sock: Socket, r: DomainRecord, leftover: string) => {
    const stream = r.stream;
    if (stream === null) return;
    sock.write(Buffer.from(stream.output()));
    const off = stream.onOutput((b) => {
      if (!sock.destroyed) sock.write(Buffer.from(b));
    });
    const input = (b: Buffer | string) => {
      stream.write(typeof b === "string" ? Buffer.from(b, "latin1") : new Uint8Array(b));
      host.loop?.kick();
    };
    if (leftover.length > 0) input(Buffer.from(leftover, "latin1"));
    sock.on("data", input);
    sock.on("close", off);
  };

  const server = createServer((sock) => {
    sockets.add(sock);
    sock.setEncoding("latin1");
    let raw = false;
    const reply = (res: ControlResponse) => {
      if (!sock.destroyed) sock.write(`${JSON.stringify(res)}\n`);
    };
    const lines = new LineSplitter((line) => {
      if (raw) return;
      let req: ControlRequest;
      try {
        req = JSON.parse(line) as ControlRequest;
      } catch {
        reply({
          id: 0,
          ok: false,
          error: { code: "TOOLSTACK_PROTOCOL", message: "a request is one JSON object per line" },
        });
        return;
      }
      const id = typeof req?.id === "number" ? req.id : 0;
      const args = req?.args !== null && typeof req?.args === "object" ? (req.args as Args) : {};
      if (req?.op === "console") {
        raw = true;
        void enqueue(async () => find(host, args.dom)).then(
          (r) => {
            if (r.stream === null) {
              reply({
                id,
                ok: false,
                error: {
                  code: "TOOLSTACK_NOT_XEN",
                  message: "This domain has no console on this host.",
                },
              });
              return;
            }
            reply({ id, ok: true, result: { domid: r.domid } });
            serveConsole(sock, r, lines.rest());
          },
          (e: unknown) => reply({ id, ok: false, error: toError(e) }),
        );
        return;
      }
      const fn =
        typeof req?.op === "string" && Object.hasOwn(ops, req.op) ? ops[req.op] : undefined;
      if (fn === undefined) {
        reply({
          id,
          ok: false,
          error: { code: "TOOLSTACK_PROTOCOL", message: `unknown op ${JSON.stringify(req?.op)}` },
        });
        return;
      }
      void enqueue(async () => {
        const result = await fn(args);
        for (let i = 0; i < 3; i++) await settle();
        return result;
      }).then(
        (result) => {
          reply({ id, ok: true, result: result ?? null });
          if (req.op === "stop") sock.end(() => stopResolve());
        },
        (e: unknown) => reply({ id, ok: false, error: toError(e) }),
      );
    });
    sock.on("data", (d: string) => {
      if (!raw) lines.push(d);
      if (lines.overflow) sock.destroy();
    });
    sock.on("error", () => sock.destroy());
    sock.on("close", () => sockets.delete(sock));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // xl's per-domain death watch: shut-down domains get their action, between commands.
  const reaper = setInterval(() => {
    let due = false;
    for (const r of host.domains.values()) if (r.domain.state === "shutdown") due = true;
    if (due) void enqueue(() => reapShutdowns(host)).catch(() => undefined);
  }, 20);
  reaper.unref();
  return {
    server,
    stopRequested,
    enqueue,
    async close() {
      clearInterval(reaper);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function toError(e: unknown): { code: string; message: string } {
  if (e instanceof HyperlabError) return { code: e.code, message: e.message };
  return { code: "TOOLSTACK_INTERNAL", message: e instanceof Error ? e.message : String(e) };
}
