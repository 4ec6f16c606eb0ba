"""The library API: ``Zoo`` and one method per CLI verb.

``Zoo`` works on a zoo repository (git + DVC) on disk. Reads go through the validated table; writes
take the zoo's file lock, put bytes in place first, record them with DVC, and write the table last,
atomically, so an interrupted command leaves the table valid.
"""

from __future__ import annotations

import builtins
import fnmatch
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import constants, gitcmd
from .catalog import query, rules, table
from .catalog.refs import Ref, parse_ref
from .errors import (
    ArchitectureError,
    CheckpointNotFoundError,
    FormatError,
    IntegrityError,
    InvalidValueError,
    MissingFileError,
    NotAZooError,
    NotPushedError,
    UnsafePathError,
    UsageError,
    ZooError,
)
from .formats import (
    inspect_file,
    sha256_file,
)
from .model import (
    AddResult,
    BulkAddResult,
    Checkpoint,
    CommitResult,
    ExportResult,
    FileCheck,
    Lineage,
    PullResult,
    PushResult,
    RemoteInfo,
    Resumed,
)
from .stamps import Stamps

if TYPE_CHECKING:
    from .registry import Registry
    from .revision import RevisionSource
    from .storage.base import CheckpointStore
    from .training.state import TrainingState

Row = dict[str, str]


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` that holds ``zoo/checkpoints.csv`` and ``.dvc``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / constants.TABLE_PATH).is_file() and (folder / ".dvc").is_dir():
            return folder
    raise NotAZooError(
        f"{start}: no zoo here or above (looked for {constants.TABLE_PATH} beside .dvc/); "
        "cd into a zoo clone or pass its path"
    )


class Zoo:
    """A checkpoint zoo on disk: the repo you stand in, ``ZOO_REPO``, or ``path``."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, rev: str | None = None,
                 remote: str | None = None, trust_code: bool = False) -> None:
        """``path``: a zoo clone (default: the repo you stand in, or ``ZOO_REPO``) or a git URL.

        With ``rev`` (any git ref or commit), or with a URL, the zoo is read at that revision without
        checking anything out, and checkpoints are fetched from its DVC remote (``remote``, or its
        default) into the user cache; such a Zoo is read-only. Its own code folder (``zoo_code/``,
        which architectures, loaders or metrics in ``conf/`` may name) runs only with ``trust_code``.
        """
        given = str(path or constants.zoo_repo() or "")
        self.remote = remote
        self.trust_code = trust_code
        self._source: RevisionSource | None = None
        self._storage: CheckpointStore | None = None
        self._registry: Registry | None = None
        self._table_cache: tuple[object, list[Row]] | None = None
        local = not given or os.path.isdir(given)
        if local:
            self.root = find_root(Path(given) if given else Path.cwd())
        if rev is not None or not local:
            from .revision import RevisionSource

            self._source = RevisionSource(str(self.root) if local else given, rev, remote)
            # the repository read: the clone, or for a URL the mirror kept in the user cache
            self.root = self._source.git_dir
            self.stamps = Stamps(constants.cache_dir() / "stamps")
            return
        self._work = self.root / ".dvc" / "tmp" / "zoo"
        self.stamps = Stamps(self._work / "stamps")

    def __repr__(self) -> str:
        if self._source is not None:
            return f"Zoo({self._source.url!r}, rev={self._source.rev!r})"
        return f"Zoo({str(self.root)!r})"

    @property
    def revision(self) -> str | None:
        """The commit this Zoo reads, or None for a working tree."""
        return self._source.commit if self._source is not None else None

    def _workspace_only(self, verb: str) -> None:
        if self._source is not None:
            raise UsageError(f"{verb}: a zoo at a revision ({self._source.rev}) is read-only; "
                             "run it in a clone's working tree")

    # ---- plumbing -------------------------------------------------------------------------

    @property
    def storage(self) -> CheckpointStore:
        """Where the bytes live (DVC: the one implementation, imported only when bytes are touched)."""
        if self._storage is None:
            from .storage.dvc import Storage

            self._storage = Storage(self.root)
        return self._storage

    def close(self) -> None:
        """Release DVC's handles (the API also works without calling this)."""
        if self._storage is not None:
            self._storage.close()
            self._storage = None

    def __enter__(self) -> Zoo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def registry(self):
        """The architectures, tasks and datasets declared in this zoo's ``conf/`` (at its revision)."""
        if self._registry is None:
            from .registry import load_registry, workspace_registry

            if self._source is None:
                self._registry = workspace_registry(self.root)
            else:
                src = self._source
                code = (src.checkout() / constants.CODE_DIR) if src.list_dir(constants.CODE_DIR) else None
                self._registry = load_registry(src.list_dir, src.read_bytes, code_dir=code, trusted=self.trust_code)
        return self._registry

    @property
    def table_path(self) -> Path:
        return self.root / constants.TABLE_PATH

    def _lock(self, wait: float = 600, refusal: str = ""):
        """The zoo's write lock: waits up to ``wait`` seconds, then raises (with ``refusal`` if given)."""
        from filelock import FileLock, Timeout

        self._work.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self._work / constants.LOCK_NAME), timeout=wait)

        class _Guard:
            def __enter__(inner):
                try:
                    lock.acquire()
                except Timeout:
                    raise ZooError(refusal or (
                        f"{self._work / constants.LOCK_NAME}: another zoo command has held the lock for "
                        "10 minutes; wait for it or remove the lock file if no zoo command is running"
                    )) from None
                return inner

            def __exit__(inner, *exc: object) -> None:
                lock.release()

        return _Guard()

    def rows(self) -> list[Row]:
        """The validated table rows as strings (cached while the file is unchanged)."""
        if self._source is not None:
            if self._table_cache is None:
                data = self._source.read_bytes(constants.TABLE_PATH) or b""
                self._table_cache = (self._source.commit, table.load(data, f"{constants.TABLE_PATH}@{self._source.rev}"))
            return self._table_cache[1]
        try:
            st = self.table_path.stat()
        except FileNotFoundError:
            raise NotAZooError(f"{self.table_path}: missing; restore it with `git checkout {constants.TABLE_PATH}`") from None
        key = (st.st_mtime_ns, st.st_size)
        if self._table_cache and self._table_cache[0] == key:
            return self._table_cache[1]
        data = self.table_path.read_bytes()
        rows = table.load(data, constants.TABLE_PATH)
        self._table_cache = (key, rows)
        return rows

    def _validate_change(self, new_data: bytes, new_rows: list[Row], changed: list[Row]) -> None:
        """Validate a table that differs from the current (valid) one only in ``changed`` rows (and deletions).

        The unchanged rows passed already, so the schema runs on the changed rows plus the rows their
        cross-row rules refer to (parents), and the Python checks here cover uniqueness and parents
        over the whole table. A table not known to be valid is validated whole.
        """
        if not table.is_known_valid(self.table_path.read_bytes()):
            table.validate_rows(new_data, table.parse_csv(new_data))
            return
        from .catalog.schema import validate_frame

        refs = {f"{r['model']}@{r['step']}": r for r in new_rows}
        if len(refs) != len(new_rows):
            raise InvalidValueError("(model, step) would appear twice in the table; keep one row")
        # the schema checks each row's parent within the rows it is given: give it each chain of ancestors
        referenced: builtins.list[Row] = []
        seen = {id(r) for r in changed}
        for r in changed:
            while r["parent"] in refs and id(refs[r["parent"]]) not in seen:
                r = refs[r["parent"]]
                seen.add(id(r))
                referenced.append(r)
        missing = [r["parent"] for r in new_rows if r["parent"] and r["parent"] not in refs]
        if missing:
            raise InvalidValueError(f"{missing[0]} is the parent of another checkpoint and must stay in the table")
        validate_frame(changed + [r for r in referenced if r not in changed],
                       source=f"{constants.TABLE_PATH} (the changed rows)")
        table.mark_valid(new_data)

    def _git_add(self, paths: Iterable[str]) -> tuple[str, ...]:
        paths = tuple(dict.fromkeys(paths))
        if not (self.root / ".git").exists():
            return ()
        proc = gitcmd.run(self.root, "add", "-A", operands=paths, text=True, check=False, timeout=None)
        if proc.returncode != 0:
            raise ZooError(f"git add failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        return paths

    def _abs(self, rel: str) -> Path:
        """Absolute path of a table path, refusing anything that resolves outside zoo/checkpoints."""
        base = (self.root / constants.CHECKPOINTS_DIR).resolve()
        if base != self.root.resolve() / constants.CHECKPOINTS_DIR:
            raise UnsafePathError(f"{constants.CHECKPOINTS_DIR}: resolves to {base}, outside the zoo; it must be a "
                                  "real folder, not a symlink: remove the link and restore it with git")
        target = (self.root / rel).resolve()
        if base not in target.parents:
            raise UnsafePathError(f"{rel}: resolves to {target}, outside {constants.CHECKPOINTS_DIR}; remove that symlink")
        return self.root / rel

    # ---- reading --------------------------------------------------------------------------

    def _resolve_row(self, ref: str | Ref, rows: list[Row] | None = None) -> Row:
        r = parse_ref(ref) if isinstance(ref, str) else ref
        rows = self.rows() if rows is None else rows
        mine = [row for row in rows if row["model"] == r.model]
        if not mine:
            near = sorted({row["model"] for row in rows if row["model"].casefold() == r.model.casefold()})
            hint = f" (did you mean {near[0]}?)" if near else "; `zoo ls` lists the models"
            raise CheckpointNotFoundError(f"unknown model {r.model!r} in {constants.TABLE_PATH}{hint}")
        if r.selector == "latest":
            return max(mine, key=lambda row: int(row["step"]))
        if r.selector == "best":
            return self._best_row(r.model, mine)
        for row in mine:
            if int(row["step"]) == r.selector:
                return row
        steps = ", ".join(row["step"] for row in sorted(mine, key=lambda x: int(x["step"])))
        raise CheckpointNotFoundError(f"{r.model} has no step {r.selector}; its steps are {steps}")

    def _resolve_many(self, refs: Sequence[str], rows: list[Row]) -> list[Row]:
        """Rows of several references, where a model name may be a shell wildcard (``'mnist-*@best'``)."""
        out: list[Row] = []
        models = sorted({r["model"] for r in rows}, key=query.natural_key)
        for ref in refs:
            r = parse_ref(ref)
            if not any(ch in r.model for ch in "*?["):
                out.append(self._resolve_row(r, rows))
                continue
            matched = [m for m in models if fnmatch.fnmatchcase(m, r.model)]
            if not matched:
                raise CheckpointNotFoundError(f"no model matches {r.model!r} in {constants.TABLE_PATH}; `zoo ls` lists them")
            out.extend(self._resolve_row(Ref(m, r.selector), rows) for m in matched)
        return out

    @property
    def location(self) -> str:
        """Where this zoo comes from: the clone's path, or the URL (or path) it was opened from."""
        return self._source.url if self._source is not None else str(self.root)

    @property
    def git_dir(self) -> Path:
        """The git repository this zoo is read from: the clone, or the cached mirror of a URL."""
        return self._source.git_dir if self._source is not None else self.root

    def metrics(self, models: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
        """Evaluated metrics (on each task's report split) by ``MODEL@STEP`` (all models, or these), only
        where they are of the bytes the table holds now; empty until the pipeline has run."""
        return {ref: dict(rec.get("metrics", {})) for ref, rec in self.records(models).items()}

    def records(self, models: Iterable[str] | None = None) -> dict[str, dict]:
        """Stored evaluation records by ``MODEL@STEP`` (all models, or these) that are of the bytes the
        table holds now; empty until the pipeline has run."""
        from .evaluation.results import parse_results, read_results

        wanted = None if models is None else set(models)
        current = {f"{r['model']}@{r['step']}": r["sha256"] for r in self.rows()
                   if wanted is None or r["model"] in wanted}
        if self._source is None:
            stored = read_results(self.root / constants.EVALUATIONS_DIR, models)
        else:
            src = self._source
            names = (sorted(f"{m}.json" for m in set(models)) if models is not None
                     else src.list_dir(constants.EVALUATIONS_DIR))
            stored = parse_results((f"{constants.EVALUATIONS_DIR}/{n} at {src.rev}",
                                    src.read_bytes(f"{constants.EVALUATIONS_DIR}/{n}")) for n in names)
        return {ref: rec for ref, rec in stored.items() if current.get(ref) == rec.get("sha256")}

    def _best_row(self, model: str, mine: list[Row]) -> Row:
        from .catalog.selection import best

        records = self.records([model])
        chosen = best(records[f"{r['model']}@{r['step']}"] for r in mine if f"{r['model']}@{r['step']}" in records)
        if chosen is None:
            raise CheckpointNotFoundError(
                f"{model}@best: {model} has no evaluated checkpoint yet; run `dvc repro` to evaluate it"
            )
        return next(r for r in mine if int(r["step"]) == int(chosen["step"]))

    def lineage(self, model: str) -> Lineage:
        """The checkpoints ``model`` was fine-tuned from and the ones fine-tuned from it, across models."""
        rows = self.rows()
        if not any(r["model"] == model for r in rows):
            self._resolve_row(model, rows)  # the one "unknown model" message
        parents = {f"{r['model']}@{r['step']}": r["parent"] for r in rows if r["parent"]}
        children: dict[str, builtins.list[str]] = {}
        for child, parent in parents.items():
            children.setdefault(parent, []).append(child)
        own = [f"{r['model']}@{r['step']}" for r in rows if r["model"] == model]

        def walk(links: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
            visited, frontier, found = set(own), list(own), []
            while frontier:  # breadth first, so nearest first
                nxt = []
                for ref in frontier:
                    for other in links.get(ref, ()):
                        if other not in visited:
                            visited.add(other)
                            nxt.append(other)
                            found.append(other)
                frontier = nxt
            return tuple(found)

        return Lineage(model, walk({k: [v] for k, v in parents.items()}), walk(children))

    def get(self, ref: str) -> Checkpoint:
        """The checkpoint a reference names (``MODEL``, ``MODEL@STEP``, ``@latest``, ``@best``)."""
        return Checkpoint.from_row(self._with_metrics([self._resolve_row(ref)])[0])

    def list(
        self,
        patterns: str | Sequence[str] = (),
        *,
        exclude: str | Sequence[str] = (),
        task: str | None = None,
        arch: str | None = None,
        tag: str | None = None,
        where: str | None = None,
        sort: str | None = None,
        all_steps: bool = False,
    ) -> builtins.list[Checkpoint]:
        """Checkpoints matching the filters: the latest of each model unless ``all_steps``.

        ``where`` and ``sort`` also take the evaluated metrics (accuracy, macro_f1, nll); each
        returned Checkpoint carries its metrics when the pipeline has evaluated it.
        """
        return [Checkpoint.from_row(r) for r in self.select(
            patterns, exclude=exclude, task=task, arch=arch, tag=tag, where=where, sort=sort, all_steps=all_steps)]

    def select(
        self,
        patterns: str | Sequence[str] = (),
        *,
        exclude: str | Sequence[str] = (),
        task: str | None = None,
        arch: str | None = None,
        tag: str | None = None,
        where: str | None = None,
        sort: str | None = None,
        all_steps: bool = False,
    ) -> builtins.list[Row]:
        """Like ``list`` but returns the table rows as dicts of strings (plus metric columns): the fast
        path for exporting many rows."""
        if isinstance(patterns, str):  # one pattern, not a sequence of one-character patterns
            patterns = [patterns]
        if isinstance(exclude, str):
            exclude = [exclude]
        rows = query.match_models(self.rows(), patterns, exclude)
        if task:
            rows = [r for r in rows if r["task"] == task]
        if arch:
            rows = [r for r in rows if r["arch"] == arch]
        if tag:
            rows = [r for r in rows if tag in r["tags"].split(";")]
        names = self.metric_names() if (where or sort) else ()
        needs_metrics = any(m in (where or "") or m == (sort or "").lstrip("-") for m in names)
        if needs_metrics:
            rows = self._with_metrics(rows, names)
        if where:
            predicate = query.parse_where(where, (*rules.COLUMNS, *names), numeric=names)
            rows = [r for r in rows if predicate(r)]
        if not all_steps:
            rows = query.latest_per_model(rows)
        rows = query.sort_rows(rows, sort, (*rules.COLUMNS, *names), numeric=names)
        return rows if needs_metrics else self._with_metrics(rows)

    def listing_registry(self):
        """The registries for listing: a broken conf/ file is skipped and named in ``problems`` rather than
        raised, and no code folder is made available (nothing is built from it)."""
        from .registry import load_registry, workspace_registry

        if self._source is None:
            return workspace_registry(self.root, strict=False)
        return load_registry(self._source.list_dir, self._source.read_bytes, strict=False)

    def metric_names(self) -> tuple[str, ...]:
        """Every metric a registered task declares (usable in ``where`` and ``sort``)."""
        return self.listing_registry().metric_names()

    def _with_metrics(self, rows: builtins.list[Row], names: Sequence[str] = ()) -> builtins.list[Row]:
        """Copies of rows with their metric values as extra string columns ('' when not evaluated)."""
        evaluated = self.metrics({r["model"] for r in rows})
        if not evaluated and not names:
            return rows
        columns = sorted(set(names) | {k for m in evaluated.values() for k in m})
        out = []
        for r in rows:
            m = evaluated.get(f"{r['model']}@{r['step']}", {})
            out.append({**r, **{k: (repr(m[k]) if k in m else "") for k in columns}})
        return out

    def local_path(self, ref: str) -> Path:
        """Where a checkpoint lives in this clone, or in the user cache for a zoo at a revision
        (whether or not it has been fetched yet)."""
        row = self._resolve_row(ref)
        if self._source is not None:
            kind = "folders" if row.get("files") else "objects"
            return constants.cache_dir() / kind / row["sha256"][:2] / row["sha256"]
        return self._abs(row["path"])

    # ---- fetching -------------------------------------------------------------------------

    @staticmethod
    def _part_rows(row: Row) -> builtins.list[Row]:
        """One row per file of the checkpoint's weights (the row itself for a one-file checkpoint)."""
        return [{**row, "path": p, "sha256": sha, "files": ""} for p, sha in rules.parts(row)]

    def _verified(self, row: Row, force: bool = False) -> bool:
        if row.get("files"):
            return all(self._verified(part, force) for part in self._part_rows(row))
        path = self._abs(row["path"])
        if not path.is_file():
            return False
        if path.is_symlink() and (self.root / constants.CHECKPOINTS_DIR).resolve() not in path.resolve().parents:
            raise UnsafePathError(f"{row['path']}: symlink out of the zoo refused; delete it and pull again")
        return self.stamps.sha256(path, force=force) == row["sha256"]

    def pull(self, refs: Sequence[str], remote: str | None = None, jobs: int | None = None,
             with_state: bool = False) -> builtins.list[PullResult]:
        """Fetch exactly these checkpoints' weights (and with ``with_state`` their training states), check every
        byte against the table's sha256, then place them. Results list the weights, then the states."""
        if not refs:
            raise UsageError("name at least one checkpoint to pull (MODEL, MODEL@STEP, MODEL@best); `dvc pull` fetches all")
        table_rows = self.rows()
        chosen = list({r["path"]: r for r in self._resolve_many(refs, table_rows)}.values())
        rows = [part for r in chosen for part in self._part_rows(r)]  # a folder checkpoint: each of its files
        if with_state:
            stateless = [f"{r['model']}@{r['step']}" for r in chosen if not r.get("state_sha256")]
            if stateless:
                raise MissingFileError(f"--with-state: {', '.join(stateless)} has no training state stored (column "
                                       "state_sha256 is empty); pull without --with-state, or add its state with "
                                       "`zoo add FILE --state STATE --replace`")
            rows += [{**r, "path": rules.state_path(r["model"], int(r["step"])), "sha256": r["state_sha256"],
                      "files": ""} for r in chosen]
        if self._source is not None:
            out = []
            for row in chosen:
                if row.get("files"):
                    cached = self.local_path(f"{row['model']}@{row['step']}")
                    status = "cached" if cached.is_dir() else "downloaded"
                    path = self._source.fetch_folder(row["path"], rules.parse_files(row["files"]), row["sha256"],
                                                     self.stamps, remote=remote)
                    out.append(PullResult(f"{row['model']}@{row['step']}", path, status))
            for row in rows:
                if any(row["path"].startswith(c["path"] + "/") for c in chosen if c.get("files")):
                    continue
                cached = self.local_path(f"{row['model']}@{row['step']}")
                status = "cached" if cached.is_file() else "downloaded"
                path = self._source.fetch(row["path"], row["sha256"], self.stamps, remote=remote)
                out.append(PullResult(f"{row['model']}@{row['step']}", path, status))
            return out
        results: dict[str, PullResult] = {}
        need = []
        for row in rows:
            if self._verified(row):
                results[row["path"]] = PullResult(f"{row['model']}@{row['step']}", self._abs(row["path"]), "present")
            else:
                need.append(row)
        if need:
            missing_in_cache = [r["path"] for r in need if not self._cache_ok(r)]
            self._fetch_into_cache(missing_in_cache, remote, jobs)
            # a cache copy that looked right by its stamp but is damaged (bit rot with the same size and
            # mtime) is the local disk's fault: drop it and fetch it once more, so only bytes that came
            # from the remote in this pull are ever blamed on it
            rotten = [r["path"] for r in need if r["path"] not in missing_in_cache and not self._cache_ok(r, force=True)]
            self._fetch_into_cache(rotten, remote, jobs)
            missing_in_cache += rotten
            absent = [r for r in need if self.storage.cached_object(r["path"]) is None]
            if absent:
                refs_absent = " ".join(f"{r['model']}@{r['step']}" for r in absent)
                name = remote or self.storage.default_remote()
                raise NotPushedError(
                    f"{self.storage.describe_remote(remote)}: {refs_absent} ({', '.join(r['path'] for r in absent)}) "
                    f"not found there: not pushed yet; run `zoo push {refs_absent} --remote {name}` in the clone "
                    "that added it; nothing was changed here"
                )
            for row in need:
                obj = self.storage.cached_object(row["path"])
                # the others were hashed just above (their stamps are fresh)
                if not self._cache_ok(row, force=row["path"] in missing_in_cache):
                    if obj is not None:
                        obj.unlink(missing_ok=True)
                    raise IntegrityError(
                        f"{row['path']}: the bytes from remote {remote or self.storage.default_remote()!r} do not match "
                        f"sha256 {row['sha256'][:12]}… in {constants.TABLE_PATH}; the copy was discarded and the "
                        "workspace left as it was; re-push the checkpoint from a clone whose copy is good (`zoo "
                        "push` there replaces the wrong object on the remote)"
                    )
            for row in need:
                # a damaged file that kept its size and mtime looks unchanged to DVC: remove it first
                self._abs(row["path"]).unlink(missing_ok=True)
            self.storage.checkout([r["path"] for r in need])
            for row in need:
                path = self._abs(row["path"])
                if not path.is_file() or self.stamps.sha256(path, force=True) != row["sha256"]:
                    raise IntegrityError(f"{row['path']}: checked-out file does not match its sha256; run `zoo pull` again")
                status = "downloaded" if row["path"] in (missing_in_cache or []) else "restored"
                results[row["path"]] = PullResult(f"{row['model']}@{row['step']}", path, status)
        for row in chosen:
            if row.get("files"):  # a folder checkpoint: one result, the most its files needed
                statuses = {results.pop(p).status for p, _ in rules.parts(row)}
                status = next(s for s in ("downloaded", "restored", "present") if s in statuses)
                results[row["path"]] = PullResult(f"{row['model']}@{row['step']}", self._abs(row["path"]), status)
        order = [r["path"] for r in chosen] + [r["path"] for r in rows if r["path"] not in {c["path"] for c in chosen}
                                               and r["path"] in results]
        return [results[p] for p in order]

    def _fetch_into_cache(self, paths: builtins.list[str], remote: str | None, jobs: int | None) -> None:
        """Fetch these files' objects, first removing the local cache copies they have: those are known to be
        damaged (the caller found their sha256 wrong), and a fetch keeps an object that is already there."""
        if not paths:
            return
        for p in paths:
            obj = self.storage.cached_object(p)
            if obj is not None:
                obj.unlink(missing_ok=True)
        self.storage.fetch(paths, remote=remote, jobs=jobs)

    def _cache_ok(self, row: Row, force: bool = False) -> bool:
        obj = self.storage.cached_object(row["path"])
        return obj is not None and self.stamps.sha256(obj, force=force) == row["sha256"]

    def verified_file(self, ref: str, remote: str | None = None, name: str | None = None) -> Path:
        """A local file holding exactly the checkpoint's bytes (sha256 checked), without writing into the
        working tree: its file there when present and intact, else the DVC cache's object (fetched from the
        remote when missing); for a zoo at a revision, the user cache's copy. What ``zoo serve`` sends.
        For a folder checkpoint, ``name`` picks one of its files."""
        row = self._resolve_row(ref)
        files = rules.parse_files(row.get("files"))
        if not files and name == Path(row["path"]).name:  # a one-file checkpoint named by its file
            name = None
        if files or name is not None:
            if name not in files:
                listed = ", ".join(sorted(files)) or f"only {Path(row['path']).name}"
                raise CheckpointNotFoundError(f"{ref}: has no file {name!r}; its files: {listed}")
            if self._source is not None:
                return self._source.fetch(f"{row['path']}/{name}", files[name], self.stamps, remote=remote)
            row = {**row, "path": f"{row['path']}/{name}", "sha256": files[name]}
        elif self._source is not None:
            return self.fetch(ref, remote=remote)
        if self._verified(row):
            return self._abs(row["path"])
        if not self._cache_ok(row):
            self._fetch_into_cache([row["path"]], remote, None)
            if not self._cache_ok(row, force=True):
                obj = self.storage.cached_object(row["path"])
                if obj is None:
                    raise NotPushedError(f"{ref}: not in this clone and not on remote "
                                         f"{remote or self.storage.default_remote()!r}; push it from the clone that added it")
                raise IntegrityError(f"{ref}: the remote's bytes do not match sha256 {row['sha256'][:12]}…; refused")
        obj = self.storage.cached_object(row["path"])
        if obj is None:
            raise MissingFileError(f"{ref}: its DVC cache object vanished while being read; try again")
        return obj

    def fetch(self, ref: str, remote: str | None = None) -> Path:
        """A verified local path to the checkpoint's file, pulling it first if needed."""
        return self.pull([ref], remote=remote)[0].path

    def load_state_dict(self, ref: str, remote: str | None = None) -> dict[str, Any]:
        """The checkpoint's tensors (``torch.Tensor`` by name), read with safetensors (every shard of a folder)."""
        from .formats import load_weights_file

        return load_weights_file(self.fetch(ref, remote=remote))

    def load_model(self, ref: str, remote: str | None = None):
        """A ``torch.nn.Module`` of the row's architecture (``conf/arch``) with the checkpoint's weights, in
        eval mode. The file is checked against the architecture from its header before any tensor is read."""
        from .formats import load_weights_file
        from .registry.archs import build, load_weights

        ckpt = self.get(ref)
        spec = self.registry().arch(ckpt.arch)
        path = self.fetch(ckpt.ref, remote=remote)
        self._check_fit(spec, path, ckpt.ref)
        return load_weights(build(spec, self.registry()), load_weights_file(path), spec)

    def pipeline(self, ref: str, remote: str | None = None):
        """A callable from raw inputs to predictions (``inference.Pipeline``): ``Zoo().pipeline("m@best")(x)``
        checks ``x`` against the checkpoint's input contract (its dataset's ``input``), runs the model and
        names the predicted classes with the dataset's labels (detectors: boxes with labels and scores)."""
        from .inference import InputContract, Pipeline

        ckpt = self.get(ref)
        dataset = self.registry().dataset(ckpt.dataset)
        contract = InputContract.from_spec(ckpt.dataset, dataset.input)
        model = self.load_model(ckpt.ref, remote=remote)
        tokenizer = None
        if contract.kind == "text":  # the tokenizer the model was trained with is part of its folder
            from .text import load_tokenizer

            path = self.fetch(ckpt.ref, remote=remote)
            if path.is_dir() and (path / "tokenizer.json").is_file():
                tokenizer = load_tokenizer(path)
        return Pipeline(ckpt.ref, model, contract, dataset.labels, tokenizer)

    def _check_fit(self, spec, path: Path, what: str) -> None:
        """Refuse a safetensors file (or folder) whose tensors do not load strictly into ``spec`` (headers only)."""
        from .formats import weight_shapes
        from .registry.archs import expected_shapes, fit_problem, shape_cache_dir

        expected = expected_shapes(spec, self.registry(), shape_cache_dir())
        problem = fit_problem(spec, weight_shapes(path), expected)
        if problem:
            raise ArchitectureError(f"{what}: {problem}")

    # ---- writing --------------------------------------------------------------------------

    def add(
        self,
        file: str | os.PathLike[str],
        *,
        model: str,
        step: int,
        arch: str | None = None,
        task: str,
        dataset: str,
        license: str,
        epoch: float | None = None,
        description: str = "",
        tags: Sequence[str] = (),
        parent: str | None = None,
        source: str | None = None,
        reported: tuple[str, float] | None = None,
        move: bool = False,
        replace: bool = False,
        stage: bool = True,
        convert: bool = False,
        allow_globals: Sequence[str] = (),
        training_state: TrainingState | str | os.PathLike[str] | None = None,
    ) -> AddResult:
        """Put a safetensors file at its canonical path, track it with DVC, append its row, stage in git.

        Pickle-based files (torch.save, .pt/.pth/.ckpt/.bin, detected by content) are refused unless
        ``convert``: then a separate, fresh interpreter loads them with ``torch.load(weights_only=True)``
        (the allowlist widened only by ``allow_globals``, e.g. ``argparse.Namespace``) and writes
        safetensors, which is what gets added; the conversion is recorded in the row's ``source``.
        TorchScript is always refused. ``training_state`` (``training.capture(...)``, or the path of a file
        written by ``training.save_state``) is checked against the weights and stored beside them
        (``zoo/checkpoints/<model>/step-<8 digits>.state.safetensors``, its sha256 in ``state_sha256``), in
        the same transaction; with the same weights already in the zoo, only the state is added.

        ``file`` may be a folder, as ``save_pretrained`` writes it (safetensors weights, possibly sharded, with
        config.json, tokenizer files, a label map): it is one checkpoint, every file's sha256 in the table. For a
        transformers folder ``arch`` may be left out: it is read from its ``config.json`` and written to
        ``conf/arch/<model>.yaml``.
        """
        from .verbs.add import add

        return add(self, file, model=model, step=step, arch=arch, task=task, dataset=dataset, license=license,
                   epoch=epoch, description=description, tags=tags, parent=parent, source=source, reported=reported,
                   move=move, replace=replace, stage=stage, convert=convert, allow_globals=allow_globals,
                   training_state=training_state)

    def export(self, ref: str, dest: str | os.PathLike[str], *, format: str | None = None) -> ExportResult:
        """Write a checkpoint to the new (or empty) folder ``dest`` so that it loads without the zoo: ``hf``
        (transformers' ``from_pretrained``; the default for transformers architectures) or ``safetensors`` (the
        weights and a ``config.json`` describing architecture, labels and input contract)."""
        from .verbs.export import export

        return export(self, ref, dest, format)

    def resume(self, ref: str, *, optimizer_factory=None, scheduler_factory=None, remote: str | None = None) -> Resumed:
        """Everything to continue training from a checkpoint stored with its state: the model (its arch, the
        weights loaded, train mode), the optimizer and scheduler (the recorded torch.optim classes, or
        ``optimizer_factory(model)`` / ``scheduler_factory(optimizer)``) with their state loaded, the grad
        scaler's state, step and epoch; the RNG states (torch CPU, numpy, python) are restored. Pulls the
        weights and the state (sha256-checked) when they are not here."""
        from .training import resume

        return resume(self, ref, optimizer_factory=optimizer_factory, scheduler_factory=scheduler_factory,
                      remote=remote)

    def add_many(self, items: Iterable[Mapping[str, Any]], *, move: bool = False, replace: bool = False,
                 stage: bool = True, **common: Any) -> BulkAddResult:
        """Add many safetensors checkpoints in one transaction: all of them, or none.

        Each item is a mapping with ``file``, ``model``, ``step`` and any of ``add``'s metadata
        (``arch``, ``task``, ``dataset``, ``license``, ``epoch``, ``description``, ``tags``, ``parent``,
        ``source``, ``reported`` as ``"METRIC=VALUE"``, or an expected ``sha256``); ``common`` gives
        values for every item that leaves them out (an item that gives another value is refused).
        Every bad item is named in one ``InvalidValueError``, and nothing changes.
        """
        from .verbs.bulk import add_many

        lines = [(f"item {n}", dict(item)) for n, item in enumerate(items, 1)]
        return add_many(self, lines, common, move=move, replace=replace, stage=stage)

    def add_from(self, manifest: str | os.PathLike[str], *, move: bool = False, replace: bool = False,
                 stage: bool = True, **common: Any) -> BulkAddResult:
        """``add_many`` of a manifest file: CSV with a header row, or JSON Lines, one checkpoint per line
        (the same fields; a relative ``file`` is taken from the manifest's folder)."""
        from .verbs.bulk import add_many, read_manifest

        lines = read_manifest(manifest)
        return add_many(self, lines, common, move=move, replace=replace, stage=stage, where=str(manifest))

    def commit(self, message: str, *, check_pipeline: bool = True) -> CommitResult:
        """Stage the table, pointers, in-repo remote objects and every pipeline input and output, and
        ``git commit`` them; refused while ``dvc status`` says the pipeline is stale (``check_pipeline``)."""
        from .verbs.commit import commit

        return commit(self, message, check_pipeline=check_pipeline)

    def remove(self, refs: Sequence[str], stage: bool = True) -> builtins.list[Checkpoint]:
        """Drop checkpoints from the table, the workspace and their folder's DVC pointer."""
        self._workspace_only("rm")
        if not refs:
            raise UsageError("name at least one checkpoint to remove (MODEL@STEP)")
        from .verbs.add import check_git_index, journal_pointer, recover_killed_adds

        with self._lock():
            recover_killed_adds(self)
            if stage:
                check_git_index(self)
            rows = self.rows()
            doomed = {id(row): row for row in self._resolve_many(refs, rows)}
            doomed_refs = {f"{r['model']}@{r['step']}" for r in doomed.values()}
            for r in rows:
                if r["parent"] in doomed_refs and f"{r['model']}@{r['step']}" not in doomed_refs:
                    raise InvalidValueError(
                        f"{r['parent']} is the parent of {r['model']}@{r['step']}; remove that one too or clear its parent"
                    )
            keep = [r for r in rows if id(r) not in doomed]
            new_data = table.dump_csv(keep)
            self._validate_change(new_data, keep, [])
            folders: dict[str, list[str]] = {}
            for r in doomed.values():
                folders.setdefault(str(Path(r["path"]).parent), []).extend(p for p, _ in rules.parts(r))
                if r.get("state_sha256"):
                    folders[str(Path(r["path"]).parent)].append(rules.state_path(r["model"], int(r["step"])))
            remaining = {str(Path(r["path"]).parent) for r in keep}
            absent = [f"{r['model']}@{r['step']}" for r in keep if str(Path(r["path"]).parent) in folders
                      and not all(self._abs(p).is_file() for p, _ in rules.parts(r))]
            absent_states = [f"{r['model']}@{r['step']}" for r in keep if r.get("state_sha256")
                             and str(Path(r["path"]).parent) in folders
                             and not self._abs(rules.state_path(r["model"], int(r["step"]))).is_file()]
            if absent_states and not absent:
                shown = " ".join(absent_states[:8]) + (" …" if len(absent_states) > 8 else "")
                raise MissingFileError(f"{len(absent_states)} other checkpoint(s) of the same model have training "
                                       "states not pulled here, and removing one rewrites its model's folder from the "
                                       f"files present; run `zoo pull {shown} --with-state` first; nothing was removed")
            if absent:
                # DVC rewrites a folder's pointer from the files in it: the rest of the folder must be here
                shown = " ".join(absent[:8]) + (" …" if len(absent) > 8 else "")
                raise MissingFileError(f"{len(absent)} other checkpoint(s) of the same model are not pulled here, and "
                                       "removing one rewrites its model's folder from the files present; run "
                                       f"`zoo pull {shown}` first; nothing was removed")
            # each pointer is journaled before it changes: a killed rm is undone (pointer put back) by the
            # next add or rm while the table still lists the removed rows, and needs nothing once it does not
            journals = [journal_pointer(self, folder, f"{Path(folder).name}-0", removed=paths)[0]
                        for folder, paths in folders.items()]
            touched = []
            for folder, paths in folders.items():
                for p in paths:
                    self._abs(p).unlink(missing_ok=True)
                for r in doomed.values():  # a folder checkpoint's own folder, now empty
                    if r.get("files") and str(Path(r["path"]).parent) == folder:
                        shutil.rmtree(self._abs(r["path"]), ignore_errors=True)
                if folder in remaining:
                    self.storage.track(paths)
                else:
                    self.storage.untrack_folder(folder)
                    shutil.rmtree(self.root / folder, ignore_errors=True)
                touched.append(self.storage.pointer(folder))
            table.atomic_write(self.table_path, new_data)
            self._table_cache = None
            for journal in journals:
                journal.unlink(missing_ok=True)
            if stage:
                self._git_add([constants.TABLE_PATH, *touched])
        return [Checkpoint.from_row(r) for r in doomed.values()]

    def push(self, refs: Sequence[str] = (), remote: str | None = None, jobs: int | None = None) -> PushResult:
        """Upload checkpoints (all by default) after re-checking each local object's sha256; objects of
        them that the remote already holds with other bytes are overwritten (``PushResult.replaced``)."""
        self._workspace_only("push")
        rows = self.rows()
        chosen = self._resolve_many(refs, rows) if refs else rows
        ready, skipped = [], []
        for row in chosen:
            objects = [(part, obj) for part in self._part_rows(row)
                       if (obj := self.storage.cached_object(part["path"])) is not None]
            if len(objects) < len(rules.parts(row)):
                skipped.append(f"{row['model']}@{row['step']}")
                continue
            for part, obj in objects:
                if self.stamps.sha256(obj) != part["sha256"]:
                    raise IntegrityError(
                        f"{part['path']}: the local DVC cache copy no longer matches sha256 {part['sha256'][:12]}… "
                        "(bit rot or tampering); nothing was pushed; run `zoo pull` to restore it"
                    )
                ready.append(part["path"])
            if row.get("state_sha256"):  # the training state goes with its weights when this clone has it
                state = rules.state_path(row["model"], int(row["step"]))
                obj = self.storage.cached_object(state)
                if obj is not None:
                    if self.stamps.sha256(obj) != row["state_sha256"]:
                        raise IntegrityError(
                            f"{state}: the local DVC cache copy no longer matches state_sha256 "
                            f"{row['state_sha256'][:12]}…; nothing was pushed; run `zoo pull --with-state` to restore it")
                    ready.append(state)
        if refs and skipped and not ready:
            raise MissingFileError(
                f"{', '.join(skipped)}: not in the local cache, so there is nothing to push; pull or add it first"
            )
        folders = sorted({str(Path(r["path"]).parent) for r in chosen})
        uploaded, replaced = self.storage.push(ready, remote=remote, jobs=jobs, folders=folders) if folders else (0, 0)
        name = remote or self.storage.default_remote() or ""
        from .verbs.commit import in_tree_remotes

        folder = in_tree_remotes(self.root, self.storage.remotes()).get(name)
        # a remote inside the work tree reaches teammates only through git: its objects are staged
        staged = self._git_add([folder]) if folder and (self.root / folder).is_dir() else ()
        return PushResult(name, uploaded, tuple(skipped), staged, replaced)

    # ---- remotes (DVC remote config; credentials never in the committed .dvc/config) ---------

    def remotes(self) -> builtins.list[RemoteInfo]:
        """The remotes this clone knows: the committed ``.dvc/config`` plus its own ``.dvc/config.local``."""
        from .verbs import remotes

        return remotes.remotes(self)

    def remote_add(self, name: str, url: str, *, endpoint: str | None = None, region: str | None = None,
                   options: dict[str, str] | None = None, default: bool = False, local: bool = False,
                   force: bool = False) -> RemoteInfo:
        """Configure a remote (``s3://BUCKET/PREFIX`` with an S3-compatible ``endpoint``, or any DVC URL).

        Written to the committed ``.dvc/config`` (and staged in git), or with ``local`` to this clone's
        ``.dvc/config.local``. Credentials (access_key_id, secret_access_key, session_token …) are refused
        unless ``local``: keep them in the environment or in config.local.
        """
        from .verbs import remotes

        return remotes.remote_add(self, name, url, endpoint=endpoint, region=region, options=options,
                                  default=default, local=local, force=force)

    def remote_modify(self, name: str, key: str, value: str | None, *, local: bool = False) -> RemoteInfo:
        """Set one option of a remote (``value`` None unsets it); secrets only with ``local``."""
        from .verbs import remotes

        return remotes.remote_modify(self, name, key, value, local=local)

    def remote_default(self, name: str | None, *, local: bool = False) -> None:
        """Make ``name`` the default remote (None: no default) in .dvc/config (or config.local)."""
        from .verbs import remotes

        return remotes.remote_default(self, name, local=local)

    def remote_remove(self, name: str) -> builtins.list[str]:
        """Forget a remote (in .dvc/config and .dvc/config.local); returns the files it was removed from."""
        from .verbs import remotes

        return remotes.remote_remove(self, name)

    def verify(self, refs: Sequence[str] = (), present_only: bool = False) -> builtins.list[FileCheck]:
        """Re-hash local files against the table (no stamps); one result per checkpoint."""
        self._workspace_only("verify")
        rows = self.rows()
        chosen = self._resolve_many(refs, rows) if refs else rows
        out = []
        for row in chosen:
            ref = f"{row['model']}@{row['step']}"
            out += self._verify_files(ref, row, present_only)
            state = self._abs(rules.state_path(row["model"], int(row["step"])))
            if row.get("state_sha256") and state.is_file():  # a state is checked when pulled, never required
                rel = rules.state_path(row["model"], int(row["step"]))
                digest = sha256_file(state)
                self.stamps.record(state, digest)
                if digest == row["state_sha256"]:
                    out.append(FileCheck(ref, rel, "ok"))
                else:
                    out.append(FileCheck(ref, rel, "mismatch", f"sha256 {digest[:12]}… != table state_sha256 "
                                         f"{row['state_sha256'][:12]}…; restore with zoo pull {ref} --with-state"))
        return out

    def _verify_files(self, ref: str, row: Row, present_only: bool) -> builtins.list[FileCheck]:
        """Re-hash the checkpoint's file, or each file of its folder (and nothing more in the folder)."""
        out = []
        if row.get("files") and self._abs(row["path"]).is_dir():
            listed, base = set(rules.parse_files(row["files"])), self._abs(row["path"])
            extra = sorted(rel for p in base.rglob("*") if not p.is_dir()
                           and (rel := p.relative_to(base).as_posix()) not in listed)
            if extra:
                out.append(FileCheck(ref, row["path"], "mismatch", f"holds file(s) the table does not list "
                                     f"({', '.join(extra[:3])}); remove them, or add the folder as a new checkpoint"))
        for part in self._part_rows(row):
            path = self._abs(part["path"])
            if not path.is_file():
                if not present_only:
                    out.append(FileCheck(ref, part["path"], "missing", f"not pulled: zoo pull {ref}"))
                continue
            digest = sha256_file(path)
            self.stamps.record(path, digest)  # a mismatch too: pull sees the damage even if the stat did not change
            if digest == part["sha256"]:
                out.append(FileCheck(ref, part["path"], "ok"))
            else:
                out.append(FileCheck(ref, part["path"], "mismatch",
                                     f"sha256 {digest[:12]}… != table {part['sha256'][:12]}…; restore with zoo pull {ref}"))
        return out

    def validate(self) -> builtins.list[str]:
        """Problems with the table (schema, every failure) and with present files (size, sha256, header)."""
        from .errors import TableInvalidError

        self._workspace_only("validate")
        st = self.table_path.stat()
        data = self.table_path.read_bytes()
        parse_problems: builtins.list[str] = []
        try:
            rows = table.parse_csv(data, problems=parse_problems)
            from .catalog.schema import validate_frame

            validate_frame(rows)
        except TableInvalidError as e:
            return [*parse_problems, *e.problems] if e.problems else [*parse_problems, str(e)]
        if parse_problems:
            return parse_problems
        table.mark_valid(data)  # the schema verdict: no later read validates this table again
        self._table_cache = ((st.st_mtime_ns, st.st_size), rows)
        problems = []
        registry = self.registry()
        checked: dict[tuple[str, str, str, str], list[str]] = {}
        for lineno, row in enumerate(rows, start=2):
            combo = (row["arch"], row["task"], row["dataset"], row["reported_metric"])
            if combo not in checked:
                checked[combo] = registry.row_problems(*combo)
            where = f"{constants.TABLE_PATH} line {lineno} ({row['model']}@{row['step']})"
            for problem in checked[combo]:
                problems.append(f"{where}: {problem}")
            task = registry.tasks.get(row["task"])
            if task is not None and row["reported_metric"] in task.metrics and row["reported_value"]:
                problem = task.metrics[row["reported_metric"]].value_problem(float(row["reported_value"]), "reported")
                if problem:
                    problems.append(f"{where}: column 'reported_value' value {row['reported_value']}: {problem}")
        listed: dict[str, frozenset[str]] = {}  # one listing per model folder, not a resolve() per row
        for lineno, row in enumerate(rows, start=2):
            folder, _, name = row["path"].rpartition("/")
            if folder not in listed:
                try:
                    listed[folder] = frozenset(os.listdir(self.root / folder))
                except (FileNotFoundError, NotADirectoryError):
                    listed[folder] = frozenset()
            if name not in listed[folder]:
                continue
            path = self._abs(row["path"])
            if not path.is_file():
                continue
            where = f"{constants.TABLE_PATH} line {lineno} ({row['model']}@{row['step']})"
            try:
                facts = inspect_file(path, sha256=self.stamps.sha256(path))
            except FormatError as e:
                problems.append(f"{where}: {e}")
                continue
            for col in ("size_bytes", "sha256", "num_params", "dtype"):
                if str(getattr(facts, col)) != row[col]:
                    problems.append(
                        f"{where}: column {col!r} says {row[col]!r} but {row['path']} has {getattr(facts, col)!r}; "
                        f"re-add the file with `zoo add --replace` or restore it with `zoo pull {row['model']}@{row['step']}`"
                    )
            if row["arch"] in registry.archs:
                try:
                    self._check_fit(registry.arch(row["arch"]), path, where)
                except ZooError as e:
                    problems.append(str(e))
        return problems


