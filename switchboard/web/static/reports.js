// switchboard reports page (switchboard/web/reports.py).  Every figure shown is the JSON
// that `switchboard report --json` prints for the same range (data-v holds it
// as received); the charts only draw it.  No CDN, no inline script, text only
// through textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
const QCOLS = ["bucket", "queue", "offered", "answered", "abandoned", "short_abandoned",
  "timeouts", "overflowed", "callbacks", "in_progress", "asa_s", "avg_wait_s", "max_wait_s",
  "service_level", "abandon_rate", "aht_s", "max_waiting"];
const ACOLS = ["bucket", "member_name", "interface", "logged_in_s", "available_s", "on_call_s",
  "ringing_s", "paused_s", "calls_answered", "ring_no_answer", "aht_s", "occupancy"];
const RATES = new Set(["service_level", "abandon_rate", "occupancy"]);
let last = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

async function api(method, path, body) {
  const opts = {method, headers: {"X-SB-Panel": "1"}, credentials: "same-origin"};
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const resp = await fetch(path, opts);
  let data = null;
  const type = resp.headers.get("Content-Type") || "";
  if (type.includes("json")) data = await resp.json(); else data = {error: (await resp.text()).trim()};
  return {ok: resp.ok, status: resp.status, data};
}

// --- the range ----------------------------------------------------------------------
function ymd(d) { return d.toISOString().slice(0, 10); }
function range() {
  const d = new Date($("start").value + "T00:00:00Z");
  let a = d, b;
  if ($("period").value === "day") b = new Date(d.getTime() + 86400000);
  else if ($("period").value === "week") b = new Date(d.getTime() + 7 * 86400000);
  else { a = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)); b = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)); }
  return `from=${ymd(a)}&to=${ymd(b)}&bucket=${$("bucket").value}`;
}
$("period").onchange = () => { $("bucket").value = $("period").value === "day" ? "hour" : "day"; };

