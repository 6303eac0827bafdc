// The dashboard's pages: each one reads the management API (the routes the CLI uses)
// with the session cookie, and shows an error body exactly as the API returned it.
"use strict";

const API = "/functions/v1";
const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const content = document.getElementById("content");
const errorBox = document.getElementById("error");
const PAGE_SIZE = 50;

// --- the API -------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = CSRF;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && method === "GET") {
    window.location.assign("/dashboard/login?next=" + encodeURIComponent(location.pathname));
    throw new Error("signed out");
  }
  const text = await response.text();
  if (!response.ok) {
    showError(method + " " + API + path + " → " + response.status, text);
    throw new Error("API error " + response.status);
  }
  errorBox.hidden = true;
  return text ? JSON.parse(text) : null;
}

function showError(what, body) {
  errorBox.replaceChildren(el("strong", {}, what), el("pre", { class: "error-body" }, body));
  errorBox.hidden = false;
}

function query(params) {
  const kept = Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined);
  return kept.length ? "?" + new URLSearchParams(kept).toString() : "";
}

// --- building elements (text only: nothing from the API becomes markup) ---------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function table(headings, rows, attrs) {
  return el(
    "table",
    attrs || {},
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: headings.length, class: "empty" }, "None")))
  );
}

function section(title, ...children) {
  return el("section", {}, el("h2", {}, title), ...children);
}

function fnLink(name) {
  return el("a", { href: "/dashboard/functions/" + encodeURIComponent(name) }, name);
}

function requestLink(id) {
  return el("a", { href: "/dashboard/requests/" + encodeURIComponent(id), class: "mono" }, id);
}

function ms(value) {
  return value === null || value === undefined ? "–" : value.toFixed(1) + " ms";
}

function percent(rate) {
  return (rate * 100).toFixed(1) + "%";
}

function ago(iso) {
  if (!iso) return "–";
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  const size = Math.abs(seconds);
  const text = size < 90 ? Math.round(size) + " s" : size < 5400 ? Math.round(size / 60) + " min" : Math.round(size / 3600) + " h";
  return iso.replace("T", " ").slice(0, 19) + " (" + (seconds < 0 ? text + " ago" : "in " + text) + ")";
}

function badge(state) {
  return el("span", { class: "badge " + String(state).replace(/[^a-z_]/g, "") }, state);
}

function button(label, onclick, attrs) {
  return el("button", { type: "button", onclick, ...(attrs || {}) }, label);
}

// Runs an action, then `after`; a refused action leaves its error body on the page.
function act(run, after) {
  return async () => {
    try {
      await run();
    } catch (err) {
      return;
    }
    if (after) await after();
  };
}

// --- Functions ------------------------------------------------------------------------

async function functionsPage() {
  const cursors = [""];
  const render = async () => {
    const after = cursors[cursors.length - 1];
    const stats = await api("GET", "/stats" + query({ limit: PAGE_SIZE, after }));
    const rows = stats.functions.map((f) =>
      el(
        "tr",
        { class: f.errors ? "failing" : "" , "data-function": f.name },
        el("td", {}, fnLink(f.name)),
        el("td", {}, "v" + f.version + (f.enabled ? "" : " (disabled)")),
        el("td", {}, f.triggers.join(", ") || "http"),
        el("td", { class: "num" }, f.invocations),
        el("td", { class: "num" }, f.errors),
        el("td", { class: "num error-rate" }, percent(f.error_rate)),
        el("td", { class: "num" }, ms(f.p50_ms)),
        el("td", { class: "num" }, ms(f.p99_ms)),
        el("td", {}, badge(f.circuit_breaker))
      )
    );
    const pager = el(
      "div",
      { class: "pager" },
      button("← Previous", () => { cursors.pop(); render(); }, { disabled: cursors.length === 1 }),
      el("span", {}, "page " + cursors.length),
      button("Next →", () => { cursors.push(stats.next_after); render(); }, { disabled: !stats.next_after })
    );
    content.replaceChildren(
      el("p", { class: "hint" }, "Last 5 minutes · generated " + stats.generated_at),
      table(
        ["Function", "Version", "Triggers", "Invocations", "Errors", "Error rate", "p50", "p99", "Breaker"],
        rows,
        { id: "functions" }
      ),
      pager
    );
  };
  await render();
  setInterval(() => render().catch(() => {}), 15000);
}

// --- One function ---------------------------------------------------------------------

