/* A KVM-style build with virtio devices, for the virtio tests and the bench. */
import { createHypervisor, type Domain, type Hypervisor } from "@hyperlab/core";
import { bootNativeKernel, type GuestKernel } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { nptMmu } from "@hyperlab/npt-mmu";
import { type KvmIo, kvmIo, type VmIo } from "../src/index";

export const MiB = 2 ** 20;

export interface KvmWorld {
  hv: Hypervisor;
  kvm: KvmIo;
}

export interface KvmGuest {
  d: Domain;
  vm: VmIo;
  k: GuestKernel;
}

export function kvmWorld(seed = 7, ramMiB = 128): KvmWorld {
  const machine = createMachine({ ramBytes: ramMiB * MiB, cpus: 1, seed });
  const hv = createHypervisor({ machine, plugins: [nptMmu(), kvmIo()] }).boot();
  return { hv, kvm: hv.slot("kvm-io") };
}

/** A VM whose devices `attach` adds before its kernel boots. */
export function kvmGuest(w: KvmWorld, attach: (vm: VmIo) => void, nrPages = 2048): KvmGuest {
  const d = w.hv.createDomain({ maxVcpus: 1, maxPages: nrPages + 64 });
  w.hv.unpauseDomain(d);
  const vm = w.kvm.vm(d);
  attach(vm);
  const k = bootNativeKernel(w.hv, d, { nrPages });
  return { d, vm, k };
}
