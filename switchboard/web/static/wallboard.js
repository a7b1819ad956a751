"use strict";
let snap = null, offsetMs = 0, lastHeard = 0, updatedAt = null, broken = false;
const PING_S = 10;  // the server's heartbeat (BoardConfig.ping_s)
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const pct = (v) => v === null || v === undefined ? "–" : (v * 100).toFixed(0) + "%";
const secs = (s) => { if (s === null || s === undefined) return "–"; s = Math.max(0, Math.round(s)); return s >= 60 ? Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0") : s + "s"; };
function slClass(v, target) { if (v === null || v === undefined) return ""; return v >= target ? "ok" : v >= target - 0.1 ? "warn" : "bad"; }
function asaClass(v, target) { if (v === null || v === undefined) return ""; return v <= target ? "ok" : v <= target * 1.5 ? "warn" : "bad"; }
function waitClass(s, target) { return s <= target ? "ok" : s <= target * 3 ? "warn" : "bad"; }
function longest(q) { if (!q.oldest_entered_at) return null; return (Date.now() + offsetMs - Date.parse(q.oldest_entered_at)) / 1000; }

function render() {
  if (!snap) return;
  const t = snap.targets;
  $("queues").innerHTML = snap.queues.map((q) => {
    const lw = longest(q);
    const paused = Object.entries(q.paused_reasons || {}).filter(([r]) => r !== "(none)")
      .map(([r, n]) => esc(r) + " " + n).join(", ");
    const alert = q.waiting && lw !== null && lw > t.wait_alert_s;
    return `<div class="queue${alert ? " alert" : ""}" data-queue="${esc(q.queue)}">
      <h2>${esc(q.queue)}</h2>
      <div class="big">
        <div><div class="n waiting ${q.waiting ? (lw !== null ? waitClass(lw, t.sl_s) : "") : "ok"}">${q.waiting}</div><div class="label">waiting</div></div>
        <div><div class="n longest" data-oldest="${esc(q.oldest_entered_at || "")}" style="font-size:7vh">${secs(lw)}</div><div class="label">longest wait</div></div>
      </div>
      <div class="row">
        <div class="stat"><div class="v available">${q.available}</div><div class="k">available</div></div>
        <div class="stat"><div class="v on_call">${q.on_call}</div><div class="k">on a call</div></div>
        <div class="stat"><div class="v paused">${q.paused}</div><div class="k">paused${paused ? " (" + paused + ")" : ""}</div></div>
      </div>
      <div class="row">
        <div class="stat"><div class="v offered">${q.offered}</div><div class="k">offered today</div></div>
        <div class="stat"><div class="v answered">${q.answered}</div><div class="k">answered</div></div>
        <div class="stat"><div class="v abandoned">${q.abandoned}</div><div class="k">abandoned</div></div>
        <div class="stat"><div class="v sl ${slClass(q.service_level, t.service_level)}">${pct(q.service_level)}</div><div class="k">SL ${t.sl_s}s (target ${pct(t.service_level)})</div></div>
        <div class="stat"><div class="v asa ${asaClass(q.asa_s, t.asa_s)}">${secs(q.asa_s)}</div><div class="k">ASA (target ${t.asa_s}s)</div></div>
      </div></div>`;
  }).join("");
  const ab = snap.abandoned_list;
  const abTotal = snap.abandoned_total ?? ab.length;
  $("abandoned-count").textContent = "(" + abTotal + (abTotal > ab.length ? ", the last " + ab.length + " shown" : "") + ")";
  $("abandoned").innerHTML = ab.map((a) => `<li><span>${new Date(a.at).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"})} ${esc(a.queue)}</span><span>waited ${secs(a.wait_s)}</span></li>`).join("") || "<li>none</li>";
  const v = snap.verified || {};
  const al = snap.alerts || {};
  $("verified").innerHTML = [["full", v.full], ["by calling back", v.callback],
    ["line only", v["line-only"]], ["unverified", v.unverified],
    ["officers locked", al.lockout], ["numbers blocked", al.throttle]]
    .map(([k, n]) => `<span class="k">${esc(k)}</span><span class="v ${k.startsWith("officers") || k.startsWith("numbers") ? (n ? "warn" : "") : ""}" data-k="${esc(k)}">${n ?? 0}</span>`).join("");
  // the caller ID's STIR/SHAKEN check: the share of today's callers attested A
  const cid = snap.caller_id || {};
  const cidTotal = ["attested-a", "attested-bc", "not-attested", "failed"].reduce((s, k) => s + (cid[k] || 0), 0);
  $("caller-id").innerHTML = [["attested A", cid["attested-a"]], ["attested B/C", cid["attested-bc"]],
    ["not attested", cid["not-attested"]], ["validation failed", cid.failed]]
    .map(([k, n]) => `<span class="k">${esc(k)}</span><span class="v ${k === "validation failed" && n ? "warn" : ""}" data-k="${esc(k)}">${n ?? 0}</span>`).join("") +
    `<span class="k">attested share</span><span class="v cid-share">${cidTotal ? Math.round(100 * (cid["attested-a"] || 0) / cidTotal) + "%" : "–"}</span>`;
  const cb = snap.callbacks_stale || {n: 0, waiting: 0};
  $("callbacks").innerHTML = `<span class="k">waiting</span><span class="v cb-waiting">${cb.waiting ?? 0}</span>` +
    `<span class="k">oldest</span><span class="v">${cb.waiting ? secs(cb.oldest_s) : "–"}</span>` +
    `<span class="k">not started in ${cb.threshold_min} min</span><span class="v cb-stale ${cb.n ? "bad" : "ok"}">${cb.n}</span>`;
  const e = snap.edge || {};
  $("edge").innerHTML = [["failed logins (1 h)", e.auth_failures_hour, e.auth_failures_hour ? "warn" : ""],
    ["from addresses", e.failing_addresses_hour, ""],
    ["banned now", (e.bans || []).length, (e.bans || []).length ? "bad" : "ok"],
    ["out min (1 h)", `${e.outbound_minutes_hour ?? 0}/${e.outbound_minutes_per_hour ?? "–"}`, ""],
    ["out refused", e.outbound_refused_today, e.outbound_refused_today ? "bad" : ""],
    ["911 today", e.emergency_calls_today, e.emergency_calls_today ? "bad" : ""]]
    .map(([k, n, c]) => `<span class="k">${esc(k)}</span><span class="v ${c}" data-k="${esc(k)}">${esc(n ?? 0)}</span>`).join("");
  alerts();
  chart(snap.hours, t.service_level);
}

const clock = (iso) => new Date(iso).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});

