"""What ``zoo serve`` shows of one revision: entries, model summaries, lineage and search text, built once.

A snapshot is computed from the table and the evaluation records (the working tree's, or a revision's
from git), exactly as the index stage computes ``zoo/index.json``, but without writing anything and
without requiring every row to be evaluated: each entry has a ``status``, ``evaluated``, ``failed`` (with
the ``error`` its evaluation raised), ``unevaluated`` (a fresh ``zoo add`` before ``dvc repro``),
``replaced`` (its record is of other bytes: no metrics) or, in the working tree, ``stale`` (evaluated under
an older key: its metrics, with ``stale`` saying why), and every route serves every state. Snapshots are
cached by what they were built from.

The working tree's snapshot is built model by model (``build_worktree``): the model list, summaries and tasks
from each model's part (``part``: its rows and its own evaluation file; kept in the user cache by
``part_cache`` while those are unchanged), and a model's entries only when a route asks for them (the last
``RECENT`` models' kept). Its parts are computed as routes need them (``Parts``): the first page of the model
list needs only its own models', so a first start answers it without reading every evaluation file; the
others are computed in the background after that answer, or by the first route that needs every model. Only
the routes that serve every checkpoint at once (the page's data.js, /files/by-sha256) build every entry. A
revision's snapshot is built whole (``build``) by the same ``part``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, ValuesView
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import layout
from ..catalog.table import table_file
from ..errors import ZooError

WORKTREE = ""  # the key of the working tree's snapshot (any other key is a commit)
RECENT = 64  # models whose entries a snapshot keeps built (besides every model's, once a route needed them all)
SAVED = 100  # the parts computed are written to the user cache after every this many models


@dataclass(frozen=True)
class ModelView:
    """One model as the API lists it (fields modelled on the Hugging Face Hub's ModelInfo)."""

    id: str
    summary: dict[str, Any]         # the API's JSON object for the model list
    search_text: str                # lower-case text that ?search= matches
    facets: dict[str, tuple[str, ...]]  # task, arch, license, dataset, tags


@dataclass
class Part:
    """What one model brings to a snapshot: its entries, mark_best's summary, its listing, its fold of the task
    summaries (``publish.index.fold_tasks``) and the (task, dataset) of each of its checkpoints."""

    entries: list[dict]
    summary: dict[str, Any]
    view: ModelView
    tasks: dict[str, dict]
    pairs: frozenset[tuple[str, str]]


class Parts:
    """Every model's part of the working tree's snapshot, each computed when a route first needs it (``get``: the
    first page of the model list needs only its own models'), the rest by ``tasks`` (run in the background after
    a first answer, or by the first route that needs every model: a search, another sort, the tasks, data.js),
    which then checks the evaluation files no model of the table names and keeps the parts in the user cache.

    An error is raised to each route that needs the part it comes from and to every route that needs every part
    (the next one computes again what failed, so a fixed file is read as it is now); a model's file holding
    another model's records switches every later answer to the whole build (``fallback``), as before."""

    def __init__(self, names: Iterable[str], compute: Callable[[str], Part], start: Callable[[], None],
                 save: Callable[[], None], finish: Callable[[], None], whole: Callable[[], Snapshot]) -> None:
        self.names = sorted(names)
        self.known = frozenset(self.names)
        self._compute, self._start, self._save, self._finish, self._whole = compute, start, save, finish, whole
        self._done: dict[str, Part] = {}
        self._tasks: dict[str, dict] | None = None
        self._lock = threading.RLock()  # one completion, or one switch to the whole build, at a time
        self.fallback: Snapshot | None = None
        self.started = False  # a completion has been started in the background
        self.dropped = False  # the snapshot was replaced: a background completion stops

    def get(self, model: str) -> Part:
        """The model's part (without its entries), computed on first use."""
        found = self._done.get(model)
        if found is not None:
            return found
        if self.fallback is None:
            try:
                found = self._compute(model)
            except _Elsewhere:
                return self._switch().get(model)
        else:
            w = self.fallback
            found = Part([], w.summaries[model], w.models[model], {}, w.pairs[model])
        return self._done.setdefault(model, found)

    def _switch(self) -> Parts:
        with self._lock:
            if self.fallback is None:
                self.fallback = self._whole()
                self._done.clear()
        return self

    def tasks(self, background: bool = False) -> dict[str, dict]:
        """Every part computed (in model order, the first bad file raising as the whole build raises), then
        the task summaries they fold to (in the ``background``: until the snapshot is ``dropped``)."""
        from ..publish.index import finish_tasks, merge_tasks

        with self._lock:
            if self._tasks is None:
                try:
                    if len(self._done) < len(self.names):
                        self._start()
                    for n, model in enumerate(self.names, 1):
                        if background and self.dropped:  # a newer snapshot replaced this one
                            return {}
                        self.get(model)
                        if n % SAVED == 0:  # a server stopped before the end still leaves these to the next start
                            self._save()
                    self._finish()
                except _Elsewhere:
                    self._switch()
                if self.fallback is not None:
                    self._tasks = self.fallback.tasks
                else:
                    tasks: dict[str, dict] = {}
                    for model in self.names:
                        merge_tasks(tasks, self._done[model].tasks)
                    self._tasks = finish_tasks(tasks)
            return self._tasks

    def fill(self) -> None:
        """Compute every part in a background thread (once), until done or ``dropped``; an error waits for a
        route that needs them all."""
        with self._lock:
            if self.started or self._tasks is not None:
                return
            self.started = True

        def run() -> None:
            try:
                self.tasks(background=True)
            except Exception:  # noqa: BLE001 (raised again to the route that needs it)
                pass

        threading.Thread(target=run, name="zoo-serve-parts", daemon=True).start()


class Lazy(Mapping[str, Any]):
    """One field of every model's part, by model, in model order: a lookup computes that model's part only;
    going through the values computes every part first (``Parts.tasks``)."""

    def __init__(self, parts: Parts, field: Callable[[Part], Any]) -> None:
        self.parts = parts
        self.field = field

    def __getitem__(self, model: str) -> Any:
        if model not in self.parts.known:
            raise KeyError(model)
        return self.field(self.parts.get(model))

    def __contains__(self, model: object) -> bool:
        return model in self.parts.known

    def __iter__(self) -> Iterator[str]:
        return iter(self.parts.names)

    def __len__(self) -> int:
        return len(self.parts.names)

    def values(self) -> ValuesView[Any]:
        self.parts.tasks()
        return {m: self.field(self.parts.get(m)) for m in self.parts.names}.values()

    def items(self) -> ItemsView[str, Any]:
        self.parts.tasks()
        return {m: self.field(self.parts.get(m)) for m in self.parts.names}.items()


class Links:
    """The table's parent links: each checkpoint's children (by model, then step) and, per model, the other
    models' checkpoints whose parent is one of its own (``publish.index.children_by_model``)."""

    def __init__(self, links: Iterable[tuple[str, int, str]] = ()) -> None:
        self.children: dict[str, list[str]] = {}
        self.kids: dict[str, list[str]] = {}
        for model, step, parent in sorted(links, key=lambda x: (x[0], x[1])):
            ref = f"{model}@{step}"
            self.children.setdefault(parent, []).append(ref)
            if parent.split("@", 1)[0] != model:
                self.kids.setdefault(parent.split("@", 1)[0], []).append(ref)

    def cut(self, allowed: Callable[[str], bool]) -> Links:
        """The links a reader of only the allowed models sees: none from or to another model."""
        out = Links()
        out.children = {p: [c for c in cs if allowed(c.split("@", 1)[0])] for p, cs in self.children.items()
                        if allowed(p.split("@", 1)[0])}
        out.kids = {m: [c for c in cs if allowed(c.split("@", 1)[0])] for m, cs in self.kids.items() if allowed(m)}
        return out


class ByRef(Mapping[str, dict]):
    """A snapshot's entries by ``MODEL@STEP``; a lookup builds only that model's entries."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def __getitem__(self, ref: str) -> dict:
        model = ref.rsplit("@", 1)[0] if isinstance(ref, str) else ""
        return self.snap.indexed(model)[ref]

    def __iter__(self) -> Iterator[str]:
        return (e["ref"] for e in self.snap.entries)

    def __len__(self) -> int:
        return len(self.snap.entries)


class Snapshot:
    """A revision's zoo, ready to serve: the model list, model summaries and tasks built once; each model's
    entries built when a route asks for them (the last ``RECENT`` models' kept), or every model's at once for
    the routes that serve every checkpoint (``entries``: the page's data.js, /files/by-sha256)."""

    def __init__(self, rev: str | None, commit: str | None, models: Mapping[str, ModelView],
                 tasks: dict[str, dict] | Parts, summaries: Mapping[str, dict], load: Callable[[str], list[dict]],
                 links: Links, pairs: Mapping[str, frozenset[tuple[str, str]]],
                 libraries: dict[str, str] | None = None) -> None:
        self.rev = rev                  # the revision asked for (None: the working tree)
        self.commit = commit            # its commit (None: the working tree)
        self.models = models            # sorted by id
        self._tasks = tasks             # or the parts that fold them, once every part is computed
        self.summaries = summaries      # mark_best's per-model summary
        self.links = links
        self.pairs = pairs              # model -> (task, dataset) of its checkpoints
        self.archs = {s["arch"] for s in summaries.values()} if isinstance(summaries, dict) else set()
        self.libraries = dict(libraries or {})  # arch -> the Hub's library_name (publish.index.libraries)
        self.cards: dict[str, tuple[str, str]] = {}  # model -> (its releases and stages, card markdown), lazily
        self.orders: dict[str, tuple[list[ModelView], list[ModelView]]] = {}  # sort field -> order
        self.pages: dict[str, bytes] = {}  # the versions listed -> the page's data.js, built once
        self.by_ref = ByRef(self)
        self._load = load
        self._all: list[dict] | None = None
        self._every: dict[str, dict[str, dict]] | None = None
        self._recent: OrderedDict[str, dict[str, dict]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def tasks(self) -> dict[str, dict]:
        """Every task's summary (folded from every model's part: computed first if they are not yet)."""
        return self._tasks if isinstance(self._tasks, dict) else self._tasks.tasks()

    def complete(self) -> None:
        """Compute every model's part now (a snapshot built whole has them all)."""
        if isinstance(self._tasks, Parts):
            self._tasks.tasks()

    def indexed(self, model: str) -> dict[str, dict]:
        """One model's entries by ref, in step order (empty for a model the snapshot does not hold)."""
        if model not in self.models:
            return {}
        if self._every is not None:
            return self._every[model]
        with self._lock:
            found = self._recent.get(model)
            if found is not None:
                self._recent.move_to_end(model)
                return found
        found = {e["ref"]: e for e in self._load(model)}
        with self._lock:
            self._recent[model] = found
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)
        return found

    def entries_of(self, model: str) -> list[dict]:
        """One model's entries, by step."""
        return list(self.indexed(model).values())

    @property
    def entries(self) -> list[dict]:
        """Every checkpoint, by model and step: built on first use and kept (only routes that serve them all)."""
        if self._all is None:
            self.complete()  # every file checked first, as when the listing read them all
            every = {m: self.indexed(m) for m in self.models}
            with self._lock:
                self._every = every
                self._all = [e for m in self.models for e in every[m].values()]
                self._recent.clear()
        return self._all

    def order(self, sort: str, key: Callable[[ModelView], tuple]) -> tuple[list[ModelView], list[ModelView]]:
        """The models with a value for ``sort``, ascending by ``key``, and those without, by id: sorted on
        first use per field, so a request only filters (the models' order never changes within a snapshot)."""
        if sort not in self.orders:
            views = list(self.models.values())
            self.orders[sort] = (sorted((v for v in views if key(v)[0] is False), key=key),
                                 sorted((v for v in views if key(v)[0] is True), key=lambda v: v.id))
        return self.orders[sort]

    def card(self, model: str, registry: Mapping[str, Any] | None = None) -> str:
        """The model card (markdown with YAML front matter), rendered from the model's entries, the other models'
        checkpoints made from it and ``registry``, its releases and stages as ``zoo/metrics/registry.json`` has
        them (the static card's "Releases" section). Those are tags, read per request, so the card is kept per
        registry state: a stage move renders it again."""
        state = json.dumps(registry, sort_keys=True)
        held = self.cards.get(model)
        if held is None or held[0] != state:
            from ..publish.index import render_card

            summary = self.summaries[model]
            held = (state, render_card(model, self.entries_of(model), {**summary, **(registry or {})},
                                       self.links.kids.get(model, ()), self.libraries.get(summary["arch"], "pytorch")))
            self.cards[model] = held
        return held[1]


def scoped(snap: Snapshot, allowed: Callable[[str], bool]) -> Snapshot:
    """What a token reading only some models sees of a snapshot: their entries, summaries and tasks, every link
    to a model it does not read cut (a parent from one reads as none, children and base models left out), so
    no route built on it names, counts or serves another model."""
    def shown(ref: str) -> bool:
        return allowed(ref.split("@", 1)[0])

    def load(model: str) -> list[dict]:
        if not allowed(model):
            return []
        return [{**e, "parent": e["parent"] if e.get("parent") and shown(e["parent"]) else None,
                 "children": [c for c in e["children"] if shown(c)]} for e in snap.entries_of(model)]

    models = {m: ModelView(v.id, {**v.summary, "base_models": [p for p in v.summary["base_models"] if shown(p)]},
                           v.search_text, v.facets)
              for m, v in snap.models.items() if allowed(m)}
    used: dict[str, set[str]] = {}
    for m in models:
        for task, dataset in snap.pairs[m]:
            used.setdefault(task, set()).add(dataset)
    tasks = {t: {**v, "datasets": [d for d in v["datasets"] if d in used[t]]} for t, v in snap.tasks.items() if t in used}
    return Snapshot(snap.rev, snap.commit, models, tasks, {m: v for m, v in snap.summaries.items() if allowed(m)}, load,
                    snap.links.cut(allowed), {m: snap.pairs[m] for m in models}, libraries=snap.libraries)


def part(model: str, rows: list[dict[str, str]], records: Mapping[str, dict],
         outdated: Callable[[dict[str, str], dict], str | None] | None, links: Links | None) -> Part:
    """One model's part of a snapshot, from its rows and the stored records (``links``: None while the links
    are not known yet, which only leaves each entry's children empty)."""
    from ..entities import Checkpoint
    from ..publish.index import build_entries, evaluated, fold_tasks, mark_best

    current = [r for r in rows if (records.get(f"{r['model']}@{r['step']}") or {}).get("sha256") == r["sha256"]]
    results = {f"{r['model']}@{r['step']}": records[f"{r['model']}@{r['step']}"] for r in current}
    entries = build_entries(current, results)
    tasks = fold_tasks({}, evaluated(entries), results)
    for r in rows:
        ref = f"{r['model']}@{r['step']}"
        if ref not in results:
            d = Checkpoint.dict_from_row(r)
            d.update(status="replaced" if ref in records else "unevaluated", metrics={}, selection={}, evaluation=None,
                     reproduced_value=None, delta=None, reproduced_agrees=None)
            entries.append(d)
        elif outdated is not None and (why := outdated(r, results[ref])):
            stale = next(e for e in entries if e["ref"] == ref)
            if stale["status"] == "evaluated":
                stale.update(status="stale", stale=why)
    entries.sort(key=lambda e: (e["model"], e["step"]))
    summary = mark_best(entries)[model]
    for e in entries:
        e["evaluated"] = bool(e["metrics"])
        e["children"] = list(links.children.get(e["ref"], ())) if links is not None else []
    return Part(entries, summary, _view(model, entries, summary), tasks,
                frozenset((e["task"], e["dataset"]) for e in entries))


def _view(model: str, es: list[dict], s: dict[str, Any]) -> ModelView:
    """The model as the API lists it."""
    by_ref = {e["ref"]: e for e in es}
    best = by_ref[s["best"]]
    tags = tuple(sorted({t for e in es for t in e.get("tags") or ()}))
    parents = sorted({e["parent"] for e in es if e.get("parent") and not e["parent"].startswith(model + "@")})
    summary = {
        "id": model, "task": s["task"], "arch": s["arch"], "dataset": s["dataset"], "license": s["license"],
        "licenses": s["licenses"], "split": s["split"],
        "tags": list(tags), "checkpoints": s["checkpoints"], "best": s["best"], "latest": s["latest"],
        "primary_metric": s["primary_metric"], "higher_is_better": s["higher_is_better"],
        "best_value": s["best_value"], "metrics": dict(best["metrics"]),
        "size_bytes": sum(int(e["size_bytes"]) for e in es),
        "lastModified": max(str(e.get("created") or "") for e in es),
        "description": by_ref[s["latest"]].get("description") or "",
        "base_models": parents,
        # how many of its checkpoints are in each state (evaluated, failed, unevaluated, stale)
        "states": {k: sum(1 for e in es if e["status"] == k) for k in sorted({e["status"] for e in es})},
    }
    text = " ".join([model, summary["description"], s["arch"], s["task"], s["dataset"], *tags]).lower()
    facets = {"task": (s["task"],), "arch": (s["arch"],), "license": tuple(s["licenses"]),
              "dataset": (s["dataset"],), "tag": tags}
    return ModelView(model, summary, text, facets)


def assemble(rev: str | None, commit: str | None, parts: Iterable[tuple[str, Part]], links: Links,
             load: Callable[[str], list[dict]]) -> Snapshot:
    """A snapshot from every model's part (in model order): the listing, summaries and tasks are kept, the
    entries are left to ``load``."""
    from ..publish.index import finish_tasks, merge_tasks

    views: dict[str, ModelView] = {}
    summaries: dict[str, dict] = {}
    pairs: dict[str, frozenset[tuple[str, str]]] = {}
    tasks: dict[str, dict] = {}
    for model, p in parts:
        views[model], summaries[model], pairs[model] = p.view, p.summary, p.pairs
        merge_tasks(tasks, p.tasks)
    order = sorted(views)
    return Snapshot(rev, commit, {m: views[m] for m in order}, finish_tasks(tasks),
                    {m: summaries[m] for m in order}, load, links, pairs)


def build(rows: list[dict[str, str]], records: dict[str, dict], rev: str | None, commit: str | None,
          outdated: Callable[[dict[str, str], dict], str | None] | None = None) -> Snapshot:
    """The snapshot of these rows and their stored evaluation records, every entry built now (a revision's
    table, read whole from git); ``outdated(row, record)``: why a record of the row's bytes was made under
    another key than the code and conf/ here would use (None: it was not)."""
    links = Links((r["model"], int(r["step"]), r["parent"]) for r in rows if r["parent"])
    by_model: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    parts = {m: part(m, rs, records, outdated, links) for m, rs in sorted(by_model.items())}
    snap = assemble(rev, commit, parts.items(), links, lambda m: parts[m].entries)
    snap.entries  # noqa: B018 (built: every model's entries are at hand)
    return snap


class _Elsewhere(Exception):
    """An evaluation file holds records of another model than its name says: only the whole read is right."""


def build_worktree(zoo: Any, check: KeyCheck | None) -> Snapshot:
    """The working tree's snapshot, one model at a time: its rows (from the table's indexed copy when fresh)
    and its own evaluation file, so the first answer holds one model's entries at a time, not every
    checkpoint's; each model's part is computed when a route first needs it (``Parts``) and kept in the user
    cache (``part_cache``) while its rows, its file and the key check are the same. A model's entries are
    rebuilt the same way when a route asks for them."""
    from ..catalog.records import read_results
    from .part_cache import PartCache

    folder = Path(zoo.root) / layout.EVALUATIONS_DIR
    cache = PartCache(Path(zoo.root))

    def records_of(model: str) -> dict[str, dict]:
        found = read_results(folder, [model])
        if any(ref.rsplit("@", 1)[0] != model for ref in found):
            raise _Elsewhere(model)
        return found

    texts, linked, combos = zoo.source.outline(texts=False)  # each model's text when first needed
    names = list(texts) or zoo.source.model_names()
    checked = json.dumps(sorted([*c, None if check is None else check.hashed(
        {"arch": c[0], "task": c[1], "dataset": c[2], "sha256": "0" * 64})] for c in combos))

    def compute(model: str) -> Part:
        text = texts.get(model)
        key = cache.key(zoo.source.model_text(model) if text is None else text, folder / f"{model}.json", checked)
        found = cache.get(model, key)
        if found is None:
            found = part(model, zoo.source.model_rows(model), records_of(model), check, None)
            cache.put(model, key, found)
            found.entries = []
        return found

    def every() -> None:  # every model's text at once: one query instead of one a model
        texts.update(zoo.source.outline()[0])

    def finish() -> None:
        for name in sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else ():
            if name not in parts.known:  # read as the whole read reads it: a bad file fails the snapshot
                found = read_results(folder, [name])
                if any(ref.rsplit("@", 1)[0] in parts.known for ref in found):
                    raise _Elsewhere(name)
        cache.save()

    def load(model: str) -> list[dict]:
        if parts.fallback is None:
            try:
                return part(model, zoo.source.model_rows(model), records_of(model), check, snap.links).entries
            except _Elsewhere:
                parts._switch()
        assert parts.fallback is not None
        return parts.fallback.entries_of(model)

    parts = Parts(names, compute, every, cache.save, finish, lambda: _whole(zoo, None, check))
    snap = Snapshot(None, None, Lazy(parts, lambda p: p.view), parts, Lazy(parts, lambda p: p.summary), load,
                    Links(linked), Lazy(parts, lambda p: p.pairs))
    snap.archs = {c[0] for c in combos}
    return snap


class Snapshots:
    """Snapshots by revision, rebuilt when what they come from changes (checked at most once a second)."""

    def __init__(self, location: str, open_zoo: Callable[[str | None], Any]) -> None:
        self.location = location
        self._open = open_zoo
        self._lock = threading.Lock()
        self._built: dict[str, tuple[object, Snapshot]] = {}
        self._checked: dict[str | None, tuple[float, str, object]] = {}  # rev -> (when, key, stamp)

    def get(self, rev: str | None, every: bool = True) -> Snapshot:
        """The snapshot of ``rev`` (a branch, tag or commit; None: the working tree), with every model's part
        computed (and so every evaluation file checked) unless not ``every``: then each part is computed when
        first used, and its errors are raised there."""
        snap = self._get(rev)
        if every:
            snap.complete()
        return snap

    def _get(self, rev: str | None) -> Snapshot:
        now = time.monotonic()
        seen = self._checked.get(rev)
        if seen is not None and now - seen[0] < 1.0 and seen[1] in self._built:
            return self._built[seen[1]][1]
        zoo = self._open(rev)
        key, stamp = (WORKTREE, _worktree_stamp(Path(zoo.root))) if zoo.revision is None else (zoo.revision, None)
        with self._lock:
            cached = self._built.get(key)
            if cached is None or cached[0] != stamp:
                snap = _build(zoo, rev)
                from ..publish.index import libraries

                snap.libraries.update(libraries(zoo, snap.archs))
                if cached is not None and isinstance(cached[1]._tasks, Parts):
                    cached[1]._tasks.dropped = True
                cached = (stamp, snap)
                self._built[key] = cached
                if len(self._built) > 16:  # a handful of revisions in memory, the oldest dropped
                    self._built.pop(next(k for k in self._built if k != key))
            self._checked[rev] = (now, key, stamp)
        return cached[1]

    def fill(self) -> None:
        """Start computing, in the background, every part of the snapshots not yet complete."""
        for _, snap in list(self._built.values()):
            if isinstance(snap._tasks, Parts):
                snap._tasks.fill()


def _build(zoo: Any, rev: str | None) -> Snapshot:
    """The working tree's snapshot model by model; a revision's (or a working tree whose evaluation files hold
    another model's records) from every row and record at once."""
    outdated = _key_check(zoo) if zoo.revision is None else None
    if zoo.revision is None:
        return build_worktree(zoo, outdated)
    return _whole(zoo, rev, outdated)


def _whole(zoo: Any, rev: str | None, outdated: KeyCheck | None) -> Snapshot:
    """The snapshot from every row and record at once: a revision's, or a working tree whose evaluation files hold
    another model's records."""
    records = zoo.source.stored_records()  # every record: one of other bytes shows as replaced
    return build(zoo.rows(), records, rev, zoo.revision, outdated)


class KeyCheck:
    """Why a record was made under another evaluation code or config than this zoo's now (``evaluation.plan``:
    the part of the memo key known without loading data)."""

    def __init__(self, registry: Any, hashes: tuple[str, str]) -> None:
        self.registry = registry
        self.hashes = hashes
        self.known: dict[tuple[str, str, str], tuple[str, str] | None] = {}

    def hashed(self, row: dict[str, str]) -> tuple[str, str] | None:
        """The code and config hashes a record of this row's architecture, task and dataset is made under now."""
        from ..evaluation.plan import key_for

        combo = (row["arch"], row["task"], row["dataset"])
        if combo not in self.known:
            try:
                key = key_for(row, self.registry, self.hashes[0], self.hashes[1], "", "")
                self.known[combo] = (key.code_hash, key.config_hash)
            except (ZooError, KeyError):
                self.known[combo] = None
        return self.known[combo]

    def __call__(self, row: dict[str, str], record: dict) -> str | None:
        from ..evaluation.plan import Key

        hashed = self.hashed(row)
        if hashed is None:
            return None
        old = Key.of_record(record)
        now = Key(old.sha256, hashed[0], hashed[1], old.params_hash, old.data_hash)
        return None if now == old else now.why_not(old)


def _key_check(zoo: Any) -> KeyCheck | None:
    """The working tree's KeyCheck, or None when the registries cannot be read."""
    from ..evaluation.plan import package_code_hash, zoo_code_hash

    try:
        registry = zoo.registry()
    except ZooError:
        return None
    return KeyCheck(registry, (package_code_hash(), zoo_code_hash(registry.code_dir)))


def _worktree_stamp(root: Path) -> object:
    """What a working tree's snapshot depends on: the table's and the evaluation files' stat."""
    def stat(p: Path) -> tuple[int, int]:
        st = p.stat()
        return st.st_mtime_ns, st.st_size

    try:
        table = stat(table_file(root))  # a symlinked table is refused before anything reads it
    except OSError as e:
        raise ZooError(f"{root / layout.TABLE_PATH}: cannot read it ({e.strerror})") from None
    folder = root / layout.EVALUATIONS_DIR
    evaluations = tuple(sorted((p.name, stat(p)) for p in folder.glob("*.json"))) if folder.is_dir() else ()
    return table, evaluations
