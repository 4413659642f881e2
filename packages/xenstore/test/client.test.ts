import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { listenUnix, UNIX_PATH_MAX, Xenstored, XenstoreError, XsClient } from "../src/index";
import { RingHost } from "./helpers";

describe("XsClient in memory", () => {
  it("read, write, exists, mkdir, rm, directory, directoryPart, perms", async () => {
    const d = new Xenstored();
    const c = XsClient.inMemory(d);
    await c.write("/c/a", "héllo");
    expect(await c.read("/c/a")).toBe("héllo");
    await c.write("/c/bin", new Uint8Array([0, 1, 2]));
    expect([...(await c.readBytes("/c/bin"))]).toEqual([0, 1, 2]);
    await c.mkdir("/c/dir");
    expect(await c.directory("/c")).toEqual(["a", "bin", "dir"]);
    expect(await c.directoryPart("/c", 0)).toMatchObject({
      children: ["a", "bin", "dir"],
      done: true,
    });
    expect(await c.exists("/c/dir")).toBe(true);
    await c.rm("/c/dir");
    expect(await c.exists("/c/dir")).toBe(false);
    await c.setPerms("/c/a", ["n0", "r3"]);
    expect(await c.getPerms("/c/a")).toEqual(["n0", "r3"]);
    expect(await c.getDomainPath(4)).toBe("/local/domain/4");
    expect(await c.isDomainIntroduced(4)).toBe(false);
    expect(await c.control("quota")).toMatch(/Quota settings/);
  });

  it("errors are typed with Xen's errno name", async () => {
    const c = XsClient.inMemory(new Xenstored());
    const e = await c.read("/missing").catch((x) => x);
    expect(e).toBeInstanceOf(XenstoreError);
    expect(e).toMatchObject({ code: "XS_ERROR_REPLY", xsError: "ENOENT", errno: 2 });
    expect(e.message).toMatch(/ENOENT to READ "\/missing"/);
    await expect(c.read("")).rejects.toMatchObject({ code: "XS_BAD_ARGUMENT" });
    await expect(c.setPerms("/x", [])).rejects.toMatchObject({ code: "XS_BAD_ARGUMENT" });
    await expect(c.getDomainPath(-1)).rejects.toMatchObject({ code: "XS_BAD_ARGUMENT" });
    await expect(c.introduce(5, 1, 0)).rejects.toMatchObject({ xsError: "EINVAL" });
    await expect(c.release(5)).rejects.toMatchObject({ xsError: "ENOENT" });
    await expect(c.resume(5)).rejects.toMatchObject({ xsError: "ENOENT" });
    await expect(c.setTarget(5, 6)).rejects.toMatchObject({ xsError: "ENOENT" });
  });

  it("watches: initial event, iterator and callback, unwatch ends them", async () => {
    const d = new Xenstored();
    const c = XsClient.inMemory(d);
    const other = XsClient.inMemory(d);
    const w = await c.watch("/w");
    const seen: string[] = [];
    w.on((e) => seen.push(e.path));
    expect(await w.next()).toEqual({ path: "/w", token: w.token });
    await other.write("/w/x", "1");
    const it = w[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ path: "/w/x", token: w.token });
    expect(seen).toEqual(["/w/x"]);
    await w.unwatch();
    expect((await it.next()).done).toBe(true);
    expect(d.watchCount).toBe(0);
    await expect(c.unwatch("/w", w.token)).rejects.toMatchObject({ xsError: "ENOENT" });
    const w2 = await c.watch("/v", "mytoken");
    expect(w2.token).toBe("mytoken");
    await expect(c.watch("/v", "mytoken")).rejects.toMatchObject({ xsError: "EEXIST" });
    await c.resetWatches();
    expect(d.watchCount).toBe(0);
  });

  it("transactions commit, abort, and retry on EAGAIN", async () => {
    const d = new Xenstored();
    const c = XsClient.inMemory(d);
    const other = XsClient.inMemory(d);
    await c.write("/counter", "0");
    let attempts = 0;
    const v = await c.transaction(async (tx) => {
      attempts++;
      const n = Number(await tx.read("/counter"));
      if (attempts === 1) await other.write("/counter", "10");
      await tx.write("/counter", String(n + 1));
      return n + 1;
    });
    expect(attempts).toBe(2);
    expect(v).toBe(11);
    expect(await c.read("/counter")).toBe("11");
    const tx = await c.transactionStart();
    await tx.write("/aborted", "x");
    await tx.abort();
    expect(await c.exists("/aborted")).toBe(false);
    await expect(tx.commit()).rejects.toMatchObject({ code: "XS_BAD_ARGUMENT" });
    await expect(
      c.transaction(async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    await expect(
      c.transaction(async (t) => {
        await t.read("/counter");
        await other.write("/counter", "x");
      }, 2),
    ).rejects.toMatchObject({ xsError: "EAGAIN" });
  });

  it("a closed client rejects pending and later requests", async () => {
    const d = new Xenstored();
    const c = XsClient.inMemory(d);
    const w = await c.watch("/w");
    c.close();
    await expect(c.read("/")).rejects.toMatchObject({ code: "XS_CLOSED" });
    await w.next(); // the queued initial event
    await expect(w.next()).rejects.toMatchObject({ code: "XS_CLOSED" });
    expect(d.connectionCount).toBe(0);
  });
});

describe("XsClient over a unix socket", () => {
  it("talks to listenUnix, and reports a missing daemon clearly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlab-xsc-"));
    const path = join(dir, "sock");
    const d = new Xenstored();
    const srv = await listenUnix(d, path);
    try {
      const c = await XsClient.connect(path);
      await c.write("/s", "v");
      expect(await c.read("/s")).toBe("v");
      const w = await c.watch("/s");
      await w.next();
      const c2 = await XsClient.connect(path);
      await c2.write("/s", "w");
      expect((await w.next()).path).toBe("/s");
      c2.close();
      c.close();
      await expect(listenUnix(d, path)).rejects.toMatchObject({ code: "XS_SOCKET" });
    } finally {
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
    await expect(XsClient.connect(path)).rejects.toThrow(/XENSTORED_PATH/);
  });

  it("refuses a socket path longer than sun_path, and names a missing directory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlab-xsc-"));
    const d = new Xenstored();
    try {
      const long = join(dir, "s".repeat(UNIX_PATH_MAX + 1 - dir.length - 1));
      expect(Buffer.byteLength(long)).toBe(UNIX_PATH_MAX + 1);
      await expect(listenUnix(d, long)).rejects.toMatchObject({
        code: "XS_SOCKET_PATH",
        message: expect.stringMatching(/108 bytes.*at most 107/),
      });
      // Exactly 107 bytes is fine.
      const fits = long.slice(0, -1);
      const srv = await listenUnix(d, fits);
      expect(existsSync(fits)).toBe(true);
      await srv.close();
      const missing = join(dir, "no", "such", "sock");
      await expect(listenUnix(d, missing)).rejects.toMatchObject({
        code: "XS_SOCKET_PATH",
        message: expect.stringMatching(/directory .*no\/such for socket .* does not exist/),
      });
      writeFileSync(join(dir, "file"), "");
      await expect(listenUnix(d, join(dir, "file", "sock"))).rejects.toMatchObject({
        code: "XS_SOCKET_PATH",
        message: expect.stringMatching(/is not a directory/),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("XsClient over the ring", () => {
  it("runs transactions as a domain", async () => {
    const h = new RingHost();
    const dom0 = XsClient.inMemory(h.daemon);
    await dom0.mkdir("/local/domain/12");
    await dom0.setPerms("/local/domain/12", ["n12"]);
    await dom0.introduce(12, 50, 7);
    expect(await dom0.isDomainIntroduced(12)).toBe(true);
    const g = h.client(12, 50);
    await g.transaction(async (tx) => {
      await tx.write("a", "1");
      await tx.write("b", "2");
    });
    expect(await dom0.directory("/local/domain/12")).toEqual(["a", "b"]);
    await dom0.release(12);
    expect(await dom0.isDomainIntroduced(12)).toBe(false);
  });
});
