"""The pandera schema of ``zoo/checkpoints.csv``.

A strict DataFrameModel whose custom checks are registered, so ``schemas/checkpoints.schema.yaml``
(the YAML export) round-trips. Importing this module costs about a second (pandas + pandera); the
table module only does so when a table has not been validated before.
"""

from __future__ import annotations

import unicodedata

import pandas as pd
import pandera.extensions as extensions
import pandera.pandas as pa
from pandera.typing import Series

from . import rules
from .errors import TableInvalidError


def _registered(**kwargs):
    """Register a check once, even if this module is imported twice (as in tests that reload it)."""
    def wrap(fn):
        from pandera.api.checks import Check

        if fn.__name__ in getattr(Check, "REGISTERED_CUSTOM_CHECKS", {}):
            return fn
        return extensions.register_check_method(**kwargs)(fn)
    return wrap


@_registered(check_type="vectorized")
def nfc_normalized(series: pd.Series) -> pd.Series:
    return series.map(lambda s: not isinstance(s, str) or unicodedata.normalize("NFC", s) == s)


@_registered(check_type="vectorized")
def no_case_collision(series: pd.Series) -> pd.Series:
    folded = series.str.casefold()
    spellings = series.groupby(folded).transform("nunique")
    return spellings <= 1


@_registered(check_type="vectorized")
def safe_text(series: pd.Series) -> pd.Series:
    text = series.fillna("").astype(str)
    has_control = text.str.contains(rules.CONTROL_CHARS_RE.pattern, regex=True)
    formula = text.str.startswith(rules.FORMULA_PREFIXES)
    return ~(has_control | formula)


@_registered(check_type="vectorized")
def finite_or_empty(series: pd.Series) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    return series.isna() | (values.notna() & values.abs().lt(float("inf")))


@_registered(statistics=["allowed"], check_type="vectorized")
def parts_isin(series: pd.Series, *, allowed: list[str]) -> pd.Series:
    allowed_set = set(allowed)
    return series.map(lambda v: not isinstance(v, str) or all(p in allowed_set for p in v.split(";")))


@_registered(check_type="vectorized")
def canonical_path(df: pd.DataFrame) -> pd.Series:
    step = pd.to_numeric(df["step"], errors="coerce")
    expected = [
        rules.checkpoint_path(m, s) if pd.notna(s) and s >= 0 else None
        for m, s in zip(df["model"], step)
    ]
    return pd.Series([p == e for p, e in zip(df["path"], expected)], index=df.index)


@_registered(check_type="vectorized")
def parent_exists(df: pd.DataFrame) -> pd.Series:
    known = set(df["model"].astype(str) + "@" + df["step"].astype(str))
    return df["parent"].isna() | df["parent"].isin(known)


@_registered(check_type="vectorized")
def reported_pair(df: pd.DataFrame) -> pd.Series:
    return df["reported_metric"].isna() == df["reported_value"].isna()


class CheckpointSchema(pa.DataFrameModel):
    """One row per checkpoint; see DESIGN.md section 3 for the meaning of each column."""

    # identity
    model: Series[str] = pa.Field(str_matches=rf"^{rules.SLUG_PATTERN}$", nfc_normalized=(), no_case_collision=())
    step: Series[int] = pa.Field(ge=0)
    epoch: Series[float] = pa.Field(ge=0, nullable=True)
    # computed from the file, never typed by hand
    path: Series[str] = pa.Field(str_matches=r"^zoo/checkpoints/[^/]+/[^/]+$")
    format: Series[str] = pa.Field(isin=list(rules.FORMATS))
    size_bytes: Series[int] = pa.Field(ge=0)
    sha256: Series[str] = pa.Field(str_matches=rf"^{rules.SHA256_PATTERN}$")
    num_params: Series[int] = pa.Field(ge=0)
    dtype: Series[str] = pa.Field(parts_isin={"allowed": list(rules.DTYPES)})
    # what it is
    arch: Series[str] = pa.Field(isin=list(rules.ARCHS))
    task: Series[str] = pa.Field(isin=list(rules.TASKS))
    dataset: Series[str] = pa.Field(str_matches=rf"^{rules.SLUG_PATTERN}$")
    license: Series[str] = pa.Field(isin=list(rules.LICENSES))
    parent: Series[str] = pa.Field(nullable=True, str_matches=rf"^{rules.PARENT_PATTERN}$")
    tags: Series[str] = pa.Field(nullable=True, str_matches=rf"^{rules.TAGS_PATTERN}$")
    description: Series[str] = pa.Field(nullable=True, safe_text=())
    # provenance
    created: Series[str] = pa.Field(str_matches=rf"^{rules.CREATED_PATTERN}$")
    source: Series[str] = pa.Field(safe_text=())
    reported_metric: Series[str] = pa.Field(nullable=True, isin=list(rules.METRICS))
    reported_value: Series[float] = pa.Field(nullable=True, finite_or_empty=())

    class Config:
        strict = True
        coerce = True
        unique = ["model", "step"]
        canonical_path = ()
        parent_exists = ()
        reported_pair = ()