def init(path: str | os.PathLike[str], remote_url: str | None = None, remote_name: str = "local",
         registries_from: str | os.PathLike[str] | None = None) -> Zoo:
    """Make ``path`` an empty zoo: git + DVC repo, header-only table, and a default remote if given.

    ``registries_from``: another zoo whose architectures, tasks and datasets (``conf/arch``,
    ``conf/task``, ``conf/dataset``) and own code folder are copied in, to start from the same
    registries."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    if (root / constants.TABLE_PATH).exists():
        raise ZooError(f"{root / constants.TABLE_PATH}: a zoo is already here")

    def run(*cmd: str) -> None:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ZooError(f"{' '.join(cmd)} failed in {root}: {proc.stderr.strip()[-300:]}")

    if not (root / ".git").exists():
        proc = gitcmd.run(root, "init", "-q", text=True, check=False, timeout=None)
        if proc.returncode != 0:
            raise ZooError(f"git init failed in {root}: {proc.stderr.strip()[-300:]}")
    if not (root / ".dvc").exists():
        run(sys.executable, "-m", "dvc", "init", "-q")
    if remote_url:
        run(sys.executable, "-m", "dvc", "remote", "add", "-d", remote_name, remote_url)
    table.atomic_write(root / constants.TABLE_PATH, table.dump_csv([]))
    table.atomic_write(root / constants.CHECKPOINTS_DIR / ".gitignore", b"/*/\n")
    staged = [".dvc", constants.TABLE_PATH, f"{constants.CHECKPOINTS_DIR}/.gitignore", ".gitattributes"]
    if registries_from is not None:
        origin = Path(registries_from)
        folders = [f"{constants.CONF_DIR}/{g}" for g in constants.REGISTRY_GROUPS] + [constants.CODE_DIR]
        for rel in folders:
            if (origin / rel).is_dir():
                shutil.copytree(origin / rel, root / rel, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
                staged.append(rel)
    from .merge import setup

    setup(root)
    proc = gitcmd.run(root, "add", "-A", operands=staged, text=True, check=False, timeout=None)
    if proc.returncode != 0:
        raise ZooError(f"git add failed in {root}: {proc.stderr.strip()[-300:]}")
    return Zoo(root)
