"""The pandera schema of ``zoo/checkpoints.csv``.

A strict DataFrameSchema whose custom checks are registered, so ``schemas/checkpoints.schema.yaml``
(the YAML export) round-trips. Importing this module costs about a second (pandas + pandera); the
table module only does so when a table has not been validated before.
"""

from __future__ import annotations

import functools
import operator
import re
import unicodedata
from collections import Counter

import numpy as np
import pandas as pd
import pandera.extensions as extensions
import pandera.pandas as pa
from pandera.api.checks import Check

from ..errors import TableInvalidError
from . import rules


def _registered(**kwargs):
    """Register a check once, even if this module is imported twice (as in tests that reload it)."""
    def wrap(fn):
        if fn.__name__ in getattr(Check, "REGISTERED_CUSTOM_CHECKS", {}):
            return fn
        return extensions.register_check_method(**kwargs)(fn)
    return wrap


def _failing(series: pd.Series, ok, distinct: set | None = None) -> pd.Series:
    """``ok`` of each cell, judged once per distinct value: a column of 100,000 cells holds a few thousand names (or
    a handful of dtypes), so this is one hash per cell instead of a Python call per cell. The distinct values are a
    set of the cells (pandas' ``unique`` of a text column takes ten times as long)."""
    bad = [v for v in (set(series.tolist()) if distinct is None else distinct) if not ok(v)]
    return ~series.isin(bad) if bad else pd.Series(True, index=series.index)


@_registered(statistics=["pattern"], check_type="vectorized")
def full_match(series: pd.Series, *, pattern: str) -> pd.Series:
    """Each cell is one whole match of ``pattern`` (``re.fullmatch``, ASCII classes: unlike ``^…$``, a trailing
    newline does not pass, nor does another script's digit pass as a digit). A column that repeats its values (names,
    dates, registered kinds) is judged once per distinct value; one of distinct values (digests, paths) cell by cell
    in C (the pattern's ``fullmatch`` mapped over the cells, not pandas' Python function per cell)."""
    rx = _compiled(pattern)
    cells = series.tolist()
    distinct = set(cells)
    if len(distinct) * 2 <= len(cells):
        return _failing(series, lambda v: not isinstance(v, str) or rx.fullmatch(v) is not None, distinct)
    try:
        if all(map(rx.fullmatch, cells)):
            return pd.Series(True, index=series.index)
    except TypeError:  # a missing cell (pandera passes it, its null check judges it)
        pass
    return pd.Series([not isinstance(v, str) or rx.fullmatch(v) is not None for v in cells], index=series.index)


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)  # \d is 0-9, not every script's digits


@_registered(check_type="vectorized")
def nfc_normalized(series: pd.Series) -> pd.Series:
    return _failing(series, lambda s: not isinstance(s, str) or unicodedata.normalize("NFC", s) == s)


@_registered(check_type="vectorized")
def no_case_collision(series: pd.Series) -> pd.Series:
    names = [v for v in set(series.tolist()) if isinstance(v, str)]  # a fold's spellings, among the distinct names
    spellings = Counter(name.casefold() for name in names)
    clashing = [name for name in names if spellings[name.casefold()] > 1]
    return ~series.isin(clashing) if clashing else pd.Series(True, index=series.index)


@_registered(check_type="vectorized")
def safe_text(series: pd.Series) -> pd.Series:
    texts = [v for v in series.tolist() if isinstance(v, str)]
    if (len(texts) + int(series.isna().sum()) == len(series) and not rules.CONTROL_CHARS_RE.search("".join(texts))
            and not _FORMULA_START.search("\n".join(texts))):  # all clean, seen in two passes over the column
        return pd.Series(True, index=series.index)
    text = series.fillna("").astype(str)
    has_control = text.str.contains(rules.CONTROL_CHARS_RE.pattern, regex=True)
    formula = text.str.startswith(rules.FORMULA_PREFIXES)
    return ~(has_control | formula)


_FORMULA_START = re.compile(f"(?:^|\n)[{re.escape(''.join(rules.FORMULA_PREFIXES))}]")


@_registered(check_type="vectorized")
def finite_or_empty(series: pd.Series) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    return series.isna() | (values.notna() & values.abs().lt(float("inf")))


