"use strict";
let snap = null, offsetMs = 0;
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
    return `<div class="queue" data-queue="${esc(q.queue)}">
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
  $("abandoned-count").textContent = "(" + ab.length + ")";
  $("abandoned").innerHTML = ab.map((a) => `<li><span>${new Date(a.at).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"})} ${esc(a.queue)}</span><span>waited ${secs(a.wait_s)}</span></li>`).join("") || "<li>none</li>";
  const cb = snap.callbacks_stale || {n: 0};
  $("cb-threshold").textContent = "(over " + cb.threshold_min + " min)";
  $("callbacks-stale").innerHTML = `<span class="v ${cb.n ? "bad" : "ok"}">${cb.n}</span>` +
    (cb.n ? ` <span class="k">oldest ${secs(cb.oldest_s)}</span>` : "");
  chart(snap.hours, t.service_level);
}

function chart(hours, target) {
  const W = 720, H = 200, pad = 20, n = 24, bw = (W - 2 * pad) / n;
  const max = Math.max(1, ...hours.map((h) => h.offered));
  const byHour = {};
  for (const h of hours) byHour[new Date(h.bucket).getHours()] = h;
  let s = `<line x1="${pad}" x2="${W - pad}" y1="${pad + (1 - target) * (H - 2 * pad)}" y2="${pad + (1 - target) * (H - 2 * pad)}" stroke="#d89b1c" stroke-dasharray="4 4"/>`;
  let path = "";
  for (let i = 0; i < n; i++) {
    const h = byHour[i], x = pad + i * bw;
    if (h) {
      const ho = (h.offered / max) * (H - 2 * pad), ha = (h.answered / max) * (H - 2 * pad);
      s += `<rect x="${x + 2}" y="${H - pad - ho}" width="${bw - 4}" height="${ho}" fill="#4a5562"/>`;
      s += `<rect x="${x + 2}" y="${H - pad - ha}" width="${bw - 4}" height="${ha}" fill="#2e9d4f"/>`;
      if (h.service_level !== null) path += (path ? "L" : "M") + (x + bw / 2) + " " + (pad + (1 - h.service_level) * (H - 2 * pad));
    }
    if (i % 3 === 0) s += `<text x="${x}" y="${H - 4}">${String(i).padStart(2, "0")}</text>`;
  }
  if (path) s += `<path d="${path}" stroke="#f2f2f2" fill="none" stroke-width="2"/>`;
  $("chart").innerHTML = s;
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
    $("status").className = "";
    $("status").textContent = "live · " + new Date().toLocaleTimeString();
    render();
  });
  es.onerror = () => { $("status").className = "down"; $("status").textContent = "reconnecting…"; };
}
connect();
setInterval(tick, 1000);
