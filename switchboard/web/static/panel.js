// switchboard agent panel.  No inline script (CSP); text only through
// textContent, never innerHTML: every value on this page came from a caller.
"use strict";

const $ = (id) => document.getElementById(id);
const cards = new Map();  // uniqueid -> {el, info, actions, caseBox, oob}
let dispositions = [];
let agencies = [];
let me = null;
let stream = null;
let wasDown = false;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}

async function api(method, path, body) {
  const opts = {method, headers: {"X-SB-Panel": "1"}, credentials: "same-origin"};
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let resp;
  try { resp = await fetch(path, opts); } catch (e) {
    status("down", "The panel server cannot be reached. Nothing is shown; calls still " +
           "reach your phone.");
    throw e;
  }
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (resp.status === 401 && path !== "/api/login") { showLogin("Your session ended: log in again."); }
  if (resp.status === 503) status("down", (data && data.error) || "Service unavailable.");
  return {ok: resp.ok, status: resp.status, data};
}

function status(kind, text) {
  if (kind === "down") wasDown = true;
  const s = $("status");
  s.className = kind;
  s.textContent = text;
}

function clearCalls() {
  for (const c of cards.values()) c.el.remove();
  cards.clear();
  $("no-calls").classList.remove("hidden");
}

function showLogin(msg) {
  if (stream) { stream.close(); stream = null; }
  clearCalls();
  me = null;
  $("panel-view").classList.add("hidden");
  $("logout").classList.add("hidden");
  $("who").textContent = "";
  $("login-view").classList.remove("hidden");
  $("login-msg").textContent = msg || "";
}

const LEVEL_TEXT = {full: "VERIFIED (full)", callback: "VERIFIED by calling the agency back",
                    "line-only": "LINE ONLY: PIN right, call the agency back first",
                    unverified: "UNVERIFIED"};

function infoList(c) {
  const dl = el("dl");
  const add = (k, v) => { if (v !== null && v !== undefined && v !== "") dl.append(el("dt", {text: k}), el("dd", {text: String(v)})); };
  add("State", c.state + (c.mine ? "" : " (not yours)"));
  add("Queue", c.queue);
  add("Agency", c.agency_name ? `${c.agency_name} (${c.agency_code})` : c.agency_code);
  add("Officer", c.officer_name ? `${c.officer_name} (${c.officer_number})` : c.officer_number);
  add("Calling number", c.ani || c.caller_num);
  add("Registered line", c.registered_line === null ? "not checked" :
      (c.registered_line ? "yes, the agency's registered line" : "NO"));
  add("Caller ID check", c.caller_id);
  add("Case", c.case_ref ? `${c.case_ref} (${c.case_priority} priority)` : "");
  add("Disposition", c.disposition);
  return dl;
}

function card(c) {
  let k = cards.get(c.uniqueid);
  if (!k) {
    const info = el("div");
    const caseBox = el("div", {class: "case hidden"});
    const actions = el("div", {class: "actions"});
    const msg = el("span", {class: "msg"});
    const line = el("button", {class: "line", title: "show or hide the details"});
    const e = el("article", {class: "call", "data-uid": c.uniqueid}, line, info, caseBox,
                 actions, msg);
    $("calls").append(e);
    k = {el: e, info, actions, caseBox, msg, line, built: "", open: false};
    const kk = k;
    line.onclick = () => { kk.open = !kk.open; kk.el.classList.toggle("folded", !kk.open); };
    cards.set(c.uniqueid, k);
  }
  k.info.replaceChildren(
    el("h2", {}, el("span", {class: "level " + c.level, text: LEVEL_TEXT[c.level] || c.level}),
       document.createTextNode(c.why ? "  — " + c.why : "")),
    infoList(c));
  k.el.classList.toggle("cid-failed", !!c.caller_id_failed);
  // actions depend on the call's state and level; rebuilt only when those change
  const shape = [c.state, c.level, c.mine, !!c.case_ref, !!c.disposition].join("|");
  if (k.built !== shape) { k.built = shape; buildActions(k, c); }
  return k;
}

