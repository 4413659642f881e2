#!/usr/bin/env node
// Installs the real peers that the tests run against, from Debian's packages:
// Xen 4.17's public headers (libxen-dev), xenstore-utils, python3-pyxs, gcc and readelf (the
// ABI test compiles against the headers and reads the program's DWARF), chromium (the study's
// report is checked in a real browser), and Xen's own test-xenstore taken out of
// xen-utils-4.17 into .peers/. Does nothing when all are present.
// The same extraction holds Debian's C xenstored, which the xenstore package's differential
// tests run as a reference (packages/xenstore/test/peers/c-xenstored): it needs make, the
// Xen runtime libraries it links against, and libxen-dev's libxenstore for the benchmark.
// tshark reads machine's pcap capture in its test; redis-server holds the study's BullMQ queue
// in the test of `hyperlab study --queue`.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const peersDir = join(root, ".peers");
const wanted = [
  { pkg: "libxen-dev", has: () => existsSync("/usr/include/xen/xen.h") },
  { pkg: "xenstore-utils", has: () => existsSync("/usr/bin/xenstore-read") },
  { pkg: "python3-pyxs", has: () => pythonHasPyxs() },
  { pkg: "gcc", has: () => existsSync("/usr/bin/gcc") },
  { pkg: "binutils", has: () => existsSync("/usr/bin/readelf") },
  { pkg: "make", has: () => existsSync("/usr/bin/make") },
  // machine's virtio layouts are checked against Linux's uapi headers with gcc.
  { pkg: "linux-libc-dev", has: () => existsSync("/usr/include/linux/virtio_ring.h") },
  ...[
    "libxenevtchn1",
    "libxengnttab1",
    "libxenmisc4.17",
    "libxencall1",
    "libxenforeignmemory1",
    "libyajl2",
  ].map((pkg) => ({ pkg, has: () => debInstalled(pkg) })),
  // The study's report is checked in a real browser (playwright-core drives it).
  { pkg: "chromium", has: () => existsSync("/usr/bin/chromium") },
  { pkg: "tshark", has: () => existsSync("/usr/bin/tshark") },
  // The study's queue (BullMQ) is tested against a real Redis started on a free port.
  { pkg: "redis-server", has: () => existsSync("/usr/bin/redis-server") },
];
// Debian's real xl 4.17, which toolstack's xl.cfg differential test runs through its shim
// (packages/toolstack/test/peers/xl). Installed without recommends: the hypervisor package
// itself is not needed, and the package's postinst only warns when no Xen is running.
const xlBin = "/usr/lib/xen-4.17/bin/xl";

function debInstalled(pkg) {
  try {
    const out = execFileSync("dpkg-query", ["-s", pkg], {
      stdio: ["ignore", "pipe", "ignore"],
    }).toString();
    return out.includes("Status: install ok installed");
  } catch {
    return false;
  }
}

function pythonHasPyxs() {
  try {
    execFileSync("/usr/bin/python3", ["-c", "import pyxs"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function run(cmd, args, opts = {}) {
  execFileSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"], ...opts });
}

const missing = wanted.filter((w) => !w.has()).map((w) => w.pkg);
const testXenstore = join(peersDir, "usr/lib/xen-4.17/bin/test-xenstore");
const cXenstored = join(peersDir, "usr/lib/xen-4.17/bin/xenstored");
const extracted = () => existsSync(testXenstore) && existsSync(cXenstored);
if (missing.length === 0 && extracted() && existsSync(xlBin)) process.exit(0);

if (process.getuid?.() !== 0) {
  console.error(
    `peers: missing ${[...missing, extracted() ? null : "xen-utils-4.17 (test-xenstore, xenstored)", existsSync(xlBin) ? null : "xen-utils-4.17 (xl)"].filter(Boolean).join(", ")}.\n` +
      "Run this as root once (sudo node scripts/peers.mjs), or install them with apt-get.",
  );
  process.exit(1);
}
const quiet = { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } };
if (missing.length > 0) {
  console.log(`peers: installing ${missing.join(" ")} from Debian`);
  if (missing.includes("tshark")) {
    // tshark's package asks whether non-root users may capture; answer no, without a prompt.
    execFileSync("debconf-set-selections", {
      input: "wireshark-common wireshark-common/install-setuid boolean false\n",
      stdio: ["pipe", "inherit", "inherit"],
    });
  }
  run("apt-get", ["update", "-qq"], quiet);
  run("apt-get", ["install", "-y", "-qq", ...missing], quiet);
}
if (!extracted()) {
  console.log("peers: taking test-xenstore and xenstored out of xen-utils-4.17");
  mkdirSync(peersDir, { recursive: true });
  const dl = join(peersDir, "deb");
  mkdirSync(dl, { recursive: true });
  try {
    run("apt-get", ["download", "xen-utils-4.17"], { cwd: dl, ...quiet });
  } catch {
    run("apt-get", ["update", "-qq"], quiet);
    run("apt-get", ["download", "xen-utils-4.17"], { cwd: dl, ...quiet });
  }
  const deb = readdirSync(dl).find((f) => f.startsWith("xen-utils-4.17") && f.endsWith(".deb"));
  if (!deb) throw new Error("peers: apt-get download xen-utils-4.17 gave no .deb");
  run("dpkg", ["-x", join(dl, deb), peersDir]);
}
if (!existsSync(xlBin)) {
  console.log("peers: installing xen-utils-4.17 (the real xl) from Debian");
  try {
    run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "xen-utils-4.17"], quiet);
  } catch {
    run("apt-get", ["update", "-qq"], quiet);
    run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "xen-utils-4.17"], quiet);
  }
}
console.log("peers: ready");
