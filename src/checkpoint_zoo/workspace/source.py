"""A zoo's files, read the same way from the working tree or from a git revision.

The facade decides once which one it reads (``Zoo.__init__``); every reading verb then asks its Source,
so no verb branches on the mode. ``RevisionSource`` (workspace/revision.py) is the other implementation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import layout
from ..catalog import table
from ..utils import heap

if TYPE_CHECKING:
    from ..registry import Registry

Row = dict[str, str]


class Source(Protocol):
    """What reading verbs need of a zoo: its files, its table, its records and its registries."""

    rev: str
    commit: str | None
    git_dir: Path

    @property
    def location(self) -> str: ...

    def read_bytes(self, rel: str) -> bytes | None: ...

    def list_dir(self, rel: str) -> list[str]: ...

    def rows(self) -> list[Row]: ...

    def latest_rows(self) -> list[Row]: ...

    def model_rows(self, model: str) -> list[Row]: ...

    def model_names(self) -> list[str]: ...

    def stored_records(self, models: Any = None) -> dict[str, dict]: ...

    def records_of(self, wanted: dict[str, set[int]]) -> dict[str, dict]: ...

    def registry(self, *, strict: bool = True, code: bool = True, trusted: bool = False) -> Registry: ...

    def forget(self, registry: bool = False) -> None: ...


class WorkTree:
    """The working tree of a clone: files on disk, the table re-read whenever its stat changes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.git_dir = root
        self.rev = "working tree"
        self.commit: str | None = None
        self._rows: tuple[object, list[Row]] | None = None
        self._groups: tuple[list[Row], dict[str, list[Row]]] | None = None
        self._registry: Registry | None = None

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def table_path(self) -> Path:
        return self.root / layout.TABLE_PATH

    def read_bytes(self, rel: str) -> bytes | None:
        p = self.root / rel
        return p.read_bytes() if p.is_file() else None

    def list_dir(self, rel: str) -> list[str]:
        p = self.root / rel
        return sorted(x.name for x in p.iterdir()) if p.is_dir() else []

    def rows(self) -> list[Row]:
        """The validated table rows as strings (cached while the file is unchanged)."""
        return self._read(keep_copy=True)

    def rows_to_rewrite(self) -> list[Row]:
        """``rows`` for a command about to rewrite the table: no indexed copy of it is written, since the write
        makes it stale at once (the writer stores the new table's instead)."""
        return self._read(keep_copy=False)

    def _read(self, keep_copy: bool) -> list[Row]:
        st = table.table_file(self.root).stat()  # a symlinked or special table is refused, never read
        key = (st.st_mtime_ns, st.st_size)
        if self._rows and self._rows[0] == key:
            return self._rows[1]
        from ..catalog import index_cache

        stamp = index_cache.stamp_of(self.table_path)
        with heap.paused_gc():
            rows = table.load(table.read_table(self.root), layout.TABLE_PATH)
            self._rows = (key, rows)
            if keep_copy:
                index_cache.store(self.table_path, rows, stamp)
        return rows

    def _cached(self):
        """The table's indexed copy in the user cache when it is of the file as it is now, else None."""
        from ..catalog import index_cache

        if self._rows is not None:
            return None  # parsed in this process already: the rows are at hand
        table.table_file(self.root)  # the same refusals as a read
        found = index_cache.Cached(self.table_path)
        return found if found.fresh else None

    def latest_rows(self) -> list[Row]:
        """The row with the largest step of each model."""
        cached = self._cached()
        if cached is None:
            from ..catalog.query import latest_per_model

            return latest_per_model(self.rows())
        try:
            return cached.latest()
        finally:
            cached.close()

    def model_rows(self, model: str) -> list[Row]:
        """Every row of one model."""
        cached = self._cached()
        if cached is None:
            return list(self._grouped().get(model, ()))
        try:
            return cached.of_model(model)
        finally:
            cached.close()

    def model_text(self, model: str) -> str:
        """One model's rows as one text, as ``outline`` gives it."""
        from ..catalog import index_cache

        cached = self._cached()
        if cached is None:
            return index_cache.row_text(sorted(self._grouped().get(model, ()), key=lambda r: int(r["step"])))
        try:
            return cached.text_of(model) or ""
        finally:
            cached.close()

    def outline(self, texts: bool = True) -> tuple[dict[str, str], list[tuple[str, int, str]],
                                                  set[tuple[str, str, str]]]:
        """Each model's rows as one text, the parent links and the (arch, task, dataset) combinations
        (``index_cache.Cached.outline``), from the table's indexed copy when it is of the file as it is now
        (then without ``texts``: no text, which the table's parse would give at no cost)."""
        from ..catalog import index_cache

        cached = self._cached()
        if cached is not None:
            try:
                return cached.outline(texts)
            finally:
                cached.close()
        rows = self.rows()
        groups = self._grouped()
        found = {m: index_cache.row_text(sorted(rs, key=lambda r: int(r["step"]))) for m, rs in sorted(groups.items())}
        links = sorted((r["model"], int(r["step"]), r["parent"]) for r in rows if r["parent"])
        return found, links, {(r["arch"], r["task"], r["dataset"]) for r in rows}

    def _grouped(self) -> dict[str, list[Row]]:
        """The parsed rows by model, grouped once per parse (a pass over every model's rows is then linear)."""
        rows = self.rows()
        if self._groups is None or self._groups[0] is not rows:
            groups: dict[str, list[Row]] = {}
            for r in rows:
                groups.setdefault(r["model"], []).append(r)
            self._groups = (rows, groups)
        return self._groups[1]

    def model_names(self) -> list[str]:
        cached = self._cached()
        if cached is None:
            return sorted({r["model"] for r in self.rows()})
        try:
            return cached.models()
        finally:
            cached.close()

    def remember_rows(self, rows: list[Row]) -> None:
        """Keep rows just validated from the table file as it is now (no second parse)."""
        st = self.table_path.stat()
        self._rows = ((st.st_mtime_ns, st.st_size), rows)

    def forget(self, registry: bool = False) -> None:
        """Drop the cached rows (after this process wrote the table), and with ``registry`` the registries too
        (after it wrote a conf/ file)."""
        self._rows = None
        if registry:
            self._registry = None

    def stored_records(self, models: Any = None) -> dict[str, dict]:
        from ..catalog.records import read_results

        return read_results(self.root / layout.EVALUATIONS_DIR, models)

    def records_of(self, wanted: dict[str, set[int]]) -> dict[str, dict]:
        """The stored records of these steps of these models (``stored_records(wanted)`` for them), each model's
        last record answered from the user cache while its file is unchanged."""
        from ..catalog.summary_cache import records_of

        return records_of(self.root / layout.EVALUATIONS_DIR, wanted)

    def registry(self, *, strict: bool = True, code: bool = True, trusted: bool = False) -> Registry:
        """The registries of conf/ (the clone's own code folder trusted: it is your clone); for listing
        (``strict=False``) a broken file is named in ``problems`` instead of raised."""
        from ..registry import workspace_registry

        if not strict:
            return workspace_registry(self.root, strict=False)
        if self._registry is None:
            self._registry = workspace_registry(self.root)
        return self._registry
