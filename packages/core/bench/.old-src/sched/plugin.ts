/*
 * Schedulers as plugins, chosen by name as Xen's `sched=` boot option: each fills the
 * `sched` slot and handles SCHEDOP_yield/block/shutdown/poll/remote_shutdown and the
 * VCPUOP_up/down/is_up/get_runstate_info sub-ops.
 */
import {
  __HYPERVISOR_sched_op,
  __HYPERVISOR_vcpu_op,
  SCHEDOP_block,
  SCHEDOP_poll,
  SCHEDOP_remote_shutdown,
  SCHEDOP_shutdown,
  SCHEDOP_yield,
  VCPUOP_down,
  VCPUOP_get_runstate_info,
  VCPUOP_is_up,
  VCPUOP_up,
} from "@hyperlab/abi";
import { HyperlabError } from "../errors";
import type { Plugin } from "../hypervisor";
import { type CreditOptions, CreditPolicy } from "./credit";
import { type Credit2Options, Credit2Policy } from "./credit2";
import type { SchedErrorCode } from "./errors";
import { type RoundRobinOptions, RoundRobinPolicy } from "./rr";
import { type Policy, SchedCore, type SchedCoreOptions } from "./scheduler";

/** The names `sched=` accepts. */
export const SCHEDULER_NAMES = ["credit", "credit2", "rr"] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

const HYPERCALLS = [
  ...[SCHEDOP_yield, SCHEDOP_block, SCHEDOP_shutdown, SCHEDOP_poll, SCHEDOP_remote_shutdown].map(
    (cmd) => ({ op: __HYPERVISOR_sched_op, cmd }),
  ),
  ...[VCPUOP_up, VCPUOP_down, VCPUOP_is_up, VCPUOP_get_runstate_info].map((cmd) => ({
    op: __HYPERVISOR_vcpu_op,
    cmd,
  })),
];

function schedPlugin(name: SchedulerName, make: () => Policy, options: SchedCoreOptions): Plugin {
  return {
    name: `sched-${name}`,
    description: `the ${name} scheduler`,
    provides: ["sched"],
    hypercalls: HYPERCALLS,
    setup(ctx) {
      ctx.provide("sched", new SchedCore(ctx, make(), options));
    },
  };
}

/** Xen's credit scheduler (sched=credit): weights, caps, 30 ms slices, BOOST/UNDER/OVER. */
export function schedCredit(options: CreditOptions & SchedCoreOptions = {}): Plugin {
  checkNumbers(options, ["tsliceMs", "ratelimitUs"]);
  return schedPlugin("credit", () => new CreditPolicy(options), options);
}

/** Xen's credit2 scheduler (sched=credit2): credits in ns, burnt by weight, reset together. */
export function schedCredit2(options: Credit2Options & SchedCoreOptions = {}): Plugin {
  checkNumbers(options, ["ratelimitUs"]);
  if (
    options.runqueue !== undefined &&
    options.runqueue !== "machine" &&
    options.runqueue !== "cpu"
  ) {
    throw new HyperlabError<SchedErrorCode>(
      "SCHED_BAD_OPTION",
      `credit2 runqueue must be "machine" or "cpu", got ${JSON.stringify(options.runqueue)}.`,
    );
  }
  return schedPlugin("credit2", () => new Credit2Policy(options), options);
}

/** A plain round robin (sched=rr): equal turns, no weights. */
export function schedRr(options: RoundRobinOptions & SchedCoreOptions = {}): Plugin {
  checkNumbers(options, ["sliceMs"]);
  return schedPlugin("rr", () => new RoundRobinPolicy(options), options);
}

/** The scheduler plugin for a `sched=` name ("credit", "credit2", "rr"). */
export function schedulerByName(
  name: string,
  options: CreditOptions & Credit2Options & RoundRobinOptions & SchedCoreOptions = {},
): Plugin {
  switch (name) {
    case "credit":
      return schedCredit(options);
    case "credit2":
      return schedCredit2(options);
    case "rr":
      return schedRr(options);
    default:
      throw new HyperlabError<SchedErrorCode>(
        "SCHED_UNKNOWN",
        `Unknown scheduler "${name}". Use one of: ${SCHEDULER_NAMES.join(", ")} (as Xen's sched=).`,
      );
  }
}

function checkNumbers(options: object, keys: string[]): void {
  for (const k of keys) {
    const v = (options as Record<string, unknown>)[k];
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v >= 0)) {
      throw new HyperlabError<SchedErrorCode>(
        "SCHED_BAD_OPTION",
        `Scheduler option ${k} must be a non-negative number, got ${String(v)}.`,
      );
    }
  }
}
