/*
 * `hyperlab dmesg [-c]`: xl's main_dmesg (tools/xl/xl_info.c): Xen's console ring as text;
 * -c clears it after reading.
 *
 * Invariant: xl's bytes and exit status; never throws at the user.
 */
import type { CliIo } from "../../cli/io";
import { connectHost, xlGetopt } from "./common";

export async function dmesgVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("dmesg", [{ short: "c", long: "clear", arg: false }], args, io, 0);
  if (!p.ok) return p.status;
  const host = await connectHost("dmesg", io);
  if (typeof host === "number") return host;
  io.out(await host.dmesg(p.opts.clear === true));
  return 0;
}
