"""An in-memory store for unit tests: the remotes are dicts of objects, the tracking an index per model
folder; the workspace is the zoo's folder on disk.

The local cache is a private temp folder, not a dict, because ``cached`` and ``materialize`` hand out
paths. Objects are named by the sha256 of the bytes tracked (a remote dict can hold other bytes under a
name: what the conformance suite damages). ``materialize`` runs the same policy as every store.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import RemoteConfigError, StorageError
from ..utils.stamps import Stamps
from . import policy
from .base import Part, Placed, tracked_split

# a transfer into the cache writes ``<oid><TEMP>`` and renames it when complete
TEMP = ".partial"


class MemoryStore:
    """The CheckpointStore protocol with dict remotes (``remote_objects``) and an index per tracked folder."""

    def __init__(self, root: Path, stamps: Stamps | None = None) -> None:
        self.root = Path(root)
        self.stamps = stamps if stamps is not None else Stamps(self.root / ".dvc" / "tmp" / "zoo" / "stamps")
        self.cache_dir = Path(tempfile.mkdtemp(prefix="zoo-memory-cache-"))
        weakref.finalize(self, shutil.rmtree, self.cache_dir, ignore_errors=True)
        self.index: dict[str, dict[str, str]] = {}  # model folder -> {path inside it: oid}
        self.remote_urls: dict[str, str] = {}
        self.remote_objects: dict[str, dict[str, bytes]] = {}  # remote name -> {oid: bytes}
        self.default: str | None = None

    # ---- tracking -------------------------------------------------------------------------------

    @staticmethod
    def tracking_file(folder: str) -> str:
        """The folder's index as JSON beside it (what the facade commits to git)."""
        return folder.rstrip("/") + ".json"

    @staticmethod
    def pointer(model_dir: str) -> str:
        """= tracking_file."""
        return model_dir.rstrip("/") + ".json"

    def track(self, files: list[str]) -> None:
        """Record these files as they are in the workspace now (a file no longer there is forgotten)."""
        for path in files:
            folder, rel = tracked_split(path)
            entries = self.index.setdefault(folder, {})
            src = self.root / path
            if not src.is_file():
                entries.pop(rel, None)
                continue
            oid = hashlib.sha256(src.read_bytes()).hexdigest()
            if self._object(oid) is None:
                self._put(oid, src.read_bytes())
            entries[rel] = oid
            self._write_index(folder)

    def _write_index(self, folder: str) -> None:
        (self.root / self.tracking_file(folder)).write_text(json.dumps(self.index[folder], sort_keys=True) + "\n")

    def untrack(self, folder: str) -> None:
        """Forget a model folder: its index and its tracking file."""
        self.index.pop(folder, None)
        (self.root / self.tracking_file(folder)).unlink(missing_ok=True)

    untrack_folder = untrack

    # ---- the local cache ------------------------------------------------------------------------

    def _object(self, oid: str) -> Path | None:
        obj = self.cache_dir / oid
        return obj if obj.is_file() else None

    def _put(self, oid: str, data: bytes) -> None:
        tmp = self.cache_dir / (oid + TEMP)
        tmp.write_bytes(data)
        os.replace(tmp, self.cache_dir / oid)

    def _oid(self, path: str) -> str | None:
        folder, rel = tracked_split(path)
        return self.index.get(folder, {}).get(rel)

    def cached(self, path: str) -> Path | None:
        """The cache's copy of a tracked file (None if it is not cached or not tracked)."""
        oid = self._oid(path)
        return self._object(oid) if oid else None

    cached_object = cached

    def manifest_object(self, folder: str) -> Path | None:
        """No folder manifest object: the index is the tracking file itself."""
        return None

    def recover(self) -> bool:
        """Remove the partial objects a killed transfer left in the cache; True if there were any."""
        stale = [p for p in self.cache_dir.iterdir() if p.name.endswith(TEMP)]
        for p in stale:
            p.unlink(missing_ok=True)
        return bool(stale)

    repair_after_kill = recover

    # ---- transfers ------------------------------------------------------------------------------

    def _remote(self, remote: str | None) -> dict[str, bytes]:
        name = remote or self.default
        if name is None:
            raise RemoteConfigError("no remote named and no default remote set; pass --remote NAME "
                                    "or set one with `zoo remote add NAME URL --default`")
        if name not in self.remote_urls:
            raise RemoteConfigError(f"remote {name!r} is not configured (configured: "
                                    f"{', '.join(sorted(self.remote_urls)) or 'none'})")
        return self.remote_objects.setdefault(name, {})

    def fetch(self, paths: list[str], remote: str | None = None, jobs: int | None = None) -> None:
        """Copy these files' objects from the remote into the cache; what the remote lacks is left out."""
        objects = self._remote(remote)
        for path in paths:
            oid = self._oid(path)
            if oid and self._object(oid) is None and oid in objects:
                self._put(oid, objects[oid])

    def checkout(self, paths: list[str]) -> None:
        """Copy cached files into the workspace."""
        for path in paths:
            obj = self.cached(path)
            if obj is None:
                raise StorageError(f"checkout failed for {path}: not in the cache")
            dest = self.root / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(obj, dest)

    def push(self, paths: Iterable[str], remote: str | None = None, jobs: int | None = None,
             folders: Iterable[str] = ()) -> tuple[int, int]:
        """Send the objects the remote lacks and overwrite the ones it holds with other bytes."""
        objects = self._remote(remote)
        sent = replaced = 0
        for path in paths:
            oid, obj = self._oid(path), self.cached(path)
            if oid is None or obj is None:
                continue
            data = obj.read_bytes()
            if oid not in objects:
                sent += 1
            elif objects[oid] != data:
                replaced += 1
            objects[oid] = data
        return sent, replaced

    def missing_on_remote(self, parts: Sequence[Part], *, remote: str | None = None,
                          folders: Iterable[str] = ()) -> tuple[list[Part], list[str]]:
        """The parts whose object the remote dict lacks; no folder is ever lacking, since the index lives in
        the tracking file (in git), not on the remote."""
        objects = self._remote(remote)
        return [p for p in parts if (oid := self._oid(p.path)) is None or oid not in objects], []

    def materialize(self, parts: Sequence[Part], *, remote: str | None = None, jobs: int | None = None,
                    place: bool = True) -> list[Placed]:
        """Verified local copies of these parts (``policy.materialize``)."""
        return policy.materialize(self, parts, remote=remote, jobs=jobs, place=place)

    def fetch_manifests(self, pointers: list[Path], remote: str | None = None) -> int:
        """No manifests to fetch: the tracking files hold the index."""
        return 0

    # ---- remotes --------------------------------------------------------------------------------

    def default_remote(self) -> str | None:
        return self.default

    def describe_remote(self, remote: str | None) -> str:
        return f"remote {remote or self.default or '(no default remote)'!r}"

    def remotes(self) -> list[dict]:
        return [{"name": n, "url": u, "options": {}, "level": "repo", "default": n == self.default,
                 "local_secrets": (), "committed_secrets": ()} for n, u in sorted(self.remote_urls.items())]

    def add_remote(self, name: str, url: str, options: dict[str, str], level: str = "repo",
                   default: bool = False, force: bool = False) -> None:
        if name in self.remote_urls and not force:
            raise RemoteConfigError(f"remote {name!r} exists already")
        self.remote_urls[name] = url
        if default:
            self.default = name

    def modify_remote(self, name: str, key: str, value: str | None, level: str = "repo") -> None:
        if name not in self.remote_urls:
            raise RemoteConfigError(f"remote {name!r} is not configured")
        if key == "url" and value is not None:
            self.remote_urls[name] = value

    def remove_remote(self, name: str) -> list[str]:
        if name not in self.remote_urls:
            raise RemoteConfigError(f"remote {name!r} is not configured")
        del self.remote_urls[name]
        self.remote_objects.pop(name, None)
        if self.default == name:
            self.default = None
        return ["repo"]

    def set_default_remote(self, name: str | None, level: str = "repo") -> None:
        if name is not None and name not in self.remote_urls:
            raise RemoteConfigError(f"remote {name!r} is not configured")
        self.default = name

    def close(self) -> None:
        """Nothing is held open (the cache folder lives as long as the store)."""
