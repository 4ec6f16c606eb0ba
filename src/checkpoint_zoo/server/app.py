"""``zoo serve``: a read-only Starlette app over one zoo: the JSON API, verified downloads and the web UI.

Routes (``?rev=`` on each: a branch, tag or commit; default the server's ``--rev``, else the working tree):
``/api/models``, ``/api/models/{model}``, ``/api/models/{model}/checkpoints/{step}``, ``/api/models/{model}/card``
(the card as HTML, for the page), ``/api/leaderboard``, ``/api/versions``, ``/files/{model}/{step}[/{file}]``
(revalidated: ``no-cache`` + ETag), ``/files/by-sha256/{sha256}[/{name}]`` (content-addressed: ``immutable``), and
the page (``/``, ``/leaderboard.js``, ``/lineage.js``, ``/app.js``, ``/api.js``, ``/style.css``, ``/data.js``;
``/favicon.ico`` is 204). Nothing writes to the zoo; every method but GET and HEAD gets 405.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from itertools import chain
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..catalog import rules
from ..errors import CheckpointNotFoundError, IntegrityError, MissingFileError, NotAZooError, UsageError, ZooError
from . import query
from .query import Filter
from .releases import LiveReleases
from .snapshot import Snapshot, Snapshots, scoped
from .tokens import SCOPE_KEY, allows

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                    "Cross-Origin-Resource-Policy": "same-origin"}


class HttpError(Exception):
    """An error answered as JSON ``{"error": message}`` with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Download(FileResponse):
    """A verified file. Its validator is the ETag (the sha256) alone: the file's mtime is that of a cache
    copy in this clone, not of the bytes at the URL, so no Last-Modified is sent and ``If-Range`` is
    compared with the ETag only."""

    chunk_size = 1024 * 1024  # 64 KiB (Starlette's default) costs a quarter of the throughput on loopback

    def set_stat_headers(self, stat_result) -> None:
        super().set_stat_headers(stat_result)
        del self.headers["last-modified"]

    def _should_use_range(self, http_if_range: str) -> bool:
        return http_if_range == self.headers.get("etag")


