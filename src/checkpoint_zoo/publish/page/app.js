// Checkpoint Zoo browse page: the model list and the model page (hash routes #/, #/model/NAME) and the routing;
// the leaderboards (#/boards, #/board/…), the compare view (#/compare/REF,REF) and the URL's state are
// leaderboard.js's, the lineage trees and the chart lineage.js's. No framework; every element is built with
// createElement and textContent from the data, except model cards, whose HTML the index stage (or zoo serve)
// rendered and sanitised. The data comes from a source: the all-in-one data.js (the static site's, no network),
// or, when data.js says "paged" (a big zoo's served page), api.js, which asks zoo serve's JSON API for what a
// view shows. Views ask the source to have what they need (a callback, called at once by the static source) and
// then read the models, byRef and byModel maps, which the paged source fills as it fetches.
"use strict";
(function () {
  const state = {
    compare: [],
    sort: {key: "name", dir: 1},
    query: "",
    page: 1,  // of the model list, when the source pages it
    facets: {task: new Set(), arch: new Set(), license: new Set(), tags: new Set()},
    selected: new Map(),  // model -> ref of the checkpoint whose snippet is shown
    chartMetric: new Map(),  // model -> metric drawn
    showAll: new Set(),  // models whose every checkpoint row is shown
  };
  let LB = null;  // leaderboard.js
  let LIN = null;  // lineage.js
  let ignoredHash = null;  // a hash this page wrote itself: no re-render
  let viewKeys = function () { return null; };  // the shown view's own URL keys (a model page's selection …)
  let D = null;
  let models = new Map();
  let byRef = new Map();
  let byModel = new Map();
  let metricHigher = new Map();
  let source = null;  // staticSource, or api.js's paged one
  let routed = 0;  // the latest route(): a view whose data arrives after another route is dropped
  const hayOf = new Map();  // model -> its searchable text, lower-cased once

  // ---- loading ----------------------------------------------------------------------------------

  // From file:// the data.js beside index.html; served, data.js?rev=REV so the server can answer for
  // the revision this page was opened at (?rev=REV in its own URL).
  // ?paged=1 in the page's own URL asks zoo serve for the paged page at any size.
  function dataUrl() {
    let src = "data.js";
    if (location.protocol === "http:" || location.protocol === "https:") {
      const own = new URLSearchParams(location.search), params = new URLSearchParams();
      if (own.get("rev")) params.set("rev", own.get("rev"));
      if (own.get("paged") === "1") params.set("paged", "1");
      if (params.toString()) src += "?" + params.toString();
    }
    return src;
  }

  function script(src, onLoad) {
    const s = document.createElement("script");
    s.src = src;
    s.addEventListener("load", onLoad);
    s.addEventListener("error", function () { fail("could not load " + s.src); });
    document.head.appendChild(s);
  }

  function load() {
    if (window.ZOO_DATA) { start(window.ZOO_DATA); return; }
    script(dataUrl(), function () {
      const data = window.ZOO_DATA;
      if (!data) fail("data.js did not define the zoo's data");
      else if (!data.paged) start(data);
      else script("api.js", function () {
        if (window.ZooApi) start(data); else fail("api.js did not define the paged data source");
      });
    });
  }

  function fail(message) {
    const main = document.getElementById("app");
    main.replaceChildren(el("p", {class: "error", role: "alert"}, message));
  }

  // ---- helpers ----------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = String(v);
        else e.setAttribute(k, v === true ? "" : String(v));
      });
    }
    append(e, children);
    return e;
  }

  function append(parent, children) {
    if (children === null || children === undefined) return parent;
    (Array.isArray(children) ? children : [children]).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      parent.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    });
    return parent;
  }

  function fmt(v) {
    if (v === null || v === undefined || v === "") return "";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(4);
    return String(v);
  }

  // metric values always with four decimals: JSON cannot tell 1.0 from 1, a column of scores should not mix them
  function fmtMetric(v) { return typeof v === "number" ? v.toFixed(4) : fmt(v); }

  // Every size on the page: binary units, one decimal. `like` (a number of bytes) picks the unit, so a
  // column of sizes can share the unit of its largest value.
  function fmtBytes(n, like) {
    if (typeof n !== "number") return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    for (let v = typeof like === "number" ? like : n; v >= 1024 && i < units.length - 1; v /= 1024) i += 1;
    return (i === 0 ? String(n) : (n / Math.pow(1024, i)).toFixed(1)) + " " + units[i];
  }

  function day(created) { return created ? String(created).slice(0, 10) : ""; }

  function refHash(ref) { return encodeURIComponent(ref).replace(/%40/g, "@"); }
  function modelHref(name) { return "#/model/" + encodeURIComponent(name); }
  function compareHref(refs) { return "#/compare/" + refs.map(refHash).join(","); }

  // a checkpoint without results says why: its evaluation failed (with the reason), it is not evaluated
  // yet, or its evaluation is of bytes it no longer has
  function stateText(c) {
    if (!c || !c.status || c.status === "evaluated") return "";
    if (c.status === "failed") return "evaluation failed: " + (c.error || "no reason recorded");
    if (c.status === "replaced") return "evaluation is of other bytes (replaced since): run dvc repro";
    if (c.status === "stale") return "evaluated under an older key (" + (c.stale || "key changed") + "): run dvc repro";
    return "not evaluated yet: run dvc repro";
  }

  function stateBadge(c) {
    const text = stateText(c);
    return text ? el("span", {class: "badge state state-" + c.status, "data-state": c.status, title: text}, text) : null;
  }

  function metricsOf(modelName) {
    const task = (models.get(modelName) || {}).task;
    const t = D.tasks[task];
    const names = t ? t.metrics.map(function (m) { return m.name; }) : [];
    (byModel.get(modelName) || []).forEach(function (c) {
      Object.keys(c.metrics || {}).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); });
    });
    return names;
  }

  function higher(metric) { return metricHigher.has(metric) ? metricHigher.get(metric) : true; }

  function compareMetric(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    return typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));
  }

  // ---- start and routing ------------------------------------------------------------------------

  function start(data) {
    D = data;
    models = new Map(Object.keys(D.models || {}).map(function (k) { return [k, D.models[k]]; }));
    byRef = new Map();
    byModel = new Map();
    (D.checkpoints || []).forEach(function (c) {
      byRef.set(c.ref, c);
      if (!byModel.has(c.model)) byModel.set(c.model, []);
      byModel.get(c.model).push(c);
    });
    byModel.forEach(function (cs) { cs.sort(function (a, b) { return a.step - b.step; }); });
    metricHigher = new Map(D.metrics.map(function (m) { return [m.name, m.higher_is_better]; }));
    const helpers = {el: el, fmt: fmt, fmtMetric: fmtMetric, fmtBytes: fmtBytes, modelHref: modelHref, compareHref: compareHref,
      compareBox: compareBox, refLink: refLink, higher: higher, stateText: stateText, stateBadge: stateBadge,
      labelCells: labelCells,
      data: function () { return D; }, models: function () { return models; }, byRef: function () { return byRef; },
      byModel: function () { return byModel; }, state: function () { return state; },
      metricsOfTask: function (task) { return D.tasks[task] ? D.tasks[task].metrics.map(function (m) { return m.name; }) : []; },
      ignoreHash: function (h) { ignoredHash = h; }, fail: fail};
    LB = window.ZooLeaderboard(helpers);
    LIN = window.ZooLineage(helpers);
    helpers.stepOrder = LIN.stepOrder;
    source = D.paged ? window.ZooApi(helpers) : staticSource;
    document.title = D.title;
    document.getElementById("home").textContent = D.title;
    if (D.rev) {
      const rev = document.getElementById("rev");
      rev.textContent = "revision " + D.rev;
      rev.hidden = false;
    }
    if (D.versions && D.versions.length) renderVersions();
    window.addEventListener("hashchange", function () {
      if (location.hash === ignoredHash) { ignoredHash = null; return; }
      route();
      window.scrollTo(0, 0);
    });
    route();
  }

  function renderVersions() {
    const nav = document.getElementById("versions");
    const list = el("ul");
    D.versions.forEach(function (v) {
      const a = el("a", {href: "?rev=" + encodeURIComponent(v.name), title: v.commit || ""}, v.name);
      if (v.name === D.rev) a.setAttribute("aria-current", "true");
      list.appendChild(el("li", null, [a, v.kind ? el("span", {class: "kind"}, " " + v.kind) : null]));
    });
    nav.replaceChildren(el("details", null, [el("summary", null, "revisions"), list]));
    nav.hidden = false;
  }

  function route() {
    const where = LB.splitHash(location.hash);
    const raw = where.path;
    const slash = raw.indexOf("/");
    const head = slash < 0 ? raw : raw.slice(0, slash);
    const rest = slash < 0 ? "" : raw.slice(slash + 1);
    const main = document.getElementById("app");
    const turn = ++routed;
    // the view, once the source has its data (at once from the static one), unless another route came since
    const when = function (render) {
      main.setAttribute("aria-busy", "true");  // until the paged source's answer (the static one's is at once)
      return function () {
        if (turn !== routed) return;
        main.removeAttribute("aria-busy");
        render();
        updateCompareLink();
        rendered(head || "list");
      };
    };
    try {
      viewKeys = function () { return null; };
      LB.readState(state, where.params);
      if (head === "model") {
        const name = decodeURIComponent(rest);
        source.model(name, when(function () { renderModel(main, name, where.params); }));
      } else if (head === "boards" || head === "board") {
        const name = rest.split("/").map(decodeURIComponent).join("/");
        source.boards(when(function () { LB.renderBoards(main, name); LB.writeState(state); }));
      } else if (head === "compare") {
        state.compare = rest.split(",").filter(Boolean).map(decodeURIComponent);
        source.refs(state.compare, when(function () { LB.renderCompare(main, state); }));
      } else renderList(main);
    } catch (err) {
      if (err instanceof URIError) { renderList(main); return; }
      throw err;
    }
    updateCompareLink();
  }

  // a performance mark per rendered view (zoo:list, zoo:model …): how long a view took, from navigation or a change
  function rendered(view) {
    if (window.performance && performance.mark) performance.mark("zoo:" + view);
  }

  function writeView() { if (LB) LB.writeState(state, viewKeys()); }

  function updateCompareLink() {
    const a = document.getElementById("compare-link");
    a.textContent = "Compare (" + state.compare.length + ")";
    a.setAttribute("href", compareHref(state.compare));
  }

  function toggleCompare(ref, on) {
    const i = state.compare.indexOf(ref);
    if (on && i < 0) state.compare.push(ref);
    if (!on && i >= 0) state.compare.splice(i, 1);
    updateCompareLink();
    writeView();
  }

  function compareBox(ref, label) {
    const box = el("input", {type: "checkbox", class: "pick", "data-ref": ref, "aria-label": label || ("compare " + ref)});
    box.checked = state.compare.indexOf(ref) >= 0;
    box.addEventListener("click", function (ev) { ev.stopPropagation(); });
    box.addEventListener("change", function () { toggleCompare(ref, box.checked); });
    return box;
  }

  // ---- model list -------------------------------------------------------------------------------

  // the model (and its compare box), then the primary metric: both on screen at 1,400 px before any scrolling
  const COLUMNS = [
    {key: "name", label: "model"}, {key: "primary", label: "primary metric", num: true}, {key: "task", label: "task"},
    {key: "arch", label: "arch"},
    {key: "dataset", label: "dataset"}, {key: "license", label: "license"}, {key: "best", label: "best checkpoint"},
    {key: "checkpoints", label: "checkpoints", num: true},
    {key: "size", label: "size", num: true}, {key: "created", label: "latest"},
  ];

  // the best checkpoint, or what the paged source's summary says of it (its metrics; no state)
  function bestOf(m) { return byRef.get(m.best) || {metrics: m.metrics}; }

  function sortValue(m, key) {
    if (key.indexOf("m:") === 0) return (bestOf(m).metrics || {})[key.slice(2)];
    switch (key) {
      case "primary": return m.best_value;
      case "size": return m.size_bytes;
      default: return m[key];
    }
  }

  // a model whose checkpoints carry several licenses is counted (and found) under each of them
  function licensesOf(m) { return m.licenses && Object.keys(m.licenses).length ? Object.keys(m.licenses) : [m.license]; }

  function licenseText(m) {
    const ls = licensesOf(m);
    if (ls.length < 2) return ls[0];
    return ls.map(function (l) { return l + " (" + m.licenses[l] + ")"; }).join(", ");
  }

  function facetValues(m, facet) {
    if (facet === "tags") return m.tags || [];
    return facet === "license" ? licensesOf(m) : [m[facet]];
  }

  function matches(m, skipFacet) {
    const q = state.query.trim().toLowerCase();
    if (q) {
      if (!hayOf.has(m.name)) {
        hayOf.set(m.name, [m.name, m.description, (m.tags || []).join(" "), m.arch, m.task, m.dataset].join(" ").toLowerCase());
      }
      const hay = hayOf.get(m.name);
      if (!q.split(/\s+/).every(function (w) { return hay.indexOf(w) >= 0; })) return false;
    }
    return Object.keys(state.facets).every(function (f) {
      const chosen = state.facets[f];
      if (f === skipFacet || chosen.size === 0) return true;
      const vs = facetValues(m, f);
      return vs.some(function (v) { return chosen.has(v); });
    });
  }

  // The static source: everything is in data.js, so a list is filtered, sorted and counted here, at once.
  const staticSource = {
    facetValues: function (f) {
      const values = new Set();
      models.forEach(function (m) { facetValues(m, f).forEach(function (v) { if (v) values.add(v); }); });
      return Array.from(values).sort();
    },
    list: function (done) {
      const all = Array.from(models.values());
      const shown = all.filter(function (m) { return matches(m, null); });
      const key = state.sort.key, dir = state.sort.dir;
      shown.sort(function (a, b) {
        const x = sortValue(a, key), y = sortValue(b, key);
        if (x === null || x === undefined || y === null || y === undefined) {
          const c = compareMetric(x, y);
          return c !== 0 ? c : a.name.localeCompare(b.name);
        }
        return compareMetric(x, y) * dir || a.name.localeCompare(b.name);
      });
      done({rows: shown, total: shown.length, all: all.length, offset: 0,
        largest: all.reduce(function (mx, m) { return Math.max(mx, m.size_bytes || 0); }, 0),
        count: function (f, v) {  // drill-down: the models the other facets and the search leave with this value
          return all.filter(function (m) { return matches(m, f) && facetValues(m, f).indexOf(v) >= 0; }).length;
        }});
    },
    model: function (name, done) { done(); },
    refs: function (refs, done) { done(); },
    boards: function (done) { done(); },
  };

  function renderList(main) {
    const metricNames = D.metrics.map(function (m) { return m.name; });
    const search = el("input", {type: "search", id: "search", placeholder: "Search name, description, tags, arch, task",
      "aria-label": "search models"});
    search.value = state.query;
    let typing = null;
    search.addEventListener("input", function () {
      state.query = search.value;
      state.page = 1;
      // the paged source asks the server: one request once typing pauses, not one per key
      clearTimeout(typing);
      if (source.wait) typing = setTimeout(update, source.wait); else update();
    });
    const facetCounts = [];
    const facetPanel = filters(main, facetCounts, function () { update(); });
    const countLine = el("p", {id: "count", class: "count-line"});
    const pager = el("nav", {class: "pager", id: "pager", "aria-label": "pages of models", hidden: true});
    const headRow = listHead(metricNames, function () { update(); });
    const tbody = el("tbody", {id: "rows"});
    const table = el("table", {id: "models", class: "grid"}, [el("thead", null, headRow), tbody]);
    const turn = routed;
    let asked = 0;

    function update() {
      const mine = ++asked;
      source.list(function (found) {
        if (mine !== asked || turn !== routed) return;  // a newer question, or another view, since
        const key = state.sort.key, dir = state.sort.dir;
        headRow.querySelectorAll("th[data-sort]").forEach(function (th) {
          if (th.getAttribute("data-sort") === key) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
          else th.removeAttribute("aria-sort");
        });
        facetCounts.forEach(function (fc) {
          const n = found.count(fc.facet, fc.value);
          fc.node.textContent = "(" + n + ")";
          fc.box.disabled = n === 0 && !fc.box.checked;
        });
        tbody.replaceChildren.apply(tbody, found.rows.map(function (m) { return modelRow(m, metricNames, found.largest); }));
        labelCells(table);
        countLine.textContent = found.rows.length === found.total ? found.total + " of " + found.all + " models"
          : (found.offset + 1) + "–" + (found.offset + found.rows.length) + " of " + found.total + " models (" + found.all + " in all)";
        renderPager(pager, found, update);
        LB.writeState(state);
        rendered("list");
      });
    }

    main.replaceChildren(el("section", {class: "list-layout"}, [
      el("aside", {class: "filters", "aria-label": "filters"}, [search, facetPanel]),
      el("div", {class: "list-main"}, [countLine, el("div", {class: "scroll"}, table), pager]),
    ]));
    update();
  }

  // The facets' checkboxes (each count node listed in `counts`, for the list's update to fill) and the clear button.
  function filters(main, counts, update) {
    const facetBox = el("div", {class: "facets"});
    Object.keys(state.facets).forEach(function (f) {
      const fs = el("fieldset", {class: "facet", "data-facet": f}, el("legend", null, f));
      source.facetValues(f).forEach(function (v) {
        const box = el("input", {type: "checkbox", value: v});
        box.checked = state.facets[f].has(v);
        box.addEventListener("change", function () {
          if (box.checked) state.facets[f].add(v); else state.facets[f].delete(v);
          state.page = 1;
          update();
        });
        const count = el("span", {class: "count"});
        counts.push({facet: f, value: v, node: count, box: box});
        fs.appendChild(el("label", {"data-value": v}, [box, " ", el("span", {class: "facet-value"}, v), " ", count]));
      });
      facetBox.appendChild(fs);
    });
    const clear = el("button", {type: "button", id: "clear-filters"}, "clear filters");
    clear.addEventListener("click", function () {
      state.query = "";
      state.page = 1;
      Object.keys(state.facets).forEach(function (f) { state.facets[f].clear(); });
      renderList(main);
    });
    // facets fold away on narrow screens so the table starts on the first screenful
    const panel = el("details", {class: "facet-panel"}, [el("summary", null, "Filters"), facetBox, clear]);
    panel.open = !window.matchMedia || window.matchMedia("(min-width: 901px)").matches ||
      Object.keys(state.facets).some(function (f) { return state.facets[f].size > 0; });
    return panel;
  }

  // The list's header: a sortable column per field and per metric (of the best checkpoint).
  function listHead(metricNames, update) {
    const headRow = el("tr");
    const cols = COLUMNS.concat(metricNames.map(function (n) { return {key: "m:" + n, label: n, num: true, metric: n}; }));
    cols.forEach(function (c) {
      if (c.key === "primary") {
        headRow.appendChild(el("th", {class: "pick-col", scope: "col"}, el("span", {class: "sr"}, "compare")));
      }
      const th = el("th", {scope: "col", "data-sort": c.key, tabindex: "0",
        class: (c.num ? "num sortable" : "sortable") + (c.key === "name" ? " name" : ""),
        title: c.metric ? c.metric + " of the best checkpoint (" + (higher(c.metric) ? "higher" : "lower") + " is better)" : null},
      c.label);
      const activate = function () {
        if (state.sort.key === c.key) state.sort.dir = -state.sort.dir;
        else state.sort = {key: c.key, dir: c.metric ? (higher(c.metric) ? -1 : 1) : (c.num ? -1 : 1)};
        state.page = 1;
        update();
      };
      th.addEventListener("click", activate);
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); activate(); } });
      headRow.appendChild(th);
    });
    return headRow;
  }

  // previous / page N of M / next, when the source pages the list
  function renderPager(pager, found, update) {
    const pages = Math.max(1, Math.ceil(found.total / (found.size || found.total || 1)));
    pager.hidden = pages < 2;
    if (pages < 2) { pager.replaceChildren(); return; }
    const go = function (page) { state.page = page; update(); window.scrollTo(0, 0); };
    const button = function (label, page, id) {
      const b = el("button", {type: "button", id: id, disabled: page < 1 || page > pages}, label);
      b.addEventListener("click", function () { go(page); });
      return b;
    };
    pager.replaceChildren(button("← previous", state.page - 1, "page-prev"), " ",
      el("span", {id: "page-of"}, "page " + state.page + " of " + pages), " ", button("next →", state.page + 1, "page-next"));
  }

  function modelRow(m, metricNames, largest) {
    const best = bestOf(m);
    const tr = el("tr", {"data-model": m.name});
    // a page of the paged source has each model's summary (its count per state), not its checkpoints
    const failed = byModel.has(m.name) ? byModel.get(m.name).filter(function (c) { return c.status === "failed"; })
      : Array((m.states || {}).failed || 0).fill({status: "failed", error: "see the model's page"});
    tr.appendChild(el("td", {class: "name"}, [el("a", {href: modelHref(m.name)}, m.name),
      failed.length ? el("span", {class: "badge state state-failed", "data-state": "failed", title: stateText(failed[0])},
        failed.length + " evaluation failed") : null,
      m.description ? el("div", {class: "desc", title: m.description}, m.description) : null]));
    tr.appendChild(el("td", {class: "pick-col"}, compareBox(m.best, "compare " + m.best + " (best of " + m.name + ")")));
    tr.appendChild(el("td", {class: "num", "data-col": "primary"}, stateText(best) || (m.primary_metric + " " + fmtMetric(m.best_value))));
    ["task", "arch", "dataset"].forEach(function (k) { tr.appendChild(el("td", {"data-col": k}, m[k])); });
    tr.appendChild(el("td", {"data-col": "license", class: licensesOf(m).length > 1 ? "mixed" : null,
      title: licensesOf(m).length > 1 ? "checkpoints per license" : null}, licenseText(m)));
    tr.appendChild(el("td", {"data-col": "best"}, m.best));
    tr.appendChild(el("td", {class: "num", "data-col": "checkpoints"}, m.checkpoints));
    tr.appendChild(el("td", {class: "num", "data-col": "size", title: m.size_bytes + " bytes"}, fmtBytes(m.size_bytes, largest)));
    tr.appendChild(el("td", {"data-col": "created", title: m.created}, day(m.created)));
    metricNames.forEach(function (n) {
      tr.appendChild(el("td", {class: "num", "data-metric": n}, fmtMetric((best.metrics || {})[n])));
    });
    return tr;
  }

  // ---- model page -------------------------------------------------------------------------------

  // A model page's own URL keys: ck (the checkpoint chosen), metric (the one charted), all (every row shown).
  function readModelKeys(name, params, metricNames) {
    const ck = params.get("ck");
    if (ck && byRef.has(ck) && byRef.get(ck).model === name) state.selected.set(name, ck);
    if (params.get("all") === "1") state.showAll.add(name);
    if (metricNames.indexOf(params.get("metric")) >= 0) state.chartMetric.set(name, params.get("metric"));
  }

  // The model's card without what the page shows once elsewhere: its checkpoint table (the page's own has the
  // sizes, downloads and selection). Returns whether the card has its own title (then the page's is left out).
  function trimCard(card) {
    card.querySelectorAll("h2").forEach(function (h) {
      if (h.textContent.trim() !== "Checkpoints") return;
      for (let n = h.nextElementSibling; n && !/^H[12]$/.test(n.tagName); n = h.nextElementSibling) n.remove();
      h.remove();
    });
    return card.querySelector("h1") !== null;
  }

  function renderModel(main, name, params) {
    const m = models.has(name) ? models.get(name) : null;
    if (!m) {
      main.replaceChildren(el("p", {class: "error", role: "alert"}, ["No model named ", el("code", null, name), " here. ",
        el("a", {href: "#/"}, "All models")]));
      return;
    }
    const cs = byModel.get(name) || [];
    if (!state.selected.has(name) || !byRef.has(state.selected.get(name))) state.selected.set(name, m.best);
    const metricNames = metricsOf(name);
    if (!state.chartMetric.has(name)) state.chartMetric.set(name, m.primary_metric || metricNames[0]);
    readModelKeys(name, params || new URLSearchParams(), metricNames);
    viewKeys = function () {
      const ck = state.selected.get(name), metric = state.chartMetric.get(name);
      return {ck: ck !== m.best ? ck : "", all: state.showAll.has(name) ? "1" : "",
        metric: metric !== (m.primary_metric || metricNames[0]) ? metric : ""};
    };

    const card = el("div", {class: "card markdown", id: "card"});
    // The one HTML taken from data: render_card_html output (markdown-it, raw HTML off, http(s)/relative links).
    card.innerHTML = m.card_html || "";
    card.querySelectorAll("a[href]").forEach(function (a) { a.setAttribute("rel", "noopener noreferrer"); });
    const titled = trimCard(card);
    card.querySelectorAll("table").forEach(function (t) {
      const wrap = el("div", {class: "scroll"});
      t.replaceWith(wrap);
      wrap.appendChild(t);
    });

    const useBox = el("section", {class: "use", id: "use", "aria-live": "polite"});
    const ckTable = LIN.checkpointTable(m, cs, metricNames, function (ref) { state.selected.set(name, ref); refresh(); });
    const showAll = state.showAll.has(name) ? null : LB.collapseRows(ckTable, [m.best, m.latest, state.selected.get(name)],
      function () { state.showAll.add(name); writeView(); });
    const chartBox = el("div", {class: "chart-box"});
    const metricSelect = el("select", {id: "chart-metric", "aria-label": "metric to chart"});
    metricNames.forEach(function (n) {
      const o = el("option", {value: n}, n);
      if (n === state.chartMetric.get(name)) o.selected = true;
      metricSelect.appendChild(o);
    });
    metricSelect.addEventListener("change", function () { state.chartMetric.set(name, metricSelect.value); refresh(); });

    function refresh() {
      const ref = state.selected.get(name);
      LIN.renderUse(useBox, byRef.get(ref));
      ckTable.querySelectorAll("tbody tr").forEach(function (tr) {
        const on = tr.getAttribute("data-ref") === ref;
        if (on) tr.hidden = false;  // chosen on the chart while its row was collapsed
        tr.classList.toggle("selected", on);
        tr.setAttribute("aria-selected", on ? "true" : "false");
      });
      chartBox.replaceChildren(LIN.chart(cs, state.chartMetric.get(name), ref, function (r) {
        state.selected.set(name, r);
        refresh();
      }));
      writeView();
    }

    main.replaceChildren(el("article", {class: "model", "data-model": name}, [
      el("p", {class: "crumbs"}, [el("a", {href: "#/"}, "All models"), " / ", name]),
      titled ? null : el("h1", {id: "model-name"}, name),
      titled || !m.description ? null : el("p", {class: "lead"}, m.description),
      el("div", {class: "model-grid"}, [
        el("section", {class: "card-col"}, [el("h2", null, "Model card"), card]),
        sidebar(m),
      ]),
      el("section", {class: "checkpoints"}, [el("h2", null, "Checkpoints (" + cs.length + ")"),
        el("p", {class: "hint"}, "Click a row (or a point of the chart) to choose the checkpoint to use; tick boxes to compare."),
        el("div", {class: "scroll"}, ckTable), showAll]),
      useBox,
      el("section", {class: "chart-section"}, [el("h2", null, "Metric by step"),
        el("label", null, ["metric ", metricSelect]), chartBox]),
      LIN.lineage(cs),
    ]));
    refresh();
  }

  function dlRow(dl, term, value) {
    if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) return;
    dl.appendChild(el("dt", null, term));
    dl.appendChild(el("dd", null, value));
  }

  function refLink(ref) {
    const c = byRef.get(ref);
    return c ? el("a", {href: modelHref(c.model), "data-ref": ref}, ref) : el("span", {class: "missing", title: "not in this zoo"}, ref);
  }

  function sidebar(m) {
    const dl = el("dl");
    const meta = m.card_meta || {};
    dlRow(dl, licensesOf(m).length > 1 ? "licenses (checkpoints)" : "license",
      licensesOf(m).length > 1 ? el("span", {id: "licenses", class: "mixed"}, licenseText(m)) : m.license);
    dlRow(dl, "task", m.task);
    const board = LB.boardOf(m.name);
    if (board) {
      const rank = LB.ranks(board)[board.models.indexOf(m.name)];
      dlRow(dl, "leaderboard", el("span", {id: "board-rank"}, [rank === null ? "unranked" : "#" + rank + " of " + board.models.length,
        " on ", el("a", {href: LB.boardHref(board)}, LB.boardLabel(board))]));
    }
    dlRow(dl, "architecture", m.arch);
    dlRow(dl, "dataset", m.dataset);
    dlRow(dl, "tags", (m.tags || []).length ? el("ul", {class: "tags"}, m.tags.map(function (t) { return el("li", null, t); })) : null);
    dlRow(dl, "base model", (m.parents || []).length ? m.parents.map(function (r, i) { return [i ? ", " : "", refLink(r)]; }).flat() : null);
    dlRow(dl, "best", m.best ? [m.best, " (" + m.primary_metric + " " + fmtMetric(m.best_value) + ")"] : null);
    dlRow(dl, "latest", m.latest);
    const stages = Object.keys(m.stages || {}).sort();
    dlRow(dl, "stages", stages.length ? el("ul", {id: "stages", class: "tags"}, stages.map(function (s) {
      const h = m.stages[s];
      return el("li", null, [s + ": ", h.checkpoint ? refLink(h.checkpoint) : "?", h.version ? " (" + h.version + ")" : ""]);
    })) : null);
    const versions = Object.keys(m.releases || {}).sort();
    dlRow(dl, "releases", versions.length ? el("ul", {id: "releases", class: "tags"}, versions.map(function (v) {
      return el("li", null, [v + ": ", m.releases[v] ? refLink(m.releases[v]) : "?"]);
    })) : null);
    dlRow(dl, "checkpoints", String(m.checkpoints));
    dlRow(dl, "total size", el("span", {title: m.size_bytes + " bytes"}, fmtBytes(m.size_bytes)));
    dlRow(dl, "parameters", typeof m.num_params === "number" ? m.num_params.toLocaleString("en") : null);
    dlRow(dl, "last created", m.created);
    if (typeof meta.library_name === "string") dlRow(dl, "library", meta.library_name);
    if (typeof meta.license === "string") dlRow(dl, "card license", meta.license);
    return el("aside", {class: "sidebar", id: "sidebar"}, [el("h2", null, "About"), dl]);
  }

  // each cell carries its column's name, which a phone shows beside the value when rows become cards
  function labelCells(table) {
    const names = Array.from(table.tHead.rows[0].cells).map(function (th) { return th.textContent; });
    Array.from(table.tBodies[0].rows).forEach(function (tr) {
      Array.from(tr.cells).forEach(function (td, i) { if (names[i]) td.setAttribute("data-label", names[i]); });
    });
    return table;
  }

  load();
})();
