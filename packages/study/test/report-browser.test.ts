/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The report in a real browser: Debian's chromium driven by playwright-core loads report.html
// with no console errors, draws every chart, and fits the runs table in 1,400 px.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runStudy } from "../src/index";

const CHROMIUM = "/usr/bin/chromium";
const dir = mkdtempSync(join(tmpdir(), "hyperlab-report-browser-"));
let browser: BrowserContext;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing${process.env.CI === "true" ? " on CI" : ""}: the report is checked in a real browser. Run \`node scripts/peers.mjs\` from the repository root (it installs Debian's chromium).`,
    );
  }
  // A fresh profile (--user-data-dir) for every run.
  browser = await chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: CHROMIUM,
    viewport: { width: 1400, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("report.html in chromium", () => {
  it("loads with no console errors, draws every chart and fits 1,400 px", async () => {
    const out = join(dir, "study");
    await runStudy(
      {
        seed: 4,
        workloads: ["random", "fork-exec"],
        workingSetBytes: [1024 * 1024],
        operations: [300],
        workers: 0,
        io: {
          platforms: ["native"],
          requests: 2,
          split: {
            requests: 2,
            warmup: 1,
            disk: [{ name: "4k-random-read", op: "read", bytes: 4096, access: "random" }],
            nic: [{ name: "frame-64", frameBytes: 64 }],
          },
        },
      },
      { outDir: out },
    );
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    page.on("requestfailed", (r) => problems.push(`requestfailed: ${r.url()}`));
    await page.goto(pathToFileURL(join(out, "report.html")).href, { waitUntil: "load" });

    const facts = await page.evaluate(() => {
      const svgs = [...document.querySelectorAll("svg")];
      return {
        charts: svgs.map((s) => ({
          bars: [...s.querySelectorAll("rect.bar")].filter((r) => {
            const b = r.getBoundingClientRect();
            return b.width >= 1 && b.height >= 1;
          }).length,
          ticks: s.querySelectorAll("text.tick").length,
          grid: s.querySelectorAll("line.grid").length,
          width: s.getBoundingClientRect().width,
        })),
        pageWidth: document.documentElement.scrollWidth,
        tableRight: (document.querySelector("#runs") as HTMLElement).getBoundingClientRect().right,
        title: document.title,
        splitRows: [...document.querySelectorAll("#split-io-table tr[data-mode]")].filter(
          (r) => r.getBoundingClientRect().height > 0,
        ).length,
        splitRight: (
          document.querySelector("#split-io-table") as HTMLElement
        ).getBoundingClientRect().right,
      };
    });
    expect(problems).toEqual([]);
    expect(facts.title).toBe("Hyperlab study: native, pv, nested, shadow on random, fork-exec");
    expect(facts.charts).toHaveLength(5);
    for (const c of facts.charts) {
      expect(c.bars).toBeGreaterThan(0);
      expect(c.ticks).toBeGreaterThan(1);
      expect(c.grid).toBeGreaterThan(1);
    }
    // Nothing is cut off or scrolls sideways at 1,400 px.
    expect(facts.pageWidth).toBeLessThanOrEqual(1400);
    expect(facts.tableRight).toBeLessThanOrEqual(1400);
    // The split-driver section: a visible row per mode (map, copy, persistent, virtio) and
    // pattern, within the page.
    expect(facts.splitRows).toBe(8);
    expect(facts.splitRight).toBeLessThanOrEqual(1400);

    // A screenshot of the first chart has coloured bar pixels: decode it in the page.
    const png = await page.locator("svg").first().screenshot();
    const counts = await page.evaluate(async (b64) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const canvas = document.createElement("canvas");
      canvas.width = img.width;
      canvas.height = img.height;
      const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, img.width, img.height).data;
      let ink = 0;
      let colour = 0;
      for (let i = 0; i < d.length; i += 4) {
        const [r, g, bl] = [d[i], d[i + 1], d[i + 2]];
        if (r + g + bl < 720) ink++;
        if (Math.max(r, g, bl) - Math.min(r, g, bl) > 60) colour++;
      }
      return { ink, colour, pixels: d.length / 4 };
    }, png.toString("base64"));
    expect(counts.ink).toBeGreaterThan(counts.pixels / 100);
    expect(counts.colour).toBeGreaterThan(500);
    await page.close();
  });
});