class ZooServer:
    """The state behind the routes: where the zoo is, its default revision, cached snapshots and zoos."""

    def __init__(self, location: str, default_rev: str | None = None) -> None:
        self.location = location
        self.default_rev = default_rev
        self._zoos: dict[str | None, tuple[float, Any]] = {}
        self._versions: tuple[bytes, list[dict]] | None = None
        self._scoped: dict[tuple[int, tuple[str, ...]], tuple[Snapshot, Snapshot]] = {}  # a token's view, by patterns
        self._lock = threading.Lock()
        self.snapshots = Snapshots(location, self.zoo)
        self.releases = LiveReleases(lambda: Path(self.zoo(self.default_rev).git_dir))  # tags are the repository's
        self.zoo(default_rev)  # fail at start, not at the first request, on a bad location or revision

    def zoo(self, rev: str | None):
        """A Zoo at ``rev`` (None: the working tree), reused for two seconds (a branch may move)."""
        from ..api import Zoo

        now = time.monotonic()
        with self._lock:
            cached = self._zoos.get(rev)
            if cached is not None and now - cached[0] < 2.0:
                return cached[1]
        zoo = Zoo(self.location, rev=rev)
        with self._lock:
            self._zoos[rev] = (now, zoo)
        return zoo

    def versions(self) -> list[dict]:
        """The branches and tags holding a zoo, recomputed only when a ref moves (each reads a table)."""
        from ..utils.gitcmd import run
        from ..verbs.versions import versions

        git_dir = Path(self.zoo(self.default_rev).git_dir)
        refs = run(git_dir, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/tags").stdout
        with self._lock:
            if self._versions is not None and self._versions[0] == refs:
                return self._versions[1]
        found = [v.to_dict() for v in versions(git_dir)]
        with self._lock:
            self._versions = (refs, found)
        return found

    def rev_of(self, request: Request) -> str | None:
        """The revision a request asks for (``?rev=``), checked before it reaches git."""
        rev = request.query_params.get("rev")
        if rev is None or rev == "":
            return self.default_rev
        if rev.startswith("-") or len(rev) > 256 or any(c in rev for c in " \t\r\n\\\x00~^:?*[") or ".." in rev:
            raise HttpError(400, f"rev {rev[:80]!r}: not a branch, tag or commit of this zoo")
        return rev

    def snapshot(self, request: Request, every: bool = True) -> Snapshot:
        """The snapshot for the request's revision, as the request's token sees it (only the models it reads);
        with every model's part computed unless not ``every`` (the caller then maps errors by ``refused``)."""
        rev = self.rev_of(request)
        patterns = request.scope.get(SCOPE_KEY)
        try:
            snap = self.snapshots.get(rev, every or not (patterns is None or "*" in patterns))
        except ZooError as e:
            raise refused(e) from None
        return self.view(snap, patterns)

    def view(self, snap: Snapshot, patterns: tuple[str, ...] | None) -> Snapshot:
        """``snap`` as a token with these model patterns sees it (None: no token file), built once per token."""
        if patterns is None or "*" in patterns:
            return snap
        key = (id(snap), tuple(patterns))
        with self._lock:
            held = self._scoped.get(key)
        if held is not None and held[0] is snap:
            return held[1]
        reader = {SCOPE_KEY: patterns}
        view = scoped(snap, lambda model: allows(reader, model))
        with self._lock:
            while len(self._scoped) >= 64:
                self._scoped.pop(next(iter(self._scoped)))
            self._scoped[key] = (snap, view)
        return view

    def versions_for(self, request: Request) -> list[dict]:
        """The versions a request's token may see: a token reading only some models gets no release of another
        and no per-version counts or bests of models it does not read (the counts are of the whole zoo, so
        they are left out: null)."""
        found = self.versions()
        patterns = request.scope.get(SCOPE_KEY)
        if patterns is None or "*" in patterns:
            return found
        from ..catalog.releases import tag_kind

        out = []
        for v in found:
            if v["kind"] == "release" and tag_kind(v["name"]) and not allows(request.scope, v["name"].split("@")[0]):
                continue
            best = {k: b for k, b in (v.get("best") or {}).items() if allows(request.scope, str(b.get("ref", "")).split("@")[0])}
            out.append({**v, "models": None, "checkpoints": None, "best": best})
        return out


def refused(e: ZooError) -> HttpError:
    """The answer to a snapshot that cannot be built."""
    if isinstance(e, (UsageError, NotAZooError)):
        return HttpError(400, str(e))
    return HttpError(404 if "unknown revision" in str(e) else 500, _headline(e))


def _headline(error: ZooError) -> str:
    """What an error answer may say: the error's first line, which names the file and the fix. The lines under
    it (a table's problems quote its cells) stay on the server: an answer never carries a file's contents."""
    return str(error).split("\n", 1)[0][:500]


# ---- JSON API --------------------------------------------------------------------------------------------


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    import orjson

    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _limit(request: Request) -> tuple[int, int]:
    def number(name: str, default: int, low: int, high: int) -> int:
        text = request.query_params.get(name)
        if text is None or text == "":
            return default
        if rules.count_problem(text, name) is not None or not low <= int(text) <= high:
            raise HttpError(400, f"{name} {text[:20]!r}: a whole number from {low} to {high}")
        return int(text)

    return number("limit", DEFAULT_LIMIT, 1, MAX_LIMIT), number("offset", 0, 0, rules.MAX_COUNT)


def _sort_key(field: str, snap: Snapshot):
    plain = {"id", "checkpoints", "size_bytes", "lastModified", "best_value", "task", "arch", "license", "dataset"}
    if field not in plain:  # the metrics are known once every model's part is: only a metric's sort waits for them
        metrics = {m for t in snap.tasks.values() for m in t["metrics"]}
        if field not in metrics:
            raise HttpError(400, f"sort {field[:40]!r}: one of {', '.join(sorted(plain | metrics))}")

    def key(view) -> tuple:
        value = view.summary.get(field) if field in plain else view.summary["metrics"].get(field)
        return (value is None, value if value is not None else 0, view.id)

    return key


def list_models(server: ZooServer, request: Request) -> Response:
    """``GET /api/models``: search, facet filters, sort, pagination by ``Link`` header. Every model in id order
    (the first page a start is asked for) needs only the page's models' parts of the snapshot."""
    q = request.query_params
    selected = Filter.of(q)
    sort = q.get("sort") or "id"
    every = sort != "id" or bool(selected)
    snap = server.snapshot(request, every)
    direction = (q.get("direction") or "asc").lower()
    if direction not in ("asc", "desc", "1", "-1"):
        raise HttpError(400, f"direction {direction[:20]!r}: asc, desc, 1 or -1")
    key = _sort_key(sort, snap)
    if not every:
        ids = list(snap.models)
        limit, offset = _limit(request)
        chosen = (ids[::-1] if direction in ("desc", "-1") else ids)[offset:offset + limit]
        try:
            page, total = [snap.models[m] for m in chosen], len(ids)
        except ZooError as e:
            raise refused(e) from None
    else:
        present, missing = snap.order(sort, key)  # no value: always last, by id
        ordered = chain(reversed(present) if direction in ("desc", "-1") else present, missing)
        found = [v for v in ordered if selected.keeps(v)]
        limit, offset = _limit(request)
        page, total = found[offset:offset + limit], len(found)
    headers = {"X-Total-Count": str(total)}
    if offset + limit < total:
        params = [(k, v) for k, v in q.multi_items() if k != "offset"] + [("offset", str(offset + limit))]
        headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return _json([v.summary for v in page], headers=headers)


def facet_counts(server: ZooServer, request: Request) -> Response:
    """``GET /api/facets`` (this server's own, not the Hub's): each facet value's drill-down count of models under
    the same search and filters as ``/api/models`` (``query.facet_counts``), as the static page counts its
    checkboxes. The paged page asks for these whenever a search or a filter is on; without one they are the
    whole zoo's, which its light ``data.js`` carries."""
    return _json(query.facet_counts(server.snapshot(request).models.values(), Filter.of(request.query_params)))


def _model(snap: Snapshot, model: str) -> Any:
    if rules.slug_problem(model) is not None or model not in snap.models:
        raise HttpError(404, f"no model {model[:80]!r} in this zoo{' at ' + snap.rev if snap.rev else ''}")
    return snap.models[model]


def _lineage(snap: Snapshot, refs: Iterable[str]) -> dict[str, list[str]]:
    """Ancestors (parent first) and descendants (breadth first) of these checkpoints, across models."""
    start = list(refs)
    ancestors: list[str] = []
    for ref in start:
        seen = set(start)
        parent = snap.by_ref[ref].get("parent")
        while parent and parent in snap.by_ref and parent not in seen:
            if parent not in ancestors:
                ancestors.append(parent)
            seen.add(parent)
            parent = snap.by_ref[parent].get("parent")
    descendants: list[str] = []
    queue = [c for ref in start for c in snap.by_ref[ref]["children"]]
    while queue:
        ref = queue.pop(0)
        if ref in descendants or ref in start:
            continue
        descendants.append(ref)
        queue.extend(snap.by_ref[ref]["children"])
    return {"ancestors": [a for a in ancestors if a not in start], "descendants": descendants}


def _card(server: ZooServer, snap: Snapshot, model: str) -> dict[str, Any]:
    import yaml

    text = snap.card(model, server.releases.of(model).get(model))
    metadata: dict = {}
    body = text
    if text.startswith("---\n"):
        head, _, body = text[4:].partition("\n---\n")
        metadata = yaml.safe_load(head) or {}
    return {"metadata": metadata, "markdown": body.lstrip("\n")}


def get_model(server: ZooServer, request: Request) -> Response:
    """``GET /api/models/{model}``: the card, every checkpoint with its metrics, the lineage."""
    snap = server.snapshot(request)
    view = _model(snap, request.path_params["model"])
    entries = snap.entries_of(view.id)
    registry = server.zoo(snap.rev).registry_overview(view.id).get(view.id, {"releases": {}, "stages": {}})
    return _json({**view.summary, "card": _card(server, snap, view.id), "checkpoints": entries,
                  "lineage": _lineage(snap, [e["ref"] for e in entries]), "rev": snap.rev, "commit": snap.commit,
                  **registry})


def _entry(snap: Snapshot, model: str, step_text: str, server: ZooServer | None = None) -> dict:
    """The checkpoint a step, or a name the zoo resolves (``best``, ``latest``, a release ``v1.2.0``, a stage
    ``prod``), names."""
    view = _model(snap, model)
    not_a_step = rules.count_problem(step_text, "step") is not None
    if not_a_step and not step_text.isdigit():
        ref = _named(snap, view.id, step_text, server)
    elif not_a_step:  # 0300: one spelling per step
        raise HttpError(404, f"step {step_text[:20]!r}: a whole number as the table spells it, as in "
                             f"/api/models/{view.id}/checkpoints/10")
    else:
        ref = f"{view.id}@{int(step_text)}"
    if ref not in snap.by_ref:
        raise HttpError(404, f"no checkpoint {ref} in this zoo{' at ' + snap.rev if snap.rev else ''}")
    return snap.by_ref[ref]


def _named(snap: Snapshot, model: str, name: str, server: ZooServer | None) -> str:
    from ..catalog.refs import parse_ref

    hint = f"a whole number, best, latest, a release (v1.2.0) or a stage (prod), as in /api/models/{model}/checkpoints/10"
    if server is None:
        raise HttpError(404, f"step {name[:20]!r}: {hint}")
    try:
        ref = parse_ref(f"{model}@{name}")
        return server.zoo(snap.rev).get(str(ref)).ref
    except ZooError as e:
        raise HttpError(404, f"{name[:40]!r}: {e}") from None


def get_history(server: ZooServer, request: Request) -> Response:
    """``GET /api/models/{model}/history[?at=DATE]``: every release and stage change (GTO tags), who and when."""
    from datetime import UTC, datetime

    snap = server.snapshot(request)
    view = _model(snap, request.path_params["model"])
    at = request.query_params.get("at")
    when = None
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise HttpError(400, f"at={at[:40]!r}: not an ISO 8601 date, e.g. 2026-12-01T14:30") from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return _json(server.zoo(snap.rev).history(view.id, at=when))


def _files(entry: dict, rev: str | None = None, local: Path | None = None) -> list[dict]:
    """The checkpoint's files: its one file, or each file of a folder checkpoint. The table records a folder's
    total size only, so each file's size is read from the local copy (``local``) when it is pulled, else null.
    Each links to its content-addressed URL, which caches for good (``/files/MODEL/STEP`` can change with
    ``--replace``)."""
    if entry.get("files"):
        def size(name: str) -> int | None:
            path = local / name if local is not None else None
            return path.stat().st_size if path is not None and path.is_file() and not path.is_symlink() else None

        return [{"name": name, "size_bytes": size(name), "sha256": sha, "url": sha256_url(sha, name, rev)}
                for name, sha in sorted(entry["files"].items())]
    name = Path(entry["path"]).name
    return [{"name": name, "size_bytes": entry["size_bytes"], "sha256": entry["sha256"],
             "url": sha256_url(entry["sha256"], name, rev)}]


def get_checkpoint(server: ZooServer, request: Request) -> Response:
    """``GET /api/models/{model}/checkpoints/{step}``: one checkpoint, its files and lineage."""
    snap = server.snapshot(request)
    entry = _entry(snap, request.path_params["model"], request.path_params["step"], server)
    rev = snap.rev if snap.rev != server.default_rev else None
    local = None
    if entry.get("files") and snap.rev is None:  # the working tree's pulled folder
        try:
            local = server.zoo(None).local_path(entry["ref"])
        except ZooError:
            local = None
    return _json({**entry, "files": _files(entry, rev, local), "lineage": _lineage(snap, [entry["ref"]]), "rev": snap.rev,
                  "commit": snap.commit})


def leaderboard(server: ZooServer, request: Request) -> Response:
    """``GET /api/leaderboard[?task=][&dataset=]``: per task, one board per dataset (and split), each model's best
    checkpoint, best first. ``boards`` ranks models only against the same task, dataset and split; ``models`` (the
    shape older clients read) lists the task's models by value, each with its ``dataset`` and its ``rank`` on its
    own board, so no model outranks another of a different dataset."""
    from ..publish.index import leaderboards

    snap = server.snapshot(request)
    task, dataset = request.query_params.get("task"), request.query_params.get("dataset")
    if task is not None and task not in snap.tasks:
        raise HttpError(404, f"no task {task[:80]!r} in this zoo; tasks: {', '.join(sorted(snap.tasks))}")
    scored = {v.id: v.summary for v in snap.models.values() if v.summary["best_value"] is not None}
    boards = {k: b for k, b in leaderboards(scored).items() if task is None or k[0] == task}
    known = sorted({k[1] for k in boards})
    if dataset is not None and dataset not in known:
        raise HttpError(404, f"no leaderboard for dataset {dataset[:80]!r}{' in task ' + repr(task) if task else ''}; "
                             f"datasets: {', '.join(known) or 'none evaluated yet'}")
    out: dict[str, dict] = {}
    for (name, data, split), ranked in boards.items():
        if dataset is not None and data != dataset:
            continue
        info = snap.tasks[name]
        board = out.setdefault(name, {"metric": info["primary_metric"], "higher_is_better": info["higher_is_better"],
                                      "models": [], "boards": []})
        rows = [{"rank": i + 1, "model": s["id"], "checkpoint": s["best"], "dataset": data, "split": split,
                 "value": s["best_value"], "metrics": s["metrics"]} for i, s in enumerate(ranked)]
        board["boards"].append({"dataset": data, "split": split, "models": rows})
        board["models"] += rows
    for board in out.values():
        higher = board["higher_is_better"]
        board["models"].sort(key=lambda r: (-r["value"] if higher else r["value"], r["model"]))
    return _json(out)


def list_versions(server: ZooServer, request: Request) -> Response:
    """``GET /api/versions``: the branches and tags holding a zoo."""
    return _json(server.versions_for(request))


# ---- downloads ---------------------------------------------------------------------------------------------


# /files/MODEL/STEP names whatever bytes the table gives that checkpoint now (``--replace`` changes them): it is
# revalidated on every use (a 304 costs no read of the file). /files/by-sha256/SHA names one content forever.
MUTABLE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"


def sha256_url(sha: str, name: str, rev: str | None = None) -> str:
    """The content-addressed URL of a file (``?rev=`` when only that revision's table names it)."""
    return f"/files/by-sha256/{sha}/{quote(name)}" + (f"?{urlencode({'rev': rev})}" if rev else "")


def _not_modified(request: Request, etag: str, cache: str) -> Response | None:
    """304 when ``If-None-Match`` names the current ETag (or ``*``), before any file is opened."""
    wanted = request.headers.get("if-none-match")
    if wanted is None:
        return None
    tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache})
    return None


