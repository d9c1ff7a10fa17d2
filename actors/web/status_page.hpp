// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string_view>

namespace actormq {

/// The status page served at `GET /` (docs/web.md, "The page"): one HTML document with its CSS
/// and JavaScript inline and no external assets. It polls /api/status every second and follows
/// the event log over the WebSocket /ws/events, falling back to polling /api/events while the
/// socket is down. Stable ids and data attributes (#instances tr[data-role],
/// #queues tr[data-queue] td.depth, #events li[data-kind], ...) are what the browser test and
/// users' scripts select on; docs/web.md lists them.
inline constexpr std::string_view status_page_html = R"ACTORMQ_PAGE(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ActorMQ status</title>
<style>
:root {
  --bg: #f4f6f9; --card: #ffffff; --ink: #1b2430; --muted: #667085; --line: #e4e8ee;
  --accent: #2f6fed; --green: #12a150; --amber: #d98a00; --red: #d92d20; --slate: #5b6b82;
  --teal: #0e9384; --violet: #7a5af8; --blue: #2e90fa;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: #101828; color: #fff; padding: 14px 24px; display: flex; align-items: center;
  gap: 20px; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; font-weight: 650; letter-spacing: .2px; }
header h1 span { color: #98a2b3; font-weight: 400; }
header .meta { color: #d0d5dd; display: flex; gap: 18px; flex-wrap: wrap; font-size: 13px; }
header .meta b { color: #fff; font-weight: 600; }
#link { margin-left: auto; padding: 4px 10px; border-radius: 999px; font-size: 12px;
  font-weight: 600; background: #344054; color: #fff; }
#link::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%;
  margin-right: 6px; background: #98a2b3; vertical-align: 0; }
#link[data-state="live"]::before { background: #32d583; }
#link[data-state="polling"]::before { background: #fdb022; }
#link[data-state="offline"] { background: var(--red); }
#link[data-state="offline"]::before { background: #fff; }
#offline { display: none; background: #fef3f2; color: #b42318; border-bottom: 1px solid #fecdca;
  padding: 10px 24px; font-weight: 600; }
body[data-online="false"] #offline { display: block; }
main { padding: 20px 24px 40px; display: grid; gap: 18px; max-width: 1600px; margin: 0 auto;
  grid-template-columns: minmax(0, 1fr) minmax(0, 1fr);
  grid-template-areas: "stats stats" "instances events" "cluster events" "queues queues"
                       "journal journal"; align-items: start; }
@media (max-width: 900px) {
  main { grid-template-columns: minmax(0, 1fr);
    grid-template-areas: "stats" "instances" "events" "cluster" "queues" "journal"; }
}
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  box-shadow: 0 1px 2px rgba(16,24,40,.05); overflow-x: auto; }
#s-stats { grid-area: stats; } #s-instances { grid-area: instances; }
#s-cluster { grid-area: cluster; } #s-events { grid-area: events; align-self: stretch; }
#s-queues { grid-area: queues; } #s-journal { grid-area: journal; }
section h2 { margin: 0; padding: 12px 16px; font-size: 13px; text-transform: uppercase;
  letter-spacing: .6px; color: var(--muted); border-bottom: 1px solid var(--line);
  display: flex; justify-content: space-between; align-items: baseline; }
section h2 small { text-transform: none; letter-spacing: 0; font-weight: 400; }
table { width: 100%; border-collapse: collapse; }
th, td { padding: 8px 16px; text-align: left; border-bottom: 1px solid var(--line);
  white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: 0; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.empty td { color: var(--muted); font-style: italic; }
.badge { display: inline-block; padding: 2px 9px; border-radius: 999px; font-size: 12px;
  font-weight: 600; color: #fff; background: var(--slate); }
.role-live, .role-backup-active { background: var(--green); }
.role-backup-active { background: var(--teal); }
.role-failing-back { background: var(--amber); }
.role-paused { background: var(--blue); }
.role-starting { background: #98a2b3; }
.role-stopped { background: var(--red); }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(120px, 1fr)); }
.stat { padding: 14px 16px; border-right: 1px solid var(--line); }
.stat:last-child { border-right: 0; }
.stat .v { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.stat .l { color: var(--muted); font-size: 12px; }
#last-failover .v { color: var(--green); }
#last-failover[data-present="false"] .v { color: var(--muted); }
.bar { height: 4px; background: var(--line); border-radius: 2px; margin-top: 4px; min-width: 60px; }
.bar i { display: block; height: 4px; border-radius: 2px; background: var(--accent); }
dl { margin: 0; display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); }
dl div { padding: 12px 16px; border-right: 1px solid var(--line); }
dl div:last-child { border-right: 0; }
dt { color: var(--muted); font-size: 12px; }
dd { margin: 2px 0 0; font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
#events { list-style: none; margin: 0; padding: 0; max-height: 460px; overflow-y: auto; }
#events li { display: grid; grid-template-columns: 96px 118px 1fr auto; gap: 12px; align-items: center;
  padding: 8px 16px; border-bottom: 1px solid var(--line); }
#events li.fresh { animation: flash 2s ease-out; }
@keyframes flash { from { background: #fffaeb; } to { background: transparent; } }
#events li.none { display: block; color: var(--muted); font-style: italic; }
#events time { color: var(--muted); font-variant-numeric: tabular-nums; font-size: 12.5px; }
.kind-failover { background: var(--red); }
.kind-failback { background: var(--violet); }
.kind-activated, .kind-started, .kind-member_joined { background: var(--green); }
.kind-lock_taken { background: var(--teal); }
.kind-giving_way, .kind-paused { background: var(--blue); }
.kind-warning { background: var(--amber); }
.kind-error { background: var(--red); }
.kind-stopping, .kind-member_left { background: var(--slate); }
.duration { font-weight: 700; color: var(--red); font-variant-numeric: tabular-nums; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding-bottom: 24px; }
</style>
</head>
<body data-online="true" data-ready="false">
<header>
  <h1>ActorMQ <span id="node-name">…</span></h1>
  <div class="meta">
    <span>version <b id="node-version">–</b></span>
    <span>HA <b id="node-ha">–</b></span>
    <span>pid <b id="node-pid">–</b></span>
    <span>up <b id="node-uptime">–</b></span>
  </div>
  <span id="link" data-state="starting">connecting</span>
</header>
<div id="offline">Lost contact with this node <span id="offline-since"></span> — still retrying every second.</div>
<main>
  <section id="s-stats">
    <div class="stats">
      <div class="stat"><div class="v" id="connections">–</div><div class="l">connections</div></div>
      <div class="stat"><div class="v" id="sessions">–</div><div class="l">sessions</div></div>
      <div class="stat"><div class="v" id="queue-count">–</div><div class="l">queues</div></div>
      <div class="stat"><div class="v" id="total-depth">–</div><div class="l">messages queued</div></div>
      <div class="stat"><div class="v" id="total-in-flight">–</div><div class="l">in flight</div></div>
      <div class="stat" id="last-failover" data-present="false"><div class="v">–</div><div class="l">last failover</div></div>
    </div>
  </section>
  <section id="s-instances">
    <h2>Server instances <small id="instances-note"></small></h2>
    <table><thead><tr><th>Name</th><th>Role</th><th>Node id</th><th class="num">In role for</th>
      <th class="num">Connections</th><th class="num">Queues</th><th class="num">Journal</th></tr></thead>
    <tbody id="instances"></tbody></table>
  </section>
  <section id="s-cluster">
    <h2>Cluster <small id="member-count"></small></h2>
    <table><thead><tr><th>Member</th><th>Role</th><th>Connector</th><th>Cluster address</th></tr></thead>
    <tbody id="members"></tbody></table>
    <table><thead><tr><th>Node id</th><th>Live</th><th>Backups</th></tr></thead>
    <tbody id="topology"></tbody></table>
  </section>
  <section id="s-queues">
    <h2>Queues <small>rates are messages per second</small></h2>
    <table><thead><tr><th>Instance</th><th>Address</th><th>Queue</th><th>Routing</th><th class="num">Depth</th>
      <th class="num">In flight</th><th class="num">Consumers</th><th class="num">Enqueue/s</th>
      <th class="num">Dequeue/s</th><th class="num">Enqueued</th><th class="num">Delivered</th>
      <th class="num">Acked</th><th class="num">Redelivered</th></tr></thead>
    <tbody id="queues"></tbody></table>
  </section>
  <section id="s-journal">
    <h2>Journal <small id="journal-dir" class="mono"></small></h2>
    <dl id="journal">
      <div><dt>Files</dt><dd data-field="files">–</dd></div>
      <div><dt>Bytes</dt><dd data-field="bytes">–</dd></div>
      <div><dt>Batches</dt><dd data-field="batches_total">–</dd></div>
      <div><dt>Last batch records</dt><dd data-field="last_batch_records">–</dd></div>
      <div><dt>Last fsync</dt><dd data-field="last_sync_us">–</dd></div>
      <div><dt>Segments reclaimed</dt><dd data-field="segments_reclaimed_total">–</dd></div>
    </dl>
    <h2>Replication <small>this live's backup</small></h2>
    <dl id="replication">
      <div><dt>Backup</dt><dd id="repl-backup">–</dd></div>
      <div><dt>Initial sync</dt><dd id="repl-sync">–</dd></div>
      <div><dt>Lag</dt><dd id="repl-lag">–</dd></div>
      <div><dt>Batches acknowledged</dt><dd id="repl-acked">–</dd></div>
      <div><dt>Acknowledgement round trip</dt><dd id="repl-rtt">–</dd></div>
    </dl>
    <h2>HA decisions <small id="ha-note">votes and activations, newest first</small></h2>
    <table><thead><tr><th>Time</th><th>Decision</th><th class="num">Asked</th>
      <th class="num">Answered</th><th class="num">Lives seeing it</th><th class="num">Needed</th>
      <th class="num">Took</th><th>Detail</th></tr></thead>
    <tbody id="ha-decisions"></tbody></table>
  </section>
  <section id="s-events">
    <h2>Event log <small id="events-note">newest first</small></h2>
    <ul id="events"><li class="none">no events yet</li></ul>
  </section>
</main>
<footer>Updated <span id="updated">never</span> · <a href="/api/status">/api/status</a> ·
  <a href="/api/events">/api/events</a> · <a href="/metrics">/metrics</a></footer>
<script>
'use strict';
const EVENTS_SHOWN_MAX = 200;
const $ = (id) => document.getElementById(id);
// Absolute URLs from the origin: relative ones would inherit user:password@ from a page opened
// as http://user:password@host/, and fetch() refuses URLs with credentials. The browser sends
// the Basic credentials it cached for this origin instead.
const api = (path) => location.origin + path;
const st = { seen: new Map(), lastSeq: 0, pid: null, ws: null, wsOpen: false, pollTimer: null,
             online: true, lastOk: 0, offlineSince: 0 };

function esc(v) {
  return String(v === undefined || v === null ? '–' : v).replace(/[&<>"']/g, (c) =>
    ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
function num(v) { return typeof v === 'number' ? v.toLocaleString('en-US') : '–'; }
function rate(v) { return typeof v === 'number' ? v.toFixed(1) : '–'; }
function duration(ms) {
  if (typeof ms !== 'number') return '–';
  if (ms < 1000) return ms + ' ms';
  const s = Math.floor(ms / 1000);
  if (s < 60) return (ms / 1000).toFixed(1) + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' m ' + (s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' m';
}
function clock(d) { return d.toLocaleTimeString('en-GB', { hour12: false }); }
function bytes(b) {
  if (typeof b !== 'number') return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i === 0 ? b : b.toFixed(1)) + ' ' + u[i];
}
function rows(tbody, items, cols, render) {
  tbody.innerHTML = items.length ? items.map(render).join('')
    : '<tr class="empty"><td colspan="' + cols + '">none</td></tr>';
}

function renderNode(s) {
  const n = s.node || {};
  $('node-name').textContent = n.name || '';
  $('node-version').textContent = n.version || '–';
  $('node-ha').textContent = (n.ha_policy || '–') + (n.ha_role ? ' / ' + n.ha_role : '');
  $('node-pid').textContent = n.pid || '–';
  $('node-uptime').textContent = duration(n.uptime_ms);
  document.title = 'ActorMQ ' + (n.name || '') + ' — ' +
    ((s.instances || []).map((i) => i.role).join(', ') || 'status');
  if (n.pid && st.pid !== null && n.pid !== st.pid) resetEvents();
  st.pid = n.pid || st.pid;
}

// Every instance of the node (its own, then the colocated backups it hosts) with its queues and
// journal: the own instance's are the top-level ones of /api/status (docs/web.md).
function instanceList(s) {
  return (s.instances || []).map((i) => i.colocated ? i
    : Object.assign({}, i, { queues: s.queues || [], journal: s.journal || {} }));
}

function renderInstances(s) {
  const list = instanceList(s);
  rows($('instances'), list, 7, (i) =>
    '<tr class="instance" data-instance="' + esc(i.name) + '" data-role="' + esc(i.role) +
    '" data-node-id="' + esc(i.node_id) + '" data-colocated="' + (i.colocated ? 'true' : 'false') +
    '"><td>' + esc(i.name) + '</td><td><span class="badge role role-' + esc(i.role) + '">' +
    esc(i.role) + '</span></td><td class="mono">' + esc(i.node_id) + '</td>' +
    '<td class="num">' + duration(i.since_ms) + '</td>' +
    '<td class="num connections">' + num(i.connections) + '</td>' +
    '<td class="num queues">' + num((i.queues || []).length) + '</td>' +
    '<td class="num journal" title="' + esc((i.journal || {}).directory || '') + '">' +
    (typeof (i.journal || {}).bytes === 'number' ? bytes(i.journal.bytes) : '–') + '</td></tr>');
}

function renderCluster(s) {
  const members = s.members || [], topo = s.topology || [];
  $('member-count').textContent = members.length + ' member' + (members.length === 1 ? '' : 's');
  rows($('members'), members, 4, (m) =>
    '<tr data-member="' + esc(m.name) + '" data-role="' + esc(m.role) + '"><td>' + esc(m.name) +
    '<div class="mono">' + esc(m.node_id) +
    (m.activation_sequence ? ' #' + esc(String(m.activation_sequence)) : '') +
    '</div></td><td><span class="badge role role-' +
    esc(m.role) + '">' + esc(m.role) + '</span></td><td class="mono">' + esc(m.connector) +
    '</td><td class="mono">' + esc(m.cluster_address) + '</td></tr>');
  rows($('topology'), topo, 3, (t) =>
    '<tr data-node-id="' + esc(t.node_id) + '"><td class="mono">' + esc(t.node_id) +
    '</td><td class="mono live">' + esc(t.live) + '</td><td class="mono backups">' +
    esc((t.backups || []).join(', ') || '–') + '</td></tr>');
}

function renderQueues(s) {
  const qs = [];
  instanceList(s).forEach((i) =>
    (i.queues || []).forEach((q) => qs.push(Object.assign({ instance: i.name }, q))));
  const maxDepth = Math.max(1, ...qs.map((q) => q.depth || 0));
  let depth = 0, inFlight = 0;
  qs.forEach((q) => { depth += q.depth || 0; inFlight += q.in_flight || 0; });
  $('queue-count').textContent = num(qs.length);
  $('total-depth').textContent = num(depth);
  $('total-in-flight').textContent = num(inFlight);
  rows($('queues'), qs, 13, (q) =>
    '<tr data-queue="' + esc(q.name) + '" data-address="' + esc(q.address) + '" data-instance="' +
    esc(q.instance) + '"><td class="instance">' + esc(q.instance) + '</td><td>' + esc(q.address) + '</td><td>' + esc(q.name) + '</td><td>' + esc(q.routing) + '</td>' +
    '<td class="num depth" data-value="' + esc(q.depth) + '">' + num(q.depth) + '<div class="bar"><i style="width:' +
    Math.round(100 * (q.depth || 0) / maxDepth) + '%"></i></div></td>' +
    '<td class="num in-flight">' + num(q.in_flight) + '</td>' +
    '<td class="num consumers">' + num(q.consumers) + '</td>' +
    '<td class="num enqueue-rate">' + rate(q.enqueue_rate) + '</td>' +
    '<td class="num dequeue-rate">' + rate(q.dequeue_rate) + '</td>' +
    '<td class="num enqueued">' + num(q.enqueued_total) + '</td>' +
    '<td class="num delivered">' + num(q.delivered_total) + '</td>' +
    '<td class="num acked">' + num(q.acked_total) + '</td>' +
    '<td class="num redelivered">' + num(q.redelivered_total) + '</td></tr>');
}

function renderJournal(s) {
  const j = s.journal || {};
  $('journal-dir').textContent = j.enabled === false ? 'persistence disabled' : (j.directory || '');
  const fmt = { bytes: bytes, last_sync_us: (v) => typeof v === 'number'
    ? (v >= 1000 ? (v / 1000).toFixed(2) + ' ms' : v + ' µs') : '–' };
  document.querySelectorAll('#journal dd').forEach((dd) => {
    const f = dd.dataset.field, v = j[f];
    dd.textContent = fmt[f] ? fmt[f](v) : num(v);
  });
}

// The live's replicating backup (docs/replication.md): its phase, the initial sync's progress
// and how far it is behind.
function renderReplication(s) {
  const r = s.replication || {};
  $('repl-backup').textContent = r.backup || 'none';
  const total = r.sync_bytes_total || 0, sent = r.sync_bytes_sent || 0;
  $('repl-sync').textContent = r.backup === 'none' || r.backup === undefined ? '–'
    : bytes(sent) + ' of ' + bytes(total) + (total > 0 ? ' (' + Math.floor(100 * sent / total) + ' %)' : '');
  $('repl-lag').textContent = num(r.lag_batches) + ' batches, ' + bytes(r.lag_bytes);
  $('repl-acked').textContent = num(r.batches_acknowledged) + ' of ' + num(r.batches_sent);
  $('repl-rtt').textContent = r.acks_total ? num(r.ack_round_trip_us_avg) + ' µs average' : '–';
}

// The quorum votes (asked, lost, won) and the activations with how long they took
// (docs/web.md, "HA decisions").
function renderHa(s) {
  const h = s.ha || {};
  const list = (h.votes || []).map((v) => ({ seq: v.seq, time: v.time, what: 'vote ' + v.outcome,
    c: v.counts || {}, detail: v.detail }))
    .concat((h.activations || []).map((a) => ({ seq: a.seq, time: a.time, what: a.kind, c: {},
      ms: a.duration_ms, detail: a.detail })))
    .sort((a, b) => b.seq - a.seq);
  $('ha-note').textContent = num(h.votes_won_total) + ' won, ' + num(h.votes_lost_total) +
    ' lost; newest first';
  rows($('ha-decisions'), list, 8, (d) =>
    '<tr class="ha-decision" data-what="' + esc(d.what) + '"><td>' + esc(clock(new Date(d.time))) +
    '</td><td>' + esc(d.what) + '</td><td class="num">' + num(d.c.asked) + '</td>' +
    '<td class="num">' + num(d.c.answered) + '</td><td class="num">' + num(d.c.lives_seeing) +
    '</td><td class="num">' + num(d.c.needed) + '</td><td class="num">' +
    (typeof d.ms === 'number' ? duration(d.ms) : '–') + '</td><td class="mono">' + esc(d.detail) +
    '</td></tr>');
}

function renderStatus(s) {
  renderNode(s);
  renderInstances(s);
  renderCluster(s);
  $('connections').textContent = num(s.connections);
  $('sessions').textContent = num(s.sessions);
  renderQueues(s);
  renderJournal(s);
  renderReplication(s);
  renderHa(s);
  document.body.dataset.ready = 'true';
}

function setOnline(ok) {
  const now = Date.now();
  if (ok) { st.lastOk = now; st.offlineSince = 0; }
  else if (!st.offlineSince) { st.offlineSince = now; }
  st.online = ok;
  document.body.dataset.online = String(ok);
  if (!ok) $('offline-since').textContent = 'since ' + clock(new Date(st.offlineSince));
  setLink();
}
function setLink() {
  const l = $('link');
  const state = !st.online ? 'offline' : st.wsOpen ? 'live' : 'polling';
  l.dataset.state = state;
  l.textContent = { live: 'live · WebSocket', polling: 'polling', offline: 'disconnected' }[state];
}
setInterval(() => {
  $('updated').textContent = st.lastOk ? ((Date.now() - st.lastOk) / 1000).toFixed(1) + ' s ago' : 'never';
}, 250);

async function pollStatus() {
  try {
    const r = await fetch(api('/api/status'), { cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    renderStatus(await r.json());
    setOnline(true);
  } catch (e) {
    setOnline(false);
  } finally {
    setTimeout(pollStatus, 1000);
  }
}

function renderLastFailover(ev) {
  const box = $('last-failover');
  box.dataset.present = 'true';
  box.querySelector('.v').textContent = duration(ev.duration_ms);
  box.querySelector('.l').textContent = 'last failover, at ' + clock(new Date(ev.time));
}

function addEvent(ev, via) {
  if (!ev || typeof ev.seq !== 'number' || st.seen.has(ev.seq)) return;
  st.seen.set(ev.seq, true);
  st.lastSeq = Math.max(st.lastSeq, ev.seq);
  const ul = $('events');
  const none = ul.querySelector('.none');
  if (none) none.remove();
  const li = document.createElement('li');
  li.className = 'event' + (via === 'history' ? '' : ' fresh');
  li.dataset.kind = ev.kind || 'unknown';
  li.dataset.seq = ev.seq;
  li.dataset.via = via;
  const t = ev.time ? new Date(ev.time) : null;
  li.innerHTML = '<time datetime="' + esc(ev.time) + '">' +
    (t && !isNaN(t) ? clock(t) + '.' + String(t.getMilliseconds()).padStart(3, '0') : '') +
    '</time><span><span class="badge kind-' + esc(ev.kind) + '">' + esc(ev.kind) +
    '</span></span><span class="message">' + esc(ev.message) + '</span>' +
    (typeof ev.duration_ms === 'number' ? '<span class="duration">' + duration(ev.duration_ms) + '</span>' : '<span></span>');
  // Newest first: insert before the first shown event with a lower sequence number.
  let before = null;
  for (const other of ul.children) {
    if (Number(other.dataset.seq) < ev.seq) { before = other; break; }
  }
  ul.insertBefore(li, before);
  while (ul.children.length > EVENTS_SHOWN_MAX) ul.lastElementChild.remove();
  if (ev.kind === 'failover' && ev.seq === maxSeqOfKind('failover')) renderLastFailover(ev);
}
function maxSeqOfKind(kind) {
  let m = 0;
  document.querySelectorAll('#events li[data-kind="' + kind + '"]').forEach((li) => {
    m = Math.max(m, Number(li.dataset.seq));
  });
  return m;
}

function resetEvents() {
  // The node restarted (a new pid): its sequence numbers start again from 1.
  st.seen.clear();
  st.lastSeq = 0;
  $('events').innerHTML = '<li class="none">no events yet</li>';
  if (st.ws) st.ws.close();
}

async function pollEvents(via) {
  try {
    const r = await fetch(api('/api/events?since=' + st.lastSeq), { cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const d = await r.json();
    (d.events || []).forEach((ev) => addEvent(ev, via));
  } catch (e) { /* the status poll shows the node as unreachable */ }
}
function startPolling() {
  if (st.pollTimer) return;
  st.pollTimer = setInterval(() => pollEvents('poll'), 1000);
}
function stopPolling() {
  if (st.pollTimer) { clearInterval(st.pollTimer); st.pollTimer = null; }
}
function openSocket() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws;
  try {
    ws = new WebSocket(proto + '//' + location.host + '/ws/events?since=' + st.lastSeq);
  } catch (e) {
    startPolling();
    setTimeout(openSocket, 5000);
    return;
  }
  st.ws = ws;
  ws.onopen = () => { st.wsOpen = true; stopPolling(); setLink(); };
  ws.onmessage = (m) => { try { addEvent(JSON.parse(m.data), 'ws'); } catch (e) { /* not JSON */ } };
  ws.onclose = () => {
    st.wsOpen = false;
    st.ws = null;
    setLink();
    // Fall back to polling until the socket is back; catch up on what was missed meanwhile.
    startPolling();
    setTimeout(openSocket, st.online ? 2000 : 5000);
  };
}

pollStatus();
pollEvents('history').then(openSocket);
</script>
</body>
</html>
)ACTORMQ_PAGE";

} // namespace actormq