function edgeAlerts() {  // [css class, text]: 911 first, it matters most
  const e = snap.edge || {}, out = [];
  for (const c of e.emergencies || []) {
    out.push(c.ended_at
      ? ["info", `911 call from phone ${c.phone} (${c.place}) at ${clock(c.started_at)} ended ${clock(c.ended_at)}: ${c.status || "?"}`]
      : ["e911", `911 CALL IN PROGRESS from phone ${c.phone}, ${c.place}, since ${clock(c.started_at)} (callback ${c.elin})`]);
  }
  for (const b of e.bans || []) out.push(["info", `SIP: ${b.address} banned until ${clock(b.until)} after ${b.failures ?? "?"} failed logins`]);
  if (e.outbound_refused_hour) out.push(["", `${e.outbound_refused_hour} outbound call${e.outbound_refused_hour > 1 ? "s" : ""} refused by the toll-fraud caps in the last hour`]);
  return out;
}

function alerts() {  // re-run every second: waits grow between snapshots
  if (!snap) return;
  const t = snap.targets, out = [];
  for (const q of snap.queues) {
    const lw = longest(q);
    const on = q.waiting && lw !== null && lw > t.wait_alert_s;
    const card = document.querySelector(`.queue[data-queue="${CSS.escape(q.queue)}"]`);
    if (card) card.classList.toggle("alert", !!on);
    if (on) out.push(`${q.queue}: a caller has waited ${secs(lw)} (alert at ${secs(t.wait_alert_s)})`);
  }
  for (const n of snap.nodes || []) if (n.state === "lost") out.push(`NODE ${n.node} IS DOWN since ${new Date(n.since).toLocaleTimeString()} (${n.reason || "no answer"}): its calls were cut, new calls go to the other nodes, its agents are not counted`);
  for (const n of snap.silent_nodes || []) out.push(`node ${n.node}: nothing heard since ${n.last_seen_at ? new Date(n.last_seen_at).toLocaleTimeString() : "ever"}; its agents are not counted`);
  const cb = snap.callbacks_stale || {n: 0};
  if (cb.n) out.push(`${cb.n} callback request${cb.n > 1 ? "s" : ""} not started within ${cb.threshold_min} min`);
  $("alerts").innerHTML = edgeAlerts().map(([c, a]) => `<div class="alert ${c}">${esc(a)}</div>`).join("") +
    out.map((a) => `<div class="alert">${esc(a)}</div>`).join("");
}

