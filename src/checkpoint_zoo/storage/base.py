"""The storage seam: what the zoo needs from wherever checkpoint bytes live, in zoo terms.

Paths are table paths (``zoo/checkpoints/<model>/<file>``); a model folder is the unit of tracking.
``storage.dvc.Storage`` implements it on DVC (local remote, S3 through dvc-s3); another backend
implements the same methods and nothing above this layer changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol


class CheckpointStore(Protocol):
    """Tracking, fetching and placing checkpoint files, and configuring where they are kept."""

    # tracking: a model folder is one tracked unit with a pointer file committed to git
    @staticmethod
    def pointer(model_dir: str) -> str:
        """The committed pointer file of a model folder."""
        ...

    def track(self, files: list[str]) -> None:
        """Record these files (all in one model folder) in the folder's pointer."""
        ...

    def untrack_folder(self, folder: str) -> None:
        """Forget a model folder entirely."""
        ...

    # bytes: the local cache, the remotes, the workspace
    def cached_object(self, path: str) -> Path | None:
        """The local cache copy of a tracked file, or None if it is not cached."""
        ...

    def manifest_object(self, folder: str) -> Path | None:
        """The local cache object of a tracked folder's manifest (None when the folder is not tracked)."""
        ...

    def repair_after_kill(self) -> bool:
        """Undo what a killed storage call left that would block every later one; True if it repaired something."""
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
