// Checkpoint Zoo browse page, part one: the leaderboards (#/boards, #/board/TASK/DATASET/SPLIT), the page's
// state in its URL (#/ROUTE?q=…&task=…&sort=…&cmp=…, so a reload or a shared link shows the same view) and the
// collapsing of long checkpoint tables. app.js builds everything else and hands this file its helpers.
"use strict";
window.ZooLeaderboard = function (ui) {
  const el = ui.el;
  const PAGE_ROWS = 20;  // checkpoint rows shown before "show all"

  // ---- URL state --------------------------------------------------------------------------------

  // "#/model/alpha?ck=alpha%4020&all=1" -> {path: "model/alpha", params: URLSearchParams}
  function splitHash(hash) {
    const raw = hash.replace(/^#\/?/, "");
    const q = raw.indexOf("?");
    return {path: q < 0 ? raw : raw.slice(0, q), params: new URLSearchParams(q < 0 ? "" : raw.slice(q + 1))};
  }

  // What the URL says overrides what the page remembers; a key the URL leaves out keeps its value.
  function readState(state, params) {
    if (params.has("q")) state.query = params.get("q");
    Object.keys(state.facets).forEach(function (f) {
      if (params.has(f)) state.facets[f] = new Set(params.getAll(f).filter(Boolean));
    });
    const sort = params.get("sort");
    if (sort) state.sort = sort.charAt(0) === "-" ? {key: sort.slice(1), dir: -1} : {key: sort, dir: 1};
    if (params.has("cmp")) state.compare = params.get("cmp").split(",").filter(Boolean);
  }

  function stateParams(state, path, extra) {
    const p = new URLSearchParams();
    if (path === "" || path === "list") {
      if (state.query) p.set("q", state.query);
      Object.keys(state.facets).forEach(function (f) {
        Array.from(state.facets[f]).sort().forEach(function (v) { p.append(f, v); });
      });
      if (state.sort.key !== "name" || state.sort.dir !== 1) p.set("sort", (state.sort.dir < 0 ? "-" : "") + state.sort.key);
    }
    if (state.compare.length && path.indexOf("compare") !== 0) p.set("cmp", state.compare.join(","));
    Object.keys(extra || {}).forEach(function (k) { if (extra[k]) p.set(k, extra[k]); });
    return p;
  }

  // Rewrite the current entry's hash (no new history entry, no hashchange, no re-render).
  function writeState(state, extra) {
    const path = splitHash(location.hash).path;
    const qs = stateParams(state, path, extra).toString();
    const hash = "#/" + path + (qs ? "?" + qs : "");
    if (hash === location.hash) return;
    try {
      history.replaceState(history.state, "", hash);
    } catch (err) {  // a browser that refuses history changes on file:// still takes a new hash
      ui.ignoreHash(hash);
      location.replace(hash);
    }
  }

  // ---- leaderboards -----------------------------------------------------------------------------

  function boards() { return ui.data().leaderboards || []; }

  function boardHref(b) { return "#/board/" + b.name.split("/").map(encodeURIComponent).join("/"); }

  function boardLabel(b) { return b.task + " on " + b.dataset + (b.split ? " (" + b.split + " split)" : ""); }

  // competition ranking ("1, 2, 2, 4"): equal values share a rank; a model without a value has none
  function ranks(b) {
    const models = ui.models();
    let last = null, rank = 0;
    return b.models.map(function (name, i) {
      const v = (models.get(name) || {}).best_value;
      if (typeof v !== "number") return null;
      if (v !== last) { rank = i + 1; last = v; }
      return rank;
    });
  }

  function boardOf(name) {
    return boards().find(function (b) { return b.models.indexOf(name) >= 0; }) || null;
  }

  function boardTable(b) {
    const models = ui.models();
    const metricNames = ui.metricsOfTask(b.task).filter(function (n) { return n !== b.metric; });
    const head = el("tr", null, [el("th", {class: "rank num", scope: "col", title: "rank on this leaderboard"}, "#"),
      el("th", {class: "name", scope: "col"}, "model"),
      el("th", {class: "num primary", scope: "col", "data-metric": b.metric,
        title: b.metric + " of each model's best checkpoint (" + (b.higher_is_better ? "higher" : "lower") + " is better)"},
      b.metric + (b.higher_is_better ? " ↑" : " ↓"))]
      .concat(metricNames.map(function (n) { return el("th", {class: "num", scope: "col", "data-metric": n}, n); }))
      .concat([el("th", {scope: "col"}, "best checkpoint"), el("th", {class: "num", scope: "col"}, "checkpoints"),
        el("th", {class: "num", scope: "col"}, "size"), el("th", {class: "pick-col", scope: "col"}, "compare")]));
    const r = ranks(b);
    const rows = b.models.map(function (name, i) {
      const m = models.get(name) || {name: name};
      const best = ui.byRef().get(m.best) || {};
      return el("tr", {"data-model": name, "data-rank": r[i] === null ? "" : String(r[i])}, [
        el("td", {class: "rank num"}, r[i] === null ? "–" : String(r[i])),
        el("td", {class: "name"}, el("a", {href: ui.modelHref(name)}, name)),
        el("td", {class: "num primary", "data-metric": b.metric}, ui.fmtMetric(m.best_value)),
      ].concat(metricNames.map(function (n) {
        return el("td", {class: "num", "data-metric": n}, ui.fmtMetric((best.metrics || {})[n]));
      })).concat([el("td", null, m.best || ""), el("td", {class: "num"}, String(m.checkpoints || "")),
        el("td", {class: "num", title: m.size_bytes + " bytes"}, ui.fmtBytes(m.size_bytes)),
        el("td", {class: "pick-col"}, m.best ? ui.compareBox(m.best, "compare " + m.best + " (best of " + name + ")") : null)]));
    });
    return el("div", {class: "scroll board-scroll"},
      el("table", {class: "grid board", "data-board": b.name}, [el("thead", null, head), el("tbody", null, rows)]));
  }

  function renderBoards(main, name) {
    const all = boards();
    const chosen = name ? all.filter(function (b) { return b.name === name; }) : all;
    const nav = el("ul", {class: "board-nav", id: "board-nav"}, all.map(function (b) {
      const a = el("a", {href: boardHref(b)}, boardLabel(b));
      if (b.name === name) a.setAttribute("aria-current", "page");
      return el("li", null, [a, el("span", {class: "count"}, " " + b.models.length + (b.models.length === 1 ? " model" : " models"))]);
    }));
    const parts = [el("p", {class: "crumbs"}, [el("a", {href: "#/"}, "All models"), " / ",
      name ? el("a", {href: "#/boards"}, "Leaderboards") : "Leaderboards"])];
    parts.push(el("h1", null, name && chosen.length ? boardLabel(chosen[0]) : "Leaderboards"));
    parts.push(el("p", {class: "hint"}, "Each model's best checkpoint, ranked only against models of the same task, " +
      "dataset and split (values on different datasets are not comparable)."));
    parts.push(el("nav", {"aria-label": "leaderboards"}, nav));
    if (name && !chosen.length) parts.push(el("p", {class: "error", role: "alert"}, "No leaderboard " + name + " here."));
    chosen.forEach(function (b) {
      parts.push(el("section", {class: "board-section", "data-board": b.name}, [
        name ? null : el("h2", null, el("a", {href: boardHref(b)}, boardLabel(b))),
        el("p", {class: "hint"}, "Ranked by " + b.metric + " (" + (b.higher_is_better ? "higher" : "lower") + " is better)."),
        boardTable(b)]));
    });
    main.replaceChildren(el("section", {class: "boards-view"}, parts));
  }

  // ---- long checkpoint tables -------------------------------------------------------------------

  // Beyond PAGE_ROWS rows only PAGE_ROWS show: the kept ones (best, latest, selected) and the earliest steps;
  // a button shows the rest. Returns the button (null when nothing is hidden).
  function collapseRows(table, keep, onShowAll) {
    const rows = Array.from(table.tBodies[0].rows);
    if (rows.length <= PAGE_ROWS) return null;
    const shown = new Set(keep.filter(Boolean));
    rows.forEach(function (tr) { if (shown.size < PAGE_ROWS) shown.add(tr.getAttribute("data-ref")); });
    rows.forEach(function (tr) { tr.hidden = !shown.has(tr.getAttribute("data-ref")); });
    const button = el("button", {type: "button", id: "show-all", class: "show-all"},
      "Show all " + rows.length + " checkpoints (" + (rows.length - shown.size) + " hidden)");
    button.addEventListener("click", function () {
      rows.forEach(function (tr) { tr.hidden = false; });
      button.remove();
      onShowAll();
    });
    return button;
  }

  return {splitHash: splitHash, readState: readState, writeState: writeState, renderBoards: renderBoards,
    boardHref: boardHref, boardLabel: boardLabel, boardOf: boardOf, ranks: ranks, collapseRows: collapseRows};
};