function chart(hours, target) {
  const W = 720, H = 200, pad = 32, n = 24, bw = (W - 2 * pad) / n;
  const max = Math.max(1, ...hours.map((h) => h.offered));
  const byHour = {};
  for (const h of hours) byHour[new Date(h.bucket).getHours()] = h;
  let s = `<line x1="${pad}" x2="${W - pad}" y1="${pad + (1 - target) * (H - 2 * pad)}" y2="${pad + (1 - target) * (H - 2 * pad)}" stroke="#d89b1c" stroke-dasharray="4 4"/>`;
  // scales: calls on the left, service level on the right
  s += `<text x="2" y="${pad + 4}">${max}</text><text x="2" y="${H - pad}">0</text>`;
  s += `<text x="${W - pad + 2}" y="${pad + 4}">100%</text><text x="${W - pad + 2}" y="${H - pad}">0%</text>`;
  let path = "";
  for (let i = 0; i < n; i++) {
    const h = byHour[i], x = pad + i * bw;
    if (h) {
      const ho = (h.offered / max) * (H - 2 * pad), ha = (h.answered / max) * (H - 2 * pad);
      s += `<rect x="${x + 2}" y="${H - pad - ho}" width="${bw - 4}" height="${ho}" fill="#4a5562"/>`;
      s += `<rect x="${x + 2}" y="${H - pad - ha}" width="${bw - 4}" height="${ha}" fill="#2e9d4f"/>`;
      if (h.service_level !== null) {
        const py = pad + (1 - h.service_level) * (H - 2 * pad);
        path += (path ? "L" : "M") + (x + bw / 2) + " " + py;
        s += `<circle class="sl-point" cx="${x + bw / 2}" cy="${py}" r="4" fill="#f2f2f2"/>`;  // one hour is a point
      }
    }
    if (i % 3 === 0) s += `<text x="${x}" y="${H - 4}">${String(i).padStart(2, "0")}</text>`;
  }
  if (path) s += `<path d="${path}" stroke="#f2f2f2" fill="none" stroke-width="2"/>`;
  $("chart").innerHTML = s;
}

function heard() {
  lastHeard = Date.now();
  const dot = document.querySelector("#status .dot");
  if (dot) { dot.classList.remove("beat"); void dot.offsetWidth; dot.classList.add("beat"); }
}

function freshness() {  // an idle board must not look dead, a dead one not look live
  if (!lastHeard || broken) return;
  const quiet = (Date.now() - lastHeard) / 1000;
  const st = $("status");
  if (quiet > 3 * PING_S) {
    st.className = "down";
    st.textContent = `no update for ${Math.round(quiet)} s: this board may be stale`;
  } else {
    st.className = "";
    st.innerHTML = `<span class="dot"></span>live · updated ${esc(updatedAt || "")}`;
  }
}

function tick() {  // the longest-wait counters run between snapshots
  for (const el of document.querySelectorAll(".longest")) {
    const o = el.dataset.oldest;
    el.textContent = o ? secs((Date.now() + offsetMs - Date.parse(o)) / 1000) : "–";
  }
}

function connect() {
  const es = new EventSource("/events");  // reconnects by itself after a blip
  es.addEventListener("snapshot", (e) => {
    snap = JSON.parse(e.data);
    offsetMs = Date.parse(snap.server_time) - Date.now();
    document.body.dataset.version = snap.version;
    updatedAt = new Date().toLocaleTimeString();
    lastHeard = Date.now();
    broken = false;
    freshness();
    heard();
    render();
  });
  es.addEventListener("ping", () => { lastHeard = Date.now(); broken = false; freshness(); heard(); });
  es.onerror = () => { broken = true; $("status").className = "down"; $("status").textContent = "reconnecting…"; };
}
connect();
setInterval(() => { tick(); alerts(); freshness(); }, 1000);
