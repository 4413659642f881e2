/*
 * `hyperlab info [-n] [NAME]`: xl's main_info (tools/xl/xl_info.c) over an XlHost; -n adds the
 * CPU and PCI topology and the NUMA table of a one-node host.
 *
 * Invariant: xl's bytes and exit status; never throws at the user.
 */
import type { CliIo } from "../../cli/io";
import { formatInfo } from "../format/info";
import { connectHost, xlGetopt } from "./common";

export async function infoVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("info", [{ short: "n", long: "numa", arg: false }], args, io, 0);
  if (!p.ok) return p.status;
  const host = await connectHost("info", io);
  if (typeof host === "number") return host;
  const phys = await host.physInfo();
  const numa = p.opts.numa === true;
  if (numa && phys.nrNodes !== 1) {
    io.err(
      `hyperlab info: -n is modelled for a host of one NUMA node; this one has ${phys.nrNodes}.\n`,
    );
    return 1;
  }
  // main_info: "if (numa == 0 && argc > optind) info_name = ..." — with -n NAME is ignored.
  io.out(formatInfo(phys, numa ? undefined : p.operands[0], numa));
  return 0;
}