async def _send_verified(server: ZooServer, request: Request, snap: Snapshot, entry: dict, name: str, sha: str,
                         cache: str) -> Response:
    """The verified bytes of one file of a checkpoint, or 304 if the client holds them."""
    etag = f'"{sha}"'
    unchanged = _not_modified(request, etag, cache)
    if unchanged is not None:
        return unchanged
    try:
        path = await run_in_threadpool(server.zoo(snap.rev).verified_file, entry["ref"], None,
                                       name if entry.get("files") else None)
    except (MissingFileError, CheckpointNotFoundError) as e:
        raise HttpError(404, str(e)) from None
    except IntegrityError as e:
        raise HttpError(502, str(e)) from None
    except ZooError as e:
        raise HttpError(503, str(e)) from None
    headers = {"ETag": etag, "Cache-Control": cache, "X-Checkpoint-Sha256": sha}
    return _Download(path, media_type="application/octet-stream", filename=name, headers=headers)


_BY_SHA: dict[int, tuple[Snapshot, dict[str, list[tuple[dict, str]]]]] = {}
_BY_SHA_LOCK = threading.Lock()


def _by_sha(snap: Snapshot) -> dict[str, list[tuple[dict, str]]]:
    """sha256 -> every (checkpoint entry, file name) of a snapshot's table with those bytes, built once per
    snapshot (the last few kept)."""
    with _BY_SHA_LOCK:
        held = _BY_SHA.get(id(snap))
        if held is not None and held[0] is snap:
            return held[1]
    found: dict[str, list[tuple[dict, str]]] = {}
    for entry in snap.entries:
        for name, sha in (entry.get("files") or {Path(entry["path"]).name: entry["sha256"]}).items():
            found.setdefault(sha, []).append((entry, name))
    with _BY_SHA_LOCK:
        while len(_BY_SHA) >= 4:
            _BY_SHA.pop(next(iter(_BY_SHA)))
        _BY_SHA[id(snap)] = (snap, found)
    return found


