"""The one verify-refetch-drop policy behind every store's ``materialize``, written against the store's own
primitives (``cached``, ``fetch``, ``checkout``, its ``stamps``): a new store inherits it by providing them.

Only bytes whose sha256 matches the table leave this module. A copy that is wrong locally is the local
disk's fault and is fetched again once; bytes that come wrong from the remote are the remote's and are
refused (deleted, IntegrityError), so a bad object never reaches the workspace or a reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .. import layout
from ..errors import IntegrityError, MissingFileError, NotPushedError, UnsafePathError
from .base import Part, Placed

if TYPE_CHECKING:
    from .base import CheckpointStore


def materialize(store: CheckpointStore, parts: Sequence[Part], *, remote: str | None = None,
                jobs: int | None = None, place: bool = True) -> list[Placed]:
    """Verified local files of ``parts``, one per part in their order.

    A part whose workspace file already has its sha256 (by its stamp) is ``present``. With ``place``, the
    others are fetched into the cache as needed and checked out (``downloaded`` when their bytes came from
    the remote in this call, else ``restored``); raises NotPushedError naming every part the remote lacks,
    IntegrityError for bytes from the remote with another sha256 (the object deleted, nothing placed).
    Without ``place`` (a reader such as ``zoo serve`` must not write the working tree) each part is the
    cache's object, fetched when missing (``cached`` or ``downloaded``)."""
    if not place:
        return [_cache_copy(store, part, remote) for part in parts]
    placed: dict[str, Placed] = {}
    need = []
    for part in parts:
        if in_workspace(store, part):
            placed[part.path] = Placed(part, store.root / part.path, "present")
        else:
            need.append(part)
    if need:
        placed.update(_place(store, need, remote, jobs))
    return [placed[part.path] for part in parts]


def in_workspace(store: CheckpointStore, part: Part, force: bool = False) -> bool:
    """Whether the part's workspace file is there with its sha256 (its stamp trusted unless ``force``); a
    symlink out of the zoo's checkpoint folder is refused."""
    path = store.root / part.path
    if not path.is_file():
        return False
    if path.is_symlink() and (store.root / layout.CHECKPOINTS_DIR).resolve() not in path.resolve().parents:
        raise UnsafePathError(f"{part.path}: symlink out of the zoo refused; delete it and pull again")
    return store.stamps.sha256(path, force=force) == part.sha256


def cache_ok(store: CheckpointStore, part: Part, force: bool = False) -> bool:
    """Whether the local cache holds the part with its sha256 (its stamp trusted unless ``force``)."""
    obj = store.cached(part.path)
    return obj is not None and store.stamps.sha256(obj, force=force) == part.sha256


def refetch(store: CheckpointStore, paths: list[str], remote: str | None, jobs: int | None) -> None:
    """Fetch these files' objects, first removing the local cache copies they have: those are known to be
    damaged (the caller found their sha256 wrong), and a fetch keeps an object that is already there."""
    if not paths:
        return
    for p in paths:
        obj = store.cached(p)
        if obj is not None:
            obj.unlink(missing_ok=True)
    store.fetch(paths, remote=remote, jobs=jobs)


def _place(store: CheckpointStore, need: list[Part], remote: str | None, jobs: int | None) -> dict[str, Placed]:
    """Bring ``need`` (not right in the workspace) into the cache, check every byte, then check it out."""
    missing = [p.path for p in need if not cache_ok(store, p)]
    refetch(store, missing, remote, jobs)
    # a cache copy that looked right by its stamp but is damaged (bit rot with the same size and mtime)
    # is the local disk's fault: drop it and fetch it once more, so only bytes that came from the remote
    # in this call are ever blamed on it
    rotten = [p.path for p in need if p.path not in missing and not cache_ok(store, p, force=True)]
    refetch(store, rotten, remote, jobs)
    missing += rotten
    absent = [p for p in need if store.cached(p.path) is None]
    if absent:
        refs_absent = " ".join(p.ref for p in absent)
        name = remote or store.default_remote()
        raise NotPushedError(
            f"{store.describe_remote(remote)}: {refs_absent} ({', '.join(p.path for p in absent)}) "
            f"not found there: not pushed yet; run `zoo push {refs_absent} --remote {name}` in the clone "
            "that added it; nothing was changed here"
        )
    for part in need:
        obj = store.cached(part.path)
        # the others were hashed just above (their stamps are fresh)
        if not cache_ok(store, part, force=part.path in missing):
            if obj is not None:
                obj.unlink(missing_ok=True)
            raise IntegrityError(
                f"{part.path}: the bytes from remote {remote or store.default_remote()!r} do not match "
                f"sha256 {part.sha256[:12]}… in {layout.TABLE_PATH}; the copy was discarded and the "
                "workspace left as it was; re-push the checkpoint from a clone whose copy is good (`zoo "
                "push` there replaces the wrong object on the remote)"
            )
    for part in need:
        # a damaged file that kept its size and mtime looks unchanged to the store: remove it first
        (store.root / part.path).unlink(missing_ok=True)
    store.checkout([p.path for p in need])
    out = {}
    for part in need:
        path = store.root / part.path
        if not path.is_file() or store.stamps.sha256(path, force=True) != part.sha256:
            raise IntegrityError(f"{part.path}: checked-out file does not match its sha256; run `zoo pull` again")
        out[part.path] = Placed(part, path, "downloaded" if part.path in missing else "restored")
    return out


def _cache_copy(store: CheckpointStore, part: Part, remote: str | None) -> Placed:
    """The part's verified file without writing the workspace: its workspace file when right, else the cache's
    object, fetched when the cache lacks a right copy; bytes from the remote with another sha256 are
    deleted and refused."""
    if in_workspace(store, part):
        return Placed(part, store.root / part.path, "present")
    status: Literal["cached", "downloaded"] = "cached"
    if not cache_ok(store, part):
        refetch(store, [part.path], remote, None)
        status = "downloaded"
        if not cache_ok(store, part, force=True):
            obj = store.cached(part.path)
            if obj is None:
                raise NotPushedError(f"{part.ref}: not in this clone and not on remote "
                                     f"{remote or store.default_remote()!r}; push it from the clone that added it")
            obj.unlink(missing_ok=True)
            raise IntegrityError(f"{part.ref}: the remote's bytes do not match sha256 {part.sha256[:12]}…; refused")
    obj = store.cached(part.path)
    if obj is None:
        raise MissingFileError(f"{part.ref}: its DVC cache object vanished while being read; try again")
    return Placed(part, Path(obj), status)
