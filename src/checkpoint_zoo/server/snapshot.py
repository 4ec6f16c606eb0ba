"""What ``zoo serve`` shows of one revision: entries, model summaries, lineage and search text, built once.

A snapshot is computed from the table and the evaluation records (the working tree's, or a revision's
from git), exactly as the index stage computes ``zoo/index.json``, but without writing anything and
without requiring every row to be evaluated: each entry has a ``status``, ``evaluated``, ``failed`` (with
the ``error`` its evaluation raised), ``unevaluated`` (a fresh ``zoo add`` before ``dvc repro``),
``replaced`` (its record is of other bytes: no metrics) or, in the working tree, ``stale`` (evaluated under
an older key: its metrics, with ``stale`` saying why), and every route serves every state. Snapshots are
cached by what they were built from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import layout
from ..catalog.table import table_file
from ..errors import ZooError

WORKTREE = ""  # the key of the working tree's snapshot (any other key is a commit)


@dataclass(frozen=True)
class ModelView:
    """One model as the API lists it (fields modelled on the Hugging Face Hub's ModelInfo)."""

    id: str
    summary: dict[str, Any]         # the API's JSON object for the model list
    search_text: str                # lower-case text that ?search= matches
    facets: dict[str, tuple[str, ...]]  # task, arch, license, dataset, tags


@dataclass(frozen=True)
class Snapshot:
    """A revision's zoo, ready to serve: built once, read by every request."""

    rev: str | None                  # the revision asked for (None: the working tree)
    commit: str | None               # its commit (None: the working tree)
    entries: list[dict]              # one per checkpoint, as zoo/index.json has them (+ lineage)
    by_ref: dict[str, dict]
    models: dict[str, ModelView]     # sorted by id
    tasks: dict[str, dict]
    summaries: dict[str, dict]       # mark_best's per-model summary
    cards: dict[str, str] = field(default_factory=dict)  # model -> card markdown, filled lazily
    orders: dict[str, tuple[list[ModelView], list[ModelView]]] = field(default_factory=dict)  # sort field -> order
    pages: dict[str, bytes] = field(default_factory=dict)  # the versions listed -> the page's data.js, built once
    groups: dict[str, Any] = field(default_factory=dict)  # entries by model, children by model: built on first card
    libraries: dict[str, str] = field(default_factory=dict)  # arch -> the Hub's library_name (publish.index.libraries)

    def order(self, sort: str, key: Callable[[ModelView], tuple]) -> tuple[list[ModelView], list[ModelView]]:
        """The models with a value for ``sort``, ascending by ``key``, and those without, by id: sorted on
        first use per field, so a request only filters (the models' order never changes within a snapshot)."""
        if sort not in self.orders:
            views = list(self.models.values())
            self.orders[sort] = (sorted((v for v in views if key(v)[0] is False), key=key),
                                 sorted((v for v in views if key(v)[0] is True), key=lambda v: v.id))
        return self.orders[sort]

    def card(self, model: str) -> str:
        """The model card (markdown with YAML front matter), rendered on first use; the entries grouped by model
        and each model's children across models are computed once per snapshot, not per card (a pass over
        every entry, and a sort, at 100,000 checkpoints)."""
        if model not in self.cards:
            from ..publish.index import children_by_model, render_card

            if "children" not in self.groups:
                by_model: dict[str, list[dict]] = {}
                for e in self.entries:
                    by_model.setdefault(e["model"], []).append(e)
                self.groups["entries"] = by_model
                self.groups["children"] = children_by_model(self.entries)
            entries = self.groups["entries"].get(model, [])
            kids = self.groups["children"].get(model, ())
            self.cards[model] = render_card(model, entries, self.summaries[model], kids,
                                            self.libraries.get(self.summaries[model]["arch"], "pytorch"))
        return self.cards[model]


def scoped(snap: Snapshot, allowed: Callable[[str], bool]) -> Snapshot:
    """What a token reading only some models sees of a snapshot: their entries, summaries and tasks, every link
    to a model it does not read cut (a parent from one reads as none, children and base models left out), so
    no route built on it names, counts or serves another model."""
    def shown(ref: str) -> bool:
        return allowed(ref.split("@", 1)[0])

    entries = []
    for e in snap.entries:
        if allowed(e["model"]):
            parent = e.get("parent")
            entries.append({**e, "parent": parent if parent and shown(parent) else None,
                            "children": [c for c in e["children"] if shown(c)]})
    models = {m: ModelView(v.id, {**v.summary, "base_models": [p for p in v.summary["base_models"] if shown(p)]},
                           v.search_text, v.facets)
              for m, v in snap.models.items() if allowed(m)}
    used: dict[str, set[str]] = {}
    for e in entries:
        used.setdefault(e["task"], set()).add(e["dataset"])
    tasks = {t: {**v, "datasets": [d for d in v["datasets"] if d in used[t]]} for t, v in snap.tasks.items() if t in used}
    return Snapshot(snap.rev, snap.commit, entries, {e["ref"]: e for e in entries}, models, tasks,
                    {m: v for m, v in snap.summaries.items() if allowed(m)}, libraries=snap.libraries)


def build(rows: list[dict[str, str]], records: dict[str, dict], rev: str | None, commit: str | None,
          outdated: Callable[[dict[str, str], dict], str | None] | None = None) -> Snapshot:
    """The snapshot of these rows and their stored evaluation records; ``outdated(row, record)``: why a record
    of the row's bytes was made under another key than the code and conf/ here would use (None: it was not)."""
    from ..entities import Checkpoint
    from ..publish.index import build_entries, evaluated, mark_best, task_summaries

    current = [r for r in rows if (records.get(f"{r['model']}@{r['step']}") or {}).get("sha256") == r["sha256"]]
    results = {f"{r['model']}@{r['step']}": records[f"{r['model']}@{r['step']}"] for r in current}
    entries = build_entries(current, results)
    tasks = task_summaries(evaluated(entries), results)
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
    summaries = mark_best(entries)
    by_ref = {e["ref"]: e for e in entries}
    children: dict[str, list[str]] = {}
    for e in entries:
        if e.get("parent"):
            children.setdefault(e["parent"], []).append(e["ref"])
    for e in entries:
        e["evaluated"] = bool(e["metrics"])
        e["children"] = children.get(e["ref"], [])
    by_model: dict[str, list[dict]] = {}
    for e in entries:
        by_model.setdefault(e["model"], []).append(e)
    models = {}
    for model in sorted(by_model):
        es, s = by_model[model], summaries[model]
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
        models[model] = ModelView(model, summary, text, facets)
    return Snapshot(rev, commit, entries, by_ref, models, tasks, summaries)


class Snapshots:
    """Snapshots by revision, rebuilt when what they come from changes (checked at most once a second)."""

    def __init__(self, location: str, open_zoo: Callable[[str | None], Any]) -> None:
        self.location = location
        self._open = open_zoo
        self._lock = threading.Lock()
        self._built: dict[str, tuple[object, Snapshot]] = {}
        self._checked: dict[str | None, tuple[float, str, object]] = {}  # rev -> (when, key, stamp)

    def get(self, rev: str | None) -> Snapshot:
        """The snapshot of ``rev`` (a branch, tag or commit; None: the working tree)."""
        now = time.monotonic()
        seen = self._checked.get(rev)
        if seen is not None and now - seen[0] < 1.0 and seen[1] in self._built:
            return self._built[seen[1]][1]
        zoo = self._open(rev)
        key, stamp = (WORKTREE, _worktree_stamp(Path(zoo.root))) if zoo.revision is None else (zoo.revision, None)
        with self._lock:
            cached = self._built.get(key)
            if cached is None or cached[0] != stamp:
                rows = zoo.rows()
                records = zoo.source.stored_records()  # every record: one of other bytes shows as replaced
                outdated = _key_check(zoo) if zoo.revision is None else None
                snap = build(rows, records, rev, zoo.revision, outdated)
                from ..publish.index import libraries

                snap.libraries.update(libraries(zoo, {s["arch"] for s in snap.summaries.values()}))
                cached = (stamp, snap)
                self._built[key] = cached
                if len(self._built) > 16:  # a handful of revisions in memory, the oldest dropped
                    self._built.pop(next(k for k in self._built if k != key))
            self._checked[rev] = (now, key, stamp)
        return cached[1]


def _key_check(zoo: Any) -> Callable[[dict[str, str], dict], str | None] | None:
    """Why a record was made under another evaluation code or config than this zoo's now (``evaluation.plan``:
    the part of the memo key known without loading data), or None when the registries cannot be read."""
    from ..evaluation.plan import Key, key_for, package_code_hash, zoo_code_hash

    try:
        registry = zoo.registry()
    except ZooError:
        return None
    hashes = (package_code_hash(), zoo_code_hash(registry.code_dir))
    known: dict[tuple[str, str, str], tuple[str, str] | None] = {}

    def outdated(row: dict[str, str], record: dict) -> str | None:
        combo = (row["arch"], row["task"], row["dataset"])
        if combo not in known:
            try:
                key = key_for(row, registry, hashes[0], hashes[1], "", "")
                known[combo] = (key.code_hash, key.config_hash)
            except (ZooError, KeyError):
                known[combo] = None
        hashed = known[combo]
        if hashed is None:
            return None
        old = Key.of_record(record)
        now = Key(old.sha256, hashed[0], hashed[1], old.params_hash, old.data_hash)
        return None if now == old else now.why_not(old)

    return outdated


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