function buildActions(k, c) {
  k.actions.replaceChildren();
  superviseActions(k, c);  // supervise.js: listen in (supervisors), transfer (your call)
  if (!c.mine || c.state === "ringing" || c.state === "waiting") return;
  const live = c.state === "connected";
  const verified = c.level === "full" || c.level === "callback";
  if (verified && c.case_ref) {
    const b = el("button", {class: "show-case", text: "Show case details"});
    b.onclick = () => showCase(k, c.uniqueid);
    k.actions.append(b);
  }
  if (verified && !c.case_ref && live) {
    const input = el("input", {class: "case-number", placeholder: "case number", inputmode: "numeric", maxlength: "12"});
    const b = el("button", {class: "lookup", text: "Look up case"});
    b.onclick = async () => {
      const r = await api("POST", `/api/calls/${encodeURIComponent(c.uniqueid)}/lookup`, {case_number: input.value.trim()});
      k.msg.textContent = r.ok ? `case ${r.data.outcome}` : ((r.data && (r.data.error || r.data.outcome)) || "refused");
    };
    k.actions.append(input, b);
  }
  if (!verified && live && me.originate) {
    let pick = null;
    if (!c.agency_code) {
      pick = el("select", {class: "agency"});
      for (const a of agencies) pick.append(el("option", {value: a.code, text: `${a.name} (${a.code})`}));
    }
    const b = el("button", {class: "oob", text: c.agency_name ? `Call ${c.agency_name} back to verify` : "Call the agency back to verify"});
    b.onclick = () => callAgency(k, c, pick ? pick.value : null);
    k.actions.append(...(pick ? [pick] : []), b);
  }
  if (!c.disposition && (live || c.state === "ended")) {
    const sel = el("select", {class: "disposition"});
    for (const d of dispositions) sel.append(el("option", {value: d.code, text: d.label}));
    const note = el("input", {class: "note", placeholder: "note (optional)", maxlength: "2000"});
    const b = el("button", {class: "save-disposition", text: "Save outcome"});
    b.onclick = async () => {
      const r = await api("POST", `/api/calls/${encodeURIComponent(c.uniqueid)}/disposition`, {code: sel.value, note: note.value});
      k.msg.textContent = r.ok ? "Outcome saved." : ((r.data && r.data.error) || "not saved");
    };
    k.actions.append(sel, note, b);
  }
}

async function showCase(k, uid) {
  const r = await api("POST", `/api/calls/${encodeURIComponent(uid)}/case`, {});
  if (!r.ok) { k.msg.textContent = (r.data && r.data.error) || "refused"; return; }
  const d = r.data;
  const dl = el("dl");
  for (const [label, key] of [["Case number", "case_number"], ["Reference", "case_ref"], ["Status", "status"],
                              ["Priority", "priority"], ["Office", "office"], ["Summary", "summary"],
                              ["Supervisor note", "sensitive"]]) {
    if (d[key]) dl.append(el("dt", {text: label}), el("dd", {text: d[key]}));
  }
  k.caseBox.replaceChildren(el("strong", {text: "Case details (this display is recorded)"}), dl);
  k.caseBox.classList.remove("hidden");
}

async function callAgency(k, c, agency) {
  k.msg.textContent = "Your phone rings first: answer it, then the agency is dialled…";
  const r = await api("POST", `/api/calls/${encodeURIComponent(c.uniqueid)}/oob`, agency ? {agency} : {});
  if (!r.data || !r.data.oob_id) { k.msg.textContent = (r.data && r.data.error) || "refused"; return; }
  if (r.data.originate !== "accepted") { k.msg.textContent = "The call to the agency could not be placed."; return; }
  k.msg.textContent = `Calling ${r.data.agency_name} on its registered number ${r.data.e164}. ` +
                      "When they have confirmed the officer, say so here:";
  const yes = el("button", {class: "confirm-yes", text: "Agency confirmed the officer"});
  const no = el("button", {class: "confirm-no", text: "Agency did not confirm"});
  const done = async (confirmed) => {
    const res = await api("POST", `/api/oob/${r.data.oob_id}/confirm`, {confirmed});
    k.msg.textContent = res.ok ? (confirmed ? "Marked verified by callback." : "Marked NOT confirmed.") : "refused";
    yes.remove(); no.remove();
  };
  yes.onclick = () => done(true);
  no.onclick = () => done(false);
  k.actions.append(yes, no);
}

