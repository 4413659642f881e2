// The dashboard's page: one self-contained HTML document (no external requests) whose script
// listens to /events (Server-Sent Events) and redraws each section from every snapshot.

export const DASHBOARD_HTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hyperlab dashboard</title>
<link rel="icon" href="data:,">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 2rem; color: #222; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; }
h2 { font-size: 1.1rem; margin: 1.2rem 0 .4rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; }
th, td { padding: 2px 8px; text-align: right; border-bottom: 1px solid #eee; }
th.text, td.text { text-align: left; }
#status { color: #666; font-size: .9rem; }
#status.live { color: #17803d; }
.lane-label { font: 11px monospace; fill: #333; }
.ring { display: flex; align-items: center; gap: .5rem; margin: 2px 0; }
.ring .bar { width: 240px; height: 12px; background: #eee; position: relative; }
.ring .fill { height: 12px; background: #3b82f6; }
.ring .name { font-family: monospace; width: 14rem; }
.ring .idx { font: 11px monospace; color: #555; }
.ring.over .fill { background: #dc2626; }
svg.spark { vertical-align: middle; }
svg.spark polyline { fill: none; stroke: #3b82f6; stroke-width: 1.2; }
ul.tree { font-family: monospace; list-style: none; padding-left: 1.2rem; margin: 0; }
.empty { color: #888; font-style: italic; }
iframe { width: 100%; height: 800px; border: 1px solid #ddd; }
.legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; }
</style>
</head>
<body>
<h1>Hyperlab dashboard <span id="status">connecting…</span></h1>
<h2>Domains</h2>
<table id="domains"><thead><tr><th class="text">Name</th><th>ID</th><th>Mem (MiB)</th><th>Max (MiB)</th><th>VCPUs</th><th class="text">State</th><th>CPU (s)</th></tr></thead><tbody></tbody></table>
<h2>vCPUs over time</h2>
<div class="legend"><span style="background:#16a34a"></span>running<span style="background:#f59e0b"></span>runnable<span style="background:#cbd5e1"></span>blocked<span style="background:#ffffff;border:1px solid #999"></span>offline</div>
<svg id="timeline" width="900" height="20" role="img" aria-label="vCPU states over time"></svg>
<h2>Event-channel traffic</h2>
<table id="evtchn"><thead><tr><th>Dom</th><th>Port</th><th class="text">Kind</th><th class="text">Remote</th><th>vCPU</th><th class="text">Bits</th><th>Sent</th><th>Received</th><th>Sent/s</th><th class="text">Sends/s over time</th></tr></thead><tbody></tbody></table>
<h3>Events per vCPU</h3>
<table id="vcpu-events"><thead><tr><th>Dom</th><th>vCPU</th><th>Events</th><th>Upcalls</th><th>Upcalls/s</th></tr></thead><tbody></tbody></table>
<h2>Grant mappings</h2>
<table id="grants"><thead><tr><th>Granter</th><th>Grantee</th><th>Ref</th><th>Frame</th><th class="text">Access</th></tr></thead><tbody></tbody></table>
<h2>Ring occupancy</h2>
<div id="rings"></div>
<h2>Page tables</h2>
<div><label>Domain <select id="pt-domain"></select></label></div>
<div id="pagetable"></div>
<h2>Study</h2>
<div id="study"></div>
<script>
"use strict";
const HISTORY = 120;
const history = [];
let prev = null;
let prevAt = 0;
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function row(cells) {
  return el("tr", {}, ...cells.map(([v, cls]) => el("td", cls ? { class: cls } : {}, v)));
}
function fill(tbody, rows, cols, empty) {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: cols, class: "empty text" }, empty))]));
}
function drawDomains(s) {
  const rows = s.domains.map((d) => {
    const r = row([[d.name, "text"], [d.domid], [d.memMiB], [d.maxMemMiB], [d.vcpus.length], [d.state, "text"], [(d.cpuNs / 1e9).toFixed(1)]]);
    r.dataset.domid = String(d.domid);
    return r;
  });
  fill($("domains").tBodies[0], rows, 7, "no domains");
  const sel = $("pt-domain");
  const keep = sel.value;
  sel.replaceChildren(el("option", { value: "" }, "(choose)"), ...s.domains.map((d) => el("option", { value: d.domid }, d.domid + " " + d.name)));
  sel.value = s.domains.some((d) => String(d.domid) === keep) ? keep : "";
  sel.disabled = !s.hasPageTables;
}
const COLORS = { r: "#16a34a", "-": "#f59e0b", b: "#cbd5e1", o: "#ffffff" };
function drawTimeline() {
  const svg = $("timeline");
  const lanes = [];
  const seen = new Set();
  for (const s of history) for (const d of s.domains) for (const v of d.vcpus) {
    const key = d.domid + "." + v.id;
    if (!seen.has(key)) { seen.add(key); lanes.push({ key, label: d.name + " v" + v.id }); }
  }
  const H = 14, L = 160, W = 4;
  svg.setAttribute("height", String(Math.max(20, lanes.length * H + 4)));
  const NS = "http://www.w3.org/2000/svg";
  const parts = [];
  lanes.forEach((lane, i) => {
    const t = document.createElementNS(NS, "text");
    t.setAttribute("x", "0"); t.setAttribute("y", String(i * H + 11)); t.setAttribute("class", "lane-label");
    t.textContent = lane.label;
    parts.push(t);
    history.forEach((s, j) => {
      const [dom, vid] = lane.key.split(".").map(Number);
      const d = s.domains.find((x) => x.domid === dom);
      const v = d && d.vcpus.find((x) => x.id === vid);
      if (!v) return;
      const r = document.createElementNS(NS, "rect");
      r.setAttribute("x", String(L + j * W)); r.setAttribute("y", String(i * H + 2));
      r.setAttribute("width", String(W)); r.setAttribute("height", String(H - 3));
      r.setAttribute("fill", COLORS[v.state] || "#999"); r.setAttribute("stroke", v.state === "o" ? "#999" : "none");
      r.setAttribute("class", "slot");
      r.dataset.lane = lane.key;
      parts.push(r);
    });
  });
  svg.replaceChildren(...parts);
}
// Sends per second of each port over the last SPARK snapshots ("dom:port" -> rates).
const SPARK = 60;
const sparks = new Map();
function sparkline(rates) {
  const NS = "http://www.w3.org/2000/svg", W = 90, H = 16;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "spark"); svg.setAttribute("width", String(W)); svg.setAttribute("height", String(H));
  const top = Math.max(1, ...rates);
  const pts = rates.map((r, i) => ((i * W) / (SPARK - 1)).toFixed(1) + "," + (H - 1 - ((H - 2) * r) / top).toFixed(1));
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", pts.join(" "));
  svg.append(line);
  const t = document.createElementNS(NS, "title");
  t.textContent = "peak " + top.toFixed(1) + "/s";
  svg.append(t);
  return svg;
}
function drawEvtchn(s, dt) {
  const before = new Map((prev ? prev.evtchn : []).map((e) => [e.domid + ":" + e.port, e]));
  const seen = new Set();
  const rows = s.evtchn.map((e) => {
    const key = e.domid + ":" + e.port;
    seen.add(key);
    const was = before.get(key);
    // A port closed and bound again between snapshots restarts its counts: no rate then.
    const same = was !== undefined && was.kind === e.kind && e.sent >= was.sent;
    const perSec = same && dt > 0 ? (e.sent - was.sent) / dt : 0;
    const rate = same && dt > 0 ? perSec.toFixed(1) : "";
    const hist = sparks.get(key) || [];
    hist.push(perSec);
    if (hist.length > SPARK) hist.shift();
    sparks.set(key, hist);
    const remote = e.remoteDomid === undefined ? "" : e.remoteDomid + (e.remotePort === undefined ? "" : ":" + e.remotePort);
    const kind = e.irq === undefined ? e.kind : e.kind + " " + e.irq;
    const bits = (e.pending ? "P" : "-") + (e.masked ? "M" : "-");
    const r = row([[e.domid], [e.port], [kind, "text"], [remote, "text"], [e.vcpu ?? ""], [bits, "text"], [e.sent], [e.received], [rate], ["", "text"]]);
    r.lastChild.append(sparkline(hist));
    r.dataset.port = key;
    return r;
  });
  for (const k of [...sparks.keys()]) if (!seen.has(k)) sparks.delete(k);
  fill($("evtchn").tBodies[0], rows, 10, "no event-channel ports");
  const vbefore = new Map((prev && prev.vcpuEvents ? prev.vcpuEvents : []).map((v) => [v.domid + "." + v.vcpu, v.upcalls]));
  const vrows = (s.vcpuEvents || []).map((v) => {
    const was = vbefore.get(v.domid + "." + v.vcpu);
    const rate = was === undefined || dt <= 0 || v.upcalls < was ? "" : ((v.upcalls - was) / dt).toFixed(1);
    const r = row([[v.domid], [v.vcpu], [v.raised], [v.upcalls], [rate]]);
    r.dataset.vcpu = v.domid + "." + v.vcpu;
    return r;
  });
  fill($("vcpu-events").tBodies[0], vrows, 5, "no vCPU event counts");
}
function drawGrants(s) {
  const rows = s.grants.map((g) => row([[g.granter], [g.grantee], [g.ref], ["0x" + g.frame.toString(16)], [g.readonly ? "ro" : "rw", "text"]]));
  fill($("grants").tBodies[0], rows, 5, "no grant mappings");
}
function drawRings(s) {
  const box = $("rings");
  if (!s.rings.length) { box.replaceChildren(el("div", { class: "empty" }, "no shared rings")); return; }
  box.replaceChildren(...s.rings.map((r) => {
    // Indexes are guest-written: a page claiming more than the ring holds is drawn full, in red.
    const over = r.used > r.size;
    const fillDiv = el("div", { class: "fill" });
    fillDiv.style.width = (r.size ? (100 * Math.min(r.used, r.size)) / r.size : 0) + "%";
    const unit = r.kind.startsWith("console") || r.kind.startsWith("xenstore") ? " bytes unread" : " in flight";
    const idx = Object.entries(r.indexes || {}).map(([k, v]) => k + " " + v).join("  ");
    return el("div", { class: over ? "ring over" : "ring", "data-ring": r.name, title: "frame 0x" + r.frame.toString(16) },
      el("span", { class: "name" }, r.name), el("div", { class: "bar" }, fillDiv),
      el("span", {}, r.used + " / " + r.size + unit + (over ? " (index beyond the ring)" : "")),
      el("span", { class: "idx" }, idx));
  }));
}
function tree(n) {
  const li = el("li", {}, n.label);
  if (n.children && n.children.length) li.append(el("ul", { class: "tree" }, ...n.children.map(tree)));
  return li;
}
let ptBusy = false;
let ptShown = "";
async function drawPageTable() {
  const box = $("pagetable");
  const id = $("pt-domain").value;
  ptShown = id;
  if (id === "") { box.replaceChildren(el("div", { class: "empty" }, "choose a domain")); return; }
  const res = await fetch("/api/pagetable?domid=" + encodeURIComponent(id));
  if (!res.ok) { box.replaceChildren(el("div", { class: "empty" }, await res.text())); return; }
  box.replaceChildren(el("ul", { class: "tree", id: "pt-root" }, tree(await res.json())));
}
$("pt-domain").addEventListener("change", () => { drawPageTable().catch((e) => { $("pagetable").textContent = String(e); }); });
let studyShown = false;
function drawStudy(s) {
  if (s.hasStudy && !studyShown) { studyShown = true; $("study").replaceChildren(el("iframe", { src: "/study", title: "Study report" })); }
  if (!s.hasStudy) { studyShown = false; $("study").replaceChildren(el("div", { class: "empty" }, s.studyError || "no study results")); }
}
function onSnapshot(s) {
  const now = performance.now();
  const dt = prevAt ? (now - prevAt) / 1000 : 0;
  history.push(s);
  if (history.length > HISTORY) history.shift();
  drawDomains(s); drawTimeline(); drawEvtchn(s, dt); drawGrants(s); drawRings(s); drawStudy(s);
  // The chosen domain's tree follows the host too (one fetch at a time).
  if ((ptShown !== "" || $("pt-domain").value !== "") && !ptBusy) {
    ptBusy = true;
    drawPageTable().catch((e) => { $("pagetable").textContent = String(e); }).finally(() => { ptBusy = false; });
  }
  prev = s; prevAt = now;
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
}
const es = new EventSource("/events");
es.addEventListener("snapshot", (ev) => onSnapshot(JSON.parse(ev.data)));
es.addEventListener("open", () => { $("status").textContent = "live"; $("status").className = "live"; });
es.addEventListener("error", () => { $("status").textContent = "reconnecting…"; $("status").className = ""; });
</script>
</body>
</html>
`;