@_registered(statistics=["allowed"], check_type="vectorized")
def parts_isin(series: pd.Series, *, allowed: list[str]) -> pd.Series:
    allowed_set = set(allowed)
    return _failing(series, lambda v: not isinstance(v, str) or all(p in allowed_set for p in v.split(";")))


@_registered(check_type="vectorized")
def canonical_path(df: pd.DataFrame) -> pd.Series:
    step = pd.to_numeric(df["step"], errors="coerce")
    paths, models, formats = df["path"].tolist(), df["model"].tolist(), df["format"].tolist()
    if pd.api.types.is_integer_dtype(step.dtype) and all(isinstance(m, str) for m in models):  # no NaN to test
        same = [s >= 0 and p == rules.checkpoint_path(m, s, f) for p, m, s, f in zip(paths, models, step.tolist(), formats)]
        return pd.Series(same, index=df.index)
    same = [pd.notna(s) and s >= 0 and p == rules.checkpoint_path(m, s, f)
            for p, m, s, f in zip(paths, models, step.tolist(), formats)]
    return pd.Series(same, index=df.index) | _empty_rows(df)


def _empty_rows(df: pd.DataFrame) -> pd.Series:
    """The rows with every cell missing, which the dataframe-wide checks pass (pandera's ``ignore_na`` did this by
    looking at every cell of the frame after each check, a tenth of a second each at 100,000 rows; the checks run
    with ``ignore_na=False`` and only a row without a model can be empty, so only such rows get a look)."""
    no_model = df["model"].isna()
    if not no_model.any():
        return no_model
    return no_model & df.isna().all(axis="columns")


@_registered(check_type="vectorized")
def folder_files(df: pd.DataFrame) -> pd.Series:
    """A folder checkpoint lists its files and its sha256 is their manifest's; a one-file one lists none."""
    def ok(fmt: object, files: object, sha: object) -> bool:
        if fmt != "folder":
            return not isinstance(files, str) or not files
        if not isinstance(files, str) or not files:
            return False
        parsed = rules.parse_files(files)
        return len(parsed) <= rules.MAX_FOLDER_FILES and rules.folder_digest(parsed) == sha

    files = df["files"].tolist() if "files" in df else [None] * len(df)
    return pd.Series([(not isinstance(fl, str) or not fl) if f != "folder" else ok(f, fl, s)  # ok(), inlined
                      for f, fl, s in zip(df["format"].tolist(), files, df["sha256"].tolist())], index=df.index)


@_registered(check_type="vectorized")
def parent_exists(df: pd.DataFrame) -> pd.Series:
    orphan = df["parent"].isna()
    if orphan.all():  # no row names a parent (the common table): nothing to look up
        return orphan
    models, steps = df["model"].tolist(), df["step"]
    if pd.api.types.is_integer_dtype(steps.dtype) and all(isinstance(m, str) for m in models):
        known = {f"{m}@{s}" for m, s in zip(models, steps.tolist())}  # what astype(str) makes of them, 10 × faster
    else:
        known = set(df["model"].astype(str) + "@" + steps.astype(str))
    return orphan | df["parent"].isin(known)


@_registered(check_type="vectorized")
def reported_pair(df: pd.DataFrame) -> pd.Series:
    return df["reported_metric"].isna() == df["reported_value"].isna()


def _column(dtype: type, *checks: Check, nullable: bool = False) -> pa.Column:
    return pa.Column(dtype, checks=list(checks), nullable=nullable)


def _matches(pattern: str) -> Check:
    return Check.full_match(pattern=pattern)


