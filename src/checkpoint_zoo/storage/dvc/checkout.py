"""Putting fetched files into the workspace as ``dvc checkout --force`` would, without its index of every
pointer: each file from the local cache by the cache's link types, recorded in DVC's state db; anything
unusual is left to ``dvc checkout`` itself.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import StorageError
from ..base import tracked_split
from . import s3fast
from .failures import first_line, raise_if_disk_full, remote_session

if TYPE_CHECKING:
    from .store import Storage


def _narrow_index(store: Storage, paths: list[str]) -> None:
    """Give DVC an index of just these files' folder pointers for the next command (call it with
    DVC's repo lock held; the lock's release drops it). For a path inside a tracked folder, ``dvc
    checkout`` otherwise parses every ``.dvc`` pointer of the repository first: 0.4 s at 100 model
    folders, the largest part of pulling one checkpoint."""
    from dvc.repo.index import Index

    pointers = sorted({str(store.root / store.pointer(tracked_split(p)[0])) for p in paths})
    if all(Path(p).is_file() for p in pointers):
        store.repo.__dict__["index"] = Index.from_indexes(store.repo, [Index.from_file(store.repo, p) for p in pointers])


def checkout(store: Storage, paths: list[str]) -> None:
    """Put fetched files into the workspace: each file the cache holds, as ``dvc checkout`` would place it
    (``_place``), the others (and anything unusual) by ``dvc checkout`` itself."""
    from dvc.repo import lock_repo

    with remote_session() as log:  # DVC logs why a file could not be checked out; keep it
        try:
            with lock_repo(store.repo):  # DVC's own repo lock: no DVC command is writing these folders
                store._sweep_dvc_temps(paths)
                rest = _place(store, paths)
                if rest:
                    _narrow_index(store, rest)
                    store.repo.checkout(targets=[store._abs(p) for p in rest], force=True)
        except Exception as e:
            store._drop_cache_temps(*log.errors, e)
            raise_if_disk_full(e, f"checking out {', '.join(paths)}", *log.errors)
            raise StorageError(f"checkout failed for {', '.join(paths)}: {first_line(e)}") from None


# files placed at a time: a copy of a small file is a few system calls and some Python, so threads beyond the
# cores only contend for the GIL (2,000 x 64 KiB on 2 busy cores: 1.4 s with 8 threads, 0.9 s with 2)
PLACE_JOBS = max(2, min(8, os.cpu_count() or 2))


def _place(store: Storage, paths: list[str]) -> list[str]:
    """Place these files from the local cache the way ``dvc checkout --force`` of them does: each through a
    temp name in its folder renamed into place, by the first of the cache's link types (``cache.type``,
    default reflink then copy) that works, then recorded in DVC's state db (so ``dvc status`` does not
    hash them again) and each folder in its links db. Returns the paths left to ``dvc checkout``: a file
    whose object is not cached, or whose folder is not a plain folder of the zoo.

    ``dvc checkout`` of 2,000 files first builds an index of their folders (hashing what is there) and
    compares it with the manifests, then copies each file trying a reflink first: 1.8 s of a 13 s pull of
    2,000 x 64 KiB files (scripts/bench_s3.py's case, on a busy machine); this skips the index and stops
    trying a link type after its first failure, and took 0.8-1.1 s in the same runs. A file placed from an
    object whose sha256 this process computed as it was downloaded gets that digest remembered
    (``FreshStamps``), so its check after placing does not read it again."""
    from dvc_data.hashfile.hash_info import HashInfo

    root = os.path.realpath(store.root)
    plain: dict[Path, bool] = {}  # folder -> whether it is where it seems (no symlink on the way): once each
    todo, rest = [], []
    for p in paths:
        folder, rel = tracked_split(p)
        md5 = (store._entries(folder) or {}).get(rel)
        obj = store.cache_path(md5) if md5 else None
        dest = store.root / p
        if dest.parent not in plain:
            plain[dest.parent] = os.path.realpath(dest.parent) == os.path.join(root, *Path(p).parent.parts)
        if obj is None or not obj.is_file() or not plain[dest.parent] or dest.is_dir():
            rest.append(p)
        else:
            todo.append((p, md5, obj, dest))
    if not todo:
        return rest
    kinds = list(store.repo.cache.local.cache_types)
    for parent in {dest.parent for *_, dest in todo}:  # once each, not once per file
        parent.mkdir(parents=True, exist_ok=True)
    s3fast.run_all(lambda job: _place_one(store, kinds, *job[2:]), todo, PLACE_JOBS)
    fs = store.repo.fs
    store.repo.state.save_many([(str(dest), HashInfo("md5", md5), None) for _, md5, _, dest in todo], fs)
    _save_links(store.repo.state, [store._abs(f) for f in sorted({tracked_split(p)[0] for p, *_ in todo})], fs)
    return rest


def _save_links(state, folders: list[str], fs) -> None:
    """``state.save_link`` of each folder (DVC's record of the links it made, which ``dvc checkout`` cleans up
    by), in one connection to its database: ``save_link`` opens and closes it each time, 45 ms a folder
    on a busy disk (20 folders of a 2,000-file pull: 0.9 s). What DVC's ``State.set_link`` writes, as it
    writes it; a state without that database (``StateNoop``) gets its own calls."""
    from dvc_data.hashfile.utils import get_mtime_and_size
    from dvc_objects.fs import LocalFileSystem
    from dvc_objects.fs.system import inode
    from dvc_objects.fs.utils import relpath

    links = getattr(state, "links", None)
    if links is None or not isinstance(fs, LocalFileSystem):
        for folder in folders:
            state.save_link(folder, fs)
        return
    with links as ref:
        for folder in folders:
            try:
                mtime, _ = get_mtime_and_size(folder, fs, state.ignore)
            except FileNotFoundError:
                continue
            ref[relpath(folder, state.root_dir)] = (inode(folder), mtime)


def _place_one(store: Storage, kinds: list[str], obj: Path, dest: Path) -> None:
    """One file from its cache object (see ``_place``); ``kinds`` loses a link type once it fails, as DVC's."""
    import errno
    import secrets
    import shutil

    from dvc_objects.fs import system
    from dvc_objects.fs.utils import umask

    tmp = dest.parent / f".{secrets.token_urlsafe(16)}.tmp"  # a name DVC and the zoo sweep after a kill
    digest = store.fresh.fresh(obj)
    try:
        for kind in list(kinds):
            try:
                if kind == "copy":
                    shutil.copyfile(obj, tmp)
                elif kind == "reflink":
                    system.reflink(str(obj), str(tmp))
                    os.chmod(tmp, 0o666 & ~umask)  # a clone may keep the cache's read-only mode (DVC's chmod)
                elif kind == "hardlink":
                    system.hardlink(str(obj), str(tmp))
                elif kind == "symlink":
                    system.symlink(str(obj), str(tmp))
                else:
                    continue
            except OSError as e:
                tmp.unlink(missing_ok=True)
                if kind == "copy" or e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.ENOTTY,
                                                     errno.ENOSYS, errno.EINVAL, errno.EMLINK):
                    raise
                if len(kinds) > 1:
                    with contextlib.suppress(ValueError):  # another thread dropped it first
                        kinds.remove(kind)
                continue
            os.replace(tmp, dest)
            if digest and kind in ("copy", "reflink") and store.fresh.fresh(obj) == digest:
                store.fresh.remember(dest, digest)  # a copy of bytes hashed as they arrived, unchanged since
            return
        raise OSError(errno.ENOTSUP, f"no cache type of {kinds} can place {dest.name}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
