// switchboard agent panel, the supervisor's part (switchboard/web/supervise.py): listen in
// on an agent's call, play recordings; and every agent's transfer button.
// Loaded before panel.js, which calls superviseActions() and startSupervisor().
// Text only through textContent (CSP, no inline script).
"use strict";

const TRANSFER = [["intake", "Intake queue"], ["priority", "Priority queue"],
                  ["overflow", "Overflow queue"], ["supervisors", "A supervisor"]];
const SPY = [["listen", "Listen"], ["whisper", "Coach"], ["barge", "Join"]];

function superviseActions(k, c) {
  if (c.state !== "connected") return;
  if (c.mine) {
    const sel = el("select", {class: "transfer-target"});
    for (const [v, t] of TRANSFER) sel.append(el("option", {value: v, text: t}));
    const b = el("button", {class: "transfer", text: "Transfer"});
    b.onclick = async () => {
      b.disabled = true;
      const r = await api("POST", `/api/calls/${encodeURIComponent(c.uniqueid)}/transfer`, {target: sel.value});
      k.msg.textContent = r.ok ? "Transferred." : ((r.data && r.data.error) || "not transferred");
      b.disabled = false;
    };
    k.actions.append(sel, b);
  } else if (me && me.role === "supervisor") {
    for (const [mode, label] of SPY) {
      const b = el("button", {class: "spy spy-" + mode, text: label});
      b.onclick = async () => {
        k.msg.textContent = "Your phone rings…";
        const r = await api("POST", `/api/calls/${encodeURIComponent(c.uniqueid)}/spy`, {mode});
        k.msg.textContent = r.ok ? `${label}: on your phone (hang up to stop).` :
          ((r.data && r.data.error) || (r.data && r.data.result) || "refused");
      };
      k.actions.append(b);
    }
  }
}

function fmtTime(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
function fmtLen(s) { s = Math.round(s || 0); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`; }

async function loadRecordings() {
  const call = $("rec-call").value.trim();
  const r = await api("GET", "/api/recordings" + (call ? "?call=" + encodeURIComponent(call) : ""));
  $("rec-msg").textContent = r.ok ? "" : ((r.data && r.data.error) || "refused");
  const body = $("recordings").querySelector("tbody");
  body.replaceChildren();
  for (const x of (r.ok ? r.data : [])) {
    const b = el("button", {class: "play", text: "Play"});
    b.onclick = () => play(x, b);
    body.append(el("tr", {"data-rid": String(x.recording_id)},
      el("td", {text: fmtTime(x.started_at)}), el("td", {text: x.queue || ""}),
      el("td", {text: x.member_name || ""}), el("td", {text: fmtLen(x.seconds)}),
      el("td", {text: x.uniqueid + (x.held ? " (legal hold)" : "")}), el("td", {}, b)));
  }
  if (r.ok && !r.data.length) body.append(el("tr", {}, el("td", {colspan: "6", text: "No recording."})));
}

async function play(x, b) {
  b.disabled = true;
  const r = await api("POST", `/api/recordings/${x.recording_id}/play`, {});
  b.disabled = false;
  if (!r.ok) { $("rec-msg").textContent = (r.data && r.data.error) || "refused"; return; }
  const p = $("player");
  p.classList.remove("hidden");
  p.src = r.data.url;  // one use, this session, within a minute
  p.play().catch(() => {});
  $("rec-msg").textContent = `Playing ${x.uniqueid} (audited).`;
}

function startSupervisor(who) {
  $("sup-view").classList.toggle("hidden", !who || who.role !== "supervisor");
  if (!who || who.role !== "supervisor") return;
  $("rec-refresh").onclick = loadRecordings;
  loadRecordings();
}
