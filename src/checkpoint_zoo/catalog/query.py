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
    r"(?P<val>\"[^\"]*\"|'[^']*'|[^\s\"'=<>!()]+)\s*"
)
_MAX_DEPTH = 32
_GRAMMAR = ("write COLUMN OP VALUE clauses joined by 'and'/'or', negated by 'not', grouped by ( ); "
            "OP one of == != < <= > >=, e.g. \"step >= 100 and (arch == resmlp or not tags == old)\"")
Predicate = Callable[[Row], bool]


def _as_number(text: str) -> float | None:
    """The finite number ``text`` spells, else None (NaN compares false with everything: never a bound)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _clause(col: str, fn: Callable[[Any, Any], bool], val: str, numeric: bool) -> Predicate:
    def holds(row: Row) -> bool:
        cell = row.get(col, "")
        left, right = _as_number(cell), _as_number(val)
        if left is not None and right is not None:
            return fn(left, right)
        if numeric and fn not in (operator.eq, operator.ne):
            return False  # an empty numeric cell is neither above nor below anything
        return fn(cell, val)
    return holds


class _Parser:
    """Recursive descent over ``or`` < ``and`` < ``not`` < ( ) < clause, the precedence of Python and SQL."""

    def __init__(self, expr: str, allowed: set[str], numbers: frozenset[str]) -> None:
        self.expr, self.allowed, self.numbers, self.pos, self.depth = expr, allowed, numbers, 0, 0

    def parse(self) -> Predicate:
        node = self.disjunction()
        self._skip()
        if self.pos < len(self.expr):
            raise UsageError(f"--where: expected 'and', 'or' or ')' at {self.expr[self.pos:]!r}; {_GRAMMAR}")
        return node

    def _skip(self) -> None:
        while self.pos < len(self.expr) and self.expr[self.pos].isspace():
            self.pos += 1

    def _keyword(self, word: str) -> bool:
        self._skip()
        m = re.compile(rf"{word}\b", re.IGNORECASE).match(self.expr, self.pos)
        if m:
            self.pos = m.end()
        return m is not None

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self._keyword("or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self._keyword("and"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def negation(self) -> Predicate:
        if self._keyword("not"):
            inner = self.negation()
            return lambda row: not inner(row)
        self._skip()
        if self.expr.startswith("(", self.pos):
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise UsageError(f"--where: more than {_MAX_DEPTH} nested parentheses")
            self.pos += 1
            node = self.disjunction()
            self._skip()
            if not self.expr.startswith(")", self.pos):
                raise UsageError(f"--where: missing ')' at {self.expr[self.pos:]!r}; {_GRAMMAR}")
            self.pos += 1
            self.depth -= 1
            return node
        return self.clause()

    def clause(self) -> Predicate:
        m = _CLAUSE_RE.match(self.expr, self.pos)
        if not m:
            raise UsageError(f"--where: cannot parse {self.expr[self.pos:]!r}; {_GRAMMAR}")
        col, op, val = m.group("col"), m.group("op"), m.group("val")
        if col not in self.allowed:
            raise UsageError(f"--where: unknown column {col!r}; columns are {', '.join(sorted(self.allowed))}")
        if val[:1] in {"'", '"'}:
            val = val[1:-1]
        numeric = col in self.numbers
        if numeric and _as_number(val) is None and (val or op not in {"==", "!="}):
            raise UsageError(f"--where: {col} is numeric, so {op} needs a finite number"
                             f"{'' if op not in {'==', '!='} else ' (or empty quotes)'}, not {val!r}")
        self.pos = m.end()
        return _clause(col, _OPS[op], val, numeric)


def parse_where(expr: str, columns: Iterable[str] = rules.COLUMNS,
                numeric: Iterable[str] = ()) -> Callable[[Row], bool]:
    """Compile ``COLUMN OP VALUE`` clauses joined by ``and``/``or``, negated by ``not`` and grouped by
    parentheses into a predicate; raises UsageError naming the bad part. ``numeric`` names extra numeric
    columns (the metrics)."""
    return _Parser(expr, set(columns), NUMERIC_COLUMNS | set(numeric)).parse()


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
