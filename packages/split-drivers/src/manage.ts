/*
 * The guest's shutdown watcher, as Linux's drivers/xen/manage.c does it: the kernel
 * advertises control/feature-poweroff, feature-reboot and feature-suspend, watches
 * control/shutdown, and when the toolstack writes a request there it clears the node in a
 * transaction (so one request acts once) and asks Xen with SCHEDOP_shutdown: "poweroff" and
 * "halt" give SHUTDOWN_poweroff, "reboot" SHUTDOWN_reboot, "suspend" SHUTDOWN_suspend (after
 * the `onSuspend` hook, Linux's xen_suspend), "crash" SHUTDOWN_crash (a model-only request
 * for tests: Linux has sysrq for that). An unknown request is cleared and ignored, as Linux
 * prints "Ignoring shutdown request" and does nothing.
 *
 * Invariant: nothing the toolstack writes makes this throw; a request acts at most once.
 */
import {
  __HYPERVISOR_sched_op,
  SCHEDOP_shutdown,
  SHUTDOWN_crash,
  SHUTDOWN_poweroff,
  SHUTDOWN_reboot,
  SHUTDOWN_suspend,
} from "@hyperlab/abi";
import type { XsWatch } from "@hyperlab/xenstore";
import type { XenbusKernel } from "./xenbus/device";

const REASONS: Record<string, number> = {
  poweroff: SHUTDOWN_poweroff,
  halt: SHUTDOWN_poweroff,
  reboot: SHUTDOWN_reboot,
  suspend: SHUTDOWN_suspend,
  crash: SHUTDOWN_crash,
};

export interface XenManageOptions {
  /** Called before SHUTDOWN_suspend (Linux's xen_suspend: freeze, then the hypercall). */
  onSuspend?: () => void;
}

/** A running shutdown watcher; `requests` counts the requests acted on. */
export interface XenManage {
  readonly requests: number;
  /** The last request acted on ("poweroff", ...), or null. */
  readonly last: string | null;
  stop(): Promise<void>;
}

/** setup_shutdown_watcher: advertise the features, watch control/shutdown. */
export async function xenManage(
  kernel: XenbusKernel,
  options: XenManageOptions = {},
): Promise<XenManage> {
  const xs = kernel.client;
  for (const f of ["feature-poweroff", "feature-reboot", "feature-suspend"]) {
    try {
      await xs.write(`control/${f}`, "1");
    } catch {
      // A home without control/ (not made by libxl): the watch below still works.
    }
  }
  const state = { requests: 0, last: null as string | null };
  let busy = Promise.resolve();
  const handle = async () => {
    let req = "";
    try {
      req = await xs.transaction(async (tx) => {
        let v = "";
        try {
          v = await tx.read("control/shutdown");
        } catch {
          return "";
        }
        if (v !== "") await tx.write("control/shutdown", "");
        return v;
      });
    } catch {
      return;
    }
    const reason = REASONS[req];
    if (reason === undefined) return;
    state.requests++;
    state.last = req;
    if (reason === SHUTDOWN_suspend) options.onSuspend?.();
    kernel.hv.hypercall(kernel.domain.vcpus[0]!, __HYPERVISOR_sched_op, {
      cmd: SCHEDOP_shutdown,
      reason,
    });
    kernel.kick();
  };
  const watch: XsWatch = await xs.watch("control/shutdown", "shutdown");
  watch.on(() => {
    busy = busy.then(handle, handle);
  });
  return {
    get requests() {
      return state.requests;
    },
    get last() {
      return state.last;
    },
    async stop() {
      try {
        await watch.unwatch();
      } catch {
        // The connection is already gone.
      }
    },
  };
}
