/*
 * `hyperlab domid NAME` and `hyperlab domname ID`: xl's main_domid and main_domname
 * (tools/xl/xl_info.c) over an XlHost.
 *
 * Invariant: xl's bytes and exit status; never throws at the user.
 */
import type { CliIo } from "../../cli/io";
import { connectHost, strtol, xlGetopt } from "./common";

export async function domidVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("domid", [], args, io, 1);
  if (!p.ok) return p.status;
  const host = await connectHost("domid", io);
  if (typeof host === "number") return host;
  const name = p.operands[0];
  const id = await host.domid(name);
  if (id === undefined) {
    io.err(`Can't get domid of domain name '${name}', maybe this domain does not exist.\n`);
    return 1;
  }
  io.out(`${id >>> 0}\n`);
  return 0;
}

export async function domnameVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("domname", [], args, io, 1);
  if (!p.ok) return p.status;
  const host = await connectHost("domname", io);
  if (typeof host === "number") return host;
  const { value, consumed } = strtol(p.operands[0]);
  const domid = value >>> 0;
  if (domid === 0 && !consumed) {
    io.err("Invalid domain id.\n\n");
    return 1;
  }
  const name = await host.domname(domid);
  if (name === undefined) {
    io.err(`Can't get domain name of domain id '${domid}', maybe this domain does not exist.\n`);
    return 1;
  }
  io.out(`${name}\n`);
  return 0;
}
