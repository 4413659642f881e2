/*
 * `hyperlab block-list DOMAIN...` and `hyperlab network-list DOMAIN...`: xl's
 * main_blocklist (tools/xl/xl_block.c) and main_networklist (tools/xl/xl_nic.c). block-list
 * skips an unknown domain with a message; network-list stops there with exit 1, as xl does.
 *
 * Invariant: xl's bytes and exit status; never throws at the user.
 */
import type { CliIo } from "../../cli/io";
import { BLOCK_HEADER, blockRow, NETWORK_HEADER, networkRow } from "../format/devices";
import { connectHost, findDomain, qualifierToDomid, xlGetopt } from "./common";

export async function blockListVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("block-list", [], args, io, 1);
  if (!p.ok) return p.status;
  const host = await connectHost("block-list", io);
  if (typeof host === "number") return host;
  io.out(BLOCK_HEADER);
  for (const q of p.operands) {
    const domid = await qualifierToDomid(host, q);
    if (domid < 0) {
      io.err(`${q} is an invalid domain identifier\n`);
      continue;
    }
    for (const d of (await host.blockList(domid)) ?? []) io.out(blockRow(d));
  }
  return 0;
}

export async function networkListVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("network-list", [], args, io, 1);
  if (!p.ok) return p.status;
  const host = await connectHost("network-list", io);
  if (typeof host === "number") return host;
  io.out(NETWORK_HEADER);
  for (const q of p.operands) {
    const domid = await findDomain(host, q, io);
    if (domid === undefined) return 1;
    for (const n of (await host.networkList(domid)) ?? []) io.out(networkRow(n));
  }
  return 0;
}
