// Checkpoint Zoo browse page: model list, model page, compare view (hash routes #/, #/model/NAME,
// #/compare/REF,REF); the leaderboards (#/boards, #/board/…) and the URL's state are leaderboard.js's, the
// lineage trees lineage.js's. No framework, no network but data.js; every element is built with createElement
// and textContent from the data, except model cards, whose HTML the index stage rendered and sanitised.
"use strict";
(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const state = {
    compare: [],
    sort: {key: "name", dir: 1},
    query: "",
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
  const hayOf = new Map();  // model -> its searchable text, lower-cased once

  // ---- loading ----------------------------------------------------------------------------------

  // From file:// the data.js beside index.html; served, data.js?rev=REV so the server can answer for
  // the revision this page was opened at (?rev=REV in its own URL).
  function dataUrl() {
    let src = "data.js";
    if (location.protocol === "http:" || location.protocol === "https:") {
      const rev = new URLSearchParams(location.search).get("rev");
      if (rev) src += "?rev=" + encodeURIComponent(rev);
    }
    return src;
  }

  function load() {
    if (window.ZOO_DATA) { start(window.ZOO_DATA); return; }
    const script = document.createElement("script");
    script.src = dataUrl();
    script.addEventListener("load", function () {
      if (window.ZOO_DATA) start(window.ZOO_DATA); else fail("data.js did not define the zoo's data");
    });
    script.addEventListener("error", function () { fail("could not load " + script.src); });
    document.head.appendChild(script);
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

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = String(text);
    return e;
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

  function filesHref(c, name) {
    // relative: the server mounts the page and files/ side by side, wherever that is; content-addressed,
    // so the link names these bytes for good (the server caches them as immutable)
    const sha = name ? c.files[name] : c.sha256;
    const file = name || c.path.split("/").pop();
    let href = "files/by-sha256/" + sha + "/" + encodeURIComponent(file);
    if (D.rev) href += "?rev=" + encodeURIComponent(D.rev);
    return href;
  }

  // a folder checkpoint (weights, config.json, tokenizer …) is downloaded file by file
  function folderNames(c) { return Object.keys(c.files || {}).sort(); }

  function pullCommand(ref) { return "zoo pull " + ref; }
  function pythonSnippet(ref) {
    return "from checkpoint_zoo import Zoo\n\nmodel = Zoo(\".\").load_model(" + JSON.stringify(ref) + ")";
  }

  function copyButton(getText, label) {
    const b = el("button", {type: "button", class: "copy", title: "copy to the clipboard"}, label || "copy");
    b.addEventListener("click", function (ev) {
      ev.stopPropagation();
      const text = getText();
      const done = function () { b.textContent = "copied"; setTimeout(function () { b.textContent = label || "copy"; }, 1200); };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, function () {});
      else done();
    });
    return b;
  }

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
    models = new Map(Object.keys(D.models).map(function (k) { return [k, D.models[k]]; }));
    byRef = new Map();
    byModel = new Map();
    D.checkpoints.forEach(function (c) {
      byRef.set(c.ref, c);
      if (!byModel.has(c.model)) byModel.set(c.model, []);
      byModel.get(c.model).push(c);
    });
    byModel.forEach(function (cs) { cs.sort(function (a, b) { return a.step - b.step; }); });
    metricHigher = new Map(D.metrics.map(function (m) { return [m.name, m.higher_is_better]; }));
    LB = window.ZooLeaderboard({el: el, fmtMetric: fmtMetric, fmtBytes: fmtBytes, modelHref: modelHref, compareBox: compareBox,
      data: function () { return D; }, models: function () { return models; }, byRef: function () { return byRef; },
      metricsOfTask: function (task) { return D.tasks[task] ? D.tasks[task].metrics.map(function (m) { return m.name; }) : []; },
      ignoreHash: function (h) { ignoredHash = h; }});
    LIN = window.ZooLineage({el: el, refLink: refLink, byRef: function () { return byRef; }});
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
    try {
      viewKeys = function () { return null; };
      LB.readState(state, where.params);
      if (head === "model") renderModel(main, decodeURIComponent(rest), where.params);
      else if (head === "boards" || head === "board") {
        LB.renderBoards(main, rest.split("/").map(decodeURIComponent).join("/"));
        LB.writeState(state);
      } else if (head === "compare") {
        state.compare = rest.split(",").filter(Boolean).map(decodeURIComponent);
        renderCompare(main);
      } else renderList(main);
    } catch (err) {
      if (err instanceof URIError) { renderList(main); return; }
      throw err;
    }
    updateCompareLink();
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

  function bestOf(m) { return byRef.get(m.best) || {}; }

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

  function renderList(main) {
    const allModels = Array.from(models.values());
    const metricNames = D.metrics.map(function (m) { return m.name; });
    const search = el("input", {type: "search", id: "search", placeholder: "Search name, description, tags, arch, task",
      "aria-label": "search models"});
    search.value = state.query;
    search.addEventListener("input", function () { state.query = search.value; update(); });
    const facetBox = el("div", {class: "facets"});
    const facetCounts = [];
    Object.keys(state.facets).forEach(function (f) {
      const values = new Set();
      allModels.forEach(function (m) { facetValues(m, f).forEach(function (v) { if (v) values.add(v); }); });
      const fs = el("fieldset", {class: "facet", "data-facet": f}, el("legend", null, f));
      Array.from(values).sort().forEach(function (v) {
        const box = el("input", {type: "checkbox", value: v});
        box.checked = state.facets[f].has(v);
        box.addEventListener("change", function () {
          if (box.checked) state.facets[f].add(v); else state.facets[f].delete(v);
          update();
        });
        const count = el("span", {class: "count"});
        facetCounts.push({facet: f, value: v, node: count, box: box});
        fs.appendChild(el("label", {"data-value": v}, [box, " ", el("span", {class: "facet-value"}, v), " ", count]));
      });
      facetBox.appendChild(fs);
    });
    const clear = el("button", {type: "button", id: "clear-filters"}, "clear filters");
    clear.addEventListener("click", function () {
      state.query = "";
      Object.keys(state.facets).forEach(function (f) { state.facets[f].clear(); });
      renderList(main);
    });
    // facets fold away on narrow screens so the table starts on the first screenful
    const facetPanel = el("details", {class: "facet-panel"}, [el("summary", null, "Filters"), facetBox, clear]);
    facetPanel.open = !window.matchMedia || window.matchMedia("(min-width: 901px)").matches ||
      Object.keys(state.facets).some(function (f) { return state.facets[f].size > 0; });
    const countLine = el("p", {id: "count", class: "count-line"});
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
        update();
      };
      th.addEventListener("click", activate);
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); activate(); } });
      headRow.appendChild(th);
    });
    const tbody = el("tbody", {id: "rows"});
    const largest = allModels.reduce(function (mx, m) { return Math.max(mx, m.size_bytes || 0); }, 0);
    const table = el("table", {id: "models", class: "grid"}, [el("thead", null, headRow), tbody]);

    function update() {
      const shown = allModels.filter(function (m) { return matches(m, null); });
      const key = state.sort.key, dir = state.sort.dir;
      shown.sort(function (a, b) {
        const x = sortValue(a, key), y = sortValue(b, key);
        if (x === null || x === undefined || y === null || y === undefined) {
          const c = compareMetric(x, y);
          return c !== 0 ? c : a.name.localeCompare(b.name);
        }
        return compareMetric(x, y) * dir || a.name.localeCompare(b.name);
      });
      headRow.querySelectorAll("th[data-sort]").forEach(function (th) {
        if (th.getAttribute("data-sort") === key) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
        else th.removeAttribute("aria-sort");
      });
      facetCounts.forEach(function (fc) {
        const n = allModels.filter(function (m) { return matches(m, fc.facet) && facetValues(m, fc.facet).indexOf(fc.value) >= 0; }).length;
        fc.node.textContent = "(" + n + ")";
        fc.box.disabled = n === 0 && !fc.box.checked;
      });
      tbody.replaceChildren.apply(tbody, shown.map(function (m) { return modelRow(m, metricNames, largest); }));
      labelCells(table);
      countLine.textContent = shown.length + " of " + allModels.length + " models";
      LB.writeState(state);
    }

    main.replaceChildren(el("section", {class: "list-layout"}, [
      el("aside", {class: "filters", "aria-label": "filters"}, [search, facetPanel]),
      el("div", {class: "list-main"}, [countLine, el("div", {class: "scroll"}, table)]),
    ]));
    update();
  }

  function modelRow(m, metricNames, largest) {
    const best = bestOf(m);
    const tr = el("tr", {"data-model": m.name});
    const failed = (byModel.get(m.name) || []).filter(function (c) { return c.status === "failed"; });
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
    const ckTable = checkpointTable(m, cs, metricNames, function () { refresh(); });
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
      renderUse(useBox, byRef.get(ref));
      ckTable.querySelectorAll("tbody tr").forEach(function (tr) {
        const on = tr.getAttribute("data-ref") === ref;
        if (on) tr.hidden = false;  // chosen on the chart while its row was collapsed
        tr.classList.toggle("selected", on);
        tr.setAttribute("aria-selected", on ? "true" : "false");
      });
      chartBox.replaceChildren(chart(cs, state.chartMetric.get(name), ref, function (r) {
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

  function renderUse(box, c) {
    if (!c) { box.replaceChildren(); return; }
    const parts = [el("h2", null, ["Use ", el("span", {id: "selected-ref"}, c.ref),
      c.is_best ? el("span", {class: "badge best"}, "best") : null, c.is_latest ? el("span", {class: "badge latest"}, "latest") : null])];
    if (stateText(c)) parts.push(el("p", {class: "state-note state-" + c.status, id: "selected-state", role: "status"}, stateText(c)));
    if (D.downloads && folderNames(c).length) {
      parts.push(el("p", {class: "label"}, "Download " + c.ref + ", a folder of " + folderNames(c).length + " files (" +
        fmtBytes(c.size_bytes) + " in all):"));
      parts.push(el("ul", {class: "files", id: "download-files"}, folderNames(c).map(function (name) {
        return el("li", null, [el("a", {class: "download", href: filesHref(c, name), download: ""}, name), " ",
          hashCell(c.files[name], "span")]);
      })));
    } else if (D.downloads) {
      parts.push(el("p", null, el("a", {class: "button download", id: "download", href: filesHref(c), download: ""},
        "Download " + c.ref + " (" + fmtBytes(c.size_bytes) + ")")));
    }
    parts.push(el("p", {class: "label"}, "Pull just this checkpoint into a clone of the zoo (sha256-checked):"));
    parts.push(el("div", {class: "snippet"}, [el("pre", null, el("code", {id: "snippet-pull"}, pullCommand(c.ref))),
      copyButton(function () { return pullCommand(c.ref); })]));
    parts.push(el("p", {class: "label"}, "Load it in Python:"));
    parts.push(el("div", {class: "snippet"}, [el("pre", null, el("code", {id: "snippet-python"}, pythonSnippet(c.ref))),
      copyButton(function () { return pythonSnippet(c.ref); })]));
    box.replaceChildren.apply(box, parts);
  }

  function hashCell(sha, tag) {
    if (!sha) return el(tag || "td");
    return el(tag || "td", {class: "hash-cell"}, [el("code", {class: "hash", title: sha, "data-full": sha}, sha.slice(0, 12) + "…"), " ",
      copyButton(function () { return sha; }, "copy")]);
  }

  function checkpointTable(m, cs, metricNames, onSelect) {
    const head = el("tr", null, [el("th", {class: "pick-col"}, el("span", {class: "sr"}, "compare")), el("th", {class: "num"}, "step"),
      el("th", {class: "num"}, "epoch"), el("th", null, "created"), el("th", {class: "num"}, "size"), el("th", null, "sha256")]
      .concat(metricNames.map(function (n) { return el("th", {class: "num", "data-metric": n}, n); }))
      .concat([el("th", null, "parent"), el("th", null, D.downloads ? "download" : "pull")]));
    const largest = cs.reduce(function (mx, c) { return Math.max(mx, c.size_bytes || 0); }, 0);
    const rows = cs.map(function (c) {
      const tr = el("tr", {"data-ref": c.ref, class: "ckpt", tabindex: "0"});
      tr.appendChild(el("td", {class: "pick-col"}, compareBox(c.ref)));
      tr.appendChild(el("td", {class: "num step"}, [String(c.step), c.is_best ? el("span", {class: "badge best"}, "best") : null,
        c.is_latest ? el("span", {class: "badge latest"}, "latest") : null, stateBadge(c)]));
      tr.appendChild(el("td", {class: "num"}, fmt(c.epoch)));
      tr.appendChild(el("td", {title: c.created}, c.created || ""));
      tr.appendChild(el("td", {class: "num", title: c.size_bytes + " bytes"}, fmtBytes(c.size_bytes, largest)));
      tr.appendChild(hashCell(c.sha256));
      metricNames.forEach(function (n) { tr.appendChild(el("td", {class: "num", "data-metric": n}, fmtMetric((c.metrics || {})[n]))); });
      tr.appendChild(el("td", null, c.parent ? refLink(c.parent) : ""));
      tr.appendChild(el("td", null, !D.downloads
        ? el("code", {class: "pull"}, c.pull_command || pullCommand(c.ref))
        : folderNames(c).length  // selecting the row lists the folder's files under "Use"
          ? el("span", {class: "folder", title: folderNames(c).join(", ")}, folderNames(c).length + " files")
          : el("a", {class: "button small download", href: filesHref(c), download: ""}, "download")));
      const select = function () { state.selected.set(m.name, c.ref); onSelect(); };
      tr.addEventListener("click", function (ev) { if (!ev.target.closest("a, button, input")) select(); });
      tr.addEventListener("keydown", function (ev) { if (ev.key === "Enter" && ev.target === tr) select(); });
      return tr;
    });
    return labelCells(el("table", {class: "grid ckpts", id: "checkpoints"}, [el("thead", null, head), el("tbody", null, rows)]));
  }

  // each cell carries its column's name, which a phone shows beside the value when rows become cards
  function labelCells(table) {
    const names = Array.from(table.tHead.rows[0].cells).map(function (th) { return th.textContent; });
    Array.from(table.tBodies[0].rows).forEach(function (tr) {
      Array.from(tr.cells).forEach(function (td, i) { if (names[i]) td.setAttribute("data-label", names[i]); });
    });
    return table;
  }

  // ---- chart ------------------------------------------------------------------------------------

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1; lo -= d; hi += d; }
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(function (f) { return f * mag; }).find(function (s) { return s >= raw; });
    const ticks = [];
    for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
    if (ticks[ticks.length - 1] < hi) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
    return ticks;
  }

  function tickLabel(v, ticks) {
    // as many decimals as the tick spacing needs, the same for every tick of an axis
    const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
    const digits = Math.max(0, Math.min(8, -Math.floor(Math.log10(step) + 1e-9)));
    const scaled = step * Math.pow(10, digits);
    return v.toFixed(Math.abs(scaled - Math.round(scaled)) > 1e-6 ? digits + 1 : digits);
  }

  function chart(cs, metric, selectedRef, onPick) {
    const pts = cs.filter(function (c) { return typeof (c.metrics || {})[metric] === "number"; });
    if (!pts.length) return el("p", {class: "hint"}, "No values of " + metric + " to draw.");
    const W = 720, H = 320, L = 72, R = 20, T = 16, B = 56;
    const xs = pts.map(function (c) { return c.step; }), ys = pts.map(function (c) { return c.metrics[metric]; });
    const xt = niceTicks(Math.min.apply(null, xs), Math.max.apply(null, xs), 6);
    const yt = niceTicks(Math.min.apply(null, ys), Math.max.apply(null, ys), 5);
    const x0 = xt[0], x1 = xt[xt.length - 1], y0 = yt[0], y1 = yt[yt.length - 1];
    const sx = function (v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
    const sy = function (v) { return H - B - (v - y0) / (y1 - y0) * (H - T - B); };
    const root = svg("svg", {id: "chart", viewBox: "0 0 " + W + " " + H, role: "img", class: "chart",
      "aria-label": metric + " by training step"});
    root.appendChild(svg("title", {}, metric + " by training step"));
    const axes = svg("g", {class: "axes"});
    axes.appendChild(svg("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis"}));
    axes.appendChild(svg("line", {x1: L, y1: T, x2: L, y2: H - B, class: "axis"}));
    xt.forEach(function (v) {
      axes.appendChild(svg("line", {x1: sx(v), y1: H - B, x2: sx(v), y2: H - B + 5, class: "tick-mark"}));
      axes.appendChild(svg("text", {x: sx(v), y: H - B + 18, "text-anchor": "middle", class: "tick x-tick"}, tickLabel(v, xt)));
    });
    yt.forEach(function (v) {
      axes.appendChild(svg("line", {x1: L, y1: sy(v), x2: W - R, y2: sy(v), class: "gridline"}));
      axes.appendChild(svg("text", {x: L - 8, y: sy(v) + 4, "text-anchor": "end", class: "tick y-tick"}, tickLabel(v, yt)));
    });
    axes.appendChild(svg("text", {x: L + (W - L - R) / 2, y: H - 12, "text-anchor": "middle", class: "axis-label x-label"}, "step"));
    axes.appendChild(svg("text", {x: 16, y: T + (H - T - B) / 2, "text-anchor": "middle", class: "axis-label y-label",
      transform: "rotate(-90 16 " + (T + (H - T - B) / 2) + ")"}, metric + (higher(metric) ? " (higher is better)" : " (lower is better)")));
    root.appendChild(axes);
    root.appendChild(svg("polyline", {class: "series", fill: "none",
      points: pts.map(function (c) { return sx(c.step) + "," + sy(c.metrics[metric]); }).join(" ")}));
    pts.forEach(function (c) {
      const dot = svg("circle", {cx: sx(c.step), cy: sy(c.metrics[metric]), r: c.ref === selectedRef ? 7 : 5,
        class: "point" + (c.ref === selectedRef ? " selected" : "") + (c.is_best ? " best" : ""), "data-ref": c.ref, tabindex: "0"});
      dot.appendChild(svg("title", {}, c.ref + ": " + metric + " " + fmtMetric(c.metrics[metric])));
      dot.addEventListener("click", function () { onPick(c.ref); });
      root.appendChild(dot);
    });
    return root;
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

  function renderCompare(main) {
    const found = state.compare.filter(function (r) { return byRef.has(r); });
    const missing = state.compare.filter(function (r) { return !byRef.has(r); });
    const parts = [el("h1", null, "Compare checkpoints")];
    if (missing.length) parts.push(el("p", {class: "error"}, "Not in this zoo: " + missing.join(", ")));
    if (found.length < 2) {
      parts.push(el("p", {class: "hint"}, "Tick two or more checkpoints in the model list or on a model page to compare them."));
    }
    if (found.length) {
      const cs = found.map(function (r) { return byRef.get(r); });
      const head = el("tr", null, [el("th", {scope: "col"}, "")].concat(cs.map(function (c) {
        const rm = el("button", {type: "button", class: "remove", "aria-label": "remove " + c.ref, title: "remove"}, "×");
        rm.addEventListener("click", function () {
          location.hash = compareHref(state.compare.filter(function (r) { return r !== c.ref; }));
        });
        return el("th", {scope: "col", "data-ref": c.ref}, [el("a", {href: modelHref(c.model)}, c.ref), " ", rm]);
      })));
      const body = el("tbody");
      const row = function (label, values, cls, field) {
        body.appendChild(el("tr", {class: cls || null, "data-field": field || label}, [el("th", {scope: "row"}, label)]
          .concat(values.map(function (v, i) { return el("td", {"data-ref": cs[i].ref}, v); }))));
      };
      row("model", cs.map(function (c) { return el("a", {href: modelHref(c.model)}, c.model); }));
      row("step", cs.map(function (c) { return String(c.step); }));
      row("epoch", cs.map(function (c) { return fmt(c.epoch); }));
      ["task", "arch", "dataset", "license", "created", "format", "dtype"].forEach(function (k) {
        row(k, cs.map(function (c) { return c[k] === null || c[k] === undefined ? "" : String(c[k]); }));
      });
      row("size", cs.map(function (c) { return el("span", {title: c.size_bytes + " bytes"}, fmtBytes(c.size_bytes)); }));
      row("parameters", cs.map(function (c) { return typeof c.num_params === "number" ? c.num_params.toLocaleString("en") : ""; }));
      row("sha256", cs.map(function (c) { return el("code", {class: "hash wrap", title: c.sha256}, c.sha256 || ""); }));
      row("parent", cs.map(function (c) { return c.parent ? refLink(c.parent) : ""; }));
      row("tags", cs.map(function (c) { return (c.tags || []).join(", "); }));
      row("best / latest", cs.map(function (c) { return [c.is_best ? "best" : "", c.is_best && c.is_latest ? ", " : "", c.is_latest ? "latest" : ""].join(""); }));
      row("reported", cs.map(function (c) { return c.reported_metric ? c.reported_metric + " " + fmtMetric(c.reported_value) : ""; }));
      row("selected by", cs.map(function (c) {
        const s = c.selection || {};
        return s.metric ? s.metric + " " + fmtMetric(s.value) + " (" + s.split + ")" : "";
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
      D.metrics.forEach(function (m) { if (cs.some(function (c) { return c.metrics && m.name in c.metrics; })) names.push(m.name); });
      cs.forEach(function (c) { Object.keys(c.metrics || {}).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); }); });
      names.forEach(function (n) {
        const vals = cs.map(function (c) { return (c.metrics || {})[n]; });
        const bestIn = new Map();  // group key -> its best value of n (only where the group has two values or more)
        groups.forEach(function (g) {
          const nums = g.index.map(function (i) { return vals[i]; }).filter(function (v) { return typeof v === "number"; });
          if (nums.length > 1) bestIn.set(g.key, higher(n) ? Math.max.apply(null, nums) : Math.min.apply(null, nums));
        });
        const tr = el("tr", {class: "metric", "data-field": "metric:" + n}, [el("th", {scope: "row"},
          [n, el("span", {class: "dir"}, higher(n) ? " ↑" : " ↓")])]);
        vals.forEach(function (v, i) {
          const best = bestIn.get(boardKey(cs[i]));
          tr.appendChild(el("td", {class: "num" + (best !== undefined && v === best ? " best-value" : ""), "data-ref": cs[i].ref}, fmtMetric(v)));
        });
        body.appendChild(tr);
      });
      parts.push(el("div", {class: "scroll"}, el("table", {class: "grid compare", id: "compare"}, [el("thead", null, head), body])));
    }
    main.replaceChildren(el("section", {class: "compare-view"}, parts));
  }

  load();
})();
