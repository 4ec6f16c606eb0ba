"""A derived, indexed copy of a large table in the user cache (SQLite), for reads that need a few rows.

The CSV in git stays the one source of truth: this copy is written only from rows just parsed and
validated, and is used only while the table file has the same (device, inode, size, mtime in ns) it had
then; anything else and the caller parses the CSV. ``zoo ls`` of the latest checkpoint of each model,
``zoo show MODEL@STEP`` and ``zoo pull MODEL@STEP`` then read the rows they need instead of turning
every row of a 100,000-row table into a dict (about 0.8 s). Small tables are not copied: parsing them is
cheaper than opening a database.

A write keeps it in step (``ForWrite``): ``zoo add`` checks its row against the rows of the copy it concerns,
splices the row into the file, and then applies the same change to the copy with the file's new stamp in one
SQLite transaction, so one add into a big zoo costs about what one into a small zoo does. A write that cannot
(no fresh copy, a file not as ``table.dump_csv`` writes it, several rows) rewrites the table whole and writes
the new table's copy after it.
"""

from __future__ import annotations

import hashlib
import operator
import os
import sqlite3
from pathlib import Path

from . import rules

Row = dict[str, str]
MIN_ROWS = 5000  # below this, parsing the CSV is as fast as the copy
_COLUMNS = ", ".join(f'"{c}"' for c in rules.COLUMNS)
_INSERT = f"INSERT INTO rows VALUES ({', '.join('?' * (len(rules.COLUMNS) + 1))})"
_OF_MODEL = f"SELECT {_COLUMNS} FROM rows WHERE model = ? ORDER BY step_num"
_MODELS = "SELECT DISTINCT model FROM rows ORDER BY model"


def stamp_of(table: Path) -> str:
    """What identifies a file (the table; an evaluation file for the summary and snapshot-part caches) as it is
    now: device, inode, size and mtime in ns."""
    st = table.stat()
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _path(table: Path) -> Path:
    from ..utils import environ

    key = hashlib.sha256(str(table.resolve()).encode()).hexdigest()[:32]
    return environ.cache_dir() / "tables" / f"{key}.sqlite"


def store(table: Path, rows: list[Row], stamp: str, canonical: bool | None = None) -> None:
    """Write the copy of ``rows`` (validated, read from ``table`` when it had ``stamp``); never fails the caller.

    The copy also says whether the file is exactly what ``table.dump_csv`` writes of its rows (``canonical``;
    None: look at the file), which is what lets a write splice its rows in (``ForWrite``)."""
    if len(rows) < MIN_ROWS:
        return
    dest = _path(table)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
    try:
        if canonical is None:
            from .table import is_canonical

            data = table.read_bytes()
            canonical = stamp_of(table) == stamp and is_canonical(data, rows)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        with sqlite3.connect(tmp) as db:
            db.execute("PRAGMA journal_mode = OFF")  # a file of our own, renamed into place once whole: no journal,
            db.execute("PRAGMA synchronous = OFF")   # no waits on the disk (a torn copy fails to open: a cold read)
            db.execute(f"CREATE TABLE rows ({_COLUMNS}, step_num INTEGER)")
            db.execute("CREATE TABLE meta (stamp TEXT, canonical INTEGER)")
            db.execute("INSERT INTO meta VALUES (?, ?)", (stamp, int(canonical)))
            db.executemany(_INSERT, _values(rows))
            db.execute("CREATE INDEX by_model ON rows (model, step_num)")
        os.replace(tmp, dest)
    except (OSError, sqlite3.Error, ValueError):
        tmp.unlink(missing_ok=True)


_PICK = operator.itemgetter(*rules.COLUMNS)
# a row as one text in SQL, as ``row_text`` joins it in Python: columns by \x1f (char(31)); rows by \x1e
_JOINED = " || char(31) || ".join(f'"{c}"' for c in rules.COLUMNS)


def _values(rows: list[Row]) -> list[tuple[object, ...]]:
    """Rows as the copy stores them: every column, then the step as a number (what ``by_model`` orders by)."""
    try:
        return [(*_PICK(r), int(r["step"])) for r in rows]  # every column there: one C call a row, not 22 .get()s
    except KeyError:
        return [(*(r.get(c, "") for c in rules.COLUMNS), int(r["step"])) for r in rows]


