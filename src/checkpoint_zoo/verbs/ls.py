"""``zoo ls`` / ``zoo show`` and the reads behind them: rows with their evaluated metrics, filtered and sorted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..catalog import query, rules
from ..entities import Checkpoint
from .resolve import resolve_row

if TYPE_CHECKING:
    from .facade import Facade

Row = dict[str, str]


def records(zoo: Facade, models: Iterable[str] | None = None, rows: Iterable[Row] | None = None) -> dict[str, dict]:
    """Stored evaluation records by ``MODEL@STEP`` (all models, or these) that are of the bytes the
    table holds now (or ``rows`` hold: only records of those rows are returned); empty until the pipeline
    has run."""
    wanted = None if models is None else set(models)
    current = {f"{r['model']}@{r['step']}": r["sha256"] for r in (zoo.rows() if rows is None else rows)
               if wanted is None or r["model"] in wanted}
    if wanted is not None:  # the listing's case: a step or two per model (a working tree answers from its cache)
        steps: dict[str, set[int]] = {m: set() for m in wanted}
        for ref in current:
            model, step = ref.rsplit("@", 1)
            steps[model].add(int(step))
        stored = zoo.source.records_of(steps)
    else:
        stored = zoo.source.stored_records(models)
    return {ref: rec for ref, rec in stored.items() if current.get(ref) == rec.get("sha256")}


def failures(zoo: Facade, models: Iterable[str] | None = None, rows: Iterable[Row] | None = None) -> dict[str, str]:
    """The checkpoints whose evaluation failed (of the bytes the table holds now), ``MODEL@STEP`` -> the reason
    the evaluate stage recorded: published as failed, and refused by ``zoo validate`` and ``zoo commit``."""
    from ..catalog.records import is_failed

    return {ref: rec["error"] for ref, rec in sorted(records(zoo, models, rows).items()) if is_failed(rec)}


def metrics(zoo: Facade, models: Iterable[str] | None = None,
            rows: Iterable[Row] | None = None) -> dict[str, dict[str, float]]:
    """Evaluated metrics (on each task's report split) by ``MODEL@STEP`` (all models, or these), only
    where they are of the bytes the table holds now; empty until the pipeline has run."""
    return {ref: dict(rec.get("metrics", {})) for ref, rec in records(zoo, models, rows).items()}


def get(zoo: Facade, ref: str) -> Checkpoint:
    """The checkpoint a reference names (``MODEL``, ``MODEL@STEP``, ``@latest``, ``@best``)."""
    return Checkpoint.from_row(with_metrics(zoo, [resolve_row(zoo, ref)])[0])


def list_checkpoints(
    zoo: Facade,
    patterns: str | Sequence[str] = (),
    *,
    exclude: str | Sequence[str] = (),
    task: str | None = None,
    arch: str | None = None,
    tag: str | None = None,
    where: str | None = None,
    sort: str | None = None,
    all_steps: bool = False,
) -> list[Checkpoint]:
    """Checkpoints matching the filters: the latest of each model unless ``all_steps``.

    ``where`` and ``sort`` also take the evaluated metrics (accuracy, macro_f1, nll); each
    returned Checkpoint carries its metrics when the pipeline has evaluated it.
    """
    return [Checkpoint.from_row(r) for r in select(
        zoo, patterns, exclude=exclude, task=task, arch=arch, tag=tag, where=where, sort=sort, all_steps=all_steps)]


def select(
    zoo: Facade,
    patterns: str | Sequence[str] = (),
    *,
    exclude: str | Sequence[str] = (),
    task: str | None = None,
    arch: str | None = None,
    tag: str | None = None,
    where: str | None = None,
    sort: str | None = None,
    all_steps: bool = False,
) -> list[Row]:
    """Like ``list`` but returns the table rows as dicts of strings (plus metric columns): the fast
    path for exporting many rows."""
    if isinstance(patterns, str):  # one pattern, not a sequence of one-character patterns
        patterns = [patterns]
    if isinstance(exclude, str):
        exclude = [exclude]
    if not (all_steps or task or arch or tag or where or sort):  # the common `zoo ls`: a few rows of the table
        latest = query.match_models(zoo.source.latest_rows(), patterns, exclude)
        return with_metrics(zoo, query.sort_rows(latest, None))
    rows = query.match_models(zoo.rows(), patterns, exclude)
    if task:
        rows = [r for r in rows if r["task"] == task]
    if arch:
        rows = [r for r in rows if r["arch"] == arch]
    if tag:
        rows = [r for r in rows if tag in r["tags"].split(";")]
    names = metric_names(zoo) if (where or sort) else ()
    needs_metrics = any(m in (where or "") or m == (sort or "").lstrip("-") for m in names)
    if needs_metrics:
        rows = with_metrics(zoo, rows, names)
    if where:
        predicate = query.parse_where(where, (*rules.COLUMNS, *names), numeric=names)
        rows = [r for r in rows if predicate(r)]
    if not all_steps:
        rows = query.latest_per_model(rows)
    rows = query.sort_rows(rows, sort, (*rules.COLUMNS, *names), numeric=names)
    return rows if needs_metrics else with_metrics(zoo, rows)


def listing_registry(zoo: Facade):
    """The registries for listing: a broken conf/ file is skipped and named in ``problems`` rather than
    raised, and no code folder is made available (nothing is built from it)."""
    return zoo.source.registry(strict=False)


def metric_names(zoo: Facade) -> tuple[str, ...]:
    """Every metric a registered task declares (usable in ``where`` and ``sort``)."""
    return listing_registry(zoo).metric_names()


def with_metrics(zoo: Facade, rows: list[Row], names: Sequence[str] = ()) -> list[Row]:
    """Copies of rows with their metric values as extra string columns ('' when not evaluated)."""
    evaluated = metrics(zoo, {r["model"] for r in rows}, rows)
    if not evaluated and not names:
        return rows
    columns = sorted(set(names) | {k for m in evaluated.values() for k in m})
    out = []
    for r in rows:
        m = evaluated.get(f"{r['model']}@{r['step']}", {})
        out.append({**r, **{k: (repr(m[k]) if k in m else "") for k in columns}})
    return out