def _build_schema() -> pa.DataFrameSchema:
    """One row per checkpoint; docs/architecture.md lists what each column means.

    Built as a DataFrameSchema, not a DataFrameModel: turning a model class into a schema asks pandera
    for every index type it knows, which imports all of dask.dataframe whenever dask is installed
    (0.4-0.6 s on every first read of a table, for nothing this table uses).
    """
    slug = _matches(rules.SLUG_PATTERN)
    sha = _matches(rules.SHA256_PATTERN)
    columns = {
        # identity
        "model": _column(str, slug, Check.nfc_normalized(), Check.no_case_collision()),
        "step": _column(int, Check.ge(0)),
        "epoch": _column(float, Check.ge(0), Check.finite_or_empty(), nullable=True),
        # computed from the file, never typed by hand
        "path": _column(str, _matches(r"zoo/checkpoints/[^/]+/[^/]+")),
        "format": _column(str, Check.isin(list(rules.FORMATS))),
        "size_bytes": _column(int, Check.ge(0)),
        "sha256": _column(str, sha),
        "num_params": _column(int, Check.ge(0)),
        "dtype": _column(str, Check.parts_isin(allowed=list(rules.DTYPES))),
        "state_sha256": _column(str, sha, nullable=True),
        "files": _column(str, _matches(rules.FILES_PATTERN), nullable=True),
        # what it is: registered names (conf/); the registries check membership, the schema the form
        "arch": _column(str, slug),
        "task": _column(str, slug),
        "dataset": _column(str, slug),
        "license": _column(str, Check.isin(list(rules.LICENSES))),
        "parent": _column(str, _matches(rules.PARENT_PATTERN), nullable=True),
        "tags": _column(str, _matches(rules.TAGS_PATTERN), nullable=True),
        "description": _column(str, Check.safe_text(), nullable=True),
        # provenance
        "created": _column(str, _matches(rules.CREATED_PATTERN)),
        "source": _column(str, Check.safe_text()),
        "reported_metric": _column(str, _matches(rules.METRIC_NAME_PATTERN), nullable=True),
        "reported_value": _column(float, Check.finite_or_empty(), nullable=True),
    }
    return pa.DataFrameSchema(
        columns, strict=True, coerce=True, unique=["model", "step"], name="CheckpointSchema",
        description="One row per checkpoint; docs/architecture.md lists what each column means.",
        checks=[Check.canonical_path(ignore_na=False), Check.folder_files(ignore_na=False),
                Check.parent_exists(ignore_na=False), Check.reported_pair(ignore_na=False)],
    )


CheckpointSchema = _build_schema()


_RULE_HELP = {
    "nfc_normalized": "must be NFC-normalised Unicode",
    "no_case_collision": "differs from another model name only by case; use one spelling",
    "safe_text": "must have no control characters and not start with = + - @ (spreadsheet formulas)",
    "finite_or_empty": "must be a finite number or empty",
    "canonical_path": ("must be zoo/checkpoints/<model>/step-<8-digit step>.safetensors (a folder checkpoint: "
                       "without .safetensors); let `zoo add` write it"),
    "folder_files": ("a folder checkpoint lists its files as NAME:SHA256;… and its sha256 is their manifest's (a "
                     "one-file checkpoint lists none); let `zoo add` write them"),
    "parent_exists": "must be empty or an existing MODEL@STEP of this table",
    "reported_pair": "reported_metric and reported_value must be both set or both empty",
    "reported_in_range": "reported_value is above its metric's maximum (accuracy and macro_f1 are at most 1)",
    "multiple_fields_uniqueness": "(model, step) appears more than once; keep one row",
    "not_nullable": "must not be empty",
}
# Dataframe-wide checks fail whole rows; report them once, on the column a person has to fix.
_ROW_CHECK_COLUMN = {
    "canonical_path": "path",
    "folder_files": "files",
    "parent_exists": "parent",
    "reported_pair": "reported_metric",
    "reported_in_range": "reported_value",
    "multiple_fields_uniqueness": "step",
}


def _describe_check(check: str) -> str:
    name, _, arg = str(check).partition("(")
    arg = arg[:-1] if arg.endswith(")") else arg
    if name in _RULE_HELP:
        return _RULE_HELP[name]
    if name == "str_matches":
        return f"must match {arg.strip(chr(39))}"
    if name == "full_match":
        return f"must match ^{arg.removeprefix('pattern=')}$"
    if name in {"isin", "parts_isin"}:
        values = re.findall(r"'([^']*)'", arg)
        return f"must be one of {', '.join(values)}" if name == "isin" else f"each ';' part must be one of {', '.join(values)}"
    if name == "greater_than_or_equal_to":
        return f"must be >= {arg}"
    if name in {"coerce_dtype", "dtype"}:
        if "int" in arg:
            return "must be a whole number"
        return "must be a number" if "float" in arg else f"has the wrong type ({arg})"
    return str(check)


