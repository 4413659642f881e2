// Shared set-up for the libxl tests: a kernel image file, xl.cfg texts, a Xen-style host.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configFromXlCfg, createHost, type DomainConfig, type Host, startHostServices } from "../../src/index";

export const dir = mkdtempSync(join(tmpdir(), "hyperlab-libxl-"));

/** A 64-bit ELF header and a page of zeros: what xc_dom_find_loader accepts. */
export const kernelPath = join(dir, "vmlinuz");
const image = new Uint8Array(8192);
image.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
writeFileSync(kernelPath, image);

export function cfgText(name: string, extra = ""): string {
  return `name = "${name}"\nmemory = 8\nvcpus = 1\nkernel = "${kernelPath}"\nextra = "console=hvc0"\n${extra}`;
}

export function config(name: string, extra = "", overrides: string[] = []): DomainConfig {
  const r = configFromXlCfg(cfgText(name, extra), `${name}.cfg`, overrides);
  if (!r.ok) throw new Error(r.stderr);
  return r.config;
}

export async function host(options: Parameters<typeof createHost>[0] = {}): Promise<Host> {
  const h = createHost({ ramMiB: 128, cpus: 2, ...options });
  await startHostServices(h);
  return h;
}
