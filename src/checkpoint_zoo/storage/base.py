"""The storage seam: what the zoo needs from wherever checkpoint bytes live, in zoo terms.

Paths are table paths (``zoo/checkpoints/<model>/<file>``); a model folder is the unit of tracking.
``storage.dvc.Storage`` implements it on DVC (local remote, S3 through dvc-s3), ``storage.memory``
in memory for tests; ``open_store`` picks one by URL scheme and ``tests/test_store_conformance.py``
holds every implementation to the same behaviour, so nothing above this layer changes with the backend.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from .. import layout
from ..utils.stamps import Stamps

_FRESH = 65_536  # digests a FreshStamps keeps (bounded: see remember)

# present: the workspace file was already right; restored: placed from a good local cache copy;
# downloaded: its bytes came from the remote in this call; cached (place=False only): the cache copy
# was already there
Status = Literal["present", "restored", "downloaded", "cached"]


@dataclass(frozen=True)
class Part:
    """One file a store holds for the zoo: its table path (``zoo/checkpoints/m/step-00000003.safetensors``, a
    folder checkpoint's ``.../step-00000003/model.safetensors``, a training state) and the sha256 the
    table gives it. ``model``/``step`` name its checkpoint in messages; ``label`` replaces that name
    (e.g. the ref the user typed) when set."""

    path: str
    sha256: str
    model: str
    step: str
    label: str = ""

    @property
    def ref(self) -> str:
        """How messages name the checkpoint this part belongs to."""
        return self.label or f"{self.model}@{self.step}"


@dataclass(frozen=True)
class Placed:
    """A part's verified local file: in the workspace (``place=True``, or already right there), else the
    local cache's object."""

    part: Part
    path: Path
    status: Status


class FreshStamps(Stamps):
    """The stamps a store trusts, plus the sha256 of files the store itself wrote in this process, taken from
    the bytes as they were written (a download, a placement from a verified object), and of files it hashed
    in this process. Those are answered even under ``force``: ``force`` distrusts verdicts from an earlier
    time (bit rot with an unchanged stat), and these are seconds old and keyed on the full stat, ctime
    included, so any change since is a miss and a re-hash. It spares a pull of many small files (too small
    to be stamped) reading every byte back two to four times: a placement from objects already cached
    hashed each object three times and each placed file once more."""

    def __init__(self, inner: Stamps) -> None:
        super().__init__(inner.folder)
        self.inner = inner
        self._fresh: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def lookup(self, path: Path) -> str | None:
        return self.inner.lookup(path)

    def record(self, path: Path, digest: str) -> None:
        self.inner.record(path, digest)

    def remember(self, path: Path, digest: str) -> None:
        """``digest`` is the sha256 of the bytes this process just wrote to ``path``, or just read from it."""
        try:
            key = self._stat_key(path)
        except OSError:
            return
        with self._lock:
            if len(self._fresh) >= _FRESH:  # a long-running zoo serve hashes ever more files
                self._fresh.clear()
            self._fresh[os.path.abspath(path)] = (key, digest)

    def fresh(self, path: Path) -> str | None:
        """The digest ``remember`` kept for ``path`` while the file is unchanged since, else None."""
        with self._lock:
            known = self._fresh.get(os.path.abspath(path))
        try:
            return known[1] if known is not None and known[0] == self._stat_key(path) else None
        except OSError:
            return None

    def sha256(self, path: Path, force: bool = False) -> str:
        known = self.fresh(path) or (None if force else self.inner.lookup(path))
        if known:
            return known
        digest = self.inner.sha256(path, force=True)  # hashed (and stamped) here and now
        self.remember(path, digest)  # so as fresh as bytes this process wrote
        return digest


@functools.lru_cache(maxsize=1 << 16)  # a pull of thousands of files asks it of each several times
def tracked_split(path: str) -> tuple[str, str]:
    """(model folder, path inside it) of a file under ``zoo/checkpoints/<model>/``: a checkpoint's file sits in
    its model folder, or one level deeper for a checkpoint that is a folder of files."""
    parts = Path(path).parts
    depth = len(Path(layout.CHECKPOINTS_DIR).parts) + 1
    if len(parts) <= depth + 1:
        return str(Path(path).parent), Path(path).name
    return "/".join(parts[:depth]), "/".join(parts[depth:])


class CheckpointStore(Protocol):
    """Tracking, fetching and placing checkpoint files, and configuring where they are kept."""

    root: Path  # the zoo's working tree: table paths are relative to it
    stamps: Stamps  # the sha256 verdicts materialize trusts for unchanged files

    # bytes, in zoo words
    def materialize(self, parts: Sequence[Part], *, remote: str | None = None, jobs: int | None = None,
                    place: bool = True) -> list[Placed]:
        """Verified local files of these parts, one per part in their order (the policy: ``policy.materialize``).
        ``place=False`` leaves the workspace untouched and gives the local cache's object."""
        ...

    def cached(self, path: str) -> Path | None:
        """The local cache copy of a tracked file, or None if it is not cached (its bytes unchecked)."""
        ...

    def recover(self) -> bool:
        """Undo what a killed storage call left that would block every later one; True if it repaired something."""
        ...

    def untrack(self, folder: str) -> None:
        """Forget a model folder entirely."""
        ...

    @staticmethod
    def tracking_file(folder: str) -> str:
        """The file (committed to git) that records what a model folder holds."""
        ...

    # the same, in the words the facade and verbs still use
    @staticmethod
    def pointer(model_dir: str) -> str:
        """The committed pointer file of a model folder (= tracking_file)."""
        ...

    def track(self, files: list[str]) -> None:
        """Record these files (all in one model folder) in the folder's pointer."""
        ...

    def untrack_folder(self, folder: str) -> None:
        """Forget a model folder entirely (= untrack)."""
        ...

    # bytes: the local cache, the remotes, the workspace
    def cached_object(self, path: str) -> Path | None:
        """The local cache copy of a tracked file, or None if it is not cached (= cached)."""
        ...

    def manifest_object(self, folder: str) -> Path | None:
        """The local cache object of a tracked folder's manifest (None when the folder is not tracked)."""
        ...

    def repair_after_kill(self) -> bool:
        """= recover."""
        ...

    def fetch(self, paths: list[str], remote: str | None = None, jobs: int | None = None) -> None:
        """Bring exactly these files' objects from a remote into the local cache, ``jobs`` transfers at a time."""
        ...

    def checkout(self, paths: list[str]) -> None:
        """Place cached files into the workspace."""
        ...

    def push(self, paths: Iterable[str], remote: str | None = None, jobs: int | None = None,
             folders: Iterable[str] = ()) -> tuple[int, int]:
        """Upload what the remote lacks of these files and of the folder manifests of ``folders``, ``jobs`` at
        a time, and overwrite what it holds of them with other bytes; returns (objects sent, wrong objects
        replaced)."""
        ...

    def missing_on_remote(self, parts: Sequence[Part], *, remote: str | None = None,
                          folders: Iterable[str] = ()) -> tuple[list[Part], list[str]]:
        """What a teammate's pull from ``remote`` (default: the default remote) would not find: the parts whose
        object is not there, or whose model folder's record is not (a store that keeps one on the remote),
        and the model folders among ``folders`` and the parts' own whose record is not. Asked of the remote
        by listing or existence checks, never by downloading checkpoint bytes, so a commit can afford it."""
        ...

    # remotes
    def default_remote(self) -> str | None:
        """The remote used when none is named."""
        ...

    def describe_remote(self, remote: str | None) -> str:
        """A one-line description of a remote for messages."""
        ...

    def remotes(self) -> list[dict]:
        """Every configured remote with its level, options and where its credentials come from."""
        ...

    def add_remote(self, name: str, url: str, options: dict[str, str], level: str = "repo",
                   default: bool = False, force: bool = False) -> None:
        """Configure a remote (repo level: committed; local: this clone only)."""
        ...

    def modify_remote(self, name: str, key: str, value: str | None, level: str = "repo") -> None:
        """Set or unset one option of a remote."""
        ...

    def remove_remote(self, name: str) -> list[str]:
        """Forget a remote; returns the levels it was removed from."""
        ...

    def set_default_remote(self, name: str | None, level: str = "repo") -> None:
        """Make a remote the default (None: no default)."""
        ...

    def fetch_manifests(self, pointers: list[Path], remote: str | None = None) -> int:
        """Bring the folder manifests these pointers name into the local cache (merges need them)."""
        ...

    def close(self) -> None:
        """Release handles."""
        ...
