/*
 * startDashboard: serves the live dashboard over node:http. GET / is the page; GET /events
 * is a Server-Sent Events stream with a snapshot on connect, every `intervalMs`, and at
 * once whenever the source reports a change; GET /api/snapshot and /api/pagetable?domid=N
 * answer JSON; GET /study is @hyperlab/study's report of the source's results.
 *
 * Invariant: one poll runs at a time and every open stream gets the same snapshot; a
 * failing source is reported on the stream ("error" event) and never stops the server;
 * close() ends every stream and the listener.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { HyperlabError } from "@hyperlab/core";
import { reportHtml } from "@hyperlab/study";
import type { ToolstackErrorCode } from "../errors";
import { DASHBOARD_HTML } from "./page";
import { type DashboardSource, snapshot } from "./source";

export interface DashboardOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Address to listen on (default 127.0.0.1: the dashboard is for this machine). */
  host?: string;
  /** Milliseconds between snapshots on the stream (default 500). */
  intervalMs?: number;
}

export interface Dashboard {
  /** e.g. http://127.0.0.1:8080/ */
  url: string;
  port: number;
  /** Pushes a fresh snapshot to every open stream now. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Serves the dashboard for `source`; resolves once it listens. */
export async function startDashboard(
  source: DashboardSource,
  opts: DashboardOptions,
): Promise<Dashboard> {
  const port = opts.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HyperlabError<ToolstackErrorCode>(
      "TOOLSTACK_DASHBOARD",
      `dashboard port ${port} is not a TCP port: give a whole number from 1 to 65535 (or 0 for any free port).`,
    );
  }
  const interval = opts.intervalMs ?? 500;
  if (!(interval >= 10)) {
    throw new HyperlabError<ToolstackErrorCode>(
      "TOOLSTACK_DASHBOARD",
      `dashboard intervalMs ${interval} is too small: give at least 10 (milliseconds).`,
    );
  }
  const streams = new Set<ServerResponse>();
  let polling: Promise<void> | undefined;
  let again = false;

  async function pollOnce(): Promise<void> {
    let frame: string;
    try {
      frame = `event: snapshot\ndata: ${JSON.stringify(await snapshot(source))}\n\n`;
    } catch (e) {
      frame = `event: error\ndata: ${JSON.stringify({ message: message(e) })}\n\n`;
    }
    for (const s of streams) s.write(frame);
  }

  /** Runs a poll, or (when one is running) one more right after it. */
  function refresh(): Promise<void> {
    if (polling) {
      again = true;
      return polling;
    }
    polling = (async () => {
      do {
        again = false;
        await pollOnce();
      } while (again);
      polling = undefined;
    })();
    return polling;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      send(res, 405, "text/plain; charset=utf-8", "only GET\n");
      return;
    }
    switch (url.pathname) {
      case "/":
        send(res, 200, "text/html; charset=utf-8", DASHBOARD_HTML);
        return;
      case "/events": {
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-store",
          connection: "keep-alive",
        });
        res.write("retry: 1000\n\n");
        streams.add(res);
        req.on("close", () => streams.delete(res));
        // The newcomer's first frame: a fresh snapshot for every stream.
        await refresh();
        return;
      }
      case "/api/snapshot":
        send(res, 200, "application/json", JSON.stringify(await snapshot(source)));
        return;
      case "/api/pagetable": {
        const q = url.searchParams.get("domid") ?? "";
        if (!/^[0-9]+$/.test(q)) {
          send(res, 400, "text/plain; charset=utf-8", `domid must be a number; got '${q}'\n`);
          return;
        }
        if (source.pageTable === undefined) {
          send(res, 404, "text/plain; charset=utf-8", "this host shows no page tables\n");
          return;
        }
        const tree = await source.pageTable(Number(q));
        if (tree === undefined)
          send(res, 404, "text/plain; charset=utf-8", `domain ${q} has no page-table tree\n`);
        else send(res, 200, "application/json", JSON.stringify(tree));
        return;
      }
      case "/study": {
        const results = await source.study?.();
        if (results === undefined)
          send(res, 404, "text/plain; charset=utf-8", "no study results\n");
        else send(res, 200, "text/html; charset=utf-8", reportHtml(results));
        return;
      }
      default:
        send(res, 404, "text/plain; charset=utf-8", `no page ${url.pathname}\n`);
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent)
        send(res, 500, "text/plain; charset=utf-8", `dashboard source failed: ${message(e)}\n`);
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new HyperlabError<ToolstackErrorCode>(
          "TOOLSTACK_DASHBOARD",
          e.code === "EADDRINUSE"
            ? `dashboard port ${port} is in use: choose another (--http PORT) or stop what listens there.`
            : `dashboard cannot listen on ${opts.host ?? "127.0.0.1"}:${port}: ${e.message}`,
        ),
      ),
    );
    server.listen(port, opts.host ?? "127.0.0.1", () => resolve());
  });
  const timer = setInterval(() => void refresh(), interval);
  timer.unref();
  const unsubscribe = source.subscribe?.(() => void refresh());
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${actual}/`,
    port: actual,
    refresh,
    async close() {
      clearInterval(timer);
      unsubscribe?.();
      for (const s of streams) s.end();
      streams.clear();
      await polling;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
    },
  };
}
