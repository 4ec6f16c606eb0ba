"""Files on disk: writes that a crash or a kill leaves either old or new (never torn), removal of a file or a
folder, and telling a full disk from other failures."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def temp_path(path: Path) -> Path:
    """The temp file a write to ``path`` goes through: ``.<name>.tmp-<pid>`` in the same folder (so the rename
    stays on one file system, and the sweep of killed commands' temp files recognises it)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_output(path: Path, fsync: bool = True, buffering: int = -1) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new bytes into: a temp file in the same folder, fsynced (unless
    ``fsync=False``) and renamed over ``path`` when the block ends; removed, ``path`` untouched, when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb", buffering=buffering) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write bytes to ``path`` through a temp file in the same folder, fsync and rename.

    ``fsync=False`` for caches that a crash may empty but never corrupt: readers treat bad content as absent."""
    with atomic_output(path, fsync) as f:
        f.write(data)

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def disk_full(*errors: BaseException | None) -> OSError | None:
    """The OSError saying the disk (or RLIMIT_FSIZE, or a quota) ran out, anywhere in these exceptions'
    chains, or None."""
    for err in errors:
        for e in _chain(err):
            if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
                return e
    return None


def disk_full_message(err: OSError, doing: str) -> str:
    """One line for DiskFullError: what was being written, why it failed, what to do."""
    why = {errno.ENOSPC: "no space left on the device", errno.EFBIG: "file too large for the size limit",
           errno.EDQUOT: "disk quota exceeded"}.get(err.errno or 0, os.strerror(err.errno or 0))
    name = getattr(err, "filename2", None) or getattr(err, "filename", None)
    where = f" ({name})" if name else ""
    return (f"{doing}: {why}{where}; the temp files were removed and nothing half-written was kept; "
            "free some space (or raise the limit) and run the command again")


def remove_path(path: Path) -> None:
    """Remove a file, or a folder with everything in it (a folder checkpoint, its incoming copy); nothing if
    absent."""
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


_CHUNK = 8 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in large chunks."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
