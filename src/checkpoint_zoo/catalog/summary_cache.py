"""Each model's last evaluation record, kept in the user cache (SQLite), so a listing reads one record per model.

``zoo ls`` shows the latest checkpoint of each model with its score, but a model's evaluation file holds every
step's record: at 100,000 checkpoints a warm listing spent seconds parsing 100,000 records to show 1,000. Here
each file's record of its largest step is kept beside the file's stat (device, inode, size, mtime in ns); a
file whose stat changed, or a step the cache cannot answer (one below the file's largest), is read again
(``records.read_steps``: the records asked for and the last one checked in full), so the answer is the same with
or without the cache. Only files whose records checked cleanly are remembered, so a bad record shown raises the
same error every time. The table is not
part of the key: the caller keeps only records of the bytes its rows hold, whatever the cache answered.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Collection, Mapping
from pathlib import Path

from .index_cache import stamp_of
from .records import read_results, read_steps

_SCHEMA = "CREATE TABLE IF NOT EXISTS files (name TEXT PRIMARY KEY, stamp TEXT, model TEXT, step INTEGER, record TEXT)"


def _path(folder: Path) -> Path:
    from ..utils import environ

    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:32]
    return environ.cache_dir() / "evaluations" / f"{key}.v1.sqlite"


def _stamp(path: Path) -> str | None:
    """The file's stat as a key; None when it cannot be stat'ed (read_results then decides what that means)."""
    try:
        return stamp_of(path)
    except OSError:
        return None


def _known(folder: Path) -> dict[str, tuple[str, str, int | None, str | None]]:
    """What the cache holds for ``folder``: file name -> (stamp, model, largest step, its record as JSON)."""
    path = _path(folder)
    if not path.is_file():
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return {}
    try:
        return {name: (stamp, model, step, record)
                for name, stamp, model, step, record in db.execute("SELECT * FROM files")}
    except sqlite3.Error:
        return {}
    finally:
        db.close()


def _remember(folder: Path, fresh: list[tuple[str, str, str, int | None, str | None]]) -> None:
    """Keep these files' last records; a cache that cannot be written is only a slower next read."""
    if not fresh:
        return
    path = _path(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=1)
    except (OSError, sqlite3.Error):
        return
    try:
        with db:
            db.execute(_SCHEMA)
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", fresh)
    except sqlite3.Error:
        pass
    finally:
        db.close()


def records_of(folder: Path, wanted: Mapping[str, Collection[int]]) -> dict[str, dict]:
    """Stored records by ``MODEL@STEP`` for these steps of these models: for every asked step, the record
    ``read_results(folder, wanted)`` holds for it (other records may come along). A file read here is checked as far
    as ``records.parse_steps`` checks it: a bad record among those returned raises as ``read_results`` raises."""
    if not folder.is_dir():
        return {}
    known = _known(folder)
    out: dict[str, dict] = {}
    misses: list[tuple[str, str | None]] = []
    for model in sorted(wanted):
        name = f"{model}.json"
        stamp = _stamp(folder / name)
        hit = known.get(name)
        if stamp is not None and hit is not None and hit[0] == stamp and hit[1] == model:
            step, record = hit[2], hit[3]
            if step is None:
                continue  # a file without records
            if all(s >= step for s in wanted[model]):
                if step in wanted[model] and record is not None:
                    out[f"{model}@{step}"] = json.loads(record)
                continue
        misses.append((model, stamp))
    fresh = []
    for model, stamp in misses:
        read = read_steps(folder, model, wanted[model])
        if read is None:
            continue
        named, found = read
        if named != model:  # a file naming another model: read as before
            return read_results(folder, list(wanted))
        out.update(found)
        if stamp is not None:
            last = max(found.values(), key=lambda r: r["step"], default=None)
            fresh.append((f"{model}.json", stamp, model, None if last is None else last["step"],
                          None if last is None else json.dumps(last)))
    _remember(folder, fresh)
    return out