async function functionPage(name) {
  const base = "/functions/" + encodeURIComponent(name);
  const config = el("div", {});
  const chart = el("div", { class: "chart" });
  const versions = el("div", {});
  const invocations = el("div", {});
  const logs = el("pre", { class: "logs", id: "logs" });
  content.replaceChildren(
    section("Invocations and errors per minute (last 3 hours)", chart),
    section("Configuration", config),
    section("Versions", versions),
    section("Invocations", invocations),
    section("Log lines", logLine(logs), logs)
  );
  const loadConfig = async () => {
    const [record, secrets] = await Promise.all([api("GET", base), api("GET", "/secrets")]);
    const cfg = record.config;
    const env = Object.keys(cfg.env || {});
    config.replaceChildren(
      table(
        ["Setting", "Value"],
        [
          ["version", "v" + record.version],
          ["enabled", String(record.enabled)],
          ["timeout", cfg.timeout_ms === null ? "default" : cfg.timeout_ms + " ms"],
          ["memory", cfg.memory_mb === null ? "default" : cfg.memory_mb + " MB"],
          ["max concurrency", cfg.max_concurrency === null ? "default" : cfg.max_concurrency],
          ["public / verify_jwt", cfg.public + " / " + cfg.verify_jwt],
          ["retry", JSON.stringify(cfg.retry)],
          ["circuit breaker", record.circuit_breaker.state + " · " + JSON.stringify(cfg.circuit_breaker)],
          ["allowed hosts", (cfg.allowed_hosts || []).join(", ") || "none"],
          ["environment (names only)", env.join(", ") || "none"],
          ["project secrets (names only)", secrets.secrets.map((s) => s.name).join(", ") || "none"],
          ["triggers", JSON.stringify(record.triggers)],
        ].map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))
      )
    );
  };
  const loadVersions = async () => {
    const listing = await api("GET", base + "/versions" + query({ limit: 20 }));
    versions.replaceChildren(
      table(
        ["Version", "Created", "Runtime", "Size", "", ""],
        listing.versions.map((v) =>
          el(
            "tr",
            {},
            el("td", {}, "v" + v.version + (v.live ? " (live)" : "")),
            el("td", {}, ago(v.created_at)),
            el("td", {}, v.runtime || "–"),
            el("td", { class: "num" }, v.size_bytes === null ? "–" : v.size_bytes + " B"),
            el("td", {}, v.rolled_back_from ? "rolled back from v" + v.rolled_back_from : ""),
            el(
              "td",
              {},
              v.live
                ? ""
                : button(
                    "Roll back to v" + v.version,
                    act(async () => {
                      if (!confirm("Make v" + v.version + " live again as a new version?")) throw new Error("no");
                      await api("POST", base + "/rollback", { version: v.version });
                    }, () => Promise.all([loadVersions(), loadConfig()]))
                  )
            )
          )
        )
      )
    );
  };
  const status = el("input", { name: "status", placeholder: "status: 500 or 5xx", size: 14 });
  const errorType = el("input", { name: "error_type", placeholder: "error type", size: 18 });
  const pages = [null]; // cursors ("before") of the pages shown so far, newest first
  const loadInvocations = async (move) => {
    if (move === "older") pages.push(invocations.dataset.cursor);
    else if (move === "newer") pages.pop();
    else pages.splice(1);
    const before = pages[pages.length - 1];
    const listing = await api(
      "GET",
      base + "/invocations" + query({ status: status.value.trim(), error_type: errorType.value.trim(), before, limit: 25 })
    );
    invocations.dataset.cursor = listing.cursor === null ? "" : listing.cursor;
    invocations.replaceChildren(
      el("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); loadInvocations(); } }, status, errorType, el("button", {}, "Filter")),
      el(
        "div",
        { class: "pager" },
        button("← Newer", () => loadInvocations("newer"), { disabled: pages.length === 1 }),
        button("Older →", () => loadInvocations("older"), { disabled: listing.cursor === null })
      ),
      table(
        ["Started", "Request id", "Trigger", "Attempt", "Status", "Error", "Duration"],
        listing.invocations.map((i) =>
          el(
            "tr",
            { class: i.status >= 500 ? "failing" : "" },
            el("td", { class: "nowrap" }, ago(i.started_at)),
            el("td", {}, requestLink(i.id)),
            el("td", {}, i.trigger),
            el("td", { class: "num" }, i.attempt),
            el("td", { class: "num" }, i.status),
            el("td", {}, i.error ? i.error.type + ": " + i.error.message : ""),
            el("td", { class: "num" }, ms(i.duration_ms))
          )
        )
      )
    );
  };
  let cursor = null;
  const follow = document.getElementById("follow");
  const pollLogs = async () => {
    const answer = await api("GET", base + "/logs" + query(cursor === null ? { limit: 200 } : { after: cursor, limit: 200 }));
    cursor = answer.cursor;
    for (const line of answer.lines) logs.append(formatLine(line));
    if (answer.lines.length) logs.scrollTop = logs.scrollHeight;
  };
  const loadChart = async () => {
    const timeline = await api("GET", base + "/timeline" + query({ minutes: 180 }));
    chart.replaceChildren(drawChart(timeline, chart.clientWidth));
  };
  await Promise.all([loadConfig(), loadVersions(), loadInvocations(), pollLogs(), loadChart()]);
  setInterval(() => { if (follow.checked) pollLogs().catch(() => {}); }, 2000);
  setInterval(() => loadChart().catch(() => {}), 30000);
}

