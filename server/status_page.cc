#include "server/status_page.h"

namespace fanout {
namespace {

constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fanoutd status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; }
  h2 { font-size: 1.05em; margin: 1.4em 0 .4em; }
  .muted { color: #6b7385; }
  .cards { display: flex; flex-wrap: wrap; gap: .6em; }
  .card { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: .5em .8em; min-width: 6.5em; }
  .card b { display: block; font-size: 1.25em; }
  table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #dde1e8; }
  th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #eef0f4; white-space: nowrap; }
  td.url { white-space: normal; word-break: break-all; max-width: 40em; font-family: ui-monospace, monospace; font-size: .92em; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .bar { position: relative; width: 12em; height: 1em; background: #e7eaf0; border-radius: 3px; overflow: hidden; }
  .bar > span { position: absolute; left: 0; top: 0; bottom: 0; background: #3b82f6; }
  .bar.unknown > span { background: repeating-linear-gradient(45deg, #93c5fd 0 8px, #bfdbfe 8px 16px); width: 100%; }
  .HIT { color: #15803d; } .MISS { color: #b45309; } .JOIN { color: #1d4ed8; }
  .error { color: #b91c1c; }
</style>
</head>
<body>
<h1>fanoutd</h1>
<div class="muted" id="updated">connecting…</div>

<h2>Totals</h2>
<div class="cards" id="totals"></div>

<h2>Cache</h2>
<div class="cards">
  <div class="card"><span class="muted">entries</span><b id="entries">–</b></div>
  <div class="card"><span class="muted">stored</span><b id="stored">–</b></div>
  <div class="card" style="min-width: 16em"><span class="muted">fill of max_cache_size</span>
    <div class="bar" style="width: 100%; margin-top: .35em"><span id="fill-bar" style="width: 0%"></span></div>
    <span id="fill-text" class="muted"></span></div>
</div>

<h2>Fetches in flight</h2>
<table>
  <thead><tr><th>URL</th><th class="num">bytes</th><th class="num">length</th><th>progress</th>
    <th class="num">upstream rate</th><th class="num">readers</th><th class="num">joins</th></tr></thead>
  <tbody id="fetches"></tbody>
</table>

<h2>Recent requests</h2>
<table>
  <thead><tr><th>ended</th><th>X-Cache</th><th class="num">status</th><th>request</th>
    <th class="num">bytes</th><th class="num">time</th></tr></thead>
  <tbody id="recent"></tbody>
</table>

<script>
"use strict";
const POLL_MS = 500;
const previous = new Map();  // key -> {written, at}: for the upstream rate

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function drawTotals(totals) {
  const box = document.getElementById("totals");
  box.replaceChildren();
  for (const [name, value] of Object.entries(totals)) {
    const card = document.createElement("div");
    card.className = "card";
    card.innerHTML = '<span class="muted"></span><b></b>';
    card.firstChild.textContent = name;
    card.lastChild.textContent = value;
    box.appendChild(card);
  }
}
function drawFetches(fetches, now) {
  const body = document.getElementById("fetches");
  body.replaceChildren();
  const seen = new Set();
  for (const f of fetches) {
    seen.add(f.key);
    const row = body.insertRow();
    row.dataset.key = f.key;
    cell(row, f.key, "url");
    cell(row, bytes(f.written), "num");
    cell(row, f.length === null ? "unknown" : bytes(f.length), "num");
    const bar = document.createElement("div");
    bar.className = "bar" + (f.length === null ? " unknown" : "");
    const fill = document.createElement("span");
    const progress = f.length ? Math.min(100, 100 * f.written / f.length) : 0;
    if (f.length !== null) fill.style.width = progress.toFixed(2) + "%";
    bar.appendChild(fill);
    bar.dataset.progress = f.length ? progress.toFixed(3) : "";
    row.insertCell().appendChild(bar);
    const last = previous.get(f.key);
    let rate = "–";
    if (last && now > last.at) rate = bytes((f.written - last.written) * 1000 / (now - last.at)) + "/s";
    previous.set(f.key, { written: f.written, at: now });
    cell(row, rate, "num rate");
    cell(row, String(f.readers), "num readers");
    cell(row, String(f.joins), "num");
  }
  for (const key of [...previous.keys()]) if (!seen.has(key)) previous.delete(key);
  if (fetches.length === 0) {
    const row = body.insertRow();
    const td = cell(row, "none", "muted");
    td.colSpan = 7;
  }
}
function drawRecent(recent) {
  const body = document.getElementById("recent");
  body.replaceChildren();
  for (const r of recent) {
    const row = body.insertRow();
    cell(row, new Date(r.ended).toLocaleTimeString());
    cell(row, r.cache, r.cache);
    cell(row, String(r.status), "num" + (r.status >= 500 ? " error" : ""));
    cell(row, r.method + " " + r.target, "url");
    cell(row, bytes(r.bytes), "num");
    cell(row, r.ms.toFixed(1) + " ms", "num");
  }
}
async function poll() {
  try {
    const res = await fetch("status.json", { cache: "no-store" });
    if (!res.ok) throw new Error("status.json answered " + res.status);
    const s = await res.json();
    const now = performance.now();
    drawTotals(s.totals);
    document.getElementById("entries").textContent = s.entries;
    document.getElementById("stored").textContent = bytes(s.stored_bytes);
    const fill = s.max_cache_size ? 100 * s.stored_bytes / s.max_cache_size : 0;
    document.getElementById("fill-bar").style.width = Math.min(100, fill).toFixed(2) + "%";
    document.getElementById("fill-text").textContent =
      s.max_cache_size ? fill.toFixed(1) + "% of " + bytes(s.max_cache_size) : "no limit";
    drawFetches(s.fetches, now);
    drawRecent(s.recent);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.getElementById("updated").className = "muted";
  } catch (e) {
    document.getElementById("updated").textContent = "cannot reach fanoutd: " + e.message;
    document.getElementById("updated").className = "error";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}
poll();
</script>
</body>
</html>
)HTML";

}  // namespace

std::string_view StatusPageHtml() { return kPage; }

}  // namespace fanout
