// Shared set-up for the libxl tests: a kernel image file, xl.cfg texts, a Xen-style host.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pciPassthroughResources } from "@hyperlab/core";
import { afterAll } from "vitest";
import {
  configFromXlCfg,
  createHost,
  type DomainConfig,
  type DomainRecord,
  deviceState,
  type Host,
  settle,
  startHostServices,
} from "../../src/index";

export const dir = mkdtempSync(join(tmpdir(), "hyperlab-libxl-"));
// Registered from here, at import, for the test file that imports this module.
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A 64-bit ELF header and a page of zeros: what xc_dom_find_loader accepts. */
export const kernelPath = join(dir, "vmlinuz");
const image = new Uint8Array(8192);
image.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
writeFileSync(kernelPath, image);

/** Raw disk images blkback can open (64 sectors each): x.img, d0.img, d1.img, d2.img. */
export const xImg = join(dir, "x.img");
for (const n of ["x", "d0", "d1", "d2"])
  writeFileSync(join(dir, `${n}.img`), new Uint8Array(32768));
/** A disk target that does not exist (libxl's stat fails). */
export const missingImg = join(dir, "missing.img");

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

/** Everything a create could leak: frames, dom0's channels, grant mappings, xenstore, records. */
export async function snapshot(h: Host) {
  const { hv } = h;
  const owners = Array.from(hv.frames.ownerKeys, (k) => ~k);
  const evtchn = hv.slot("evtchn");
  const ports: string[] = [];
  if (h.dom0 !== null) {
    for (let p = 1; p < 256; p++) {
      const i = evtchn.portInfo(h.dom0, p);
      if (i.status !== 0) ports.push(`${p}:${JSON.stringify(i)}`);
    }
  }
  const maps: string[] = [];
  if (h.kind === "xen") hv.slot("grant-table").forEachMapping((m) => maps.push(JSON.stringify(m)));
  const tree: string[] = [];
  if (h.xsd !== null) {
    const xs = h.xsd.xs;
    const walk = async (p: string): Promise<void> => {
      let v = "";
      try {
        v = await xs.read(p);
      } catch {
        v = "<dir>";
      }
      tree.push(`${p}=${v}`);
      for (const c of await xs.directory(p)) await walk(p === "/" ? `/${c}` : `${p}/${c}`);
    };
    await walk("/");
  }
  // Passthrough permissions: each domain's caps over each host PCI function's irq and BARs.
  const perms: string[] = [];
  if (h.platform !== null) {
    const irq = hv.slot("irq");
    const io = hv.slot("iomem");
    for (const d of hv.domains()) {
      for (const fn of h.platform.pci.list()) {
        const bars = pciPassthroughResources(fn).iomem;
        const mem = bars.map((b) => io.iomemAccessPermitted(d, b.start, b.end));
        perms.push(`${d.domid}/${fn.name}:${irq.irqAccessPermitted(d, fn.gsi)}:${mem}`);
      }
    }
  }
  return {
    perms,
    owners,
    domains: hv.domains().map((d) => `${d.domid}:${d.state}`),
    ports,
    maps,
    tree,
    records: [...h.domains.keys()],
    interfaces: h.xsd?.interfaces().length ?? 0,
  };
}

/** Waits until every device of `r` is Connected at its backend (the drivers run async). */
export async function devicesConnected(h: Host, r: DomainRecord): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    let all = true;
    for (const d of r.devices) if ((await deviceState(h, r, d.type, d.devid)) !== 4) all = false;
    if (all) return;
    await settle();
  }
  throw new Error(`domain ${r.domid}'s devices did not reach Connected`);
}