// What comes first: the agent's own call in progress (prominent), then calls
// still live (ringing for them, or a supervisor's view of the floor), then the
// agent's finished calls waiting for a disposition.  Everything but the call in
// progress folds to one line (its summary and its buttons); a click on the
// line unfolds it.
function rank(c) {
  if (c.mine && (c.state === "connected" || c.state === "ringing")) return 0;
  if (c.state !== "ended") return 1;
  return 2;
}

function summary(c) {
  const who = c.agency_name ? `${c.agency_name}${c.officer_name ? ", " + c.officer_name : ""}`
                            : (c.caller_num || "unknown caller");
  const when = (c.ended_at || c.answered_at || c.entered_at || "").slice(11, 16);
  const level = {full: "VERIFIED", callback: "VERIFIED (called back)", "line-only": "LINE ONLY",
                 unverified: "UNVERIFIED"}[c.level] || c.level;
  return `${level} · ${c.state} ${when} · ${c.queue} · ${who}` +
         (c.case_ref ? ` · case ${c.case_ref}` : "");
}

function render(calls) {
  const seen = new Set();
  const order = [...calls].sort((a, b) => rank(a) - rank(b));
  for (const c of order) {
    seen.add(c.uniqueid);
    const k = card(c);
    const now = rank(c) === 0;
    k.el.classList.toggle("now", now);
    k.el.classList.toggle("folded", !now && !k.open);
    k.line.textContent = summary(c);
    $("calls").append(k.el);  // in this order
  }
  for (const [uid, k] of cards) if (!seen.has(uid)) { k.el.remove(); cards.delete(uid); }
  $("no-calls").classList.toggle("hidden", cards.size > 0);
  const focus = location.pathname.startsWith("/call/") ? decodeURIComponent(location.pathname.slice(6)) : null;
  if (focus && cards.has(focus)) {
    const k = cards.get(focus);
    k.open = true;
    k.el.classList.remove("folded");
    k.el.scrollIntoView();
  }
}

function openStream() {
  if (stream) stream.close();
  stream = new EventSource("/api/events");
  stream.addEventListener("calls", (ev) => {
    const d = JSON.parse(ev.data);
    if (d.db === "down") {
      clearCalls();
      status("down", "The panel cannot reach the database: nothing can be shown. Calls still reach your phone; its display shows V (verified) or UNVERIFIED.");
      return;
    }
    status("ok", wasDown ? "Connected again: the calls below are current." : "Connected.");
    wasDown = false;
    render(d.calls);
  });
  stream.addEventListener("expired", () => showLogin("Your session ended: log in again."));
  stream.onerror = () => {
    clearCalls();
    status("down", "The panel server cannot be reached. Nothing is shown; calls still reach your phone.");
  };
}

