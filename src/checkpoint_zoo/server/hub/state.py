"""Revisions to checkpoints: what ``main``, ``best``, ``step-300``, ``v1@300``, a git ref, a registry name
(``v1.2.0``, ``prod``) or a commit id the server handed out means for one model, and the files it serves.

Commit ids are remembered (a bounded map id -> (git revision, checkpoint)) and, once forgotten, found again
among the served revision's checkpoints, so an id stays a valid revision for as long as its content is served.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any

from ...errors import ZooError
from . import files as hubfiles
from . import names
from .files import HubFile, Served

MAX_IDS = 65536
# the model patterns of the request's token (None: no token file), set by the routes for the request's duration
READER: ContextVar[tuple[str, ...] | None] = ContextVar("checkpoint_zoo_hub_reader", default=None)


class HubError(Exception):
    """A 4xx/5xx answer with the Hub's ``X-Error-Code`` (and the commit, when one was resolved)."""

    def __init__(self, status: int, code: str, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.commit = status, code, commit


class HubState:
    """The Hub view of one ``ZooServer``: its namespace, the commit ids handed out, the files built."""

    def __init__(self, server, namespace: str) -> None:
        self.server = server
        self.namespace = namespace
        self._ids: OrderedDict[str, tuple[str | None, str]] = OrderedDict()
        # id(snapshot) -> (snapshot, ref -> (the model's releases and stages, Served))
        self._built: dict[int, tuple[Any, dict[str, tuple[str, Served]]]] = {}
        self._sizes: dict[str, int] = {}  # sha256 -> size of a folder checkpoint's file, once read
        self._lock = threading.Lock()

    # ---- snapshots ------------------------------------------------------------------------------------

    def snapshot(self, git_rev: str | None):
        """The snapshot of a git revision (None: the server's own) as the request's token sees it (``READER``:
        only its models, links to others cut, so cards and commit ids are built from that), or RevisionNotFound."""
        rev = self.server.default_rev if git_rev is None else git_rev
        if rev is not None and names.git_ref_problem(rev):
            raise HubError(404, "RevisionNotFound", f"revision {rev[:80]!r}: not a branch, tag or commit")
        try:
            snap = self.server.snapshots.get(rev)
        except ZooError as e:
            raise HubError(404, "RevisionNotFound", f"revision {rev!r}: {str(e).splitlines()[0][:200]}") from None
        return self.server.view(snap, READER.get())

    def model_of(self, namespace: str, model: str):
        """The served revision's snapshot holding ``namespace/model``, or RepoNotFound."""
        snap = self.snapshot(None)
        if namespace != self.namespace or model not in snap.models:
            raise HubError(404, "RepoNotFound", f"repository {namespace[:40]}/{model[:96]} not found")
        return snap

    # ---- revisions ------------------------------------------------------------------------------------

    def resolve(self, namespace: str, model: str, rev: str) -> Served:
        """The checkpoint ``rev`` names for this model, with its files (RepoNotFound / RevisionNotFound)."""
        snap = self.model_of(namespace, model)
        if names.HEX40.fullmatch(rev):
            found = self._from_id(snap, model, rev)
            if found is not None:
                return found
        git_rev, selector = names.split_revision(rev)
        try:
            target = snap if git_rev is None else self.snapshot(git_rev)
        except HubError:
            if "@" in rev:
                raise
            target, selector, git_rev = snap, rev, None  # not a git ref: a registry name (v1.2.0, prod) of the served zoo
        entry = self._select(target, model, selector, git_rev)
        if entry is None:
            raise HubError(404, "RevisionNotFound", f"revision {rev[:80]!r} names no checkpoint of {model}")
        return self.served(target, entry, git_rev, self.releases(model))

    def releases(self, model: str) -> dict | None:
        """The model's releases and stages, read from the tags now: its README.md shows them, so a stage move
        changes that file, its etag and the commit id on the next request."""
        return self.server.releases.of(model).get(model)

    def _select(self, snap, model: str, selector: str, git_rev: str | None) -> dict | None:
        view = snap.models.get(model)
        if view is None:
            return None
        if selector in names.ALIASES:
            return snap.by_ref[view.summary[selector]]
        step = names.step_of(selector)
        if step is not None:
            return snap.by_ref.get(f"{model}@{step}")
        try:  # a release or stage name: the zoo's own reference grammar
            ckpt = self.server.zoo(self.server.default_rev if git_rev is None else git_rev).get(f"{model}@{selector}")
        except (ZooError, ValueError):
            return None
        entry = snap.by_ref.get(ckpt.ref)
        return entry if entry is not None and entry["sha256"] == ckpt.sha256 else None

    def _from_id(self, snap, model: str, commit: str) -> Served | None:
        with self._lock:
            known = self._ids.get(commit)
        releases = self.releases(model)
        if known is not None:
            git_rev, ref = known
            target = snap if git_rev is None else self.snapshot(git_rev)
            if ref in target.by_ref:
                served = self.served(target, target.by_ref[ref], git_rev, releases)
                if served.commit == commit:
                    return served
        for entry in snap.entries_of(model):  # derivable again: among the served revision's checkpoints of the model
            served = self.served(snap, entry, None, releases)
            if served.commit == commit:
                return served
        return None

    # ---- files ----------------------------------------------------------------------------------------

    def served(self, snap, entry: dict, git_rev: str | None, releases: dict | None) -> Served:
        """The files and commit id of one checkpoint of a snapshot, built once per snapshot and state of the
        model's releases and stages (``releases``, which its README.md shows)."""
        state = json.dumps(releases, sort_keys=True)
        with self._lock:
            cached = self._built.get(id(snap))
            held = cached[1].get(entry["ref"]) if cached is not None and cached[0] is snap else None
            if held is not None and held[0] == state:
                return held[1]
        served = self._build(snap, entry, git_rev, releases)
        with self._lock:
            cached = self._built.get(id(snap))
            if cached is None or cached[0] is not snap:
                if len(self._built) >= 16:
                    self._built.pop(next(iter(self._built)))
                cached = (snap, {})
                self._built[id(snap)] = cached
            cached[1][entry["ref"]] = (state, served)
            self._ids[served.commit] = (git_rev, entry["ref"])
            self._ids.move_to_end(served.commit)
            while len(self._ids) > MAX_IDS:
                self._ids.popitem(last=False)
        return served

    def _build(self, snap, entry: dict, git_rev: str | None, releases: dict | None) -> Served:
        from ...inference import InputContract

        zoo = self.server.zoo(snap.rev)
        registry = zoo.registry()
        spec = registry.arch(entry["arch"])
        library = hubfiles.library_of(dict(spec.config))
        weights = hubfiles.weight_files(entry)
        generated: list[HubFile] = []
        if library != "transformers" or "config.json" not in {f.name for f in weights}:
            dataset = registry.dataset(entry["dataset"])
            own = self._own_config(zoo, entry) if "config.json" in {f.name for f in weights} else {}
            config = hubfiles.generated_config(entry, spec, list(dataset.labels),
                                               InputContract.from_spec(entry["dataset"], dataset.input), own)
            generated.append(hubfiles.generated_file("config.json", hubfiles.json_bytes(config)))
            weights = [f for f in weights if f.name != "config.json"]
        try:
            card = snap.card(entry["model"], releases)
        except (KeyError, AttributeError, StopIteration):  # a model nothing has evaluated yet has a bare card
            card = f"# {entry['model']}\n\n{entry.get('description') or ''}\n"
        text, card_data = hubfiles.card_text(card, entry, library, weights, self.namespace)
        generated.append(hubfiles.generated_file("README.md", text.encode()))
        generated += hubfiles.eval_results(entry)
        commit = hubfiles.commit_id(entry["model"], entry["sha256"], generated)
        by_name = {f.name: f for f in sorted([*weights, *generated], key=lambda f: f.name)}
        created = str(entry.get("created") or "1970-01-01T00:00:00Z").replace("Z", "")
        return Served(entry["model"], entry["ref"], git_rev, commit, by_name, card_data, library,
                      (created if "." in created else created + ".000") + "Z", hubfiles.parameters(entry))

    def _own_config(self, zoo, entry: dict) -> dict[str, Any]:
        try:
            return json.loads(zoo.verified_file(entry["ref"], None, "config.json").read_text())
        except (ZooError, ValueError, OSError):
            return {}

    def known_size(self, f: HubFile) -> int | None:
        """A file's size when known without reading the file: the table's, or one read before."""
        if f.size is not None:
            return f.size
        with self._lock:
            return self._sizes.get(f.sha256)

    def size_of(self, served: Served, f: HubFile) -> int:
        """A file's size: the table's, the generated bytes', or (a folder's file, whose size the table does
        not record) the verified file's, remembered per sha256."""
        known = self.known_size(f)
        if known is not None:
            return known
        size = self.local_file(served, f).stat().st_size
        self.remember_size(f, size)
        return size

    def remember_size(self, f: HubFile, size: int) -> None:
        with self._lock:
            if len(self._sizes) >= MAX_IDS:
                self._sizes.clear()
            self._sizes[f.sha256] = size

    def table_path(self, served: Served, f: HubFile) -> str:
        """The table path of ``f``'s bytes: the checkpoint's file, or a folder checkpoint's member."""
        entry = self.snapshot(served.git_rev).by_ref[served.ref]
        return f"{entry['path']}/{f.member}" if f.member else str(entry["path"])

    def local_file(self, served: Served, f: HubFile):
        """The verified local file holding ``f``'s bytes."""
        rev = self.server.default_rev if served.git_rev is None else served.git_rev
        return self.server.zoo(rev).verified_file(served.ref, None, f.member or None)
