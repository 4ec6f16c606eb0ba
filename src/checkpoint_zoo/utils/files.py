"""Writing files so that a crash or a kill leaves either the old bytes or the new, never a torn file."""

from __future__ import annotations

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