def frame_from_rows(rows: list[dict[str, str]]) -> pd.DataFrame:
    """Build the raw DataFrame of strings (empty cells as missing) that the schema coerces: one object array of
    every cell, its empty cells set to None in one pass (from dicts and then ``where`` took three times as long)."""
    pick = operator.itemgetter(*rules.COLUMNS)
    try:
        cells = np.array([pick(r) for r in rows], dtype=object).reshape(len(rows), len(rules.COLUMNS))
    except (KeyError, ValueError):  # a row without some column (read as missing), or cells numpy would nest
        frame = pd.DataFrame.from_records(rows, columns=list(rules.COLUMNS))
        return frame.astype(object).where(frame.ne(""), None)
    cells[cells == ""] = None
    return pd.DataFrame(cells, columns=list(rules.COLUMNS), dtype=object)


Found = dict[tuple[int, str, str], str]  # (row index, column, rule) -> the problem's line


def _where(rows: list[dict[str, str]], row_no: int) -> str:
    row = rows[row_no]
    return f"line {row_no + 2} ({row.get('model', '?')}@{row.get('step', '?')})"


def _nan_cells(rows: list[dict[str, str]], source: str, found: Found) -> set[tuple[int, str]]:
    """pandas reads the text "nan" as a missing value, which these nullable columns allow: refuse it here.

    A NaN is spelt with an n: a column whose cells, joined, hold no n or N has none, and its cells are not looked
    at one by one."""
    cells = set()
    columns = [c for c in _FLOAT_COLUMNS if _may_hold_nan([row.get(c) for row in rows])]
    for row_no, row in enumerate(rows if columns else ()):
        for column in columns:
            text = str(row.get(column) or "").strip()
            if text and text.lstrip("+-")[:1] in ("n", "N") and _is_nan_text(text):
                cells.add((row_no, column))
                found[(row_no, column, "finite_or_empty")] = (
                    f"{source} {_where(rows, row_no)}: column {column!r} value {text!r}: must be a finite number or "
                    "empty (NaN is not)")
    return cells


def _may_hold_nan(values: list) -> bool:
    try:
        text = "".join([v for v in values if v])
    except TypeError:  # a cell that is not text: looked at one by one
        return True
    return "n" in text or "N" in text


def _text_problems(rows: list[dict[str, str]], source: str, found: Found) -> dict[tuple[int, str], str]:
    """The bound on every field and the canonical spelling of whole numbers, checked on the text before pandas
    coerces "010" or " 10" into 10; the stand-in value of each misspelt number.

    Each check first asks whether the table is clean as a whole (a row no longer than the shortest bound, a column
    of numbers that one regular expression matches), and only a row or column that is not gets a look per cell:
    the same findings at a tenth of the cost for a valid table of 100,000 rows."""
    replaced: dict[tuple[int, str], str] = {}
    for row_no in _long_rows(rows):
        row = rows[row_no]
        for column, text in row.items():
            limit = rules.max_chars(str(column))
            if len(text or "") > limit:
                found[(row_no, str(column), "length")] = (
                    f"{source} {_where(rows, row_no)}: column {column!r} is {len(text)} characters; at most "
                    f"{limit} fit the table, shorten it")
    for column in rules.COUNT_COLUMNS:
        values = [row.get(column) or "" for row in rows]
        if _counts_clean(values):
            continue
        for row_no, text in enumerate(values):
            if text and rules.count_problem(text, "") is not None:
                replaced[(row_no, column)] = _count_stand_in(text)
                found[(row_no, column, "canonical")] = (
                    f"{source} {_where(rows, row_no)}: column {column!r} value {text!r}: must be a whole number "
                    f"from 0 to {rules.MAX_COUNT} in plain ASCII digits (no sign, spaces, separators or leading zeros)")
    return replaced


def _long_rows(rows: list[dict[str, str]]) -> list[int]:
    """The rows that may hold a field past its bound: those whose fields together pass the smallest bound."""
    def short(row: dict[str, str]) -> bool:
        try:
            return sum(map(len, row.values())) <= rules.MAX_TEXT_CHARS
        except TypeError:  # a missing (None) cell: looked at one by one
            return False

    return [row_no for row_no, row in enumerate(rows) if not short(row)]


_LEADING_ZERO = re.compile(r"(?:^|\n)0[0-9]")


