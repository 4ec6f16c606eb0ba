"""``zoo pull``: exactly the named checkpoints' bytes, every byte checked against the table before it is placed.

The mode is decided once: a working tree fetches into the DVC cache and checks out (``_into_workspace``);
a zoo at a revision fetches into the user cache (``_from_revision``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog import rules
from ..entities import PullResult
from ..errors import (
    CheckpointNotFoundError,
    MissingFileError,
    UsageError,
)
from ..storage.base import Part
from ..utils import environ
from .resolve import part_rows, resolve_many, resolve_row

if TYPE_CHECKING:
    from ..workspace.tree import Workspace
    from .facade import Facade

Row = dict[str, str]


def pull(zoo: Facade, refs: Sequence[str], remote: str | None = None, jobs: int | None = None,
         with_state: bool = False) -> list[PullResult]:
    """Fetch exactly these checkpoints' weights (and with ``with_state`` their training states), check every
    byte against the table's sha256, then place them. Results list the weights, then the states."""
    if not refs:
        raise UsageError("name at least one checkpoint to pull (MODEL, MODEL@STEP, MODEL@best); `dvc pull` fetches all")
    chosen = list({r["path"]: r for r in resolve_many(zoo, refs, zoo.rows())}.values())
    rows = [part for r in chosen for part in part_rows(r)]  # a folder checkpoint: each of its files
    if with_state:
        stateless = [f"{r['model']}@{r['step']}" for r in chosen if not r.get("state_sha256")]
        if stateless:
            raise MissingFileError(f"--with-state: {', '.join(stateless)} has no training state stored (column "
                                   "state_sha256 is empty); pull without --with-state, or add its state with "
                                   "`zoo add FILE --state STATE --replace`")
        rows += [{**r, "path": rules.state_path(r["model"], int(r["step"])), "sha256": r["state_sha256"],
                  "files": ""} for r in chosen]
    if zoo.revision is not None:
        return _from_revision(zoo, chosen, rows, remote)
    return _into_workspace(zoo.workspace, chosen, rows, remote, jobs)


def _from_revision(zoo: Facade, chosen: list[Row], rows: list[Row], remote: str | None) -> list[PullResult]:
    source: Any = zoo.source
    out = []
    for row in chosen:
        if row.get("files"):
            cached = local_path(zoo, f"{row['model']}@{row['step']}")
            status = "cached" if cached.is_dir() else "downloaded"
            path = source.fetch_folder(row["path"], rules.parse_files(row["files"]), row["sha256"], zoo.stamps,
                                       remote=remote)
            out.append(PullResult(f"{row['model']}@{row['step']}", path, status))
    for row in rows:
        if any(row["path"].startswith(c["path"] + "/") for c in chosen if c.get("files")):
            continue
        cached = local_path(zoo, f"{row['model']}@{row['step']}")
        status = "cached" if cached.is_file() else "downloaded"
        path = source.fetch(row["path"], row["sha256"], zoo.stamps, remote=remote)
        out.append(PullResult(f"{row['model']}@{row['step']}", path, status))
    return out


def parts_of(ws: Workspace, rows: list[Row], label: str = "") -> list[Part]:
    """The store's parts of these (one-file) rows, each path checked to stay inside zoo/checkpoints."""
    ws.check_paths(row["path"] for row in rows)
    return [Part(r["path"], r["sha256"], r["model"], r["step"], label) for r in rows]


def _into_workspace(ws: Workspace, chosen: list[Row], rows: list[Row], remote: str | None,
                    jobs: int | None) -> list[PullResult]:
    placed = ws.store.materialize(parts_of(ws, rows), remote=remote, jobs=jobs)
    results = {p.part.path: PullResult(p.part.ref, ws.root / p.part.path, p.status) for p in placed}
    for row in chosen:
        if row.get("files"):  # a folder checkpoint: one result, the most its files needed
            statuses = {results.pop(p).status for p, _ in rules.parts(row)}
            status = next(s for s in ("downloaded", "restored", "present") if s in statuses)
            results[row["path"]] = PullResult(f"{row['model']}@{row['step']}", ws.path(row["path"]), status)
    picked = {c["path"] for c in chosen}
    order = [r["path"] for r in chosen] + [r["path"] for r in rows if r["path"] not in picked and r["path"] in results]
    return [results[p] for p in order]


def local_path(zoo: Facade, ref: str) -> Path:
    """Where a checkpoint lives in this clone, or in the user cache for a zoo at a revision
    (whether or not it has been fetched yet)."""
    row = resolve_row(zoo, ref)
    if zoo.revision is not None:
        kind = "folders" if row.get("files") else "objects"
        return environ.cache_dir() / kind / row["sha256"][:2] / row["sha256"]
    return zoo.workspace.path(row["path"])


def fetch(zoo: Facade, ref: str, remote: str | None = None) -> Path:
    """A verified local path to the checkpoint's file, pulling it first if needed."""
    return pull(zoo, [ref], remote=remote)[0].path


def verified_file(zoo: Facade, ref: str, remote: str | None = None, name: str | None = None) -> Path:
    """A local file holding exactly the checkpoint's bytes (sha256 checked), without writing into the
    working tree: its file there when present and intact, else the DVC cache's object (fetched from the
    remote when missing); for a zoo at a revision, the user cache's copy. What ``zoo serve`` sends.
    For a folder checkpoint, ``name`` picks one of its files."""
    row = resolve_row(zoo, ref)
    files = rules.parse_files(row.get("files"))
    if not files and name == Path(row["path"]).name:  # a one-file checkpoint named by its file
        name = None
    source: Any = zoo.source
    if files or name is not None:
        if name not in files:
            listed = ", ".join(sorted(files)) or f"only {Path(row['path']).name}"
            raise CheckpointNotFoundError(f"{ref}: has no file {name!r}; its files: {listed}")
        if zoo.revision is not None:
            return source.fetch(f"{row['path']}/{name}", files[name], zoo.stamps, remote=remote)
        row = {**row, "path": f"{row['path']}/{name}", "sha256": files[name]}
    elif zoo.revision is not None:
        return fetch(zoo, ref, remote=remote)
    return _verified_object(zoo.workspace, ref, row, remote)


def _verified_object(ws: Workspace, ref: str, row: Row, remote: str | None) -> Path:
    return ws.store.materialize(parts_of(ws, [row], label=ref), remote=remote, place=False)[0].path


def load_state_dict(zoo: Facade, ref: str, remote: str | None = None) -> dict[str, Any]:
    """The checkpoint's tensors (``torch.Tensor`` by name), read with safetensors (every shard of a folder)."""
    from ..formats import load_weights_file

    return load_weights_file(fetch(zoo, ref, remote=remote))
