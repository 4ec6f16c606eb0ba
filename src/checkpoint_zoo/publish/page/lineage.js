// Checkpoint Zoo browse page, part two: a model page's lineage across models, drawn as trees (parent above its
// children, joined by lines; children in step order). app.js hands this file its helpers.
"use strict";
window.ZooLineage = function (ui) {
  const el = ui.el;

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

  return {lineage: lineage, stepOrder: stepOrder};
};
