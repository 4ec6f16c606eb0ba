// Checkpoint Zoo browse page, part two: a model page's parts under its card. The checkpoint table, the Use box of
// the chosen checkpoint (downloads, pull command, Python snippet), the metric-by-step chart (SVG) and the lineage
// across models, drawn as trees (parent above its children, joined by lines; children in step order). app.js
// hands this file its helpers.
"use strict";
window.ZooLineage = function (ui) {
  const el = ui.el;
  const SVG_NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  // ---- the checkpoint table and the Use box ------------------------------------------------------

  function filesHref(c, name) {
    // relative: the server mounts the page and files/ side by side, wherever that is; content-addressed,
    // so the link names these bytes for good (the server caches them as immutable)
    const sha = name ? c.files[name] : c.sha256;
    const file = name || c.path.split("/").pop();
    let href = "files/by-sha256/" + sha + "/" + encodeURIComponent(file);
    if (ui.data().rev) href += "?rev=" + encodeURIComponent(ui.data().rev);
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

  function renderUse(box, c) {
    if (!c) { box.replaceChildren(); return; }
    const parts = [el("h2", null, ["Use ", el("span", {id: "selected-ref"}, c.ref),
      c.is_best ? el("span", {class: "badge best"}, "best") : null, c.is_latest ? el("span", {class: "badge latest"}, "latest") : null])];
    if (ui.stateText(c)) parts.push(el("p", {class: "state-note state-" + c.status, id: "selected-state", role: "status"}, ui.stateText(c)));
    if (ui.data().downloads && folderNames(c).length) {
      parts.push(el("p", {class: "label"}, "Download " + c.ref + ", a folder of " + folderNames(c).length + " files (" +
        ui.fmtBytes(c.size_bytes) + " in all):"));
      parts.push(el("ul", {class: "files", id: "download-files"}, folderNames(c).map(function (name) {
        return el("li", null, [el("a", {class: "download", href: filesHref(c, name), download: ""}, name), " ",
          hashCell(c.files[name], "span")]);
      })));
    } else if (ui.data().downloads) {
      parts.push(el("p", null, el("a", {class: "button download", id: "download", href: filesHref(c), download: ""},
        "Download " + c.ref + " (" + ui.fmtBytes(c.size_bytes) + ")")));
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
      .concat([el("th", null, "parent"), el("th", null, ui.data().downloads ? "download" : "pull")]));
    const largest = cs.reduce(function (mx, c) { return Math.max(mx, c.size_bytes || 0); }, 0);
    const rows = cs.map(function (c) {
      const tr = el("tr", {"data-ref": c.ref, class: "ckpt", tabindex: "0"});
      tr.appendChild(el("td", {class: "pick-col"}, ui.compareBox(c.ref)));
      tr.appendChild(el("td", {class: "num step"}, [String(c.step), c.is_best ? el("span", {class: "badge best"}, "best") : null,
        c.is_latest ? el("span", {class: "badge latest"}, "latest") : null, ui.stateBadge(c)]));
      tr.appendChild(el("td", {class: "num"}, ui.fmt(c.epoch)));
      tr.appendChild(el("td", {title: c.created}, c.created || ""));
      tr.appendChild(el("td", {class: "num", title: c.size_bytes + " bytes"}, ui.fmtBytes(c.size_bytes, largest)));
      tr.appendChild(hashCell(c.sha256));
      metricNames.forEach(function (n) { tr.appendChild(el("td", {class: "num", "data-metric": n}, ui.fmtMetric((c.metrics || {})[n]))); });
      tr.appendChild(el("td", null, c.parent ? ui.refLink(c.parent) : ""));
      tr.appendChild(el("td", null, !ui.data().downloads
        ? el("code", {class: "pull"}, c.pull_command || pullCommand(c.ref))
        : folderNames(c).length  // selecting the row lists the folder's files under "Use"
          ? el("span", {class: "folder", title: folderNames(c).join(", ")}, folderNames(c).length + " files")
          : el("a", {class: "button small download", href: filesHref(c), download: ""}, "download")));
      const select = function () { onSelect(c.ref); };
      tr.addEventListener("click", function (ev) { if (!ev.target.closest("a, button, input")) select(); });
      tr.addEventListener("keydown", function (ev) { if (ev.key === "Enter" && ev.target === tr) select(); });
      return tr;
    });
    return ui.labelCells(el("table", {class: "grid ckpts", id: "checkpoints"}, [el("thead", null, head), el("tbody", null, rows)]));
  }

  // ---- lineage ----------------------------------------------------------------------------------

  function ancestry(ref) {
    const chain = [];
    const seen = new Set([ref]);
    let cur = ui.byRef().get(ref);
    while (cur && cur.parent && !seen.has(cur.parent) && chain.length < 100) {
      chain.push(cur.parent);
      seen.add(cur.parent);
      cur = ui.byRef().get(cur.parent);
    }
    return chain;
  }

  // refs by model, then by step as a number: @20 before @160
  function stepOrder(a, b) {
    const split = function (r) { const i = r.lastIndexOf("@"); return [r.slice(0, i), Number(r.slice(i + 1))]; };
    const x = split(a), y = split(b);
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] - y[1]) || (a < b ? -1 : a > b ? 1 : 0);
  }

  // A tree (Map ref -> Map of its children) as nested lists, children in step order; `own` refs are this
  // model's (shown as text, not links).
  function treeList(level, own, attrs) {
    return el("ul", attrs, Array.from(level.keys()).sort(stepOrder).map(function (r) {
      const node = own.has(r) ? el("span", {class: "self", "data-ref": r}, r) : ui.refLink(r);
      const kids = level.get(r);
      return el("li", null, [node, kids.size ? treeList(kids, own, null) : null]);
    }));
  }

  function descendants(ref, seen, depth) {
    const kids = new Map();
    if (depth > 50) return kids;
    ((ui.byRef().get(ref) || {}).children || []).forEach(function (r) {
      if (seen.has(r)) return;
      seen.add(r);
      kids.set(r, descendants(r, seen, depth + 1));
    });
    return kids;
  }

  // Lineage across models, parent above children: where this model's checkpoints come from (each chain of
  // parents from its root down to the checkpoint) and what other models' checkpoints derive from them.
  function lineage(cs) {
    const own = new Set(cs.map(function (c) { return c.ref; }));
    const up = new Map();
    cs.forEach(function (c) {
      if (!c.parent || own.has(c.parent)) return;
      let level = up;
      ancestry(c.ref).reverse().concat([c.ref]).forEach(function (r) {
        if (!level.has(r)) level.set(r, new Map());
        level = level.get(r);
      });
    });
    const down = new Map();
    const seen = new Set(own);
    cs.forEach(function (c) {
      const kids = new Map();
      (c.children || []).forEach(function (r) {
        if (own.has(r) || seen.has(r)) return;
        seen.add(r);
        kids.set(r, descendants(r, seen, 1));
      });
      if (kids.size) down.set(c.ref, kids);
    });
    const parts = [el("h2", null, "Lineage")];
    parts.push(el("h3", null, "Derived from"));
    parts.push(up.size ? treeList(up, own, {class: "tree ancestors", id: "ancestors"})
      : el("p", {class: "hint"}, "No parent outside this model."));
    parts.push(el("h3", null, "Derived models"));
    parts.push(down.size ? treeList(down, own, {class: "tree descendants", id: "descendants"})
      : el("p", {class: "hint"}, "No checkpoint derives from this model."));
    return el("section", {class: "lineage", id: "lineage"}, parts);
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
      transform: "rotate(-90 16 " + (T + (H - T - B) / 2) + ")"}, metric + (ui.higher(metric) ? " (higher is better)" : " (lower is better)")));
    root.appendChild(axes);
    root.appendChild(svg("polyline", {class: "series", fill: "none",
      points: pts.map(function (c) { return sx(c.step) + "," + sy(c.metrics[metric]); }).join(" ")}));
    pts.forEach(function (c) {
      const dot = svg("circle", {cx: sx(c.step), cy: sy(c.metrics[metric]), r: c.ref === selectedRef ? 7 : 5,
        class: "point" + (c.ref === selectedRef ? " selected" : "") + (c.is_best ? " best" : ""), "data-ref": c.ref, tabindex: "0"});
      dot.appendChild(svg("title", {}, c.ref + ": " + metric + " " + ui.fmtMetric(c.metrics[metric])));
      dot.addEventListener("click", function () { onPick(c.ref); });
      root.appendChild(dot);
    });
    return root;
  }

  return {lineage: lineage, stepOrder: stepOrder, chart: chart, checkpointTable: checkpointTable, renderUse: renderUse};
};
