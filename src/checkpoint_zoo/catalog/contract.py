"""The reproducibility contract of evaluated metrics: what agrees exactly, and what within a tolerance.

Float32 matrix products differ in their last bits between CPU instruction sets (AVX2, AVX-512,
generic) and between CPU and GPU, and no rounding makes such values bitwise stable, because some
value always sits near a rounding boundary. So each metric states how far two evaluations of the same
checkpoint, code, params and data may differ on two machines:

- ``exact``: computed from integer counts of predictions (accuracy, macro-F1); equal everywhere.
- ``close``: computed from float scores (NLL); equal within ``rel`` (relative) or ``abs`` (absolute).

Each task declares its metrics' tolerances (``conf/task/*.yaml``) and every evaluation record states
them, so readers (``zoo diff``, the index) compare with the record's own contract. On one machine
with the same settings every metric is bitwise identical. Light on purpose: no numpy or torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    """How far two evaluations of one metric may differ across machines (0 and 0: exact)."""

    rel: float = 0.0
    abs: float = 0.0

    @property
    def exact(self) -> bool:
        """True when the metric must agree exactly."""
        return self.rel == 0.0 and self.abs == 0.0

    def agrees(self, a: float, b: float) -> bool:
        """True when ``a`` and ``b`` are the same value under this tolerance."""
        if self.exact:
            return a == b
        return math.isclose(a, b, rel_tol=self.rel, abs_tol=self.abs)

    def to_dict(self) -> dict[str, object]:
        """The form stored in each evaluation record."""
        if self.exact:
            return {"kind": "exact"}
        return {"kind": "close", "rel": self.rel, "abs": self.abs}

    def describe(self) -> str:
        """Human-readable: ``exact`` or ``within rel 1e-05 / abs 1e-06``."""
        return "exact" if self.exact else f"within rel {self.rel:g} / abs {self.abs:g}"

    @classmethod
    def from_dict(cls, data: object) -> Tolerance:
        """Back from the form stored in an evaluation record (unknown forms: a float score's default)."""
        if isinstance(data, dict):
            if data.get("kind") == "exact":
                return cls()
            if data.get("kind") == "close":
                return cls(rel=float(data.get("rel", 0.0)), abs=float(data.get("abs", 0.0)))
        return FLOAT_SCORE


# What a metric no record or task states is compared with: a float score's tolerance.
FLOAT_SCORE = Tolerance(rel=1e-5, abs=1e-6)


def record_tolerance(record: Mapping[str, object], metric: str) -> Tolerance:
    """The tolerance an evaluation record states for one of its metrics."""
    stated = record.get("reproducibility")
    return Tolerance.from_dict(stated.get(metric) if isinstance(stated, dict) else None)


def disagreements(a: Mapping[str, float], b: Mapping[str, float],
                  tolerances: Mapping[str, Tolerance]) -> dict[str, tuple[float, float]]:
    """Metrics present in both whose values differ beyond their tolerance: name -> (a, b)."""
    return {k: (a[k], b[k]) for k in sorted(set(a) & set(b))
            if not tolerances.get(k, FLOAT_SCORE).agrees(a[k], b[k])}
