"""Selecting rows: model wildcards, the ``--where`` grammar, sorting. Pure functions over table rows."""

from __future__ import annotations

import fnmatch
import math
import operator
import re
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import UsageError
from . import rules
from .refs import natural_key

Row = dict[str, str]

NUMERIC_COLUMNS = frozenset({"step", "epoch", "size_bytes", "num_params", "reported_value"})
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge,
    "<": operator.lt, ">": operator.gt,
}
_CLAUSE_RE = re.compile(
    r"\s*(?P<col>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>==|!=|<=|>=|<|>)\s*"
    r"(?P<val>\"[^\"]*\"|'[^']*'|[^\s\"'=<>!]+)\s*"
)
_AND_RE = re.compile(r"and\b", re.IGNORECASE)


def _as_number(text: str) -> float | None:
    """The finite number ``text`` spells, else None (NaN compares false with everything: never a bound)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def parse_where(expr: str, columns: Iterable[str] = rules.COLUMNS,
                numeric: Iterable[str] = ()) -> Callable[[Row], bool]:
    """Compile ``COLUMN OP VALUE [and ...]`` into a predicate; raises UsageError naming the bad part.
    ``numeric`` names extra numeric columns (the metrics)."""
    allowed = set(columns)
    numbers = NUMERIC_COLUMNS | set(numeric)
    clauses: list[tuple[str, Callable[[object, object], bool], str]] = []
    pos = 0
    while True:
        m = _CLAUSE_RE.match(expr, pos)
        if not m:
            raise UsageError(
                f"--where: cannot parse {expr[pos:]!r}; write COLUMN OP VALUE joined by 'and', "
                "OP one of == != < <= > >=, e.g. \"step >= 100 and arch == resmlp\""
            )
        col, op, val = m.group("col"), m.group("op"), m.group("val")
        if col not in allowed:
            raise UsageError(f"--where: unknown column {col!r}; columns are {', '.join(sorted(allowed))}")
        if val[:1] in {"'", '"'}:
            val = val[1:-1]
        if col in numbers and _as_number(val) is None and (val or op not in {"==", "!="}):
            raise UsageError(f"--where: {col} is numeric, so {op} needs a finite number"
                             f"{'' if op not in {'==', '!='} else ' (or empty quotes)'}, not {val!r}")
        clauses.append((col, _OPS[op], val))
        pos = m.end()
        if pos >= len(expr):
            break
        a = _AND_RE.match(expr, pos)
        if not a:
            raise UsageError(f"--where: expected 'and' at {expr[pos:]!r}; only 'and' joins clauses")
        pos = a.end()

    def predicate(row: Row) -> bool:
        for col, fn, val in clauses:
            cell = row.get(col, "")
            left, right = _as_number(cell), _as_number(val)
            if left is not None and right is not None:
                ok = fn(left, right)
            elif col in numbers and fn not in (operator.eq, operator.ne):
                ok = False  # an empty numeric cell is neither above nor below anything
            else:
                ok = fn(cell, val)
            if not ok:
                return False
        return True

    return predicate


def match_models(rows: list[Row], patterns: Iterable[str], exclude: Iterable[str] = ()) -> list[Row]:
    """Rows whose model matches any shell-style pattern and none of ``exclude``."""
    patterns, exclude = list(patterns), list(exclude)
    if not patterns and not exclude:
        return rows
    out = []
    for row in rows:
        m = row["model"]
        if patterns and not any(fnmatch.fnmatchcase(m, p) for p in patterns):
            continue
        if any(fnmatch.fnmatchcase(m, p) for p in exclude):
            continue
        out.append(row)
    return out


def latest_per_model(rows: list[Row]) -> list[Row]:
    """The row with the largest step of each model."""
    best: dict[str, Row] = {}
    for row in rows:
        cur = best.get(row["model"])
        if cur is None or int(row["step"]) > int(cur["step"]):
            best[row["model"]] = row
    return list(best.values())


def sort_rows(rows: list[Row], column: str | None, columns: Iterable[str] = rules.COLUMNS,
              numeric: Iterable[str] = ()) -> list[Row]:
    """Sort by a column (prefix ``-`` for descending); numbers (and ``numeric`` columns) compare as
    numbers, empties last."""
    if not column:
        keys = {m: natural_key(m) for m in {r["model"] for r in rows}}  # one key per model, not per row
        return sorted(rows, key=lambda r: (keys[r["model"]], int(r["step"])))
    descending = column.startswith("-")
    col = column.lstrip("-")
    if col not in set(columns):
        raise UsageError(f"--sort: unknown column {col!r}; columns are {', '.join(sorted(set(columns)))}")

    is_number = col in NUMERIC_COLUMNS or col in set(numeric)
    present = [r for r in rows if r.get(col, "") != ""]
    empty = [r for r in rows if r.get(col, "") == ""]

    def key(row: Row):
        cell = row[col]
        num = _as_number(cell) if is_number else None
        return (num, []) if num is not None else (float("-inf"), natural_key(cell))

    return sorted(present, key=key, reverse=descending) + empty
