"""``zoo pull``: exactly the named checkpoints' bytes, every byte checked against the table before it is placed.

The mode is decided once: a working tree fetches into the DVC cache and checks out (``_into_workspace``);
a zoo at a revision fetches into the user cache (``_from_revision``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import constants
from ..catalog import rules
from ..entities import PullResult
from ..errors import (
    CheckpointNotFoundError,
    IntegrityError,
    MissingFileError,
    NotPushedError,
    UnsafePathError,
    UsageError,
)
from .resolve import part_rows, resolve_many, resolve_row

if TYPE_CHECKING:
    from ..api import Zoo
    from ..workspace.tree import Workspace

Row = dict[str, str]


def pull(zoo: Zoo, refs: Sequence[str], remote: str | None = None, jobs: int | None = None,
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


def _from_revision(zoo: Zoo, chosen: list[Row], rows: list[Row], remote: str | None) -> list[PullResult]:
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


def verified(ws: Workspace, row: Row, force: bool = False) -> bool:
    """Whether the working tree holds exactly the row's bytes (by stamp, or re-hashed with ``force``)."""
    if row.get("files"):
        return all(verified(ws, part, force) for part in part_rows(row))
    path = ws.path(row["path"])
    if not path.is_file():
        return False
    if path.is_symlink() and (ws.root / constants.CHECKPOINTS_DIR).resolve() not in path.resolve().parents:
        raise UnsafePathError(f"{row['path']}: symlink out of the zoo refused; delete it and pull again")
    return ws.stamps.sha256(path, force=force) == row["sha256"]


def cache_ok(ws: Workspace, row: Row, force: bool = False) -> bool:
    obj = ws.store.cached_object(row["path"])
    return obj is not None and ws.stamps.sha256(obj, force=force) == row["sha256"]


def fetch_into_cache(ws: Workspace, paths: list[str], remote: str | None, jobs: int | None) -> None:
    """Fetch these files' objects, first removing the local cache copies they have: those are known to be
    damaged (the caller found their sha256 wrong), and a fetch keeps an object that is already there."""
    if not paths:
        return
    for p in paths:
        obj = ws.store.cached_object(p)
        if obj is not None:
            obj.unlink(missing_ok=True)
    ws.store.fetch(paths, remote=remote, jobs=jobs)


def _into_workspace(ws: Workspace, chosen: list[Row], rows: list[Row], remote: str | None,
                    jobs: int | None) -> list[PullResult]:
    results: dict[str, PullResult] = {}
    need = []
    for row in rows:
        if verified(ws, row):
            results[row["path"]] = PullResult(f"{row['model']}@{row['step']}", ws.path(row["path"]), "present")
        else:
            need.append(row)
    if need:
        fetched = _fetch_checked(ws, need, remote, jobs)
        _checkout(ws, need, fetched, results)
    for row in chosen:
        if row.get("files"):  # a folder checkpoint: one result, the most its files needed
            statuses = {results.pop(p).status for p, _ in rules.parts(row)}
            status = next(s for s in ("downloaded", "restored", "present") if s in statuses)
            results[row["path"]] = PullResult(f"{row['model']}@{row['step']}", ws.path(row["path"]), status)
    order = [r["path"] for r in chosen] + [r["path"] for r in rows if r["path"] not in {c["path"] for c in chosen}
                                           and r["path"] in results]
    return [results[p] for p in order]


