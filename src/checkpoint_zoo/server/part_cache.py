"""Each model's part of the working tree's snapshot, kept in the user cache (SQLite), so ``zoo serve``'s first
answer in a large zoo reads each model's rows but parses no evaluation file that has not changed.

A part (the model's listing, mark_best's summary, its fold of the task summaries, its tasks and datasets) is
a function of the model's rows, its evaluation file, the key check (the code and config hashes of its
architectures, tasks and datasets) and this code; the key hashes all four, so a changed row, file, conf/ or
package is a miss and the part is computed again from the files. A cache that cannot be read or written is
only a slower first answer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .snapshot import Part

_SCHEMA = "CREATE TABLE IF NOT EXISTS parts (model TEXT PRIMARY KEY, key TEXT, part TEXT)"


@cache
def _code() -> str:
    """The code a part is computed by: this module's, the snapshot's, the index's and the entities' source."""
    from .. import entities
    from ..publish import index
    from . import snapshot

    h = hashlib.sha256()
    for module in (entities, index, snapshot):
        h.update(Path(str(module.__file__)).read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


class PartCache:
    """The parts kept for the zoo at ``root``; ``save`` writes the ones computed since."""

    def __init__(self, root: Path) -> None:
        from ..utils import environ

        key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32]
        self.path = environ.cache_dir() / "snapshots" / f"{key}.v1.sqlite"
        self.known: dict[str, tuple[str, str]] = {}
        self.fresh: list[tuple[str, str, str]] = []
        if not self.path.is_file():
            return
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1)
        except sqlite3.Error:
            return
        try:
            self.known = {model: (k, part) for model, k, part in db.execute("SELECT model, key, part FROM parts")}
        except sqlite3.Error:
            self.known = {}
        finally:
            db.close()

    @staticmethod
    def key(rows: str, evaluations: Path, check: str) -> str:
        """What a model's part depends on: its rows (``index_cache.row_text``), its evaluation file's stat, the
        key check (``check``: the code and config hashes of the zoo's combinations) and the code."""
        from ..catalog.index_cache import stamp_of

        h = hashlib.sha256(_code().encode())
        try:
            h.update(stamp_of(evaluations).encode())
        except OSError:
            h.update(b"no file")
        h.update(check.encode())
        h.update(rows.encode())
        return h.hexdigest()

    def get(self, model: str, key: str) -> Part | None:
        """The model's part without its entries (the listing needs none), if kept under this key."""
        from .snapshot import ModelView, Part

        held = self.known.get(model)
        if held is None or held[0] != key:
            return None
        try:
            d = json.loads(held[1])
            facets = {k: tuple(v) for k, v in d["facets"].items()}
            view = ModelView(model, d["view"], d["search_text"], facets)
            return Part([], d["summary"], view, d["tasks"], frozenset((t, ds) for t, ds in d["pairs"]))
        except (ValueError, KeyError, TypeError):
            return None

    def put(self, model: str, key: str, part: Part) -> None:
        value = {"summary": part.summary, "view": part.view.summary, "search_text": part.view.search_text,
                 "facets": {k: list(v) for k, v in part.view.facets.items()}, "tasks": part.tasks,
                 "pairs": sorted(part.pairs)}
        self.fresh.append((model, key, json.dumps(value)))

    def save(self) -> None:
        if not self.fresh:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=1)
        except (OSError, sqlite3.Error):
            return
        try:
            with db:
                db.execute(_SCHEMA)
                db.executemany("INSERT OR REPLACE INTO parts VALUES (?, ?, ?)", self.fresh)
            self.fresh = []
        except sqlite3.Error:
            pass
        finally:
            db.close()
