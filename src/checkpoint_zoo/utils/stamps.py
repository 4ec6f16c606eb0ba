"""Remembered sha256 verdicts keyed on (device, inode, size, mtime, ctime), so unchanged files are not re-hashed.

A stamp only ever says "these exact stat values had this sha256"; any change to the file changes
the stat and forces a re-hash. ctime is part of the key because mtime can be set back by anyone who
can write the file (``touch -d``, ``os.utime``), while ctime cannot: a file whose bytes were changed
and whose mtime was restored is still re-hashed before it is handed over.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .files import atomic_write, sha256_file

# Hashing a file smaller than this costs less than writing its stamp (a bulk add of 1,000 16 KB files
# spent more on stamps than on hashing); such files are simply hashed again.
MIN_BYTES = 1 << 20


class Stamps:
    """Stamp store under ``folder`` (one small file per stamped path)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _slot(self, path: Path) -> Path:
        key = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()
        return self.folder / key[:2] / key[2:]

    @staticmethod
    def _stat_key(path: Path, st: os.stat_result | None = None) -> str:
        st = st or os.stat(path)
        return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"

    def lookup(self, path: Path) -> str | None:
        """The remembered sha256 if the file is unchanged since it was stamped (a file too small to be stamped
        is answered None at once: finding its slot resolves its path and opens a file that is not there, which
        cost more than hashing it)."""
        try:
            st = os.stat(path)
            if st.st_size < MIN_BYTES:
                return None
            stat_key, digest = self._slot(path).read_text().rsplit(" ", 1)
            return digest if stat_key == self._stat_key(path, st) else None
        except (OSError, ValueError):
            return None

    def record(self, path: Path, digest: str) -> None:
        """Remember that the file as it is now has ``digest`` (files too small to be worth it are not stamped)."""
        try:
            if os.stat(path).st_size < MIN_BYTES:
                return
            atomic_write(self._slot(path), f"{self._stat_key(path)} {digest}".encode(), fsync=False)
        except OSError:
            pass  # stamps only save time

    def sha256(self, path: Path, force: bool = False) -> str:
        """sha256 of the file, from the stamp when it is still valid (unless ``force``)."""
        if not force:
            known = self.lookup(path)
            if known:
                return known
        digest = sha256_file(path)
        self.record(path, digest)
        return digest
