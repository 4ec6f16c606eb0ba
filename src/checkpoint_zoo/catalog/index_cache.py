"""A derived, indexed copy of a large table in the user cache (SQLite), for reads that need a few rows.

The CSV in git stays the one source of truth: this copy is written only from rows just parsed and
validated, and is used only while the table file has the same (device, inode, size, mtime in ns) it had
then; anything else and the caller parses the CSV. ``zoo ls`` of the latest checkpoint of each model,
``zoo show MODEL@STEP`` and ``zoo pull MODEL@STEP`` then read the rows they need instead of turning
every row of a 100,000-row table into a dict (about 0.8 s). Small tables are not copied: parsing them is
cheaper than opening a database.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

from . import rules

Row = dict[str, str]
MIN_ROWS = 5000  # below this, parsing the CSV is as fast as the copy
_COLUMNS = ", ".join(f'"{c}"' for c in rules.COLUMNS)


def stamp_of(table: Path) -> str:
    """What identifies the table file as it is now: device, inode, size and mtime in ns."""
    st = table.stat()
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _path(table: Path) -> Path:
    from ..utils import environ

    key = hashlib.sha256(str(table.resolve()).encode()).hexdigest()[:32]
    return environ.cache_dir() / "tables" / f"{key}.sqlite"


def store(table: Path, rows: list[Row], stamp: str) -> None:
    """Write the copy of ``rows`` (validated, read from ``table`` when it had ``stamp``); never fails the caller."""
    if len(rows) < MIN_ROWS:
        return
    dest = _path(table)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        with sqlite3.connect(tmp) as db:
            db.execute(f"CREATE TABLE rows ({_COLUMNS}, step_num INTEGER)")
            db.execute("CREATE TABLE meta (stamp TEXT)")
            db.execute("INSERT INTO meta VALUES (?)", (stamp,))
            db.executemany(f"INSERT INTO rows VALUES ({', '.join('?' * (len(rules.COLUMNS) + 1))})",
                           ([r.get(c, "") for c in rules.COLUMNS] + [int(r["step"])] for r in rows))
            db.execute("CREATE INDEX by_model ON rows (model, step_num)")
        os.replace(tmp, dest)
    except (OSError, sqlite3.Error, ValueError):
        tmp.unlink(missing_ok=True)


class Cached:
    """The copy of ``table``, if there is one for the file as it is now (else ``fresh`` is False)."""

    def __init__(self, table: Path) -> None:
        self.db: sqlite3.Connection | None = None
        path = _path(table)
        if not path.is_file():
            return
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            found = db.execute("SELECT stamp FROM meta").fetchone()
            if found and found[0] == stamp_of(table):
                self.db = db
            else:
                db.close()
        except (OSError, sqlite3.Error):
            self.db = None

    @property
    def fresh(self) -> bool:
        return self.db is not None

    def _rows(self, sql: str, args: tuple = ()) -> list[Row]:
        assert self.db is not None
        return [dict(zip(rules.COLUMNS, values)) for values in self.db.execute(sql, args)]

    def latest(self) -> list[Row]:
        """The row with the largest step of each model."""
        return self._rows(f"SELECT {_COLUMNS} FROM rows AS r JOIN (SELECT model AS m, MAX(step_num) AS s FROM rows "
                          "GROUP BY model) ON r.model = m AND r.step_num = s ORDER BY r.model")

    def of_model(self, model: str) -> list[Row]:
        return self._rows(f"SELECT {_COLUMNS} FROM rows WHERE model = ? ORDER BY step_num", (model,))

    def models(self) -> list[str]:
        assert self.db is not None
        return [m for (m,) in self.db.execute("SELECT DISTINCT model FROM rows ORDER BY model")]

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def outline(self) -> tuple[dict[str, str], list[tuple[str, int, str]], set[tuple[str, str, str]]]:
        """What a summary of every model depends on, without a dict per row: each model's rows as one text
        (``row_text``'s, in step order), the parent links (model, step, parent) and the (arch, task, dataset)
        combinations."""
        assert self.db is not None
        joined = " || char(31) || ".join(f'"{c}"' for c in rules.COLUMNS)
        texts = dict(self.db.execute(f"SELECT model, group_concat(v, char(30)) FROM (SELECT model, {joined} AS v "
                                     "FROM rows ORDER BY model, step_num) GROUP BY model ORDER BY model"))
        links = [(m, int(s), p) for m, s, p in self.db.execute(
            "SELECT model, step_num, parent FROM rows WHERE parent != '' ORDER BY model, step_num")]
        combos = set(self.db.execute("SELECT DISTINCT arch, task, dataset FROM rows"))
        return texts, links, combos


def row_text(rows: list[Row]) -> str:
    """One model's rows as ``Cached.outline`` joins them: columns by \\x1f, rows by \\x1e."""
    return "\x1e".join("\x1f".join(r.get(c, "") for c in rules.COLUMNS) for r in rows)