// Callback requests: oldest first, a page at a time, with how many are open.
let cbOffset = 0;
async function loadCallbacks() {
  const r = await api("GET", `/api/callbacks?offset=${cbOffset}`);
  const body = $("callbacks").tBodies[0];
  body.replaceChildren();
  if (!r.ok) return;
  const {total, offset, limit, rows} = r.data;
  cbOffset = offset;
  $("cb-count").textContent = total ? `${total} open, oldest first` : "none open";
  $("cb-page").textContent = total ? `${offset + 1}–${offset + rows.length} of ${total}` : "";
  $("cb-prev").disabled = offset === 0;
  $("cb-next").disabled = offset + rows.length >= total;
  $("cb-prev").onclick = () => { cbOffset = Math.max(0, offset - limit); loadCallbacks(); };
  $("cb-next").onclick = () => { cbOffset = offset + limit; loadCallbacks(); };
  for (const cb of rows) {
    const mins = Math.floor(cb.age_s / 60);
    const act = el("td");
    const row = el("tr", {"data-request": String(cb.request_id)},
      el("td", {text: `${mins} min`, class: cb.started_at ? "" : (mins >= 15 ? "stale" : "")}),
      el("td", {text: cb.agency_name || "—"}), el("td", {text: cb.dial_e164 || "no registered number"}),
      el("td", {text: cb.case_ref || ""}), el("td", {text: cb.claimed_by || ""}), act);
    if (!cb.claimed_by || cb.claimed_by_me) {
      if (!cb.claimed_by_me) {
        const b = el("button", {class: "claim", text: "Claim"});
        b.onclick = async () => { const x = await api("POST", `/api/callbacks/${cb.request_id}/claim`, {}); $("cb-msg").textContent = x.data ? x.data.outcome : ""; loadCallbacks(); };
        act.append(b);
      } else {
        if (cb.dial_e164 && me.originate) {
          const d = el("button", {class: "dial", text: "Call back"});
          d.onclick = async () => {
            $("cb-msg").textContent = "Your phone rings first: answer it, then the agency is dialled…";
            const x = await api("POST", `/api/callbacks/${cb.request_id}/dial`, {});
            $("cb-msg").textContent = x.data && x.data.originate === "accepted" ? `Calling ${x.data.e164}.` : ((x.data && x.data.error) || "could not call");
          };
          act.append(d);
        }
        const sel = el("select", {class: "disposition"});
        for (const dd of dispositions) sel.append(el("option", {value: dd.code, text: dd.label}));
        const note = el("input", {class: "note", placeholder: "note (optional)", maxlength: "2000"});
        const c = el("button", {class: "close", text: "Close"});
        c.onclick = async () => { const x = await api("POST", `/api/callbacks/${cb.request_id}/close`, {code: sel.value, note: note.value}); $("cb-msg").textContent = x.data ? x.data.outcome : ""; loadCallbacks(); };
        act.append(sel, note, c);
      }
    }
    body.append(row);
  }
}

async function start() {
  const r = await api("GET", "/api/me");
  if (!r.ok) { if (r.status !== 503) showLogin(""); return; }
  me = r.data;
  $("login-view").classList.add("hidden");
  $("panel-view").classList.remove("hidden");
  $("logout").classList.remove("hidden");
  $("who").textContent = `${me.name} (${me.role}, ${me.interface})`;
  dispositions = (await api("GET", "/api/dispositions")).data || [];
  agencies = (await api("GET", "/api/agencies")).data || [];
  openStream();
  loadCallbacks();
  loadPresence();
  startSupervisor(me);  // supervise.js: recordings and reports, supervisors only
}

$("login-btn").onclick = async () => {
  const r = await api("POST", "/api/login", {login: $("login").value.trim(), password: $("password").value});
  $("password").value = "";
  if (!r.ok) { $("login-msg").textContent = (r.data && r.data.error) || "refused"; return; }
  start();
};
$("password").addEventListener("keydown", (e) => { if (e.key === "Enter") $("login-btn").click(); });
$("logout").onclick = async () => { await api("POST", "/api/logout", {}); showLogin("Logged out."); };
$("cb-refresh").onclick = loadCallbacks;

// the agent's own queues: the same on every node (the listeners apply it)
async function loadPresence() {
  const r = await api("GET", "/api/presence");
  if (!r.ok) return;
  const rows = r.data || [];
  const inQ = rows.filter((x) => x.logged_in);
  const paused = inQ.filter((x) => x.paused);
  $("presence-state").textContent = !inQ.length ? "not taking calls" :
    paused.length ? `paused (${paused[0].reason}) in ${inQ.map((x) => x.queue).join(", ")}` :
    `taking calls in ${inQ.map((x) => x.queue).join(", ")}`;
}
async function presence(action) {
  const r = await api("POST", "/api/presence", {action, reason: $("q-reason").value});
  $("presence-msg").textContent = r.ok ? "" : ((r.data && r.data.error) || "refused");
  loadPresence();
}
$("q-login").onclick = () => presence("login");
$("q-logout").onclick = () => presence("logout");
$("q-pause").onclick = () => presence("pause");
$("q-resume").onclick = () => presence("resume");
start();