async def download_by_sha256(server: ZooServer, request: Request) -> Response:
    """``GET /files/by-sha256/{sha256}[/{name}]``: the file with these bytes, whichever checkpoint of the
    revision's table names it; its bytes can never change, so it is cached for good (``immutable``). ``name``
    (a name the table gives these bytes) only names the download."""
    sha = request.path_params["sha256"]
    snap = await run_in_threadpool(server.snapshot, request)
    known = (await run_in_threadpool(_by_sha, snap)).get(sha)
    if not known:
        raise HttpError(404, f"no file with sha256 {sha[:12]}… in this zoo{' at ' + snap.rev if snap.rev else ''}")
    wanted = request.path_params.get("name")
    chosen = next((k for k in known if k[1] == wanted), known[0])
    if wanted is not None and chosen[1] != wanted:
        raise HttpError(404, f"sha256 {sha[:12]}… is {chosen[0]['ref']}'s {chosen[1]}, not {wanted[:80]!r}; "
                             f"use /files/by-sha256/{sha}/{quote(chosen[1])}")
    return await _send_verified(server, request, snap, chosen[0], chosen[1], sha, IMMUTABLE)


async def download(server: ZooServer, request: Request) -> Response:
    """``GET /files/{model}/{step}[/{file}]``: the bytes, verified before the first is sent, with ETag
    (the sha256), Content-Length and Range; revalidated on each use (``no-cache``), since ``--replace``
    changes what this URL names."""
    snap = await run_in_threadpool(server.snapshot, request)
    entry = _entry(snap, request.path_params["model"], request.path_params["step"], server)
    wanted = request.path_params.get("file")
    files = entry.get("files") or {}
    if files:  # a folder checkpoint: one of its files at a time
        if wanted not in files:
            shown = ", ".join(sorted(files))
            raise HttpError(404, f"{entry['ref']} is a folder checkpoint; name one of its files: "
                                 f"/files/{entry['model']}/{entry['step']}/FILE with FILE one of {shown}")
        name, sha = str(wanted), files[wanted]
    else:
        name, sha = Path(entry["path"]).name, entry["sha256"]
        if wanted is not None and wanted != name:
            raise HttpError(404, f"{entry['ref']} has no file {wanted[:80]!r}; its file is {name}")
    return await _send_verified(server, request, snap, entry, name, sha, MUTABLE)


