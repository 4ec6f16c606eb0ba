"""Releases and stages in the index stage's outputs, read from ``zoo/metrics/registry.json`` (the ``registry``
stage's output) and never from tags: the index, cards and page stay a function of their DVC deps.

``index.json`` gets per model ``releases`` (version, step, sha256, date, oldest first) and ``stages`` (stage ->
version, step, since); ``INDEX.md`` a section listing them; each card a "Releases" section; the static page
the same ``releases``/``stages`` shape the served page gets live from ``zoo serve``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import layout
from ..catalog.releases import registry_problem
from ..errors import ZooError

REGISTRY_FILE = layout.REGISTRY_FILE
_FIX = "run `dvc repro` (its registry stage rewrites the file from the git tags)"


def load(root: Path) -> dict[str, dict[str, Any]]:
    """model -> its releases and stages; {} for a zoo whose pipeline has no registry stage (no file)."""
    path = root / REGISTRY_FILE
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as e:
        raise ZooError(f"{REGISTRY_FILE}: not JSON ({str(e).splitlines()[0]}); {_FIX}") from None
    problem = registry_problem(doc)
    if problem:
        raise ZooError(f"{REGISTRY_FILE}: {problem}; {_FIX}")
    return doc["models"]


def attach(models: dict[str, dict], registry: Mapping[str, dict]) -> None:
    """Each index model summary gets its ``releases`` and ``stages`` (empty when it has none)."""
    for name, summary in models.items():
        mine = registry.get(name, {})
        summary["releases"] = list(mine.get("releases", []))
        summary["stages"] = dict(mine.get("stages", {}))


def _ref(model: str, step: int | None) -> str | None:
    return None if step is None else f"{model}@{step}"


def page_shape(models: Mapping[str, dict]) -> dict[str, dict]:
    """What the page reads per model (the shape ``zoo serve``'s live overview has): version -> checkpoint, and
    stage -> version, checkpoint and since."""
    return {name: {"releases": {r["version"]: _ref(name, r["step"]) for r in m.get("releases", [])},
                   "stages": {s: {"version": h["version"], "checkpoint": _ref(name, h["step"]), "since": h["since"]}
                              for s, h in m.get("stages", {}).items()}}
            for name, m in models.items()}


def _holder(h: Mapping[str, Any]) -> str:
    step = "?" if h["step"] is None else h["step"]
    return f"{h['version']} (step {step})" if h["version"] else f"step {step}"


def stage_text(stages: Mapping[str, dict], escape: Any) -> str:
    """``prod: v1.2.0 (step 300); dev: step 400``."""
    return "; ".join(f"{escape(s)}: {escape(_holder(h))}" for s, h in sorted(stages.items()))


def index_md_lines(models: Mapping[str, dict], escape: Any) -> list[str]:
    """INDEX.md's "Releases and stages" section; none when no model has a release or a stage."""
    shown = {n: m for n, m in sorted(models.items()) if m.get("releases") or m.get("stages")}
    if not shown:
        return []
    lines = ["## Releases and stages", "",
             "Git tags in GTO's grammar (`zoo release`, `zoo stage`); `dvc repro` refreshes this list.", "",
             "| model | releases | stages |", "|---|---|---|"]
    for name, m in shown.items():
        versions = ", ".join(f"{escape(r['version'])} (step {'?' if r['step'] is None else r['step']})"
                             for r in m["releases"])
        lines.append(f"| {escape(name)} | {versions} | {stage_text(m['stages'], escape)} |")
    return [*lines, ""]


def card_lines(model: str, summary: Mapping[str, Any], escape: Any) -> list[str]:
    """A card's "Releases" section (after its checkpoints); none when the model has no release or stage."""
    rels, stages = summary.get("releases") or [], summary.get("stages") or {}
    if not rels and not stages:
        return []
    lines = ["", "## Releases", ""]
    if stages:
        lines += [f"Stages: {stage_text(stages, escape)}.", ""]
    if rels:
        lines += ["| version | checkpoint | sha256 | date |", "|---|---|---|---|"]
        for r in rels:
            ref = _ref(model, r["step"]) or "?"
            sha = f"`{r['sha256'][:16]}`" if r["sha256"] else ""
            lines.append(f"| {escape(r['version'])} | {escape(ref)} | {sha} | {escape(r['date'])} |")
        lines.append("")
    lines += [f"`zoo pull {model}@VERSION` (or `@STAGE`) fetches a release; `zoo history {model}` shows who made "
              "each and when."]
    return lines
