// Checkpoint Zoo browse page, the paged data source: zoo serve's page of a big zoo, whose data.js is light (no
// checkpoint, no card), loads this file and asks the JSON API for what each view shows: a page of the model list
// (search, facets and sort done by the server), a model (its summary, card and checkpoints, and the models its
// lineage reaches), the compared checkpoints, the boards. What arrives is kept in the page's maps (models, byRef,
// byModel) in the shapes the static data.js has, so the views read both sources alike. Only zoo serve sends this
// file: the static site has no network code.
"use strict";
window.ZooApi = function (ui) {
  const PAGE_SIZE = 100;  // models per page of the list
  const RELATED = 20;  // other models fetched for a model page's lineage, at most
  const D = ui.data();
  const models = ui.models(), byRef = ui.byRef(), byModel = ui.byModel();
  const full = new Set();  // models whose card and every checkpoint are here
  let boardsAsked = null;  // the one request for the boards (they change only with the revision)
  // the page's sort keys and facets -> /api/models's
  const SORTS = {name: "id", primary: "best_value", task: "task", arch: "arch", dataset: "dataset", license: "license",
    best: "id", checkpoints: "checkpoints", size: "size_bytes", created: "lastModified"};
  const FACETS = {task: "task", arch: "arch", license: "license", dataset: "dataset", tags: "tag"};
  const FACET_PARAMS = Object.keys(FACETS).map(function (f) { return FACETS[f]; });

  // relative, as the page's own files are, with the revision the page shows
  function url(path, params) {
    const p = new URLSearchParams(params || []);
    if (D.rev) p.set("rev", D.rev);
    const qs = p.toString();
    return path + (qs ? "?" + qs : "");
  }

  function get(path, params) {
    return fetch(url(path, params), {headers: {Accept: "application/json"}}).then(function (r) {
      return r.json().then(function (body) {
        if (r.ok) return {body: body, total: Number(r.headers.get("X-Total-Count"))};
        const err = new Error(path + ": " + (body && body.error ? body.error : "HTTP " + r.status));
        err.status = r.status;
        throw err;
      });
    });
  }

  function failed(err) { ui.fail(String(err && err.message ? err.message : err)); }

  function modelPath(name) { return "api/models/" + encodeURIComponent(name); }

  // an /api/models summary as the page's model (fields of site_data's models)
  function fromSummary(s) {
    const m = Object.assign(models.get(s.id) || {}, s, {name: s.id, created: s.lastModified, parents: s.base_models || []});
    models.set(s.id, m);
    return m;
  }

  // an index entry (or /api/models/M/checkpoints/S's answer) as the page's checkpoint
  function fromEntry(e) {
    const c = Object.assign({}, e, {split: (e.evaluation || {}).split || null,
      children: (e.children || []).slice().sort(ui.stepOrder)});
    if (Array.isArray(e.files)) {  // the checkpoint route lists every file; a single-file checkpoint has none
      const single = e.files.length === 1 && e.files[0].name === String(e.path || "").split("/").pop();
      c.files = single ? null : Object.fromEntries(e.files.map(function (f) { return [f.name, f.sha256]; }));
    }
    byRef.set(c.ref, c);
    return c;
  }

  function keep(name, entries) {
    const cs = entries.map(fromEntry).sort(function (a, b) { return a.step - b.step; });
    byModel.set(name, cs);
    return cs;
  }

  function list(done) {
    const state = ui.state();
    const offset = (state.page - 1) * PAGE_SIZE;
    const params = [["limit", String(PAGE_SIZE)], ["offset", String(offset)]];
    if (state.query.trim()) params.push(["search", state.query.trim()]);
    Object.keys(state.facets).forEach(function (f) {
      Array.from(state.facets[f]).sort().forEach(function (v) { params.push([FACETS[f], v]); });
    });
    const key = state.sort.key;
    params.push(["sort", key.indexOf("m:") === 0 ? key.slice(2) : SORTS[key] || "id"]);
    params.push(["direction", state.sort.dir < 0 ? "desc" : "asc"]);
    // the facets' counts: with a search or a filter on, the drill-down's from the server (what the static page
    // counts); without, the whole zoo's, which data.js has
    const narrowing = params.filter(function (p) { return p[0] === "search" || FACET_PARAMS.indexOf(p[0]) >= 0; });
    const counted = narrowing.length ? get("api/facets", narrowing) : Promise.resolve(null);
    Promise.all([get("api/models", params), counted]).then(function (rs) {
      const r = rs[0], counts = rs[1] ? rs[1].body : null;
      if (!r.body.length && r.total > 0 && state.page > 1) {  // a page past the end (an old link): the first
        state.page = 1;
        list(done);
        return;
      }
      const rows = r.body.map(fromSummary);
      done({rows: rows, total: r.total, all: D.total.models, offset: offset, size: PAGE_SIZE,
        largest: rows.reduce(function (mx, m) { return Math.max(mx, m.size_bytes || 0); }, 0),
        count: function (f, v) { return ((counts ? counts[FACETS[f]] : D.facets[f]) || {})[v] || 0; }});
    }, failed);
  }

  // The other models a model's lineage reaches, so that its trees and links can walk their checkpoints.
  function related(lineage, own) {
    const names = [];
    (lineage.ancestors || []).concat(lineage.descendants || []).forEach(function (ref) {
      const name = ref.slice(0, ref.lastIndexOf("@"));
      if (!own.has(name) && !byModel.has(name) && names.indexOf(name) < 0 && names.length < RELATED) names.push(name);
    });
    return Promise.all(names.map(function (name) {
      return get(modelPath(name)).then(function (r) { fromSummary(r.body); keep(name, r.body.checkpoints); },
        function () { return null; });  // a model gone since: its refs show as not in this zoo
    }));
  }

  function model(name, done) {
    if (full.has(name)) { done(); return; }
    Promise.all([get(modelPath(name)), get(modelPath(name) + "/card"), boards()]).then(function (rs) {
      const body = rs[0].body, card = rs[1].body;
      const m = fromSummary(body);
      const cs = keep(name, body.checkpoints);
      const own = new Set(cs.map(function (c) { return c.ref; }));
      const kids = new Set();
      cs.forEach(function (c) { c.children.forEach(function (r) { if (!own.has(r)) kids.add(r); }); });
      Object.assign(m, {card_html: card.html, card_meta: card.metadata, releases: body.releases || {},
        stages: body.stages || {}, num_params: (byRef.get(m.best) || {}).num_params,
        children: Array.from(kids).sort(ui.stepOrder)});
      full.add(name);
      return related(body.lineage || {}, new Set([name]));
    }).then(function () { done(); }, function (err) { if (err.status === 404) done(); else failed(err); });
  }

  function refs(wanted, done) {
    Promise.all(wanted.filter(function (r) { return !byRef.has(r); }).map(function (ref) {
      const at = ref.lastIndexOf("@");
      if (at < 1) return null;
      return get(modelPath(ref.slice(0, at)) + "/checkpoints/" + encodeURIComponent(ref.slice(at + 1)))
        .then(function (r) { fromEntry(r.body); }, function () { return null; });  // not in this zoo: the view says so
    })).then(function () { done(); }, failed);
  }

  // /api/leaderboard as site_data's leaderboards (one per task, dataset and split, best first)
  function boards() {
    if (!boardsAsked) {
      boardsAsked = get("api/leaderboard").then(function (r) {
        const out = [];
        Object.keys(r.body).forEach(function (task) {
          const t = r.body[task];
          t.boards.forEach(function (b) {
            b.models.forEach(function (row) {
              const m = models.get(row.model) || {name: row.model};
              models.set(row.model, Object.assign(m, {best: row.checkpoint, best_value: row.value, metrics: row.metrics}));
            });
            out.push({name: [task, b.dataset, b.split || ""].join("/"), task: task, dataset: b.dataset, split: b.split,
              metric: t.metric, higher_is_better: t.higher_is_better, models: b.models.map(function (row) { return row.model; })});
          });
        });
        D.leaderboards = out;
      });
    }
    return boardsAsked;
  }

  return {
    wait: 150,  // ms of no typing before the list asks the server
    facetValues: function (f) { return Object.keys(D.facets[f] || {}).sort(); },
    list: list,
    model: model,
    refs: refs,
    boards: function (done) { boards().then(function () { done(); }, failed); },
  };
};
