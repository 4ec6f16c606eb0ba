"""``zoo gc``: remove from a remote the objects nothing references, with a grace period.

"Referenced" is what DVC's own ``dvc gc -w -a -T -c`` keeps: every object named by the working tree, every
branch and every tag (releases and stages are tags), folder manifests expanded to their files. On top of
that, an object younger than the grace period is kept even if no ref names it yet: a teammate may have
pushed it and not yet pushed the commit that names it. Nothing else is deleted, and ``dry_run`` deletes
nothing at all.

Abandoned transfers go too (``_abandoned``): on an S3 remote, the multipart uploads under ``files/md5/``
older than the grace period that no live journal of this clone names (a killed ``zoo push`` that was never
re-run leaves its parts stored, and billed, until aborted), and this clone's transfer journals (with their
partial downloads) older than it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ...errors import StorageError
from .failures import first_line


@dataclass
class GcReport:
    """What a collection removed (or would remove): (object path in the remote, bytes) each."""

    remote: str
    removed: list[tuple[str, int]] = field(default_factory=list)
    kept: int = 0
    young: int = 0
    aborted: list[tuple[str, str]] = field(default_factory=list)  # (key, upload id) of abandoned uploads
    journals: list[str] = field(default_factory=list)  # abandoned transfer journals of this clone dropped

    @property
    def removed_bytes(self) -> int:
        return sum(size for _, size in self.removed)


def _used_hashes(repo: Any, remote: str | None, odb: Any) -> set[str]:
    from dvc_data.hashfile.tree import Tree

    used: set[str] = set()
    containers = repo.used_objs(all_branches=True, all_tags=True, remote=remote, force=True)
    for hashes in containers.values():
        for hash_info in hashes:
            if hash_info.name != "md5" or not hash_info.value:
                continue
            used.add(hash_info.value)
            if hash_info.isdir:
                tree = None
                for source in (repo.cache.local, odb):
                    try:
                        tree = Tree.load(source, hash_info)
                        break
                    except Exception:  # not in this one: the next may have it
                        continue
                if tree is None:  # an unreadable manifest: keep everything rather than guess
                    raise StorageError(f"the folder manifest {hash_info.value} is in neither the cache nor the "
                                       "remote; `zoo pull` it first (gc never guesses what a folder holds)")
                used.update(hi.value for _, _, hi in tree if hi is not None and hi.value)
    return used


def _age_and_size(fs: Any, path: str) -> tuple[float | None, int]:
    info = fs.info(path)
    size = int(info.get("size") or 0)
    stamp = info.get("mtime") or info.get("LastModified") or info.get("created")
    if isinstance(stamp, datetime):
        stamp = stamp.timestamp()
    return (time.time() - float(stamp)) if stamp is not None else None, size


def collect(root: Path, remote: str | None, dry_run: bool, grace_days: float) -> GcReport:
    """Remove (or with ``dry_run`` only list) the unreferenced objects of ``remote`` older than ``grace_days``."""
    from dvc.repo import Repo

    if grace_days < 0:
        raise StorageError(f"--grace-days {grace_days:g}: must be 0 or more")
    try:
        with Repo(str(root)) as repo:
            name = remote or repo.config["core"].get("remote") or ""
            if not name:
                raise StorageError("no default remote to collect; name one with -r or `zoo remote default NAME`")
            odb = repo.cloud.get_remote_odb(name, "gc -c", hash_name="md5")
            used = _used_hashes(repo, name, odb)
            report = GcReport(name)
            doomed = []
            for oid in odb.all():
                if oid in used:
                    report.kept += 1
                    continue
                path = odb.oid_to_path(oid)
                age, size = _age_and_size(odb.fs, path)
                if age is None or age < grace_days * 86400:
                    report.young += 1
                    continue
                report.removed.append((odb.fs.relpath(path, odb.path) if hasattr(odb.fs, "relpath") else path, size))
                doomed.append(path)
            if doomed and not dry_run:
                odb.fs.remove(doomed)
                from dvc_data.hashfile.db import get_index

                get_index(odb).clear()
            _abandoned(odb, root, grace_days * 86400, dry_run, report)
    except StorageError:
        raise
    except Exception as e:  # DVC raises many unrelated types; each means the collection could not run
        raise StorageError(f"gc of remote {remote or '(default)'} failed: {first_line(e)}; nothing was removed "
                           "unless listed") from None
    return report


def _abandoned(odb: Any, root: Path, grace: float, dry_run: bool, report: GcReport) -> None:
    """Drop this clone's transfer journals older than ``grace`` seconds (a transfer in progress rewrites its
    journal with every part), then abort the remote's multipart uploads under ``files/md5/`` older than
    that which no journal left names (``dry_run``: only list both in ``report``)."""
    import json

    from . import s3fast
    from .transfer import state_dir

    state, now, live = state_dir(root), time.time(), set()
    found = sorted([*state.glob("*.json"), *state.glob("*.part")]) if state.is_dir() else []
    for journal in found:  # a partial download whose journal is gone is abandoned as much
        try:
            age = now - journal.stat().st_mtime
            record = json.loads(journal.read_text()) if age < grace and journal.suffix == ".json" else None
        except (OSError, ValueError):
            continue
        if age >= grace and (journal.suffix == ".json" or not journal.with_suffix(".json").exists()):
            report.journals.append(journal.name)
            if not dry_run:
                for leftover in (journal, journal.with_suffix(".part"), journal.with_suffix(".lock")):
                    leftover.unlink(missing_ok=True)
        elif isinstance(record, dict) and record.get("upload_id"):
            live.add(str(record["upload_id"]))
    remote = s3fast.open_remote(odb, state)
    if remote is None:
        return
    for key, upload_id, started in s3fast.uploads(remote):
        if upload_id in live or now - started < grace:
            continue
        report.aborted.append((key, upload_id))
        if not dry_run:
            s3fast.abort(remote, key, upload_id)