function logLine() {
  return el("label", { class: "follow" }, el("input", { type: "checkbox", id: "follow", checked: "checked" }), " follow (new lines every 2 s)");
}

function formatLine(line) {
  return el(
    "div",
    { class: "line lvl-" + line.level, "data-request-id": line.request_id || "" },
    el("span", { class: "at" }, line.timestamp.replace("T", " ").slice(0, 23)),
    " ",
    el("span", { class: "level" }, line.level.toUpperCase()),
    " ",
    line.request_id ? requestLink(line.request_id) : "",
    line.function ? " " + line.function : "",
    " ",
    el("span", { class: "message" }, line.message)
  );
}

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#d9480f", "#7048e8", "#c2255c", "#e67700", "#1c7ed6", "#2b8a3e", "#5f3dc4"];

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(child);
  return node;
}

// A bar per minute: successes in grey-blue, errors stacked on top coloured by type.
function drawChart(timeline, available) {
  const width = Math.max(400, available || 900), height = 180, left = 40, bottom = 20;
  const start = Date.parse(timeline.since), end = Date.parse(timeline.until);
  const minutes = Math.max(1, Math.round((end - start) / 60000));
  const barWidth = (width - left - 8) / minutes;
  const top = Math.max(1, ...timeline.minutes.map((m) => m.invocations));
  const scale = (height - bottom - 10) / top;
  const types = [...new Set(timeline.minutes.flatMap((m) => Object.keys(m.errors)))].sort();
  const color = (t) => COLORS[types.indexOf(t) % COLORS.length];
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg", role: "img" });
  root.append(svg("title", {}, "invocations per minute, errors by type"));
  root.append(svg("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" }));
  root.append(svg("text", { x: left - 4, y: 14, class: "tick", "text-anchor": "end" }, String(top)));
  root.append(svg("text", { x: left - 4, y: height - bottom, class: "tick", "text-anchor": "end" }, "0"));
  for (const [offset, label, anchor] of [[0, "-3 h", "start"], [minutes / 2, "-90 min", "middle"], [minutes, "now", "end"]]) {
    root.append(svg("text", { x: left + offset * barWidth, y: height - 4, class: "tick", "text-anchor": anchor }, label));
  }
  for (const m of timeline.minutes) {
    const x = left + ((Date.parse(m.minute) - start) / 60000) * barWidth;
    let y = height - bottom;
    const errors = Object.values(m.errors).reduce((a, b) => a + b, 0);
    const parts = [["ok", m.invocations - errors, "#91a7c4"], ...Object.entries(m.errors).map(([t, n]) => [t, n, color(t)])];
    for (const [label, n, fill] of parts) {
      if (n <= 0) continue;
      const h = n * scale;
      y -= h;
      root.append(svg("rect", { x, y, width: Math.max(1, barWidth - 1), height: h, fill }, svg("title", {}, `${m.minute.slice(11, 16)} ${label}: ${n}`)));
    }
  }
  const keys = [["ok", "#91a7c4"], ...types.map((t) => [t, color(t)])].map(([label, fill]) => {
    const key = el("span", { class: "key" }, "■ " + label + " ");
    key.style.color = fill; // CSSOM, which the page's CSP allows (style attributes it does not)
    return key;
  });
  const legend = el("div", { class: "legend" }, keys);
  const wrapper = el("div", {}, root, legend);
  if (!timeline.minutes.length) wrapper.prepend(el("p", { class: "hint" }, "No invocations in the last 3 hours."));
  return wrapper;
}

// --- Failures -------------------------------------------------------------------------