# ---- the page -------------------------------------------------------------------------------------------


def page_asset(server: ZooServer, request: Request) -> Response:
    """The UI's static files (the same ones the index stage writes to site/, and ``api.js``)."""
    from ..publish.page import page_files

    name = request.url.path.lstrip("/") or "index.html"
    files = page_files(served=True)
    if name not in files:
        raise HttpError(404, f"no page file {name[:80]!r}")
    media = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
             "css": "text/css; charset=utf-8"}[name.rsplit(".", 1)[1]]
    return Response(files[name], media_type=media, headers={"Cache-Control": "no-cache"})


# Up to this many checkpoints the served page gets the static site's all-in-one data.js (every checkpoint and card,
# a few MB at most: every view then answers without a request); above, the light one, and the page asks the API
# for what it shows. ``?paged=1`` asks for the light one at any size.
PAGED_ABOVE = 5_000


def page_data(server: ZooServer, request: Request) -> Response:
    """``/data.js``: the page's data for the request's revision, with download links: all-in-one for a small zoo,
    light (``publish.page.paged_data``: no checkpoint, no card) for a big one or with ``?paged=1``."""
    from ..publish.page import data_js, paged_data, site_data

    snap = server.snapshot(request)
    try:
        found = server.versions_for(request)
    except ZooError:
        found = []
    # releases and stages are git tags: a stage move changes no file, so they are read for every answer
    registry = {m: r for m, r in server.zoo(snap.rev).registry_overview().items() if m in snap.models}
    checkpoints = sum(int(v.summary["checkpoints"]) for v in snap.models.values())
    paged = checkpoints > PAGED_ABOVE or request.query_params.get("paged") == "1"
    # the all-in-one data (every card rendered, every checkpoint) is the costly answer: build it once per
    # snapshot and list of versions, not per request
    cards_registry = {} if paged else server.releases.of()  # what the cards' "Releases" sections show
    key = json.dumps([paged, found, registry, cards_registry], sort_keys=True)
    page = snap.pages.get(key)
    if page is None:
        if paged:
            data = paged_data((v.facets for v in snap.models.values()), snap.tasks, title="Checkpoint Zoo",
                              rev=snap.rev, versions=found, registry=registry, checkpoints=checkpoints)
        else:
            index = {"format": 2, "tasks": snap.tasks, "models": snap.summaries, "checkpoints": snap.entries}
            cards = {m: snap.card(m, cards_registry.get(m)) for m in snap.models}
            data = site_data(index, cards, title="Checkpoint Zoo", downloads=True, rev=snap.rev, versions=found,
                             registry=registry)
        page = data_js(data)
        snap.pages.clear()  # an older list of versions is never asked for again
        snap.pages[key] = page
    return Response(page, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})


