/*
 * `hyperlab vcpu-list [DOMAIN...]`: xl's main_vcpulist (tools/xl/xl_vcpu.c) over an XlHost.
 *
 * Invariant: xl's bytes and exit status (an unknown domain exits 1 after the rows before it
 * were printed, as xl's find_domain does); never throws at the user.
 */
import type { CliIo } from "../../cli/io";
import { VCPU_HEADER, vcpuRow } from "../format/vcpu";
import type { XlHost } from "../types";
import { connectHost, findDomain, nameOf, xlGetopt } from "./common";

async function domainRows(
  host: XlHost,
  domid: number,
  nrCpus: number,
  name?: string,
): Promise<string> {
  const list = await host.vcpuList(domid);
  if (list === undefined) return "";
  const n = await nameOf(host, domid, name);
  let out = "";
  for (const v of list.vcpus) out += vcpuRow(n, domid, v, nrCpus);
  return out;
}

export async function vcpuListVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("vcpu-list", [], args, io, 0);
  if (!p.ok) return p.status;
  const host = await connectHost("vcpu-list", io);
  if (typeof host === "number") return host;
  const phys = await host.physInfo();
  const nrCpus = (phys.maxCpuId >>> 0) + 1;
  io.out(VCPU_HEADER);
  if (p.operands.length === 0) {
    for (const d of await host.listDomains())
      io.out(await domainRows(host, d.domid, nrCpus, d.name));
    return 0;
  }
  for (const q of p.operands) {
    const domid = await findDomain(host, q, io);
    if (domid === undefined) return 1;
    io.out(await domainRows(host, domid, nrCpus));
  }
  return 0;
}
