// Checkpoint Zoo browse page, part one: the views across models, the leaderboards (#/boards,
// #/board/TASK/DATASET/SPLIT) and the compare view (#/compare/REF,REF), the page's state in its URL
// (#/ROUTE?q=…&task=…&sort=…&page=…&cmp=…, so a reload or a shared link shows the same view) and the collapsing
// of long checkpoint tables. app.js builds everything else and hands this file its helpers.
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
    const page = Number(params.get("page"));
    state.page = Number.isInteger(page) && page > 0 ? page : 1;
  }

  function stateParams(state, path, extra) {
    const p = new URLSearchParams();
    if (path === "" || path === "list") {
      if (state.query) p.set("q", state.query);
      Object.keys(state.facets).forEach(function (f) {
        Array.from(state.facets[f]).sort().forEach(function (v) { p.append(f, v); });
      });
      if (state.sort.key !== "name" || state.sort.dir !== 1) p.set("sort", (state.sort.dir < 0 ? "-" : "") + state.sort.key);
      if (state.page > 1) p.set("page", String(state.page));
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
      const best = ui.byRef().get(m.best) || {metrics: m.metrics};  // the paged source's board row has the best's metrics
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

  // ---- compare ----------------------------------------------------------------------------------

  // A metric compares only on the same examples: the same dataset and split (2 classes or 10 are not one
  // scale). The compare view shows every value but marks a best only within each such group.
  function boardKey(c) { return [c.dataset, c.split || ""].join("\u0000"); }

  function boardGroups(cs) {
    const groups = [];
    cs.forEach(function (c, i) {
      const key = boardKey(c);
      let g = groups.find(function (x) { return x.key === key; });
      if (!g) {
        g = {key: key, label: c.dataset + (c.split ? " (" + c.split + " split)" : ""), refs: [], index: []};
        groups.push(g);
      }
      g.refs.push(c.ref);
      g.index.push(i);
    });
    return groups;
  }

  function renderCompare(main, state) {
    const found = state.compare.filter(function (r) { return ui.byRef().has(r); });
    const missing = state.compare.filter(function (r) { return !ui.byRef().has(r); });
    const parts = [el("h1", null, "Compare checkpoints")];
    if (missing.length) parts.push(el("p", {class: "error"}, "Not in this zoo: " + missing.join(", ")));
    if (found.length < 2) {
      parts.push(el("p", {class: "hint"}, "Tick two or more checkpoints in the model list or on a model page to compare them."));
    }
    if (found.length) {
      const cs = found.map(function (r) { return ui.byRef().get(r); });
      const head = el("tr", null, [el("th", {scope: "col"}, "")].concat(cs.map(function (c) {
        const rm = el("button", {type: "button", class: "remove", "aria-label": "remove " + c.ref, title: "remove"}, "×");
        rm.addEventListener("click", function () {
          location.hash = ui.compareHref(state.compare.filter(function (r) { return r !== c.ref; }));
        });
        return el("th", {scope: "col", "data-ref": c.ref}, [el("a", {href: ui.modelHref(c.model)}, c.ref), " ", rm]);
      })));
      const body = el("tbody");
      const row = function (label, values, cls, field) {
        body.appendChild(el("tr", {class: cls || null, "data-field": field || label}, [el("th", {scope: "row"}, label)]
          .concat(values.map(function (v, i) { return el("td", {"data-ref": cs[i].ref}, v); }))));
      };
      row("model", cs.map(function (c) { return el("a", {href: ui.modelHref(c.model)}, c.model); }));
      row("step", cs.map(function (c) { return String(c.step); }));
      row("epoch", cs.map(function (c) { return ui.fmt(c.epoch); }));
      ["task", "arch", "dataset", "license", "created", "format", "dtype"].forEach(function (k) {
        row(k, cs.map(function (c) { return c[k] === null || c[k] === undefined ? "" : String(c[k]); }));
      });
      row("size", cs.map(function (c) { return el("span", {title: c.size_bytes + " bytes"}, ui.fmtBytes(c.size_bytes)); }));
      row("parameters", cs.map(function (c) { return typeof c.num_params === "number" ? c.num_params.toLocaleString("en") : ""; }));
      row("sha256", cs.map(function (c) { return el("code", {class: "hash wrap", title: c.sha256}, c.sha256 || ""); }));
      row("parent", cs.map(function (c) { return c.parent ? ui.refLink(c.parent) : ""; }));
      row("tags", cs.map(function (c) { return (c.tags || []).join(", "); }));
      row("best / latest", cs.map(function (c) { return [c.is_best ? "best" : "", c.is_best && c.is_latest ? ", " : "", c.is_latest ? "latest" : ""].join(""); }));
      row("reported", cs.map(function (c) { return c.reported_metric ? c.reported_metric + " " + ui.fmtMetric(c.reported_value) : ""; }));
      row("selected by", cs.map(function (c) {
        const s = c.selection || {};
        return s.metric ? s.metric + " " + ui.fmtMetric(s.value) + " (" + s.split + ")" : "";
      }));
      const groups = boardGroups(cs);
      if (groups.length > 1) {
        parts.splice(1, 0, el("p", {class: "note", id: "compare-note", role: "note"},
          "These checkpoints were evaluated on different datasets (" + groups.map(function (g) {
            return g.label + ": " + g.refs.join(", ");
          }).join("; ") + "). Their metrics are not comparable across datasets, so a best value is marked only " +
          "within each dataset."));
      }
      const names = [];
      ui.data().metrics.forEach(function (m) { if (cs.some(function (c) { return c.metrics && m.name in c.metrics; })) names.push(m.name); });
      cs.forEach(function (c) { Object.keys(c.metrics || {}).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); }); });
      names.forEach(function (n) {
        const vals = cs.map(function (c) { return (c.metrics || {})[n]; });
        const bestIn = new Map();  // group key -> its best value of n (only where the group has two values or more)
        groups.forEach(function (g) {
          const nums = g.index.map(function (i) { return vals[i]; }).filter(function (v) { return typeof v === "number"; });
          if (nums.length > 1) bestIn.set(g.key, ui.higher(n) ? Math.max.apply(null, nums) : Math.min.apply(null, nums));
        });
        const tr = el("tr", {class: "metric", "data-field": "metric:" + n}, [el("th", {scope: "row"},
          [n, el("span", {class: "dir"}, ui.higher(n) ? " ↑" : " ↓")])]);
        vals.forEach(function (v, i) {
          const best = bestIn.get(boardKey(cs[i]));
          tr.appendChild(el("td", {class: "num" + (best !== undefined && v === best ? " best-value" : ""), "data-ref": cs[i].ref}, ui.fmtMetric(v)));
        });
        body.appendChild(tr);
      });
      parts.push(el("div", {class: "scroll"}, el("table", {class: "grid compare", id: "compare"}, [el("thead", null, head), body])));
    }
    main.replaceChildren(el("section", {class: "compare-view"}, parts));
  }

  return {splitHash: splitHash, readState: readState, writeState: writeState, renderBoards: renderBoards,
    boardHref: boardHref, boardLabel: boardLabel, boardOf: boardOf, ranks: ranks, collapseRows: collapseRows,
    renderCompare: renderCompare};
};