def page_card(server: ZooServer, request: Request) -> Response:
    """``GET /api/models/{model}/card``: the model card as the page shows it, rendered to HTML the way the static
    site's is (``publish.page.render_card_html``: raw HTML escaped, only http(s) and relative links), with its
    front matter."""
    from ..publish.page import render_card_html

    snap = server.snapshot(request)
    view = _model(snap, request.path_params["model"])
    meta, html = render_card_html(snap.card(view.id, server.releases.of(view.id).get(view.id)))
    return _json({"metadata": meta, "html": html})


# ---- the app --------------------------------------------------------------------------------------------


def _route(path: str, handler, server: ZooServer) -> Route:
    import inspect

    async def endpoint(request: Request) -> Response:
        try:
            if inspect.iscoroutinefunction(handler):
                return await handler(server, request)
            return await run_in_threadpool(handler, server, request)
        except HttpError as e:
            return _json({"error": e.args[0]}, e.status)
        finally:
            server.snapshots.fill()  # after a first answer: the parts it did not need, in the background

    return Route(path, endpoint, methods=["GET", "HEAD"])


class _Sha256(Convertor):
    """A lower-case hex sha256 path segment: anything else falls through to ``/files/{model}/{step}``."""

    regex = "[0-9a-f]{64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("sha256", _Sha256())