def _fetch_checked(ws: Workspace, need: list[Row], remote: str | None, jobs: int | None) -> list[str]:
    """Bring the objects of ``need`` into the DVC cache and check them; the paths fetched from the remote."""
    store = ws.store
    fetched = [r["path"] for r in need if not cache_ok(ws, r)]
    fetch_into_cache(ws, fetched, remote, jobs)
    # a cache copy that looked right by its stamp but is damaged (bit rot with the same size and
    # mtime) is the local disk's fault: drop it and fetch it once more, so only bytes that came
    # from the remote in this pull are ever blamed on it
    rotten = [r["path"] for r in need if r["path"] not in fetched and not cache_ok(ws, r, force=True)]
    fetch_into_cache(ws, rotten, remote, jobs)
    fetched += rotten
    absent = [r for r in need if store.cached_object(r["path"]) is None]
    if absent:
        refs_absent = " ".join(f"{r['model']}@{r['step']}" for r in absent)
        name = remote or store.default_remote()
        raise NotPushedError(
            f"{store.describe_remote(remote)}: {refs_absent} ({', '.join(r['path'] for r in absent)}) "
            f"not found there: not pushed yet; run `zoo push {refs_absent} --remote {name}` in the clone "
            "that added it; nothing was changed here"
        )
    for row in need:
        obj = store.cached_object(row["path"])
        # the others were hashed just above (their stamps are fresh)
        if not cache_ok(ws, row, force=row["path"] in fetched):
            if obj is not None:
                obj.unlink(missing_ok=True)
            raise IntegrityError(
                f"{row['path']}: the bytes from remote {remote or store.default_remote()!r} do not match "
                f"sha256 {row['sha256'][:12]}… in {constants.TABLE_PATH}; the copy was discarded and the "
                "workspace left as it was; re-push the checkpoint from a clone whose copy is good (`zoo "
                "push` there replaces the wrong object on the remote)"
            )
    return fetched


def _checkout(ws: Workspace, need: list[Row], fetched: list[str], results: dict[str, PullResult]) -> None:
    for row in need:
        # a damaged file that kept its size and mtime looks unchanged to DVC: remove it first
        ws.path(row["path"]).unlink(missing_ok=True)
    ws.store.checkout([r["path"] for r in need])
    for row in need:
        path = ws.path(row["path"])
        if not path.is_file() or ws.stamps.sha256(path, force=True) != row["sha256"]:
            raise IntegrityError(f"{row['path']}: checked-out file does not match its sha256; run `zoo pull` again")
        status = "downloaded" if row["path"] in fetched else "restored"
        results[row["path"]] = PullResult(f"{row['model']}@{row['step']}", path, status)


def local_path(zoo: Zoo, ref: str) -> Path:
    """Where a checkpoint lives in this clone, or in the user cache for a zoo at a revision
    (whether or not it has been fetched yet)."""
    row = resolve_row(zoo, ref)
    if zoo.revision is not None:
        kind = "folders" if row.get("files") else "objects"
        return constants.cache_dir() / kind / row["sha256"][:2] / row["sha256"]
    return zoo.workspace.path(row["path"])


def fetch(zoo: Zoo, ref: str, remote: str | None = None) -> Path:
    """A verified local path to the checkpoint's file, pulling it first if needed."""
    return pull(zoo, [ref], remote=remote)[0].path


def verified_file(zoo: Zoo, ref: str, remote: str | None = None, name: str | None = None) -> Path:
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
    if verified(ws, row):
        return ws.path(row["path"])
    if not cache_ok(ws, row):
        fetch_into_cache(ws, [row["path"]], remote, None)
        if not cache_ok(ws, row, force=True):
            obj = ws.store.cached_object(row["path"])
            if obj is None:
                raise NotPushedError(f"{ref}: not in this clone and not on remote "
                                     f"{remote or ws.store.default_remote()!r}; push it from the clone that added it")
            raise IntegrityError(f"{ref}: the remote's bytes do not match sha256 {row['sha256'][:12]}…; refused")
    obj = ws.store.cached_object(row["path"])
    if obj is None:
        raise MissingFileError(f"{ref}: its DVC cache object vanished while being read; try again")
    return obj


def load_state_dict(zoo: Zoo, ref: str, remote: str | None = None) -> dict[str, Any]:
    """The checkpoint's tensors (``torch.Tensor`` by name), read with safetensors (every shard of a folder)."""
    from ..formats import load_weights_file

    return load_weights_file(fetch(zoo, ref, remote=remote))