_RULE_HELP = {
    "str_matches": "does not match the required pattern",
    "isin": "is not one of the allowed values",
    "nfc_normalized": "is not NFC-normalised Unicode",
    "no_case_collision": "differs from another model name only by case; use the existing spelling",
    "safe_text": "has a control character or starts with = + - @; reword it",
    "finite_or_empty": "must be a finite number or empty",
    "parts_isin": "has a part that is not an allowed value",
    "canonical_path": "path must be zoo/checkpoints/<model>/step-<8-digit step>.safetensors; let `zoo add` write it",
    "parent_exists": "parent is not an existing MODEL@STEP in the table",
    "reported_pair": "reported_metric and reported_value must be both set or both empty",
    "unique": "(model, step) appears more than once; keep one row",
    "coerce_dtype": "has the wrong type",
    "not_nullable": "must not be empty",
    "greater_than_or_equal_to": "must be >= 0",
}


def _describe_check(check: str) -> str:
    name = str(check).split("(")[0]
    hint = _RULE_HELP.get(name, "")
    if name == "isin" or name == "parts_isin":
        return f"{check}"[:160] + (f" ({hint})" if hint else "")
    return f"{check}" + (f": {hint}" if hint else "")


def frame_from_rows(rows: list[dict[str, str]]) -> pd.DataFrame:
    """Build the raw DataFrame of strings (empty cells as missing) that the schema coerces."""
    frame = pd.DataFrame.from_records(rows, columns=list(rules.COLUMNS))
    frame = frame.astype(object).where(frame.ne(""), None)
    return frame


def validate_frame(rows: list[dict[str, str]], source: str = "zoo/checkpoints.csv") -> pd.DataFrame:
    """Validate rows lazily; raise TableInvalidError listing every failure by line, column, value and rule."""
    from pandera.errors import SchemaErrors

    frame = frame_from_rows(rows)
    try:
        return CheckpointSchema.validate(frame, lazy=True)
    except SchemaErrors as err:
        problems = []
        cases = err.failure_cases
        for case in cases.itertuples(index=False):
            index = getattr(case, "index", None)
            column = getattr(case, "column", None)
            value = getattr(case, "failure_case", None)
            check = getattr(case, "check", "")
            where = f"line {int(index) + 2}" if index is not None and pd.notna(index) else "table"
            if index is not None and pd.notna(index) and int(index) < len(rows):
                row = rows[int(index)]
                where += f" ({row.get('model', '?')}@{row.get('step', '?')})"
            col = f"column {column!r}" if column and column != "CheckpointSchema" else "row"
            val = "" if value is None or (isinstance(value, float) and pd.isna(value)) else f" value {value!r}"
            problems.append(f"{source} {where}: {col}{val}: {_describe_check(check)}")
        problems = list(dict.fromkeys(problems))
        raise TableInvalidError(
            f"{source}: {len(problems)} problem(s); fix them (or `git checkout {source}`) and rerun",
            problems,
        ) from None


def to_yaml() -> str:
    """The schema as pandera YAML (what ``schemas/checkpoints.schema.yaml`` must contain)."""
    return CheckpointSchema.to_schema().to_yaml()