def create_app(location: str | Path, default_rev: str | None = None, hub_namespace: str = "zoo",
               tokens=None, presign_seconds: int | None = None) -> Starlette:
    """The ASGI app serving the zoo at ``location`` (a clone's path or a git URL), and the Hugging Face Hub's
    read protocol for ``{hub_namespace}/{model}`` repositories (``server/hub``); with ``tokens`` (a
    ``tokens.TokenSet``) every request needs a bearer token, which reads only the models it names. With
    ``presign_seconds``, a Hub GET of weights on the S3 remote is a 302 to a URL presigned for that long."""
    from .hub import HubRoutes
    from .hub.redirect import StorageRedirects
    from .tokens import TokenGuard

    server = ZooServer(str(location), default_rev)
    redirects = StorageRedirects.open(server.zoo(None), presign_seconds) if presign_seconds is not None else None
    routes = [
        _route("/api/models", list_models, server),
        _route("/api/facets", facet_counts, server),
        _route("/api/models/{model}", get_model, server),
        _route("/api/models/{model}/checkpoints/{step}", get_checkpoint, server),
        _route("/api/models/{model}/history", get_history, server),
        _route("/api/models/{model}/card", page_card, server),
        _route("/api/leaderboard", leaderboard, server),
        _route("/api/versions", list_versions, server),
        _route("/files/by-sha256/{sha256:sha256}", download_by_sha256, server),
        _route("/files/by-sha256/{sha256:sha256}/{name:path}", download_by_sha256, server),
        _route("/files/{model}/{step}", download, server),
        _route("/files/{model}/{step}/{file:path}", download, server),
        _route("/data.js", page_data, server),
        *(_route(p, page_asset, server) for p in ("/", "/index.html", "/leaderboard.js", "/lineage.js", "/app.js",
                                                  "/style.css", "/api.js")),
        _route("/favicon.ico", lambda server, request: Response(status_code=204), server),
    ]
    guard = [Middleware(TokenGuard, tokens=tokens, namespace=hub_namespace)] if tokens is not None else []
    return Starlette(routes=routes, middleware=[Middleware(_Guard), *guard,
                                                Middleware(HubRoutes, server=server, namespace=hub_namespace,
                                                           redirects=redirects)])


class _Guard:
    """Plain ASGI middleware (it keeps downloads streaming untouched): 405 for any method but GET and
    HEAD, and the security headers on every response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            response = JSONResponse({"error": f"{scope['method'][:20]} is not allowed: this server is read-only"},
                                    status_code=405, headers={"Allow": "GET, HEAD", **SECURITY_HEADERS})
            await response(scope, receive, send)
            return

        async def send_secured(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_secured)
