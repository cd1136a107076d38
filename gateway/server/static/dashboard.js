// The gateway's dashboard: polls /dashboard.json (same origin) and draws it. No framework, no
// build step. Every value from the document is put on the page as text (textContent and SVG
// attributes), never as HTML: model names and agent types come from clients.
"use strict";

const POLL_MS = 1500;
const COLORS = ["#d97757", "#3b82f6", "#10b981", "#a855f7", "#f59e0b", "#ef4444", "#14b8a6", "#64748b", "#ec4899", "#84cc16"];
const SVG_NS = "http://www.w3.org/2000/svg";
const TZ = -new Date().getTimezoneOffset(); // minutes east of UTC, as the JSON wants it

let skew = 0; // server clock minus ours, in ms: countdowns follow the gateway's clock
let colors = new Map();
let seen = new Set();
let firstRender = true;

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "title") node.title = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function number(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString(); }

function compact(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(n >= 1e10 ? 0 : 1) + "G";
  if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + "M";
  if (n >= 1e3) return (n / 1e3).toFixed(n >= 1e4 ? 0 : 1) + "k";
  return String(n);
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(value < 10000 ? 2 : 1)} s`;
}

function span(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function sameDay(epochMs) { return new Date(epochMs).toDateString() === new Date(Date.now() + skew).toDateString(); }

function clock(epochMs, withDate) {
  const d = new Date(epochMs);
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  return withDate ? `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}` : time;
}

// A countdown to an ISO moment, kept live by tick() every second.
function countdown(iso, prefix) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return el("span", {}, "");
  const node = el("span", { class: "until", "data-until": String(at), "data-prefix": prefix || "" });
  paintCountdown(node);
  return node;
}

function paintCountdown(node) {
  const at = Number(node.dataset.until);
  const left = (at - (Date.now() + skew)) / 1000;
  const moment = clock(at, left > 20 * 3600);
  node.textContent = left > 0 ? `${node.dataset.prefix}${moment} (in ${span(left)})` : `${node.dataset.prefix}${moment} (now)`;
}

function tick() { for (const node of document.querySelectorAll("[data-until]")) paintCountdown(node); }

function colorOf(provider) {
  if (!colors.has(provider)) colors.set(provider, COLORS[colors.size % COLORS.length]);
  return colors.get(provider);
}

const STATES = {
  ready: ["ready", "ok"],
  cooling: ["cooling down", "warn"],
  circuit_open: ["circuit open", "bad"],
  probing: ["probing", "warn"],
  spilling: ["spilling", "info"],
  no_credential: ["no credential", "bad"],
};

function renderHeader(doc) {
  const gw = doc.gateway || {};
  const status = $("status");
  status.textContent = gw.status === "ok" ? "serving" : (gw.status || "unknown");
  status.className = "pill " + (gw.status === "ok" ? "ok" : "warn");
  const cfg = gw.config || {};
  const source = cfg.path || (cfg.source === "env" ? "legacy environment" : "embedded default");
  $("config").textContent = `v${gw.version} · ${source} · generation ${cfg.generation} · pid ${gw.pid}`;
  const banner = $("banner");
  const problems = [];
  if (cfg.last_error) problems.push(`The last config reload failed (the previous rules keep serving): ${cfg.last_error}`);
  const ledger = doc.ledger || {};
  if (ledger.state === "failing") problems.push(`The ledger cannot be written: ${ledger.error}. Requests are served but not recorded.`);
  banner.hidden = problems.length === 0;
  banner.replaceChildren(...problems.map((p) => el("div", {}, p)));
}

function windowBar(window) {
  const used = typeof window.utilization === "number" ? window.utilization : null;
  const pct = used === null ? 0 : Math.max(0, Math.min(100, used * 100));
  const level = pct >= 90 ? "bad" : pct >= 70 ? "warn" : "";
  const fill = el("div");
  fill.style.width = `${pct}%`; // CSSOM, not a style attribute: allowed by the page's CSP
  return el("div", { class: "window" },
    el("div", { class: "label" },
      el("span", {}, el("b", {}, window.name), ` · ${used === null ? "?" : Math.round(pct) + "% used"}`,
        window.status && window.status !== "allowed" ? ` · ${window.status}` : ""),
      window.reset ? countdown(window.reset, "resets ") : el("span", {}, "")),
    el("div", { class: `bar ${level}`, title: `${window.name}: ${used === null ? "unknown" : pct.toFixed(1) + "%"}` }, fill));
}

function renderProviders(doc) {
  const byProvider = new Map();
  for (const entry of doc.quota || []) {
    if (!byProvider.has(entry.provider)) byProvider.set(entry.provider, []);
    byProvider.get(entry.provider).push(entry);
  }
  const cards = (doc.providers || []).map((p) => {
    const [label, tone] = STATES[p.state] || [p.state, ""];
    const detail = [];
    if (p.detail) detail.push(p.detail);
    const body = [
      el("div", { class: "card-head" },
        el("h3", {}, el("span", { class: "swatch", "data-color": colorOf(p.name) }), p.name),
        el("span", { class: `pill ${tone}` }, label)),
      el("div", { class: "url" }, p.base_url || ""),
    ];
    if (detail.length) body.push(el("div", { class: "detail" }, detail.join(" · ")));
    if (p.until) body.push(el("div", { class: "detail" }, countdown(p.until, "until ")));
    if (p.also && p.also.length) body.push(el("div", { class: "detail muted" }, "also: " + p.also.map((s) => (STATES[s] || [s])[0]).join(", ")));
    const today = ((doc.charts || {}).providers || {})[p.name];
    if (today) {
      const last = today.day_requests.length - 1;
      body.push(el("div", { class: "detail" }, `Today: ${number(today.day_requests[last])} requests · ${compact(today.day_tokens[last])} tokens`));
    }
    if (p.concurrency) {
      const c = p.concurrency;
      body.push(el("div", { class: "detail muted" }, `${c.in_flight} in flight of ${c.max_concurrent}, ${c.waiting} waiting`));
    }
    for (const entry of byProvider.get(p.name) || []) {
      const who = entry.credential ? `credential ${entry.credential}` : "plan";
      body.push(el("div", { class: "detail muted" }, `Claude plan (${who})${entry.spilling.length ? " · spilling on " + entry.spilling.join(", ") : ""}`));
      for (const window of entry.windows) body.push(windowBar(window));
    }
    return el("div", { class: "card", "data-provider": p.name }, ...body);
  });
  $("providers").replaceChildren(...cards);
  paintSwatches();
}

function paintSwatches() {
  for (const node of document.querySelectorAll("[data-color]")) node.style.background = node.dataset.color;
}

function renderRoutes(doc) {
  const rows = (doc.routes || []).map((r, i) => {
    const targets = [];
    r.targets.forEach((t, j) => {
      if (j) targets.push(el("span", { class: "arrow" }, "→"));
      targets.push(el("span", {}, el("b", {}, t.provider), t.model ? ` (${t.model})` : "",
        t.spill_at ? el("span", { class: "tag info", title: "steps aside while the plan window is at or above this" }, `spill at ${t.spill_at}`) : ""));
    });
    return el("tr", { "data-route": r.name },
      el("td", { class: "muted" }, String(i + 1)),
      el("td", {}, el("b", {}, r.name)),
      el("td", {}, r.match.map((m) => el("code", { class: "tag" }, m))),
      el("td", {}, r.when || el("span", { class: "muted" }, "always")),
      el("td", {}, targets),
      el("td", { class: "muted" }, r.targets.length > 1 ? r.fallback_on.join(", ") : "–"));
  });
  $("routes").replaceChildren(...rows);
}

function statusClass(status) {
  if (status >= 200 && status < 300) return "status-ok";
  if (status >= 400 && status < 500 && status !== 499) return "status-warn";
  return "status-bad";
}

function noteTags(notes) {
  if (!notes) return [];
  return notes.split("; ").map((note) => {
    const kind = note.split(" ")[0];
    const tone = kind === "spill" ? "info" : kind === "failed" || kind === "circuit" ? "bad" : "warn";
    return el("span", { class: `tag ${tone}` }, note);
  });
}

function renderRecent(doc) {
  const recent = doc.recent || [];
  const fresh = new Set();
  const rows = recent.map((r) => {
    const key = `${r.ts}|${r.client_model}|${r.status}|${r.total_ms}`;
    fresh.add(key);
    const cls = r.request_class && r.request_class !== "unknown" ? r.request_class : "–";
    const upstream = r.provider ? [el("b", {}, r.provider), r.upstream_model ? ` / ${r.upstream_model}` : ""] : [el("span", { class: "muted" }, "no provider")];
    const what = noteTags(r.notes);
    if (r.error) what.push(el("span", { class: "err" }, r.error));
    if (!what.length) what.push(el("span", { class: "muted" }, r.stream ? "streamed" : "answered"));
    return el("tr", { class: !firstRender && !seen.has(key) ? "new" : "" },
      el("td", { class: "num", title: new Date(r.ts * 1000).toString() }, clock(r.ts * 1000, !sameDay(r.ts * 1000))),
      el("td", {}, cls, r.agent_type ? el("span", { class: "muted" }, ` · ${r.agent_type}`) : ""),
      el("td", {}, el("code", {}, r.client_model), el("span", { class: "arrow" }, "→"), ...upstream),
      el("td", { class: statusClass(r.status) }, String(r.status)),
      el("td", { class: "num" }, ms(r.ttfb_ms)),
      el("td", { class: "num" }, ms(r.total_ms)),
      el("td", { class: "num" }, `${number(r.input_tokens)} / ${number(r.output_tokens)}`),
      el("td", { class: "num" }, r.cache_read_tokens || r.cache_creation_tokens ? `${number(r.cache_read_tokens)} / ${number(r.cache_creation_tokens)}` : "–"),
      el("td", { class: "what" }, what));
  });
  seen = fresh;
  firstRender = false;
  $("recent").replaceChildren(...rows);
  const note = $("recent-note");
  note.hidden = recent.length > 0;
  note.textContent = `No requests yet. Point Claude Code here: ANTHROPIC_BASE_URL=${location.origin}`;
}

// Stacked bars, one stack per bucket, one colour per provider.
function barChart(target, labels, series, formatLabel, formatValue) {
  const W = 480, H = 170, left = 40, bottom = 22, top = 8, right = 6;
  const n = labels.length;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + s.values[i], 0));
  const max = Math.max(1, ...totals);
  const plotH = H - top - bottom, plotW = W - left - right;
  const slot = plotW / n, width = Math.max(2, slot * 0.72);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotH * (1 - fraction);
    root.append(svg("line", { x1: left, x2: W - right, y1: y, y2: y, class: "axis" }));
    root.append(svg("text", { x: left - 4, y: y + 3, "text-anchor": "end" }, formatValue(Math.round(max * fraction))));
  }
  const step = Math.ceil(n / 8);
  labels.forEach((label, i) => {
    const x = left + slot * i + (slot - width) / 2;
    let y = top + plotH;
    const parts = [];
    for (const s of series) {
      const value = s.values[i];
      if (!value) continue;
      const h = (value / max) * plotH;
      y -= h;
      parts.push(`${s.name}: ${value.toLocaleString()}`);
      root.append(svg("rect", { x: x.toFixed(1), y: y.toFixed(1), width: width.toFixed(1), height: Math.max(0.5, h).toFixed(1), fill: colorOf(s.name), rx: 1.5 },
        svg("title", {}, `${formatLabel(label, true)} · ${s.name}: ${value.toLocaleString()}`)));
    }
    if ((n - 1 - i) % step === 0) {
      root.append(svg("text", { x: (x + width / 2).toFixed(1), y: H - 6, "text-anchor": "middle" }, formatLabel(label, false)));
    }
  });
  target.replaceChildren(root);
}

function renderCharts(doc) {
  const charts = doc.charts;
  const note = $("charts-note");
  const ledger = doc.ledger || {};
  if (!charts) {
    $("charts").hidden = true;
    note.hidden = false;
    note.textContent = ledger.state === "off"
      ? "The usage ledger is off ([server] ledger = false in routes.toml): there is no history to chart."
      : `The ledger cannot be read: ${ledger.read_error || "unknown error"}`;
    $("legend").replaceChildren();
    return;
  }
  $("charts").hidden = false;
  note.hidden = true;
  const names = Object.keys(charts.providers);
  for (const p of doc.providers || []) colorOf(p.name);
  $("legend").replaceChildren(...names.map((name) => el("span", {}, el("span", { class: "swatch", "data-color": colorOf(name) }), name)));
  paintSwatches();
  const pick = (field) => names.map((name) => ({ name, values: charts.providers[name][field] }));
  const hourLabel = (start, long) => {
    const d = new Date(start * 1000);
    const hh = String(d.getHours()).padStart(2, "0");
    return long ? `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${hh}:00` : `${hh}h`;
  };
  const dayLabel = (label, long) => {
    const [y, m, d] = label.split("-").map(Number);
    const date = new Date(y, m - 1, d);
    return date.toLocaleDateString([], long ? { weekday: "long", month: "short", day: "numeric" } : { weekday: "short", day: "numeric" });
  };
  barChart($("chart-hour-requests"), charts.hour_starts, pick("hour_requests"), hourLabel, compact);
  barChart($("chart-hour-tokens"), charts.hour_starts, pick("hour_tokens"), hourLabel, compact);
  barChart($("chart-day-requests"), charts.day_labels, pick("day_requests"), dayLabel, compact);
  barChart($("chart-day-tokens"), charts.day_labels, pick("day_tokens"), dayLabel, compact);
}

function renderLedger(doc) {
  const ledger = doc.ledger || {};
  const footer = $("ledger");
  if (ledger.state === "off") {
    footer.textContent = "Ledger: off. The last requests are this worker's, kept in memory.";
    return;
  }
  footer.textContent = `Ledger: ${ledger.path} · ${ledger.state === "ok" ? "writing" : "failing"} · ` +
    `${number(ledger.written)} rows written by this worker since it started, ${number(ledger.dropped)} not recorded`;
}

function render(doc) {
  skew = Date.parse(doc.now) - Date.now();
  for (const p of doc.providers || []) colorOf(p.name);
  renderHeader(doc);
  renderProviders(doc);
  renderRoutes(doc);
  renderCharts(doc);
  renderRecent(doc);
  renderLedger(doc);
  document.body.dataset.updated = doc.now;
}

function setLive(ok, message) {
  const live = $("live");
  live.className = "live " + (ok ? "on" : "off");
  $("live-text").textContent = ok ? `live · updated ${clock(Date.now(), false)}` : message;
}

async function poll() {
  try {
    // From location.origin: a page opened as http://user:key@host/ has credentials in its own URL,
    // and fetch() refuses a URL built on it.
    const url = new URL(`/dashboard.json?tz=${TZ}`, location.origin);
    const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) {
      let message = `the gateway answered ${response.status}`;
      try { message += `: ${(await response.json()).error.message}`; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    render(await response.json());
    setLive(true);
  } catch (error) {
    setLive(false, error instanceof TypeError ? "the gateway does not answer" : String(error.message || error));
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

setInterval(tick, 1000);
poll();
