/*
 * What the live dashboard shows, as data: a DashboardSource is an XlHost plus optional
 * streams of the hypervisor's inner state (event-channel traffic, grant mappings, ring
 * occupancy, a domain's page-table tree, a study's results). snapshot() reads them all once.
 *
 * Invariant: a snapshot is plain JSON (no functions, no cycles), so it goes over SSE as is.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { HyperlabError } from "@hyperlab/core";
import { RESULTS_FORMAT, type StudyResults } from "@hyperlab/study";
import type { ToolstackErrorCode } from "../errors";
import type { XlHost } from "../xl/types";

/**
 * One event-channel port in use and its traffic: cumulative notifications sent from it and
 * events raised on it, since it was bound.
 */
export interface EvtchnTraffic {
  domid: number;
  port: number;
  /** "interdomain", "virq", "pirq", "ipi" or "unbound". */
  kind: string;
  /** The peer (interdomain) or the domain allowed to bind (unbound). */
  remoteDomid?: number;
  remotePort?: number;
  /** The VIRQ or PIRQ the port is bound to. */
  irq?: number;
  /** The vCPU the port notifies. */
  vcpu?: number;
  pending?: boolean;
  masked?: boolean;
  sent: number;
  received: number;
}

/** A vCPU's event counts: events raised on ports that notify it, and upcalls it was sent. */
export interface VcpuEvents {
  domid: number;
  vcpu: number;
  raised: number;
  upcalls: number;
}

/** One grant mapped by a domain: `grantee` maps `granter`'s grant `ref`. */
export interface GrantMapping {
  granter: number;
  grantee: number;
  ref: number;
  /** The frame (gfn/mfn) the grant names. */
  frame: number;
  readonly: boolean;
}

/**
 * One shared ring as its page shows it (rings.ts reads one): the indexes under their names in
 * Xen's headers, and the occupancy, what was produced and not yet consumed.
 */
export interface RingOccupancy {
  /** e.g. "vbd 1/51712", "vif 1/0 tx", "console 1 out", "xenstore 1 req". */
  name: string;
  /** The domain whose ring it is (the frontend). */
  domid: number;
  /** "blkif", "netif_tx", "netif_rx", "console_in", "console_out", "xenstore_req", "xenstore_rsp". */
  kind: string;
  /** The machine frame holding the indexes (the ring's first page). */
  frame: number;
  /** Slots (ring.h rings) or bytes (console, xenstore) the ring holds. */
  size: number;
  /** Produced and not yet consumed, mod 2^32; more than `size` only on a corrupt page. */
  used: number;
  /** e.g. req_prod, req_event, rsp_prod, rsp_event; or in_prod, in_cons. */
  indexes: Record<string, number>;
}

/** A node of a domain's page-table tree (a table, or a leaf mapping). */
export interface PageTableNode {
  label: string;
  children?: PageTableNode[];
}

/** The dashboard's data source. Only `host` is required. */
export interface DashboardSource {
  host: XlHost;
  evtchnTraffic?(): Promise<EvtchnTraffic[]>;
  /** Per-vCPU event and upcall counts. */
  vcpuEvents?(): Promise<VcpuEvents[]>;
  grantMappings?(): Promise<GrantMapping[]>;
  rings?(): Promise<RingOccupancy[]>;
  /** The page-table tree of `domid`, or undefined when it has none (or is unknown). */
  pageTable?(domid: number): Promise<PageTableNode | undefined>;
  /** A study's results (results.json), drawn with @hyperlab/study's report. */
  study?(): Promise<StudyResults | undefined>;
  /** Calls `changed` whenever the source knows its state changed; returns an unsubscribe. */
  subscribe?(changed: () => void): () => void;
}

export interface DashVcpu {
  id: number;
  cpu: number;
  /** "r" running, "b" blocked, "-" runnable, "o" offline. */
  state: string;
  timeNs: number;
}

export interface DashDomain {
  domid: number;
  name: string;
  state: string;
  memMiB: number;
  maxMemMiB: number;
  cpuNs: number;
  vcpus: DashVcpu[];
}

/** One reading of everything the page shows (but the page-table tree, fetched on demand). */
export interface DashboardSnapshot {
  domains: DashDomain[];
  evtchn: EvtchnTraffic[];
  vcpuEvents: VcpuEvents[];
  grants: GrantMapping[];
  rings: RingOccupancy[];
  hasStudy: boolean;
  /** Why the study's results could not be read (the rest of the page still updates). */
  studyError?: string;
  hasPageTables: boolean;
}

function letters(d: {
  running: boolean;
  blocked: boolean;
  paused: boolean;
  shutdown: boolean;
  dying: boolean;
}): string {
  return (
    (d.running ? "r" : "-") +
    (d.blocked ? "b" : "-") +
    (d.paused ? "p" : "-") +
    (d.shutdown ? "s" : "-") +
    (d.dying ? "d" : "-")
  );
}

/** Reads the source once. */
export async function snapshot(source: DashboardSource): Promise<DashboardSnapshot> {
  const host = source.host;
  const [doms, evtchn, vcpuEvents, grants, rings, study] = await Promise.all([
    host.listDomains(),
    source.evtchnTraffic?.() ?? [],
    source.vcpuEvents?.() ?? [],
    source.grantMappings?.() ?? [],
    source.rings?.() ?? [],
    source.study?.().then(
      (r) => ({ r, error: undefined }),
      (e: unknown) => ({ r: undefined, error: e instanceof Error ? e.message : String(e) }),
    ),
  ]);
  const domains = await Promise.all(
    doms.map(async (d): Promise<DashDomain> => {
      const [name, vl] = await Promise.all([
        d.name ?? host.domname(d.domid),
        host.vcpuList(d.domid),
      ]);
      return {
        domid: d.domid,
        name: name ?? "",
        state: letters(d),
        memMiB: Math.floor((d.currentMemkb + d.outstandingMemkb) / 1024),
        maxMemMiB: Math.floor(d.maxMemkb / 1024),
        cpuNs: d.cpuTime,
        vcpus: (vl?.vcpus ?? []).map((v) => ({
          id: v.vcpuid,
          cpu: v.cpu,
          state: !v.online ? "o" : v.running ? "r" : v.blocked ? "b" : "-",
          timeNs: v.vcpuTime,
        })),
      };
    }),
  );
  return {
    domains,
    evtchn,
    vcpuEvents,
    grants,
    rings,
    hasStudy: study?.r !== undefined,
    ...(study?.error === undefined ? {} : { studyError: study.error }),
    hasPageTables: source.pageTable !== undefined,
  };
}

/**
 * A `study` stream for DashboardSource reading a results.json (or a study's --out folder)
 * each time it is asked, so a study still running shows its latest results. A missing file
 * is "no results"; a file that is not a study's results throws with what to do.
 */
export function studyResultsFile(path: string): () => Promise<StudyResults | undefined> {
  return async () => {
    let file = path;
    let text: string;
    try {
      if ((await stat(path)).isDirectory()) file = join(path, "results.json");
      text = await readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch (e) {
      throw new HyperlabError<ToolstackErrorCode>(
        "TOOLSTACK_DASHBOARD",
        `${file} is not valid JSON (${(e as Error).message}): give the results.json a study wrote.`,
      );
    }
    if ((j as { format?: unknown })?.format !== RESULTS_FORMAT) {
      throw new HyperlabError<ToolstackErrorCode>(
        "TOOLSTACK_DASHBOARD",
        `${file} is not a study's results (its "format" is not "${RESULTS_FORMAT}"): give the results.json hyperlab study wrote.`,
      );
    }
    return j as StudyResults;
  };
}
