/*
 * `hyperlab info [NAME]`: xl's main_info (tools/xl/xl_info.c) over an XlHost. -n (NUMA and
 * PCI topology) is not modelled.
 *
 * Invariant: xl's bytes and exit status; never throws at the user.
 */
import type { CliIo } from "../../cli/io";
import { formatInfo } from "../format/info";
import { connectHost, xlGetopt } from "./common";

export async function infoVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("info", [{ short: "n", long: "numa", arg: false }], args, io, 0);
  if (!p.ok) return p.status;
  if (p.opts.numa === true) {
    io.err(
      "hyperlab info: -n (NUMA and PCI topology) is not modelled: the model's host has one node.\n",
    );
    return 2;
  }
  const host = await connectHost("info", io);
  if (typeof host === "number") return host;
  io.out(formatInfo(await host.physInfo(), p.operands[0]));
  return 0;
}