// --- cells ------------------------------------------------------------------------------
function cell(k, v, tz) {
  if (v === null || v === undefined) return "–";
  if (k === "bucket") {
    const d = new Date(v);
    return d.toLocaleString("en-US", {timeZone: tz, month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false});
  }
  if (RATES.has(k)) return (v * 100).toFixed(1) + "%";
  if (typeof v === "number" && !Number.isInteger(v)) return v.toFixed(1);
  if (typeof v === "object") return Object.entries(v).map(([r, s]) => `${r}=${Math.round(s)}s`).join(", ") || "–";
  return String(v);
}
function table(id, cols, rows, tz) {
  const t = $(id);
  t.replaceChildren(el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", {class: c === "bucket" || c === "queue" || c === "member_name" || c === "interface" ? "t" : "", text: c.replace(/_/g, " ")})))));
  const body = el("tbody");
  for (const r of rows) {
    body.append(el("tr", {}, ...cols.map((c) => el("td", {class: typeof r[c] === "string" ? "t" : "", "data-k": c, "data-v": JSON.stringify(r[c] === undefined ? null : r[c]), text: cell(c, r[c], tz)}))));
  }
  if (!rows.length) body.append(el("tr", {}, el("td", {class: "t", colspan: String(cols.length), text: "No calls in this range."})));
  t.append(body);
}
function bars(part, counts) {
  const box = $("mix-" + part);
  box.replaceChildren();
  const entries = Object.entries(counts || {});
  const max = Math.max(1, ...entries.map(([, n]) => n));
  for (const [k, n] of entries) {
    box.append(el("div", {"data-part": part, "data-kind": k},
      el("span", {text: k}), el("span", {}, el("div", {class: "bar", style: `width:${(100 * n / max).toFixed(1)}%`})),
      el("span", {class: "n", "data-v": String(n), text: String(n)})));
  }
  if (!entries.length) box.append(el("span", {text: "none"}));
}

// --- charts (drawn from the rows, summed over queues per interval) ----------------------
function perBucket(rows) {
  // the "(all)" rows are each interval's total over the queues
  const all = rows.filter((r) => r.queue === "(all)");
  const m = new Map();
  for (const r of (all.length ? all : rows)) {
    const x = m.get(r.bucket) || {offered: 0, answered: 0, abandoned: 0, sl: [], n: 0};
    x.offered += r.offered || 0; x.answered += r.answered || 0; x.abandoned += r.abandoned || 0;
    if (r.service_level !== null && r.service_level !== undefined) x.sl.push([r.service_level, r.offered || 0]);
    m.set(r.bucket, x);
  }
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
}
// every interval of the range, with or without calls: [iso, label]
function slots() {
  const out = [];
  const step = {"15min": 900e3, hour: 3600e3, day: 86400e3}[last.bucket];
  const end = new Date(last.to).getTime();
  for (let t = new Date(last.from).getTime(); t < end && out.length < 3000; t += step) {
    // a daylight-saving day: the next local interval start, as the server buckets it
    out.push(t);
  }
  return out;
}
function slotOf(iso, ts) {
  const t = new Date(iso).getTime();
  let i = 0;
  while (i + 1 < ts.length && ts[i + 1] <= t) i++;
  return i;
}
function label(t) {
  const d = new Date(t);
  return last.bucket === "day" ? d.toLocaleDateString("en-US", {timeZone: last.tz, month: "short", day: "numeric"})
    : d.toLocaleTimeString("en-US", {timeZone: last.tz, hour: "2-digit", minute: "2-digit", hour12: false});
}
function axis(s, ts, L, W, H, labels) {
  const step = (W - L - 4) / Math.max(1, ts.length);
  const every = Math.max(1, Math.ceil(ts.length / labels));
  ts.forEach((t, i) => {
    if (i % every) return;
    const x = svg("text", {x: L + i * step + step / 2, y: H - 5, "text-anchor": "middle", "font-size": 10, fill: "#555"});
    x.textContent = label(t); s.append(x);
  });
  return step;
}
function chartCalls(rows) {
  const s = $("chart-calls"); s.replaceChildren();
  const ts = slots();
  const sums = ts.map(() => ({offered: 0, answered: 0, abandoned: 0}));
  for (const [b, x] of perBucket(rows)) {
    const i = slotOf(b, ts);
    sums[i].offered += x.offered; sums[i].answered += x.answered; sums[i].abandoned += x.abandoned;
  }
  const W = 800, H = 220, L = 36, B = 20, T = 8;
  const max = Math.max(1, ...sums.map((x) => x.offered));
  for (let i = 0; i <= 4; i++) {
    const y = T + (H - T - B) * (1 - i / 4);
    s.append(svg("line", {x1: L, x2: W, y1: y, y2: y, stroke: "#e2e4ea"}));
    const t = svg("text", {x: L - 4, y: y + 4, "text-anchor": "end", "font-size": 10, fill: "#555"}); t.textContent = String(Math.round(max * i / 4)); s.append(t);
  }
  const step = axis(s, ts, L, W, H, 12);
  sums.forEach((x, i) => {
    if (!x.offered) return;
    const x0 = L + i * step + step * 0.1, w = Math.max(1, step * 0.8);
    const h = (v) => (H - T - B) * v / max;
    s.append(svg("rect", {x: x0, y: H - B - h(x.offered), width: w, height: h(x.offered), fill: "#9db4e8"}));
    s.append(svg("rect", {x: x0 + w * 0.1, y: H - B - h(x.answered), width: w * 0.38, height: h(x.answered), fill: "#2e7d4f"}));
    s.append(svg("rect", {x: x0 + w * 0.52, y: H - B - h(x.abandoned), width: w * 0.38, height: h(x.abandoned), fill: "#c8372d"}));
  });
  if (!rows.length) { const t = svg("text", {x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#777"}); t.textContent = "no calls"; s.append(t); }
}
function chartSl(rows) {
  const s = $("chart-sl"); s.replaceChildren();
  const ts = slots();
  const W = 400, H = 220, L = 36, B = 20, T = 8;
  for (const p of [0, 0.5, 0.8, 1]) {
    const y = T + (H - T - B) * (1 - p);
    s.append(svg("line", {x1: L, x2: W, y1: y, y2: y, stroke: p === 0.8 ? "#d89b1c" : "#e2e4ea", "stroke-dasharray": p === 0.8 ? "4 3" : ""}));
    const t = svg("text", {x: L - 4, y: y + 4, "text-anchor": "end", "font-size": 10, fill: "#555"}); t.textContent = `${p * 100}%`; s.append(t);
  }
  const step = axis(s, ts, L, W, H, 6);
  const pts = [];
  for (const [b, x] of perBucket(rows)) {
    if (!x.sl.length) continue;
    const v = x.sl.reduce((a, [q, n]) => a + q * Math.max(n, 1), 0) / x.sl.reduce((a, [, n]) => a + Math.max(n, 1), 0);
    pts.push([L + slotOf(b, ts) * step + step / 2, T + (H - T - B) * (1 - v)]);
  }
  if (pts.length > 1) s.append(svg("polyline", {points: pts.map((p) => p.join(",")).join(" "), fill: "none", stroke: "#3557b7", "stroke-width": 2}));
  for (const [x, y] of pts) s.append(svg("circle", {cx: x, cy: y, r: 3.5, fill: "#3557b7"}));
}

// --- loading ----------------------------------------------------------------------------
async function show() {
  const q = range();
  $("msg").textContent = "";
  const r = await api("GET", "/api/reports?" + q);
  if (r.status === 401) return showLogin("");
  if (!r.ok) { $("msg").textContent = (r.data && r.data.error) || "refused"; return; }
  last = r.data;
  $("report").classList.remove("hidden");
  $("range").textContent = `${last.from.slice(0, 16)} to ${last.to.slice(0, 16)} (${last.tz}), per ${last.bucket}`;
  $("range").setAttribute("data-from", last.from); $("range").setAttribute("data-to", last.to);
  $("sl-s").textContent = String(last.sl_s);
  $("csv-queues").href = "/api/reports.csv?" + q + "&table=queues";
  $("csv-agents").href = "/api/reports.csv?" + q + "&table=agents";
  const gaps = last.gaps || [];
  $("gaps").classList.toggle("hidden", !gaps.length);
  $("gaps").textContent = gaps.length ? `The listener missed events ${gaps.length} time(s) in this range; figures across a gap not yet reconciled may be short.` : "";
  chartCalls(last.queues); chartSl(last.queues);
  for (const part of ["verification", "caller_id", "callbacks", "dispositions", "transfers"]) bars(part, last.mix[part]);
  table("t-queues", QCOLS, last.queues, last.tz);
  table("t-agents", ACOLS, last.agents, last.tz);
}

function showLogin(msg) {
  $("controls").classList.add("hidden"); $("report").classList.add("hidden");
  $("login-view").classList.remove("hidden"); $("login-msg").textContent = msg;
}
async function start() {
  const r = await api("GET", "/api/me");
  if (!r.ok) return showLogin("");
  if (r.data.role !== "supervisor") { $("msg").textContent = "Reports are for supervisors."; return; }
  $("login-view").classList.add("hidden"); $("controls").classList.remove("hidden");
  if (!$("start").value) $("start").value = new Date().toLocaleDateString("en-CA");
  show();
}
$("show").onclick = show;
$("login-btn").onclick = async () => {
  const r = await api("POST", "/api/login", {login: $("login").value.trim(), password: $("password").value});
  $("password").value = "";
  if (!r.ok) { $("login-msg").textContent = (r.data && r.data.error) || "refused"; return; }
  start();
};
$("password").addEventListener("keydown", (e) => { if (e.key === "Enter") $("login-btn").click(); });
const params = new URLSearchParams(location.search);
if (params.get("day")) $("start").value = params.get("day");
if (params.get("period")) $("period").value = params.get("period");
if (params.get("bucket")) $("bucket").value = params.get("bucket");
start();