def _counts_clean(values: list[str]) -> bool:
    """Whether every cell of a column of whole numbers is empty or a number of at most 18 ASCII digits (so below
    MAX_COUNT) without a leading zero, looking at the column joined (one line per cell) rather than cell by cell."""
    try:
        text = "\n".join(values)
    except TypeError:
        return False
    digits = text.replace("\n", "")
    return (text.count("\n") == len(values) - 1 and digits.isascii() and digits.isdigit()
            and _LEADING_ZERO.search(text) is None and max(map(len, values)) <= 18)


def _parent_cycles(rows: list[dict[str, str]], source: str, found: Found) -> None:
    parents = {f"{r.get('model')}@{r.get('step')}": r["parent"] for r in rows if r.get("parent")}
    for row_no, row in enumerate(rows if parents else ()):  # no parent named: no loop to find
        ref = f"{row.get('model')}@{row.get('step')}"
        loop = rules.parent_cycle(parents, ref) if ref in parents else None
        if loop and loop[0] == ref:
            found[(row_no, "parent", "cycle")] = (
                f"{source} line {row_no + 2} ({ref}): column 'parent' value {row['parent']!r}: makes a loop of "
                f"parents ({' -> '.join(loop)}); a checkpoint cannot descend from itself")


def _schema_failures(err, rows: list[dict[str, str]], source: str, found: Found) -> None:
    """One line per pandera failure case, by line, column, value and rule."""
    for case in err.failure_cases.itertuples(index=False):
        index, check = case.index, str(case.check)
        row_no = int(index) if index is not None and pd.notna(index) else -1
        if row_no < 0 and str(case.failure_case).startswith("TypeError("):
            continue  # a check that ran on a column that failed coercion; the coercion row says why
        name = check.split("(")[0]
        column = _ROW_CHECK_COLUMN.get(name, case.column)
        known_row = 0 <= row_no < len(rows)
        value = rows[row_no].get(column, "") if name in _ROW_CHECK_COLUMN and known_row else case.failure_case
        where = _where(rows, row_no) if known_row else f"line {row_no + 2}" if row_no >= 0 else "table"
        empty = value is None or (isinstance(value, float) and pd.isna(value)) or value == ""
        shown = " (empty)" if empty else f" value {value!r}"
        found[(row_no, str(column), name)] = f"{source} {where}: column {column!r}{shown}: {_describe_check(check)}"


def validate_frame(rows: list[dict[str, str]], source: str = "zoo/checkpoints.csv",
                   fix: str = "") -> pd.DataFrame:
    """Validate rows lazily; raise TableInvalidError listing every failure by line, column, value and rule."""
    from pandera.errors import SchemaErrors

    found: Found = {}
    nan_cells = _nan_cells(rows, source, found)
    replaced = _text_problems(rows, source, found)
    _parent_cycles(rows, source, found)
    replaced.update({cell: "0" for cell in nan_cells})
    if replaced:
        rows = [{**r, **{c: v for (i, c), v in replaced.items() if i == n}} for n, r in enumerate(rows)]
    try:
        validated = CheckpointSchema.validate(frame_from_rows(rows), lazy=True, inplace=True)  # a frame of our own
    except SchemaErrors as err:
        _schema_failures(err, rows, source, found)
    else:
        if not found:
            return validated
    problems = [found[k] for k in sorted(found, key=lambda k: (k[0], k[1], k[2]))]
    problems = list(dict.fromkeys(problems))
    raise TableInvalidError(
        f"{source}: {len(problems)} problem(s); {fix or f'fix them (or `git checkout {source}`) and rerun'}",
        problems,
    ) from None


_FLOAT_COLUMNS = ("epoch", "reported_value")


def _count_stand_in(text: str) -> str:
    """What a misspelt whole number stands for, so the other checks (uniqueness, path) still judge the row."""
    try:
        value = int(text.strip())
    except ValueError:
        return "0"
    return str(value) if 0 <= value <= rules.MAX_COUNT else "0"


def _is_nan_text(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return value != value


def to_yaml() -> str:
    """The schema as pandera YAML (what ``schemas/checkpoints.schema.yaml`` must contain)."""
    return str(CheckpointSchema.to_yaml())


if __name__ == "__main__":
    import sys

    sys.stdout.write(
        "# Generated from src/checkpoint_zoo/catalog/schema.py by:\n"
        "#   python -m checkpoint_zoo.catalog.schema > schemas/checkpoints.schema.yaml\n"
        "# tests/test_schema.py fails when the two drift apart.\n" + to_yaml()
    )
