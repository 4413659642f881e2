// A failed create leaves nothing behind: a fault injected at every step of libxl's create
// (and the natural failures: no memory, bad kernel, name in use) gives back every frame, event
// channel, grant mapping, xenstore node and record it took.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { HyperlabError } from "@hyperlab/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CREATE_STEPS,
  type CreateStep,
  destroyDomainRecord,
  domainCreate,
  settle,
} from "../../src/index";
import { config, devicesConnected, dir, host, missingImg, snapshot, xImg } from "./world";

const RUNS = process.env.HYPERLAB_LONG === "1" ? 200 : 12;

async function settled() {
  for (let i = 0; i < 5; i++) await settle();
}

async function expectFails(p: Promise<unknown>, code: string, message?: RegExp) {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(HyperlabError);
  expect((e as HyperlabError<string>).code).toBe(code);
  if (message) expect((e as Error).message).toMatch(message);
}

describe("a failed create leaves nothing behind", () => {
  it.each(CREATE_STEPS)("a failure injected at %s", async (step) => {
    const h = await host();
    // `other` makes dom0's xenbr0 (its netback stays for the host's life) before the snapshot.
    const other = await domainCreate(
      h,
      config("other", `disk = ["${xImg},raw,xvda,rw"]\nvif = ["bridge=xenbr0"]`),
    );
    await devicesConnected(h, other);
    const before = await snapshot(h);
    await expectFails(
      domainCreate(h, config("victim", `disk = ["${xImg},raw,xvda,rw"]\nvif = ["bridge=xenbr0"]`), {
        fault: (s) => s === step,
      }),
      "TOOLSTACK_CREATE_FAILED",
      new RegExp(`at ${step}`),
    );
    await settled();
    expect(await snapshot(h)).toEqual(before);
    // The host still works: the same name can be created afterwards.
    const ok = await domainCreate(h, config("victim"));
    expect(ok.domain.state).toBe("running");
    await destroyDomainRecord(h, ok);
    await destroyDomainRecord(h, other);
  });

  it("property: a hostile sequence of configs and injected faults never leaks", async () => {
    const h = await host();
    // dom0's xenbr0 and its netback (made with the first vif) stay for the host's life.
    const warm = await domainCreate(h, config("warm", 'vif = ["bridge=xenbr0"]'));
    await devicesConnected(h, warm);
    await destroyDomainRecord(h, warm);
    const base = await snapshot(h);
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            step: fc.option(fc.constantFrom<CreateStep>(...CREATE_STEPS), { nil: undefined }),
            vcpus: fc.integer({ min: 1, max: 3 }),
            disks: fc.integer({ min: 0, max: 2 }),
            // a disk whose image file is missing: libxl's stat fails, the create with it
            missing: fc.boolean(),
            vifs: fc.integer({ min: 0, max: 2 }),
            memory: fc.constantFrom(6, 8, 4096),
            // pci=: the host's NIC (taken if an earlier guest holds it), or a BDF it lacks
            pci: fc.constantFrom("", '"00:03.0"', '"0000:00:07.0"'),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        async (plans) => {
          const made = [];
          for (const [i, p] of plans.entries()) {
            const disks = Array.from(
              { length: p.disks },
              (_, j) =>
                `"${p.missing && j === p.disks - 1 ? missingImg : join(dir, `d${j}.img`)},raw,xvd${"abc"[j]},rw"`,
            );
            const vifs = Array.from({ length: p.vifs }, () => '"bridge=xenbr0"');
            const extra = `vcpus = ${p.vcpus}\ndisk = [${disks.join(",")}]\nvif = [${vifs.join(",")}]\npci = [${p.pci}]\n`;
            const c = config(`g${i}`, extra, [`memory=${p.memory}`]);
            const before = await snapshot(h);
            try {
              const r = await domainCreate(h, c, { fault: (s) => s === p.step });
              made.push(r);
              await devicesConnected(h, r);
            } catch (e) {
              expect(e).toBeInstanceOf(HyperlabError);
              await settled();
              expect(await snapshot(h)).toEqual(before);
            }
          }
          for (const r of made) await destroyDomainRecord(h, r);
          await settled();
          expect(await snapshot(h)).toEqual(base);
        },
      ),
      { seed: 1414, numRuns: RUNS },
    );
  }, 120_000);

  it("memory more than the host has: xl's message, nothing taken", async () => {
    const h = await host();
    const before = await snapshot(h);
    await expectFails(
      domainCreate(h, config("big", "", ["memory=4096"])),
      "TOOLSTACK_NO_MEMORY",
      /^failed to free memory for the domain$/,
    );
    expect(await snapshot(h)).toEqual(before);
  });

  it("a kernel that is missing or not a 64-bit ELF image", async () => {
    const h = await host();
    const before = await snapshot(h);
    await expectFails(
      domainCreate(h, config("k", "", ['kernel="/nonexistent/vmlinuz"'])),
      "TOOLSTACK_BAD_KERNEL",
      /ENOENT/,
    );
    const junk = join(dir, "junk");
    writeFileSync(junk, "#!/bin/sh\necho not a kernel\n");
    await expectFails(
      domainCreate(h, config("k", "", [`kernel="${junk}"`])),
      "TOOLSTACK_BAD_KERNEL",
      /no loader found/,
    );
    await expectFails(
      domainCreate(h, config("k", "", [`ramdisk="/nonexistent/initrd"`])),
      "TOOLSTACK_BAD_KERNEL",
      /xc_dom_module_file/,
    );
    expect(await snapshot(h)).toEqual(before);
  });

  it("a name in use (a guest's, or dom0's Domain-0)", async () => {
    const h = await host();
    const a = await domainCreate(h, config("taken"));
    const before = await snapshot(h);
    await expectFails(
      domainCreate(h, config("taken")),
      "TOOLSTACK_NAME_IN_USE",
      /domain with name "taken" already exists/,
    );
    await expectFails(domainCreate(h, config("Domain-0")), "TOOLSTACK_NAME_IN_USE");
    expect(await snapshot(h)).toEqual(before);
    await destroyDomainRecord(h, a);
  });
});