def _select(db: sqlite3.Connection, sql: str, args: tuple = ()) -> list[Row]:
    return [dict(zip(rules.COLUMNS, values)) for values in db.execute(sql, args)]


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
        return _select(self.db, sql, args)

    def latest(self) -> list[Row]:
        """The row with the largest step of each model."""
        return self._rows(f"SELECT {_COLUMNS} FROM rows AS r JOIN (SELECT model AS m, MAX(step_num) AS s FROM rows "
                          "GROUP BY model) ON r.model = m AND r.step_num = s ORDER BY r.model")

    def of_model(self, model: str) -> list[Row]:
        return self._rows(_OF_MODEL, (model,))

    def models(self) -> list[str]:
        assert self.db is not None
        return [m for (m,) in self.db.execute(_MODELS)]

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def text_of(self, model: str) -> str | None:
        """One model's rows as one text, as ``outline`` gives it (None: no such model)."""
        assert self.db is not None
        return self.db.execute(f"SELECT group_concat(v, char(30)) FROM (SELECT {_JOINED} AS v FROM rows WHERE model = ? "
                               "ORDER BY step_num)", (model,)).fetchone()[0]

    def outline(self, texts: bool = True) -> tuple[dict[str, str], list[tuple[str, int, str]],
                                                  set[tuple[str, str, str]]]:
        """What a summary of every model depends on, without a dict per row: each model's rows as one text
        (``row_text``'s, in step order; without ``texts``, none: most of the cost at 100,000 rows), the parent
        links (model, step, parent) and the (arch, task, dataset) combinations."""
        assert self.db is not None
        found = dict(self.db.execute(f"SELECT model, group_concat(v, char(30)) FROM (SELECT model, {_JOINED} AS v "
                                     "FROM rows ORDER BY model, step_num) GROUP BY model ORDER BY model")) if texts else {}
        links = [(m, int(s), p) for m, s, p in self.db.execute(
            "SELECT model, step_num, parent FROM rows WHERE parent != '' ORDER BY model, step_num")]
        combos = set(self.db.execute("SELECT DISTINCT arch, task, dataset FROM rows"))
        return found, links, combos


class ForWrite:
    """The copy opened by a writing command, under the zoo's lock, for a table whose bytes are exactly what
    ``table.dump_csv`` writes of its rows (the copy's ``canonical``): the rows a change touches are read
    from it, and the change applied to it in place, so that one ``zoo add`` into a big zoo neither parses, rewrites
    nor copies the whole table (``verbs.add``). ``open`` gives None whenever that does not hold, and the caller
    takes the full path.
    """

    def __init__(self, table: Path, db: sqlite3.Connection, data: bytes) -> None:
        self.table = table
        self.db = db
        self.data = data  # the table's bytes, as the copy's stamp names them

    @classmethod
    def open(cls, table: Path) -> ForWrite | None:
        path = _path(table)
        if not path.is_file():
            return None
        try:
            db = sqlite3.connect(path, isolation_level=None)
            found = db.execute("SELECT stamp, canonical FROM meta").fetchone()
            stamp = stamp_of(table)
            if found and found == (stamp, 1):
                data = table.read_bytes()
                if stamp_of(table) == stamp:
                    return cls(table, db, data)
            db.close()
        except (OSError, sqlite3.Error):
            pass
        return None

    def row(self, model: str, step: int) -> Row | None:
        found = _select(self.db, f"SELECT {_COLUMNS} FROM rows WHERE model = ? AND step_num = ?", (model, step))
        return found[0] if found else None

    def of_model(self, model: str) -> list[Row]:
        return _select(self.db, _OF_MODEL, (model,))

    def models(self) -> list[str]:
        return [m for (m,) in self.db.execute(_MODELS)]

    def following(self, model: str, step: int) -> tuple[str, str] | None:
        """The (model, step) of the row right after (model, step) in the table's order, or None at the end."""
        found = self.db.execute("SELECT model, step FROM rows WHERE (model, step_num) > (?, ?) "
                                "ORDER BY model, step_num LIMIT 1", (model, step)).fetchone()
        return (found[0], found[1]) if found else None

    def ancestors(self, ref: str) -> list[Row]:
        """The row ``ref`` names (MODEL@STEP), its parent's, and so on up its line (a loop stops where it closes)."""
        chain: list[Row] = []
        seen: set[str] = set()
        while ref and ref not in seen:
            seen.add(ref)
            model, _, step = ref.rpartition("@")
            found = self.row(model, int(step)) if step.isdigit() else None
            if found is None:
                break
            chain.append(found)
            ref = found["parent"]
        return chain

    def knows(self, sha256: str) -> bool:
        """Whether a row of the table holds these bytes (its file, its training state, or a file of its folder)."""
        return self.db.execute("SELECT 1 FROM rows WHERE sha256 = ?1 OR state_sha256 = ?1 OR "
                               "(files != '' AND instr(files, ?1) > 0) LIMIT 1", (sha256,)).fetchone() is not None

    def apply(self, removed: list[tuple[str, int]], added: list[Row]) -> None:
        """After the table file was written: the same change here and the file's new stamp, in one SQLite
        transaction; never fails the caller (a copy left with the old stamp is stale, and never read)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany("DELETE FROM rows WHERE model = ? AND step_num = ?", removed)
                self.db.executemany(_INSERT, _values(added))
                self.db.execute("UPDATE meta SET stamp = ?", (stamp_of(self.table),))
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except (OSError, sqlite3.Error, ValueError):
            pass

    def close(self) -> None:
        self.db.close()


def row_text(rows: list[Row]) -> str:
    """One model's rows as ``Cached.outline`` joins them: columns by \\x1f, rows by \\x1e."""
    return "\x1e".join("\x1f".join(r.get(c, "") for c in rules.COLUMNS) for r in rows)
