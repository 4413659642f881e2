/*
 * xl's read-side verbs as `hyperlab` verbs: each prints what Xen 4.17's xl prints for the
 * same host, byte for byte, from the XlHost the CliIo (or setXlHostConnector) provides.
 */
import type { Verb } from "./cli/io";
import { topVerb } from "./top/command";
import { blockListVerb, networkListVerb } from "./xl/cmd/devices";
import { dmesgVerb } from "./xl/cmd/dmesg";
import { domidVerb, domnameVerb } from "./xl/cmd/ids";
import { infoVerb } from "./xl/cmd/info";
import { listVerb } from "./xl/cmd/list";
import { schedCredit2Verb, schedCreditVerb } from "./xl/cmd/sched";
import { vcpuListVerb } from "./xl/cmd/vcpu-list";

/**
 * A verb whose host fails mid-command (the daemon went away, a socket broke) ends with a
 * message and status 1, as xl does when libxl reports a failure, instead of a crash.
 */
function guarded(verb: string, run: Verb["run"]): Verb["run"] {
  return async (args, io) => {
    try {
      return await run(args, io);
    } catch (e) {
      io.err(`hyperlab ${verb}: the host failed: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
  };
}

const XL_VERBS: Record<string, Verb> = {
  list: {
    summary: "list [-lvZc] [DOM]        list domains, as xl list",
    run: listVerb,
  },
  info: { summary: "info [NAME]               the host, as xl info", run: infoVerb },
  "vcpu-list": {
    summary: "vcpu-list [DOM...]        the vCPUs of all or some domains, as xl vcpu-list",
    run: vcpuListVerb,
  },
  "sched-credit": {
    summary: "sched-credit [options]    get/set credit scheduler parameters, as xl sched-credit",
    run: schedCreditVerb,
  },
  "sched-credit2": {
    summary: "sched-credit2 [options]   get/set credit2 scheduler parameters, as xl sched-credit2",
    run: schedCredit2Verb,
  },
  domid: { summary: "domid NAME                a domain's id, as xl domid", run: domidVerb },
  domname: {
    summary: "domname ID                a domain's name, as xl domname",
    run: domnameVerb,
  },
  "block-list": {
    summary: "block-list DOM...         virtual block devices, as xl block-list",
    run: blockListVerb,
  },
  "network-list": {
    summary: "network-list DOM...       virtual network interfaces, as xl network-list",
    run: networkListVerb,
  },
  dmesg: { summary: "dmesg [-c]                Xen's console ring, as xl dmesg", run: dmesgVerb },
  top: {
    summary: "top [-b] [-i N] [-d SEC]  a live view of the domains, like xentop",
    run: topVerb,
  },
};

export const XL_READ_COMMANDS: Record<string, Verb> = Object.fromEntries(
  Object.entries(XL_VERBS).map(([name, v]) => [name, { ...v, run: guarded(name, v.run) }]),
);
