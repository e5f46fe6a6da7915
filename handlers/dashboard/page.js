"use strict";
// dimirror's status page. It reads the JSON APIs with the API key in the x-functions-key header.
// The key comes from this page's own address once (?code=...), is removed from the address bar
// and kept in this script's memory only: it never goes into another URL, a link or storage.
(function () {
  const REFRESH_MS = 15000;
  const PAGE_SIZE = 50;        // matrix rows per page: 1,000 items are 20 pages
  const MAX_LIST_PAGES = 50;   // replicas read per refresh: at most 50 pages of 1,000
  const COLORS = ["#1f5fbf", "#b45309", "#047857", "#7c3aed", "#be185d", "#0e7490"];

  const params = new URLSearchParams(location.search);
  const key = params.get("code") || "";
  if (params.has("code")) {
    params.delete("code");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }
  // The API's base: this page is served at <base>/dashboard.
  const base = location.pathname.replace(/\/dashboard\/?$/, "");

  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") n.className = v; else n.setAttribute(k, v === true ? "" : String(v));
    }
    for (const k of kids) if (k !== null && k !== undefined) n.append(k instanceof Node ? k : String(k));
    return n;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    return n;
  }

  async function api(path) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 20000); // every call has a deadline
    try {
      const resp = await fetch(path, { headers: { "x-functions-key": key, "Accept": "application/json" }, signal: ctl.signal, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
      const body = await resp.json().catch(() => null);
      if (!resp.ok) {
        const msg = body && body.error ? body.error.message : resp.statusText;
        throw new Error(resp.status + " " + msg);
      }
      return body;
    } finally {
      clearTimeout(timer);
    }
  }

  // Every replica, following nextLink (a path under this origin, without the key).
  async function allReplicas() {
    const out = [];
    let path = base + "/replications?top=1000";
    for (let i = 0; path && i < MAX_LIST_PAGES; i++) {
      const page = await api(path);
      out.push(...(page.value || []));
      path = page.nextLink || "";
      if (path && !path.startsWith("/")) throw new Error("unexpected nextLink");
    }
    return { replicas: out, truncated: !!path };
  }

  const state = { summary: null, replicas: [], truncated: false, page: 0, paused: false, lastOk: null, timer: null };

  function fmtSeconds(s) {
    if (s === undefined || s === null || isNaN(s)) return "–";
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    if (s < 120) return s.toFixed(s < 10 ? 1 : 0) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }
  function fmtTime(t) {
    if (!t) return "never";
    const d = new Date(t);
    if (isNaN(d) || d.getUTCFullYear() < 2000) return "never";
    return d.toLocaleString();
  }
  function fmtAgo(t) {
    if (!t) return "never";
    const d = new Date(t);
    if (isNaN(d) || d.getUTCFullYear() < 2000) return "never";
    return fmtSeconds((Date.now() - d.getTime()) / 1000) + " ago";
  }
  function plannedText(p) {
    if (!p) return "no sweep yet";
    const parts = Object.entries(p).filter(([, n]) => n > 0).map(([c, n]) => n + " " + c);
    return parts.length ? parts.join(", ") : "nothing";
  }

  // At-risk replicas by target/kind/id, from the summary (the domain judged them).
  function riskIndex() {
    const idx = new Map();
    for (const t of (state.summary && state.summary.targets) || []) {
      for (const r of (t.rpo && t.rpo.atRiskReplicas) || []) idx.set(t.target + "|" + r.kind + "|" + r.sourceId, r);
    }
    return idx;
  }

  function renderCards() {
    const s = state.summary;
    const cards = $("target-cards");
    cards.replaceChildren();
    if (!s) return;
    $("rpo-objective").textContent = "(objective " + fmtSeconds(s.targets.length ? s.targets[0].rpo.objectiveSeconds : 0) + ")";
    for (const t of s.targets) {
      const r = t.rpo || {};
      const share = r.withinShare === undefined || r.withinShare === null ? "– (none made)" : (r.withinShare * 100).toFixed(r.withinShare === 1 ? 0 : 1) + " %";
      const inFlight = (t.replicas.pending || 0) + (t.replicas.authorized || 0) + (t.replicas.copying || 0);
      const risky = (r.atRisk || 0) > 0;
      const verdict = risky ? el("span", { class: "pill bad" }, r.atRisk + " at risk")
        : (r.atRiskSoon || 0) > 0 ? el("span", { class: "pill warn" }, r.atRiskSoon + " at risk soon")
          : el("span", { class: "pill ok" }, "within objective");
      const rows = [
        ["Replicas", `${t.replicas.succeeded || 0} succeeded, ${inFlight} in flight, ${t.replicas.failed || 0} failed`],
        ["Pending", inFlight ? `${inFlight} (oldest ${fmtSeconds(t.oldestPendingSeconds)})` : "none"],
        ["Lag 24 h", t.lag.count ? `p50 ${fmtSeconds(t.lag.p50Seconds)}, p95 ${fmtSeconds(t.lag.p95Seconds)}, max ${fmtSeconds(t.lag.maxSeconds)} (${t.lag.count})` : "no copy in 24 h"],
        ["Failures 24 h", String(t.failures24h)],
        ["Made within RPO", `${share} (${r.madeWithin24h || 0} of ${r.made24h || 0})`],
        ["Missed 24 h", String(r.missed24h || 0)],
        ["At risk now", `${r.atRisk || 0} (soon: ${r.atRiskSoon || 0})`],
        ["Last watch", s.lastWatch ? `${fmtAgo(s.lastWatch.finishedDateTime)}: ${plannedText(s.lastWatch.planned)}` : "never"],
        ["Last sweep", s.lastSweep ? `${fmtAgo(s.lastSweep.finishedDateTime)}: ${plannedText(t.planned)}` : "never"],
      ];
      const dl = el("dl");
      for (const [k, v] of rows) dl.append(el("dt", null, k), el("dd", null, v));
      cards.append(el("article", { class: "target-card" + (risky ? " at-risk" : ""), "data-target": t.target },
        el("h3", null, el("span", null, t.target), verdict), dl));
    }
  }

  function renderChart() {
    const box = $("chart");
    box.replaceChildren();
    const s = state.summary;
    if (!s) return;
    const W = 1000, H = 260, L = 60, R = 16, T = 12, B = 30;
    const now = new Date(s.at).getTime(), from = now - 24 * 3600 * 1000;
    const rpo = s.targets.length ? s.targets[0].rpo.objectiveSeconds : 900;
    let maxY = rpo * 1.25;
    for (const t of s.targets) for (const p of t.lagPoints || []) maxY = Math.max(maxY, p.seconds * 1.1);
    const x = (ms) => L + (W - L - R) * (ms - from) / (now - from);
    const y = (sec) => H - B - (H - T - B) * Math.sqrt(sec / maxY); // square-root scale: seconds and an hour on one chart
    const g = svg("svg", { id: "lag-chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "replication lag of the last 24 hours by target" });
    for (const f of [0, 0.05, 0.25, 0.5, 1]) {
      const sec = maxY * f;
      g.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(sec), y2: y(sec) }), svg("text", { x: L - 6, y: y(sec) + 4, "text-anchor": "end" }, fmtSeconds(sec)));
    }
    for (let h = 0; h <= 24; h += 6) {
      const ms = from + h * 3600 * 1000;
      g.append(svg("text", { x: x(ms), y: H - 10, "text-anchor": "middle" }, h === 24 ? "now" : "-" + (24 - h) + " h"));
    }
    g.append(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }), svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    g.append(svg("line", { class: "rpo-line", x1: L, x2: W - R, y1: y(rpo), y2: y(rpo) }), svg("text", { x: W - R, y: y(rpo) - 4, "text-anchor": "end", fill: "#b3261e" }, "RPO " + fmtSeconds(rpo)));
    const legend = el("div", { class: "legend" });
    s.targets.forEach((t, i) => {
      const color = COLORS[i % COLORS.length];
      legend.append(el("span", null, (() => { const d = el("i"); d.style.background = color; return d; })(), `${t.target} (${(t.lagPoints || []).length})`));
      for (const p of t.lagPoints || []) {
        const c = svg("circle", { class: "point", cx: x(new Date(p.at).getTime()).toFixed(1), cy: y(p.seconds).toFixed(1), r: 3.5, fill: p.seconds > rpo ? "#b3261e" : color, "data-target": t.target });
        c.append(svg("title", {}, `${t.target}: ${p.kind} ${p.sourceId}, lag ${fmtSeconds(p.seconds)}, ${fmtTime(p.at)}`));
        g.append(c);
      }
    });
    box.append(g, legend);
  }

  function renderRisks() {
    const box = $("risk-list");
    box.replaceChildren();
    const s = state.summary;
    if (!s) return;
    const rows = [];
    let more = false;
    for (const t of s.targets) {
      for (const r of t.rpo.atRiskReplicas || []) rows.push([t.target, r]);
      more = more || t.rpo.atRiskTruncated;
    }
    if (!rows.length) { box.append(el("p", { class: "muted" }, "No replica is past half its objective.")); return; }
    const tb = el("tbody");
    for (const [target, r] of rows) {
      tb.append(el("tr", { class: r.rpoState === "at-risk" ? "risk-row" : "risk-soon-row" },
        el("td", null, r.rpoState), el("td", null, target), el("td", null, r.kind), el("td", null, r.sourceId),
        el("td", null, r.status + (r.errorCode ? " (" + r.errorCode + ")" : "")), el("td", null, fmtSeconds(r.pendingSeconds)), el("td", null, fmtTime(r.sourceReady))));
    }
    box.append(el("table", { id: "risk-table" }, el("thead", null, el("tr", null, ...["RPO", "Target", "Kind", "Id", "Status", "Waiting", "Source ready"].map((h) => el("th", null, h)))), tb));
    if (more) box.append(el("p", { class: "muted" }, "More replicas are at risk than listed; the counts above are complete."));
  }

  // items groups the replicas by source item: [{kind, id, byTarget: {target: replica}}], sorted.
  function items() {
    const m = new Map();
    for (const r of state.replicas) {
      const k = r.kind + "|" + r.sourceId;
      if (!m.has(k)) m.set(k, { kind: r.kind, id: r.sourceId, byTarget: {} });
      m.get(k).byTarget[r.target] = r;
    }
    return [...m.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.id.localeCompare(b.id));
  }

  function renderMatrix() {
    const targets = state.summary ? state.summary.targets.map((t) => t.target) : [];
    const risks = riskIndex();
    $("matrix-head").replaceChildren(el("th", null, "Kind"), el("th", null, "Id"), ...targets.map((t) => el("th", { "data-target": t }, t)));
    const q = $("filter").value.trim().toLowerCase(), kind = $("kind").value, problems = $("problems").checked;
    const all = items().filter((it) => (!q || it.id.toLowerCase().includes(q)) && (!kind || it.kind === kind) &&
      (!problems || targets.some((t) => { const r = it.byTarget[t]; return !r || r.status !== "succeeded" || risks.has(t + "|" + it.kind + "|" + it.id); })));
    const pages = Math.max(1, Math.ceil(all.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    const shown = all.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
    const body = $("matrix-body");
    body.replaceChildren();
    for (const it of shown) {
      const tr = el("tr", { class: "item-row", "data-kind": it.kind, "data-id": it.id }, el("td", null, it.kind), el("td", { class: "id" }, it.id));
      for (const t of targets) {
        const r = it.byTarget[t];
        const risk = risks.get(t + "|" + it.kind + "|" + it.id);
        const cls = ["cell", r ? r.status : "none"];
        if (risk) cls.push(risk.rpoState === "at-risk" ? "risk" : "risk-soon");
        const td = el("td", { class: cls.join(" "), "data-target": t, "data-status": r ? r.status : "none" });
        if (!r) {
          td.append(el("span", { class: "state" }, "not requested"));
        } else {
          td.append(el("span", { class: "state" }, r.status + (r.status === "copying" && r.percentCompleted ? " " + r.percentCompleted + " %" : "")));
          if (r.lagSeconds !== undefined) td.append(" ", el("span", { class: "lag" }, "lag " + fmtSeconds(r.lagSeconds)));
          if (risk) td.append(" ", el("span", { class: "lag" }, (risk.rpoState === "at-risk" ? "past RPO, " : "past half the RPO, ") + "waiting " + fmtSeconds(risk.pendingSeconds)));
          if (r.error) {
            const reason = el("span", { class: "reason" }, r.error.code + ": " + r.error.message);
            reason.title = r.error.message;
            td.append(reason);
          }
        }
        tr.append(td);
      }
      body.append(tr);
    }
    $("count").textContent = `${all.length} item${all.length === 1 ? "" : "s"}` + (state.truncated ? " (the first " + state.replicas.length + " replicas)" : "");
    $("page-no").textContent = `page ${state.page + 1} of ${pages}`;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
  }

  function render() { renderCards(); renderChart(); renderRisks(); renderMatrix(); }

  async function refresh() {
    clearTimeout(state.timer);
    try {
      if (!key) throw new Error("no API key: open this page as …/dashboard?code=<key>");
      const [summary, list] = await Promise.all([api(base + "/replications/summary"), allReplicas()]);
      state.summary = summary;
      state.replicas = list.replicas;
      state.truncated = list.truncated;
      state.lastOk = new Date();
      $("banner").hidden = true;
      render();
    } catch (e) {
      const b = $("banner");
      b.textContent = "Could not refresh: " + e.message + (state.lastOk ? " (showing " + state.lastOk.toLocaleTimeString() + ")" : "");
      b.hidden = false;
    }
    $("status-line").textContent = (state.lastOk ? "updated " + state.lastOk.toLocaleTimeString() : "not loaded") +
      (state.paused ? " · paused" : " · refreshes every " + REFRESH_MS / 1000 + " s");
    document.body.dataset.loaded = state.lastOk ? "true" : "false";
    if (!state.paused) state.timer = setTimeout(refresh, REFRESH_MS);
  }

  $("pause").addEventListener("click", () => {
    state.paused = !state.paused;
    $("pause").textContent = state.paused ? "Resume" : "Pause";
    refresh();
  });
  for (const id of ["filter", "kind", "problems"]) $(id).addEventListener("input", () => { state.page = 0; renderMatrix(); });
  $("prev").addEventListener("click", () => { state.page--; renderMatrix(); });
  $("next").addEventListener("click", () => { state.page++; renderMatrix(); });
  refresh();
})();
