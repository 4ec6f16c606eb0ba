"""The one rule that picks ``MODEL@best``.

Each evaluation record states how it is ranked: the task's primary metric, its direction, and its
value on the task's selection split (val), which is never the split leaderboards report (test). The
best checkpoint of a model has the highest (or lowest) such value; a tie goes to the later step.
``zoo show MODEL@best``, the index, cards, the page, ``summary.json`` and ``zoo versions`` all call
``best`` here, so they always name the same checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def score(record: Mapping[str, Any]) -> float | None:
    """The record's ranking value, oriented so that larger is better (None: not rankable)."""
    sel = record.get("selection")
    if not isinstance(sel, Mapping):
        return None
    value = sel.get("value")
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value) if sel.get("higher_is_better", True) else -float(value)


def best(records: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The best record among one model's records (None when none is rankable)."""
    scored = [(s, int(r["step"]), r) for r in records if (s := score(r)) is not None]
    if not scored:
        return None
    return max(scored, key=lambda t: (t[0], t[1]))[2]


def rule_of(record: Mapping[str, Any]) -> str:
    """Human-readable: ``accuracy on val (higher is better)``."""
    sel = record.get("selection") or {}
    direction = "higher" if sel.get("higher_is_better", True) else "lower"
    return f"{sel.get('metric', '?')} on {sel.get('split', '?')} ({direction} is better)"
