"""The reproducibility contract of evaluated metrics: what agrees exactly, and what within a tolerance.

Float32 matrix products differ in their last bits between CPU instruction sets (AVX2, AVX-512,
generic) and between CPU and GPU, and no rounding makes such values bitwise stable, because some
value always sits near a rounding boundary. So each metric states how far two evaluations of the same
checkpoint, code, params and data may differ on two machines:

- ``exact``: computed from integer counts of predictions (accuracy, macro-F1); equal everywhere.
- ``close``: computed from float scores (NLL); equal within ``rel`` (relative) or ``abs`` (absolute).

On one machine with the same settings every metric is bitwise identical. Light on purpose: ``zoo
diff`` and the index read it without importing numpy or torch.
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


EXACT = Tolerance()
# NLL goes through log-softmax of float32 logits: measured across kernel paths here, the largest
# relative difference is a few 1e-8; 1e-5 leaves two orders of magnitude of room.
FLOAT_SCORE = Tolerance(rel=1e-5, abs=1e-6)

TOLERANCES: dict[str, Tolerance] = {"accuracy": EXACT, "macro_f1": EXACT, "nll": FLOAT_SCORE}


def tolerance(metric: str) -> Tolerance:
    """The tolerance of a metric; a metric the contract does not name is compared as a float score."""
    return TOLERANCES.get(metric, FLOAT_SCORE)


def contract_for(metrics: Mapping[str, float]) -> dict[str, dict[str, object]]:
    """The contract entries of these metrics, as written into an evaluation record."""
    return {name: tolerance(name).to_dict() for name in sorted(metrics)}


def disagreements(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Metrics present in both whose values differ beyond their tolerance: name -> (a, b)."""
    return {k: (a[k], b[k]) for k in sorted(set(a) & set(b)) if not tolerance(k).agrees(a[k], b[k])}