async function failuresPage() {
  const fn = el("input", { name: "function", placeholder: "function", size: 20 });
  const errorType = el("input", { name: "error_type", placeholder: "error type", size: 18 });
  const dlq = el("div", { id: "dlq" });
  const detail = el("div", { id: "dlq-entry" });
  const alerts = el("div", {});
  const breakers = el("div", {});
  const filters = () => query({ function: fn.value.trim(), error_type: errorType.value.trim() });
  const loadDlq = async () => {
    const listing = await api("GET", "/dlq" + query({ function: fn.value.trim(), error_type: errorType.value.trim(), limit: PAGE_SIZE }));
    dlq.replaceChildren(
      el("p", { class: "hint" }, listing.total + " matching dead letter(s)" + (listing.total > PAGE_SIZE ? ", newest " + PAGE_SIZE + " shown" : "")),
      table(
        ["Id", "Function", "Trigger", "Attempts", "Error", "Last failed", ""],
        listing.entries.map((e) =>
          el(
            "tr",
            { "data-entry": e.id },
            el("td", {}, el("a", { href: "#", class: "mono", onclick: (ev) => { ev.preventDefault(); showEntry(e.id); } }, e.id)),
            el("td", {}, fnLink(e.function)),
            el("td", {}, e.trigger),
            el("td", { class: "num" }, e.attempts),
            el("td", {}, e.error ? e.error.type : e.reason || ""),
            el("td", {}, ago(e.last_failed_at ? new Date(e.last_failed_at * 1000).toISOString() : null)),
            el("td", {}, button("Retry", act(() => api("POST", "/dlq/" + encodeURIComponent(e.id) + "/retry"), loadDlq), { class: "retry" }))
          )
        )
      )
    );
  };
  const showEntry = async (id) => {
    const entry = await api("GET", "/dlq/" + encodeURIComponent(id));
    const payload = entry.payload ? (entry.payload.text !== null ? entry.payload.text : "base64: " + entry.payload.base64) : "(none)";
    detail.replaceChildren(
      el("h3", {}, "Dead letter " + entry.id),
      el("p", {}, "Error: ", entry.error ? entry.error.type + ": " + entry.error.message : entry.reason),
      el("pre", { class: "payload" }, payload)
    );
  };
  const loadAlerts = async () => {
    const [firing, open] = await Promise.all([api("GET", "/alerts"), api("GET", "/breakers")]);
    alerts.replaceChildren(
      table(
        ["Alert", "Severity", "Labels", "Summary"],
        firing.alerts.map((a) => el("tr", {}, el("td", {}, a.name || a.alert || ""), el("td", {}, a.severity || ""), el("td", {}, JSON.stringify(a.labels || {})), el("td", {}, a.summary || a.description || "")))
      )
    );
    breakers.replaceChildren(
      table(
        ["Function", "State", "Error rate", "Lets a call through at"],
        open.breakers.map((b) => el("tr", {}, el("td", {}, fnLink(b.function)), el("td", {}, badge(b.state)), el("td", {}, percent(b.error_rate)), el("td", {}, ago(b.reset_at))))
      )
    );
  };
  content.replaceChildren(
    section(
      "Dead letter queue",
      el("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); loadDlq(); } }, fn, errorType, el("button", {}, "Filter")),
      el(
        "div",
        { class: "actions" },
        button("Retry all matching", act(() => api("POST", "/dlq/retry" + filters()), loadDlq), { id: "retry-all" }),
        button(
          "Purge matching…",
          act(async () => {
            if (!confirm("Delete every dead letter matching these filters? This cannot be undone.")) throw new Error("no");
            await api("DELETE", "/dlq" + filters());
          }, loadDlq),
          { id: "purge", class: "danger" }
        )
      ),
      dlq,
      detail
    ),
    section("Alerts firing", alerts),
    section("Open circuit breakers", breakers)
  );
  await Promise.all([loadDlq(), loadAlerts()]);
  setInterval(() => loadAlerts().catch(() => {}), 15000);
}

// --- Schedules ------------------------------------------------------------------------

async function schedulesPage() {
  const render = async () => {
    const listing = await api("GET", "/schedules");
    const now = Date.now();
    const path = (s, what) => "/schedules/" + encodeURIComponent(s.function) + "/" + encodeURIComponent(s.id) + "/" + what;
    content.replaceChildren(
      el("p", { class: "hint" }, "Scheduler " + (listing.scheduler.healthy ? "healthy" : "NOT healthy") + ", last heartbeat " + (listing.scheduler.heartbeat_age_s === null ? "never" : listing.scheduler.heartbeat_age_s.toFixed(1) + " s ago")),
      table(
        ["Function", "Schedule", "State", "Next run", "Last run", "Outcome", "Missed", ""],
        listing.schedules.map((s) => {
          const overdue = !s.paused && s.next_run && Date.parse(s.next_run) < now - 60000;
          const outcome = s.last_outcome;
          return el(
            "tr",
            { "data-schedule": s.function + "/" + s.id },
            el("td", {}, fnLink(s.function)),
            el("td", { class: "mono" }, s.cron + " " + s.timezone + " (catch-up " + s.catch_up + ")"),
            el("td", {}, badge(s.paused ? "paused" : "active")),
            el("td", {}, ago(s.next_run)),
            el("td", {}, ago(s.last_run)),
            el("td", {}, outcome ? (outcome.status || "") + (outcome.error_type ? " " + outcome.error_type : "") : "–"),
            el("td", {}, overdue ? "overdue since " + ago(s.next_run) : s.paused ? "runs missed while paused follow catch-up " + s.catch_up : "none"),
            el(
              "td",
              {},
              s.paused
                ? button("Resume", act(() => api("POST", path(s, "resume")), render), { class: "resume" })
                : button("Pause", act(() => api("POST", path(s, "pause")), render), { class: "pause" }),
              " ",
              button("Run now", act(() => api("POST", path(s, "run")), render), { class: "run" })
            )
          );
        })
      )
    );
  };
  await render();
  setInterval(() => render().catch(() => {}), 15000);
}

// --- Cluster --------------------------------------------------------------------------

async function clusterPage() {
  const render = async () => {
    const [nodes, stats] = await Promise.all([api("GET", "/nodes"), api("GET", "/stats" + query({ limit: 1 }))]);
    const server = stats.server;
    const queue = server.queue || {};
    content.replaceChildren(
      section(
        "This node",
        table(
          ["Workers alive", "Busy", "In flight", "Queued", "Running", "Dead", "Oldest queued"],
          [el("tr", {}, el("td", { class: "num" }, server.workers.alive + " / " + server.workers.size), el("td", { class: "num" }, server.workers.busy), el("td", { class: "num" }, server.in_flight), el("td", { class: "num" }, queue.queued ?? 0), el("td", { class: "num" }, queue.running ?? 0), el("td", { class: "num" }, queue.dead ?? 0), el("td", { class: "num" }, server.oldest_queued_age_s === null ? "–" : server.oldest_queued_age_s.toFixed(1) + " s"))]
        )
      ),
      section(
        "Nodes",
        table(
          ["Node", "Address", "Version", "Status", "Heartbeat", "Workers", "In flight"],
          nodes.nodes.map((n) => el("tr", { class: n.status === "live" ? "" : "failing" }, el("td", { class: "mono" }, n.id + (n.self ? " (this one)" : "")), el("td", {}, n.address), el("td", {}, n.version), el("td", {}, badge(n.status)), el("td", {}, n.heartbeat_age_s.toFixed(1) + " s ago"), el("td", { class: "num" }, n.workers_alive + " / " + n.workers), el("td", { class: "num" }, n.in_flight)))
        )
      )
    );
  };
  await render();
  setInterval(() => render().catch(() => {}), 5000);
}

// --- One request ----------------------------------------------------------------------

async function requestPage(id) {
  const found = await api("GET", "/requests/" + encodeURIComponent(id));
  const logs = el("pre", { class: "logs", id: "logs" }, found.lines.map(formatLine));
  content.replaceChildren(
    section(
      "Invocations",
      table(
        ["Function", "Version", "Started", "Trigger", "Attempt", "Status", "Error", "Duration"],
        found.invocations.map((i) => el("tr", { class: i.status >= 500 ? "failing" : "" }, el("td", {}, fnLink(i.function)), el("td", {}, "v" + i.version), el("td", {}, ago(i.started_at)), el("td", {}, i.trigger), el("td", { class: "num" }, i.attempt), el("td", { class: "num" }, i.status), el("td", {}, i.error ? i.error.type + ": " + i.error.message : ""), el("td", { class: "num" }, ms(i.duration_ms))))
      )
    ),
    section("Log lines", logs)
  );
}

// --- start ----------------------------------------------------------------------------

const PAGES = {
  functions: functionsPage,
  function: functionPage,
  failures: failuresPage,
  schedules: schedulesPage,
  cluster: clusterPage,
  request: requestPage,
};

PAGES[document.body.dataset.page](document.body.dataset.subject).catch(() => {
  if (content.textContent === "Loading…") content.textContent = "";
});
