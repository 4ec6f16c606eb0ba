"""The library API: ``Zoo`` and one method per CLI verb.

``Zoo`` works on a zoo repository (git + DVC) on disk. Reads go through the validated table; writes
take the zoo's file lock, put bytes in place first, record them with DVC, and write the table last,
atomically, so an interrupted command leaves the table valid.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from . import constants, query, rules, table
from .errors import (
    CheckpointNotFoundError,
    DiskFullError,
    DuplicateCheckpointError,
    FormatError,
    IntegrityError,
    InvalidValueError,
    MissingFileError,
    NotAZooError,
    NotPushedError,
    RefError,
    SecretError,
    StorageError,
    UnsafePathError,
    UsageError,
    ZooError,
)
from .formats import (
    allow_global_problem,
    convert_to_safetensors,
    copy_hashed,
    inspect_file,
    read_header,
    sha256_file,
    sniff,
)
from .model import AddResult, Checkpoint, FileCheck, PullResult, PushResult, RemoteInfo
from .refs import Ref, parse_ref
from .safety import disk_full, disk_full_message, stale_temp_files, sweep_stale_temp_files
from .stamps import Stamps

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


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Zoo:
    """A checkpoint zoo on disk: the repo you stand in, ``ZOO_REPO``, or ``path``."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, rev: str | None = None,
                 remote: str | None = None) -> None:
        """``path``: a zoo clone (default: the repo you stand in, or ``ZOO_REPO``) or a git URL.

        With ``rev`` (any git ref or commit), or with a URL, the zoo is read at that revision without
        checking anything out, and checkpoints are fetched from its DVC remote (``remote``, or its
        default) into the user cache; such a Zoo is read-only.
        """
        given = str(path or constants.zoo_repo() or "")
        self.remote = remote
        self._source = None
        self._storage = None
        self._table_cache: tuple[object, list[Row]] | None = None
        local = not given or os.path.isdir(given)
        if local:
            self.root = find_root(Path(given) if given else Path.cwd())
        if rev is not None or not local:
            from .revision import RevisionSource

            self._source = RevisionSource(str(self.root) if local else given, rev, remote)
            self.root = self._source.git_dir if local else None
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
    def storage(self):
        if self._storage is None:
            from .storage import Storage

            self._storage = Storage(self.root)
        return self._storage

    def close(self) -> None:
        """Release DVC's handles (the API also works without calling this)."""
        if self._storage is not None:
            self._storage.close()
            self._storage = None

    def __enter__(self) -> "Zoo":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def table_path(self) -> Path:
        return self.root / constants.TABLE_PATH

    def _lock(self):
        from filelock import FileLock, Timeout

        self._work.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self._work / constants.LOCK_NAME), timeout=600)

        class _Guard:
            def __enter__(inner):
                try:
                    lock.acquire()
                except Timeout:
                    raise ZooError(
                        f"{self._work / constants.LOCK_NAME}: another zoo command has held the lock for "
                        "10 minutes; wait for it or remove the lock file if no zoo command is running"
                    ) from None
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
        from .schema import validate_frame

        refs = {f"{r['model']}@{r['step']}": r for r in new_rows}
        if len(refs) != len(new_rows):
            raise InvalidValueError("(model, step) would appear twice in the table; keep one row")
        referenced = [refs[r["parent"]] for r in changed if r["parent"] in refs]
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
        proc = subprocess.run(
            ["git", "add", "-A", "--", *paths], cwd=self.root, capture_output=True, text=True
        )
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

    def metrics(self, models: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
        """Evaluated metrics by ``MODEL@STEP`` (all models, or these), only where they are of the bytes
        the table holds now; empty until the pipeline has run."""
        from .results import parse_results, read_results

        wanted = None if models is None else set(models)
        current = {f"{r['model']}@{r['step']}": r["sha256"] for r in self.rows()
                   if wanted is None or r["model"] in wanted}
        if self._source is None:
            stored = read_results(self.root / constants.EVALUATIONS_DIR, models)
        else:
            src = self._source
            names = (sorted(f"{m}.json" for m in set(models)) if models is not None
                     else src.list_dir(constants.EVALUATIONS_DIR))
            stored = parse_results(src.read_bytes(f"{constants.EVALUATIONS_DIR}/{n}") for n in names)
        return {ref: dict(rec.get("metrics", {})) for ref, rec in stored.items()
                if current.get(ref) == rec.get("sha256")}

    def _best_row(self, model: str, mine: list[Row]) -> Row:
        task = mine[0]["task"]
        rule = rules.TASKS[task]
        metric, higher = str(rule["primary_metric"]), bool(rule["higher_is_better"])
        evaluated = self.metrics([model])
        scored = []
        for row in mine:
            value = evaluated.get(f"{row['model']}@{row['step']}", {}).get(metric)
            if value is not None and math.isfinite(value):
                scored.append(((value if higher else -value), int(row["step"]), row))
        if not scored:
            raise CheckpointNotFoundError(
                f"{model}@best: no evaluated {metric} for {model} yet; run `dvc repro` to evaluate it"
            )
        return max(scored, key=lambda t: (t[0], t[1]))[2]

    def get(self, ref: str) -> Checkpoint:
        """The checkpoint a reference names (``MODEL``, ``MODEL@STEP``, ``@latest``, ``@best``)."""
        return Checkpoint.from_row(self._with_metrics([self._resolve_row(ref)])[0])

    def list(
        self,
        patterns: Sequence[str] = (),
        *,
        exclude: Sequence[str] = (),
        task: str | None = None,
        arch: str | None = None,
        tag: str | None = None,
        where: str | None = None,
        sort: str | None = None,
        all_steps: bool = False,
    ) -> list[Checkpoint]:
        """Checkpoints matching the filters: the latest of each model unless ``all_steps``.

        ``where`` and ``sort`` also take the evaluated metrics (accuracy, macro_f1, nll); each
        returned Checkpoint carries its metrics when the pipeline has evaluated it.
        """
        return [Checkpoint.from_row(r) for r in self.select(
            patterns, exclude=exclude, task=task, arch=arch, tag=tag, where=where, sort=sort, all_steps=all_steps)]

    def select(
        self,
        patterns: Sequence[str] = (),
        *,
        exclude: Sequence[str] = (),
        task: str | None = None,
        arch: str | None = None,
        tag: str | None = None,
        where: str | None = None,
        sort: str | None = None,
        all_steps: bool = False,
    ) -> list[Row]:
        """Like ``list`` but returns the table rows as dicts of strings (plus metric columns): the fast
        path for exporting many rows."""
        rows = query.match_models(self.rows(), patterns, exclude)
        if task:
            rows = [r for r in rows if r["task"] == task]
        if arch:
            rows = [r for r in rows if r["arch"] == arch]
        if tag:
            rows = [r for r in rows if tag in r["tags"].split(";")]
        needs_metrics = any(m in (where or "") or m == (sort or "").lstrip("-") for m in rules.METRICS)
        if needs_metrics:
            rows = self._with_metrics(rows)
        if where:
            predicate = query.parse_where(where, (*rules.COLUMNS, *rules.METRICS))
            rows = [r for r in rows if predicate(r)]
        if not all_steps:
            rows = query.latest_per_model(rows)
        rows = query.sort_rows(rows, sort, (*rules.COLUMNS, *rules.METRICS))
        return rows if needs_metrics else self._with_metrics(rows)

    def _with_metrics(self, rows: list[Row]) -> list[Row]:
        """Copies of rows with their metric values as extra string columns ('' when not evaluated)."""
        evaluated = self.metrics({r["model"] for r in rows})
        if not evaluated:
            return rows
        out = []
        for r in rows:
            m = evaluated.get(f"{r['model']}@{r['step']}", {})
            out.append({**r, **{k: (repr(m[k]) if k in m else "") for k in rules.METRICS}})
        return out

    def local_path(self, ref: str) -> Path:
        """Where a checkpoint lives in this clone, or in the user cache for a zoo at a revision
        (whether or not it has been fetched yet)."""
        row = self._resolve_row(ref)
        if self._source is not None:
            return constants.cache_dir() / "objects" / row["sha256"][:2] / row["sha256"]
        return self._abs(row["path"])

    # ---- fetching -------------------------------------------------------------------------

    def _verified(self, row: Row, force: bool = False) -> bool:
        path = self._abs(row["path"])
        if not path.is_file():
            return False
        if path.is_symlink() and (self.root / constants.CHECKPOINTS_DIR).resolve() not in path.resolve().parents:
            raise UnsafePathError(f"{row['path']}: symlink out of the zoo refused; delete it and pull again")
        return self.stamps.sha256(path, force=force) == row["sha256"]

    def pull(self, refs: Sequence[str], remote: str | None = None) -> list[PullResult]:
        """Fetch exactly these checkpoints, check every byte against the table's sha256, then place them."""
        if not refs:
            raise UsageError("name at least one checkpoint to pull (MODEL, MODEL@STEP, MODEL@best); `dvc pull` fetches all")
        table_rows = self.rows()
        rows = list({r["path"]: r for r in (self._resolve_row(ref, table_rows) for ref in refs)}.values())
        if self._source is not None:
            out = []
            for row in rows:
                cached = self.local_path(f"{row['model']}@{row['step']}")
                status = "cached" if cached.is_file() else "downloaded"
                path = self._source.fetch(row["path"], row["sha256"], self.stamps)
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
            if missing_in_cache:
                self.storage.fetch(missing_in_cache, remote=remote)
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
                if not self._cache_ok(row, force=True):
                    obj.unlink(missing_ok=True)
                    raise IntegrityError(
                        f"{row['path']}: the bytes from remote {remote or self.storage.default_remote()!r} do not match "
                        f"sha256 {row['sha256'][:12]}… in {constants.TABLE_PATH}; the copy was discarded and the "
                        "workspace left as it was; re-push the checkpoint from a good copy"
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
        return [results[r["path"]] for r in rows]

    def _cache_ok(self, row: Row, force: bool = False) -> bool:
        obj = self.storage.cached_object(row["path"])
        return obj is not None and self.stamps.sha256(obj, force=force) == row["sha256"]

    def fetch(self, ref: str, remote: str | None = None) -> Path:
        """A verified local path to the checkpoint's file, pulling it first if needed."""
        return self.pull([ref], remote=remote)[0].path

    def load_state_dict(self, ref: str, remote: str | None = None) -> dict[str, "object"]:
        """The checkpoint's tensors (``torch.Tensor`` by name), read with safetensors."""
        from safetensors.torch import load_file

        return load_file(str(self.fetch(ref, remote=remote)))

    def load_model(self, ref: str, remote: str | None = None):
        """A ``torch.nn.Module`` of the row's architecture with the checkpoint's weights, in eval mode."""
        from .archs import build_model

        ckpt = self.get(ref)
        return build_model(ckpt.arch, self.load_state_dict(ckpt.ref, remote=remote))

    # ---- writing --------------------------------------------------------------------------

    def add(
        self,
        file: str | os.PathLike[str],
        *,
        model: str,
        step: int,
        arch: str,
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
    ) -> AddResult:
        """Put a safetensors file at its canonical path, track it with DVC, append its row, stage in git.

        Pickle-based files (torch.save, .pt/.pth/.ckpt/.bin, detected by content) are refused unless
        ``convert``: then a separate, fresh interpreter loads them with ``torch.load(weights_only=True)``
        (the allowlist widened only by ``allow_globals``, e.g. ``argparse.Namespace``) and writes
        safetensors, which is what gets added; the conversion is recorded in the row's ``source``.
        TorchScript is always refused.
        """
        self._workspace_only("add")
        src = Path(file)
        _check_add_args(src, model, step, arch, task, dataset, license, epoch, description, tags, parent, source, reported)
        if allow_globals and not convert:
            raise UsageError("--allow-global only applies to --convert")
        if convert and move:
            raise UsageError("--move cannot be combined with --convert (the converted file is a new file; "
                             "delete the original yourself once it is added)")
        for name in allow_globals:
            problem = allow_global_problem(name)
            if problem:
                raise InvalidValueError(problem)
        kwargs = dict(model=model, step=step, arch=arch, task=task, dataset=dataset, license=license, epoch=epoch,
                      description=description, tags=tags, parent=parent, reported=reported, replace=replace,
                      stage=stage)
        default_source = f"zoo add {rules.CONTROL_CHARS_RE.sub('?', src.name)}"
        if not convert or sniff(src) == "safetensors":
            return self._add(src, source=source or default_source, move=move, **kwargs)
        _check_against_table(self.rows(), model, step, parent)  # refuse early, before the slow conversion
        incoming = self._work / "incoming"
        converted = incoming / f"{model}-{step}-{os.getpid()}.converted.safetensors"
        try:
            conversion = convert_to_safetensors(src, converted, allow_globals=tuple(allow_globals),
                                                timeout=constants.convert_timeout())
            note = f"{source or default_source}; {conversion.describe()}"
            result = self._add(converted, source=note, move=True, **kwargs)
        except FormatError as e:
            raise type(e)(str(e).replace(str(converted), f"{src} (converted)")) from None
        finally:
            converted.unlink(missing_ok=True)
        return AddResult(result.checkpoint, result.status, result.staged, conversion)

    def _add(self, src: Path, *, model: str, step: int, arch: str, task: str, dataset: str, license: str,
             epoch: float | None, description: str, tags: Sequence[str], parent: str | None, source: str,
             reported: tuple[str, float] | None, move: bool, replace: bool, stage: bool) -> AddResult:
        """The add itself, on a file that ``add`` has checked the arguments of."""
        # pandas + pandera take ~1 s to import; warm them while the bytes are copied.
        warm = threading.Thread(target=_warm_schema, daemon=True)
        warm.start()
        rel = rules.checkpoint_path(model, step)
        with self._lock():
            self._recover_killed_adds()
            rows = self.rows()
            _check_against_table(rows, model, step, parent)
            existing = next((r for r in rows if r["model"] == model and int(r["step"]) == step), None)
            dest = self._abs(rel)
            read_header(src)  # refuse a bad file before copying a byte of it
            incoming = self._work / "incoming" / f"{model}-{step}-{os.getpid()}.safetensors"
            incoming.parent.mkdir(parents=True, exist_ok=True)
            try:
                digest = _move_hashed(src, incoming) if move else copy_hashed(src, incoming)
            except OSError as e:
                full = disk_full(e)
                if full is None:
                    raise
                raise DiskFullError(disk_full_message(full, f"copying {src} into the zoo")) from None
            try:
                facts = inspect_file(incoming, sha256=digest)  # the bytes may have changed while copied
            except FormatError as e:
                _give_back(incoming, src, move)
                raise FormatError(str(e).replace(str(incoming), str(src))) from None
            if existing is not None:
                if existing["sha256"] == facts.sha256:
                    _give_back(incoming, src, move)
                    return AddResult(Checkpoint.from_row(existing), "unchanged")
                if not replace:
                    _give_back(incoming, src, move)
                    raise DuplicateCheckpointError(
                        f"{model}@{step} exists with other bytes (sha256 {existing['sha256'][:12]}…); "
                        "pick a new --step, or pass --replace to overwrite it"
                    )
            row: Row = {
                "model": model, "step": str(step), "epoch": "" if epoch is None else repr(float(epoch)),
                "path": rel, "format": "safetensors", "size_bytes": str(facts.size_bytes),
                "sha256": facts.sha256, "num_params": str(facts.num_params), "dtype": facts.dtype,
                "arch": arch, "task": task, "dataset": dataset, "license": license,
                "parent": parent or "", "tags": ";".join(tags), "description": description,
                "created": _utc_now(), "source": source,
                "reported_metric": reported[0] if reported else "",
                "reported_value": repr(float(reported[1])) if reported else "",
            }
            new_rows = [r for r in rows if r is not existing] + [row]
            new_data = table.dump_csv(new_rows)
            warm.join()
            try:
                self._validate_change(new_data, new_rows, [row])
            except ZooError:
                _give_back(incoming, src, move)
                raise
            dest.parent.mkdir(parents=True, exist_ok=True)
            backup = None
            if dest.exists():
                backup = incoming.with_suffix(".previous")
                os.replace(dest, backup)
            pointer_rel = self.storage.pointer(str(Path(rel).parent))
            pointer = self.root / pointer_rel
            old_pointer = pointer.read_bytes() if pointer.is_file() else None
            # DVC rewrites the pointer in place: if this process is killed while it does, the next add
            # puts the old pointer back from this journal (see _recover_killed_adds)
            journal = incoming.with_suffix(".pointer")
            table.atomic_write(journal, json.dumps({"pointer": pointer_rel, "content": None if old_pointer is None
                                                    else old_pointer.decode("utf-8", "surrogateescape")}).encode())
            os.replace(incoming, dest)
            try:
                self._ensure_gitignore()
                self.storage.track([rel])
                obj = self.storage.cached_object(rel)
                if obj is None or obj.stat().st_size != facts.size_bytes:
                    raise StorageError(f"dvc add did not store {rel} in the DVC cache; nothing was added; "
                                       "run `dvc doctor` and the command again")
            except BaseException:
                journal.unlink(missing_ok=True)
                _give_back(dest, src, move)  # a moved file goes back where it came from, never lost
                if backup is not None:
                    os.replace(backup, dest)
                if not any(dest.parent.iterdir()):
                    dest.parent.rmdir()
                if old_pointer is None:  # DVC may have recorded the file before its copy failed
                    pointer.unlink(missing_ok=True)
                elif pointer.read_bytes() != old_pointer:
                    table.atomic_write(pointer, old_pointer)
                raise
            if backup is not None:
                backup.unlink(missing_ok=True)
            journal.unlink(missing_ok=True)
            try:
                table.atomic_write(self.table_path, new_data)
            except OSError as e:
                full = disk_full(e)
                if full is None:
                    raise
                raise DiskFullError(disk_full_message(full, f"writing {constants.TABLE_PATH}") +
                                    f" (then `zoo add` again: {rel} is in place and tracked)") from None
            self._table_cache = None
            self.stamps.record(dest, facts.sha256)
            staged = self._git_add([constants.TABLE_PATH, self.storage.pointer(str(Path(rel).parent)),
                                    f"{constants.CHECKPOINTS_DIR}/.gitignore"]) if stage else ()
        return AddResult(Checkpoint.from_row(row), "replaced" if existing else "added", staged)

    def _recover_killed_adds(self) -> list[Path]:
        """Under the lock: undo what a killed ``zoo add`` left half-done, then sweep its temp files.

        A stale pointer journal (its process is gone) means DVC may have been killed while rewriting
        that pointer: the pointer is put back as it was (and a replaced checkpoint's old bytes with it),
        which matches the table, since the table is written only after the journal is removed.
        Returns the files removed or restored from."""
        incoming = self._work / "incoming"
        stale = stale_temp_files([incoming])
        restored_pids = set()
        for path in [p for p in stale if p.name.endswith(".pointer")]:
            try:
                data = json.loads(path.read_text())
                rel = str(data["pointer"])
                if re.fullmatch(rf"{constants.CHECKPOINTS_DIR}/{rules.SLUG_PATTERN}\.dvc", rel):
                    target = self.root / rel
                    if data.get("content") is None:
                        target.unlink(missing_ok=True)
                    else:
                        table.atomic_write(target, str(data["content"]).encode("utf-8", "surrogateescape"))
                    restored_pids.add(path.name.rsplit("-", 1)[1].split(".")[0])
            except (OSError, ValueError, KeyError, TypeError):
                pass
        for path in [p for p in stale if p.name.endswith(".previous")]:
            try:
                model, step, pid = path.name[: -len(".previous")].rsplit("-", 2)
                if pid in restored_pids:  # the replace never completed: the old bytes go back
                    os.replace(path, self._abs(rules.checkpoint_path(model, int(step))))
            except (OSError, ValueError, ZooError):
                pass
        for path in stale:
            path.unlink(missing_ok=True)
        sweep_stale_temp_files(self.root, self._work)
        return stale

    def _ensure_gitignore(self) -> None:
        """One wildcard line instead of DVC's line per folder (DESIGN.md section 2)."""
        path = self.root / constants.CHECKPOINTS_DIR / ".gitignore"
        lines = path.read_text().splitlines() if path.exists() else []
        if "/*/" not in lines:
            table.atomic_write(path, ("\n".join(["/*/", *lines]) + "\n").encode())

    def remove(self, refs: Sequence[str], stage: bool = True) -> list[Checkpoint]:
        """Drop checkpoints from the table, the workspace and their folder's DVC pointer."""
        self._workspace_only("rm")
        if not refs:
            raise UsageError("name at least one checkpoint to remove (MODEL@STEP)")
        with self._lock():
            rows = self.rows()
            doomed = {id(self._resolve_row(ref, rows)): self._resolve_row(ref, rows) for ref in refs}
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
                folders.setdefault(str(Path(r["path"]).parent), []).append(r["path"])
            remaining = {str(Path(r["path"]).parent) for r in keep}
            touched = []
            for folder, paths in folders.items():
                for p in paths:
                    self._abs(p).unlink(missing_ok=True)
                if folder in remaining:
                    self.storage.track(paths)
                else:
                    self.storage.untrack_folder(folder)
                    shutil.rmtree(self.root / folder, ignore_errors=True)
                touched.append(self.storage.pointer(folder))
            table.atomic_write(self.table_path, new_data)
            self._table_cache = None
            if stage:
                self._git_add([constants.TABLE_PATH, *touched])
        return [Checkpoint.from_row(r) for r in doomed.values()]

    def push(self, refs: Sequence[str] = (), remote: str | None = None) -> PushResult:
        """Upload checkpoints (all by default) after re-checking each local object's sha256."""
        self._workspace_only("push")
        rows = self.rows()
        chosen = [self._resolve_row(ref, rows) for ref in refs] if refs else rows
        ready, skipped = [], []
        for row in chosen:
            obj = self.storage.cached_object(row["path"])
            if obj is None:
                skipped.append(f"{row['model']}@{row['step']}")
                continue
            if self.stamps.sha256(obj) != row["sha256"]:
                raise IntegrityError(
                    f"{row['path']}: the local DVC cache copy no longer matches sha256 {row['sha256'][:12]}… "
                    "(bit rot or tampering); nothing was pushed; run `zoo pull` to restore it"
                )
            ready.append(row["path"])
        if refs and skipped and not ready:
            raise MissingFileError(
                f"{', '.join(skipped)}: not in the local cache, so there is nothing to push; pull or add it first"
            )
        uploaded = self.storage.push(ready, remote=remote) if ready else 0
        name = remote or self.storage.default_remote() or ""
        return PushResult(name, uploaded, tuple(skipped))

    # ---- remotes (DVC remote config; credentials never in the committed .dvc/config) ---------

    def remotes(self) -> list[RemoteInfo]:
        """The remotes this clone knows: the committed ``.dvc/config`` plus its own ``.dvc/config.local``."""
        self._workspace_only("remote list")
        out = []
        for r in self.storage.remotes():
            options = dict(r["options"])
            creds = ""
            if r["url"].startswith("s3://"):
                creds = ("config.local" if r["local_secrets"] else
                         "environment" if constants.aws_credentials_in_env() else "AWS default chain")
            out.append(RemoteInfo(r["name"], r["url"], r["level"], r["default"], options.pop("endpointurl", None),
                                  options, creds, r["committed_secrets"]))
        return out

    def _remote(self, name: str) -> RemoteInfo:
        return next(r for r in self.remotes() if r.name == name)

    def remote_add(self, name: str, url: str, *, endpoint: str | None = None, region: str | None = None,
                   options: dict[str, str] | None = None, default: bool = False, local: bool = False,
                   force: bool = False) -> RemoteInfo:
        """Configure a remote (``s3://BUCKET/PREFIX`` with an S3-compatible ``endpoint``, or any DVC URL).

        Written to the committed ``.dvc/config`` (and staged in git), or with ``local`` to this clone's
        ``.dvc/config.local``. Credentials (access_key_id, secret_access_key, session_token …) are refused
        unless ``local``: keep them in the environment or in config.local.
        """
        self._workspace_only("remote add")
        problem = rules.slug_problem(name, "remote name")
        if problem:
            raise InvalidValueError(problem)
        opts = {str(k): str(v) for k, v in (options or {}).items()}
        if url.startswith("s3://"):
            bucket = url[len("s3://"):].split("/", 1)[0]
            if not bucket:
                raise InvalidValueError(f"{url!r}: name the bucket, as in s3://BUCKET/PREFIX")
        elif "://" in url and (endpoint is not None or region is not None):
            raise InvalidValueError(f"--endpoint and --region are S3 options; {url!r} is not an s3:// URL")
        if endpoint is not None:
            opts["endpointurl"] = _check_endpoint(endpoint)
        if region is not None:
            opts["region"] = region
        _refuse_secrets(name, opts, local)
        self.storage.add_remote(name, url, opts, level="local" if local else "repo", default=default, force=force)
        if not local:
            self._git_add([".dvc/config"])
        return self._remote(name)

    def remote_modify(self, name: str, key: str, value: str | None, *, local: bool = False) -> RemoteInfo:
        """Set one option of a remote (``value`` None unsets it); secrets only with ``local``."""
        self._workspace_only("remote modify")
        if key == "endpointurl" and value is not None:
            value = _check_endpoint(value)
        if value is not None:
            _refuse_secrets(name, {key: value}, local)
        self.storage.modify_remote(name, key, value, level="local" if local else "repo")
        if not local:
            self._git_add([".dvc/config"])
        return self._remote(name)

    def remote_default(self, name: str | None, *, local: bool = False) -> None:
        """Make ``name`` the default remote (None: no default) in .dvc/config (or config.local)."""
        self._workspace_only("remote default")
        self.storage.set_default_remote(name, level="local" if local else "repo")
        if not local:
            self._git_add([".dvc/config"])

    def remote_remove(self, name: str) -> list[str]:
        """Forget a remote (in .dvc/config and .dvc/config.local); returns the files it was removed from."""
        self._workspace_only("remote remove")
        levels = self.storage.remove_remote(name)
        if "repo" in levels:
            self._git_add([".dvc/config"])
        return [".dvc/config" if lv == "repo" else ".dvc/config.local" for lv in levels]

    def verify(self, refs: Sequence[str] = (), present_only: bool = False) -> list[FileCheck]:
        """Re-hash local files against the table (no stamps); one result per checkpoint."""
        self._workspace_only("verify")
        rows = self.rows()
        chosen = [self._resolve_row(ref, rows) for ref in refs] if refs else rows
        out = []
        for row in chosen:
            ref = f"{row['model']}@{row['step']}"
            path = self._abs(row["path"])
            if not path.is_file():
                if not present_only:
                    out.append(FileCheck(ref, row["path"], "missing", f"not pulled: zoo pull {ref}"))
                continue
            digest = sha256_file(path)
            if digest == row["sha256"]:
                self.stamps.record(path, digest)
                out.append(FileCheck(ref, row["path"], "ok"))
            else:
                self.stamps.record(path, digest)  # so pull sees the damage even if the stat did not change
                out.append(FileCheck(ref, row["path"], "mismatch",
                                     f"sha256 {digest[:12]}… != table {row['sha256'][:12]}…; restore with zoo pull {ref}"))
        return out

    def validate(self) -> list[str]:
        """Problems with the table (schema, every failure) and with present files (size, sha256, header)."""
        from .errors import TableInvalidError

        self._workspace_only("validate")
        st = self.table_path.stat()
        data = self.table_path.read_bytes()
        parse_problems: list[str] = []
        try:
            rows = table.parse_csv(data, problems=parse_problems)
            from .schema import validate_frame

            validate_frame(rows)
        except TableInvalidError as e:
            return [*parse_problems, *e.problems] if e.problems else [*parse_problems, str(e)]
        if parse_problems:
            return parse_problems
        table.mark_valid(data)  # the schema verdict: no later read validates this table again
        self._table_cache = ((st.st_mtime_ns, st.st_size), rows)
        problems = []
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
        return problems


def _refuse_secrets(name: str, options: dict[str, str], local: bool) -> None:
    """Credentials never go into the committed .dvc/config."""
    from .storage import SECRET_OPTIONS

    secrets = sorted(k for k in options if k in SECRET_OPTIONS)
    if secrets and not local:
        raise SecretError(
            f"remote {name!r}: {', '.join(secrets)} is a credential and .dvc/config is committed to git; "
            f"store it for this clone only with --local (`zoo remote modify {name} {secrets[0]} VALUE --local`) "
            "or use the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); nothing was written"
        )


def _check_endpoint(endpoint: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValueError(f"--endpoint {endpoint!r}: give a URL such as http://127.0.0.1:9000 or https://s3.example.com")
    if parts.username or parts.password:
        raise SecretError(f"--endpoint {endpoint!r}: credentials do not belong in the endpoint URL; use the "
                          "environment or `zoo remote modify NAME access_key_id KEY --local`")
    return endpoint.rstrip("/")


def _warm_schema() -> None:
    try:
        import checkpoint_zoo.schema  # noqa: F401
    except Exception:  # the real import, on the main thread, reports any problem
        pass


def _give_back(incoming: Path, src: Path, moved: bool) -> None:
    """Undo the copy (or the move) into the incoming area."""
    if moved and not src.exists():
        shutil.move(str(incoming), str(src))
    else:
        incoming.unlink(missing_ok=True)


def _move_hashed(src: Path, dst: Path) -> str:
    try:
        os.replace(src, dst)
    except OSError:
        digest = copy_hashed(src, dst)
        src.unlink()
        return digest
    return sha256_file(dst)


def _check_add_args(src, model, step, arch, task, dataset, license, epoch, description, tags, parent, source, reported) -> None:
    if not src.is_file():
        raise MissingFileError(f"{src}: no such file; give the path of a .safetensors checkpoint")
    problem = rules.slug_problem(model, "--model")
    if problem:
        raise InvalidValueError(problem)
    if not isinstance(step, int) or step < 0:
        raise InvalidValueError(f"--step {step!r}: must be a whole number >= 0")
    if epoch is not None and (not math.isfinite(epoch) or epoch < 0):
        raise InvalidValueError(f"--epoch {epoch!r}: must be a finite number >= 0")
    for flag, value, allowed in (("--arch", arch, rules.ARCHS), ("--task", task, tuple(rules.TASKS)),
                                 ("--license", license, rules.LICENSES)):
        if not value:
            raise InvalidValueError(f"{flag} is required; one of {', '.join(allowed)}")
        if value not in allowed:
            raise InvalidValueError(f"{flag} {value!r} is not allowed; use one of {', '.join(allowed)}")
    problem = rules.slug_problem(dataset, "--dataset") if dataset else "--dataset is required (a slug such as 'digits')"
    if problem:
        raise InvalidValueError(problem)
    for tag in tags:
        problem = rules.slug_problem(tag, "tag")
        if problem:
            raise InvalidValueError(f"--tags: {problem}")
    for flag, text in (("--description", description), ("--source", source or "")):
        problem = rules.text_problem(text, flag)
        if problem:
            raise InvalidValueError(problem)
    if parent is not None:
        try:
            p = parse_ref(parent)
        except RefError as e:
            raise InvalidValueError(f"--parent: {e}") from None
        if not isinstance(p.selector, int):
            raise InvalidValueError(f"--parent {parent!r}: name an exact MODEL@STEP, not an alias")
    if reported is not None:
        metric, value = reported
        if metric not in rules.METRICS:
            raise InvalidValueError(f"--reported {metric}=…: metric must be one of {', '.join(rules.METRICS)}")
        if not math.isfinite(value):
            raise InvalidValueError(f"--reported {metric}={value}: the value must be a finite number")
        problem = rules.metric_problem(metric, value, "--reported")
        if problem:
            raise InvalidValueError(problem)


def _check_against_table(rows: list[Row], model: str, step: int, parent: str | None) -> None:
    for other in {r["model"] for r in rows}:
        if other != model and other.casefold() == model.casefold():
            raise InvalidValueError(f"--model {model!r} differs from existing model {other!r} only by case; use {other!r}")
    if parent is not None:
        p = parse_ref(parent)
        if not any(r["model"] == p.model and int(r["step"]) == p.selector for r in rows):
            raise CheckpointNotFoundError(f"--parent {parent}: no such checkpoint in {constants.TABLE_PATH}; add it first")


def init(path: str | os.PathLike[str], remote_url: str | None = None, remote_name: str = "local") -> Zoo:
    """Make ``path`` an empty zoo: git + DVC repo, header-only table, and a default remote if given."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    if (root / constants.TABLE_PATH).exists():
        raise ZooError(f"{root / constants.TABLE_PATH}: a zoo is already here")

    def run(*cmd: str) -> None:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ZooError(f"{' '.join(cmd)} failed in {root}: {proc.stderr.strip()[-300:]}")

    if not (root / ".git").exists():
        run("git", "init", "-q")
    if not (root / ".dvc").exists():
        run(sys.executable, "-m", "dvc", "init", "-q")
    if remote_url:
        run(sys.executable, "-m", "dvc", "remote", "add", "-d", remote_name, remote_url)
    table.atomic_write(root / constants.TABLE_PATH, table.dump_csv([]))
    table.atomic_write(root / constants.CHECKPOINTS_DIR / ".gitignore", b"/*/\n")
    from .merge import setup

    setup(root)
    run("git", "add", "-A", "--", ".dvc", constants.TABLE_PATH, f"{constants.CHECKPOINTS_DIR}/.gitignore", ".gitattributes")
    return Zoo(root)
