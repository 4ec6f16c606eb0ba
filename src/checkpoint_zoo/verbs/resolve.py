"""What a checkpoint reference names: one row (``m@3``, ``m@latest``, ``m@best``) or many (wildcards)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import layout
from ..catalog import query
from ..catalog.refs import Ref, parse_ref
from ..errors import CheckpointNotFoundError

if TYPE_CHECKING:
    from .facade import Facade

Row = dict[str, str]


def resolve_row(zoo: Facade, ref: str | Ref, rows: list[Row] | None = None,
                by_model: dict[str, list[Row]] | None = None) -> Row:
    """The row one reference names; unknown models and steps are named with what exists. ``by_model``: ``rows``
    grouped by model, when the caller resolves many references against them."""
    r = parse_ref(ref) if isinstance(ref, str) else ref
    if by_model is not None:
        mine = by_model.get(r.model, [])
    else:
        mine = zoo.source.model_rows(r.model) if rows is None else [row for row in rows if row["model"] == r.model]
    if not mine:
        names = zoo.source.model_names() if rows is None else sorted({row["model"] for row in rows})
        near = sorted(m for m in names if m.casefold() == r.model.casefold())
        hint = f" (did you mean {near[0]}?)" if near else "; `zoo ls` lists the models"
        raise CheckpointNotFoundError(f"unknown model {r.model!r} in {layout.TABLE_PATH}{hint}")
    if r.selector == "latest":
        return max(mine, key=lambda row: int(row["step"]))
    if r.selector == "best":
        return best_row(zoo, r.model, mine)
    if r.kind in ("version", "stage"):
        return registry_row(zoo, r, mine)
    for row in mine:
        if int(row["step"]) == r.selector:
            return row
    steps = ", ".join(row["step"] for row in sorted(mine, key=lambda x: int(x["step"])))
    raise CheckpointNotFoundError(f"{r.model} has no step {r.selector}; its steps are {steps}")


def resolve_many(zoo: Facade, refs: Sequence[str], rows: list[Row]) -> list[Row]:
    """Rows of several references, where a model name may be a shell wildcard (``'mnist-*@best'``)."""
    out: list[Row] = []
    by_model: dict[str, list[Row]] = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)
    models = sorted(by_model, key=query.natural_key)
    for ref in refs:
        r = parse_ref(ref)
        if not any(ch in r.model for ch in "*?["):
            out.append(resolve_row(zoo, r, rows, by_model))
            continue
        matched = [m for m in models if fnmatch.fnmatchcase(m, r.model)]
        if not matched:
            raise CheckpointNotFoundError(f"no model matches {r.model!r} in {layout.TABLE_PATH}; `zoo ls` lists them")
        out.extend(resolve_row(zoo, Ref(m, r.selector), rows, by_model) for m in matched)
    return out


def registry_event(zoo: Facade, r: Ref, evs: list | None = None):
    """The release event a ``MODEL@v1.2.0`` or ``MODEL@STAGE`` reference names (GTO tags of the zoo's git;
    ``evs``: the model's events, when the caller has read them already)."""
    from ..catalog import releases
    from ..workspace.tags import read_tags

    if evs is None:
        evs = releases.events(read_tags(zoo.source.git_dir, r.model), r.model)
    if r.kind == "version":
        found = releases.releases(evs).get(str(r.selector))
        if found is None:
            known = ", ".join(sorted(releases.releases(evs), key=query.natural_key)) or "none yet"
            raise CheckpointNotFoundError(f"{r.model} has no release {r.selector} (its releases: {known}); "
                                          f"`zoo history {r.model}` lists them")
        return found
    held = releases.holders(evs)
    if str(r.selector) not in held:
        stages = ", ".join(sorted(held)) or "none"
        raise CheckpointNotFoundError(f"{r.model}@{r.selector}: no release of {r.model} is in stage {r.selector!r} "
                                      f"(its stages: {stages}); `zoo history {r.model}` shows who moved what")
    return held[str(r.selector)]


def registry_row(zoo: Facade, r: Ref, mine: list[Row], event=None) -> Row:
    """The row a release or stage names: the step its ``dvc.yaml`` artifact entry points at, with the bytes the
    table had at the release's commit (a step replaced since is not what was released). ``event``: the
    ``registry_event`` of ``r``, when the caller has it."""
    from ..workspace.tags import artifact_at, step_of_artifact, table_at

    event = event or registry_event(zoo, r)
    commit = event.tag.commit
    entry = artifact_at(zoo.source.git_dir, commit, r.model)
    step = step_of_artifact(entry) if entry else None
    if step is None:
        raise CheckpointNotFoundError(f"{r.model}@{r.selector}: tag {event.tag.name} points at commit {commit[:12]}, "
                                      f"whose dvc.yaml has no artifacts entry for {r.model} with a checkpoint path")
    then = next((row for row in table_at(zoo.source.git_dir, commit)
                 if row["model"] == r.model and int(row["step"]) == step), None)
    now = next((row for row in mine if int(row["step"]) == step), None)
    if then is None:
        raise CheckpointNotFoundError(f"{r.model}@{r.selector}: {r.model}@{step} is not in the table at "
                                      f"{commit[:12]}, where {event.tag.name} points")
    if now is None or now["sha256"] != then["sha256"]:
        what = "is no longer in this table" if now is None else "has other bytes in this table (replaced since)"
        raise CheckpointNotFoundError(f"{r.model}@{r.selector} is {r.model}@{step} as of commit {commit[:12]}, which "
                                      f"{what}; read it at that commit: --rev {commit[:12]}")
    return now


def best_row(zoo: Facade, model: str, mine: list[Row]) -> Row:
    """``model@best``: the one selection rule (catalog/selection.py) over the model's current records."""
    from ..catalog.selection import best

    records = zoo.records([model], mine)
    chosen = best(records[f"{r['model']}@{r['step']}"] for r in mine if f"{r['model']}@{r['step']}" in records)
    if chosen is None:
        raise CheckpointNotFoundError(
            f"{model}@best: {model} has no evaluated checkpoint yet; run `dvc repro` to evaluate it"
        )
    return next(r for r in mine if int(r["step"]) == int(chosen["step"]))


def part_rows(row: Row) -> list[Row]:
    """One row per file of the checkpoint's weights (the row itself for a one-file checkpoint)."""
    from ..catalog import rules

    return [{**row, "path": p, "sha256": sha, "files": ""} for p, sha in rules.parts(row)]
