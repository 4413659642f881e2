// The README's example, run as written.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { runXenstored, Xenstored, XsClient } from "../src/index";

it("README example", async () => {
  const daemon = new Xenstored();
  const client = XsClient.inMemory(daemon); // or: await XsClient.connect("/run/xenstored/socket")

  await client.write("/local/domain/0/name", "Domain-0");
  const name = await client.read("/local/domain/0/name"); // "Domain-0"

  const watch = await client.watch("/local/domain/0");
  const first = await watch.next(); // every new watch fires once: { path: "/local/domain/0", token }
  await client.write("/local/domain/0/memory/target", "524288");
  const change = await watch.next(); // { path: "/local/domain/0/memory/target", token }

  await client.transaction(async (tx) => {
    const n = Number((await tx.exists("/counter")) ? await tx.read("/counter") : "0");
    await tx.write("/counter", String(n + 1));
  }); // retried on EAGAIN

  await watch.unwatch();
  client.close();

  expect(name).toBe("Domain-0");
  expect(first.path).toBe("/local/domain/0");
  expect(change.path).toBe("/local/domain/0/memory/target");
  expect(daemon.checkInvariants()).toEqual([]);
  expect(daemon.connectionCount).toBe(0);
});

it("README socket example", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlab-readme-"));
  const lines: string[] = [];
  const running = await runXenstored({
    socketPath: join(dir, "xs.sock"),
    handleSignals: false,
    log: (l) => lines.push(l),
  });
  const c = await XsClient.connect(join(dir, "xs.sock"));
  await c.write("/x", "1");
  c.close();
  await running.stop();
  expect(await running.stopped).toBeNull();
  expect(lines[0]).toMatch(/listening on/);
  rmSync(dir, { recursive: true, force: true });
});
