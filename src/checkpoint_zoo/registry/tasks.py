"""Tasks: ``conf/task/<name>.yaml`` declares how a checkpoint of the task is evaluated and ranked.

```yaml
evaluator: {_target_: checkpoint_zoo.evaluation.evaluators.classify}   # runs the model over a split
metrics:
  accuracy:
    metric: {_target_: torchmetrics.classification.MulticlassAccuracy, num_classes: "${num_classes}"}
    reproducibility: exact            # or {rel: 1.0e-5, abs: 1.0e-6}
    range: [0, 1]                     # optional; null for unbounded
    higher_is_better: true            # default true
primary_metric: accuracy              # MODEL@best: best value of this metric on select_split
select_split: val
report_split: test                    # what leaderboards and cards show
required_files: [tokenizer.json]      # optional: files a checkpoint must hold (a folder); an entry may be a
                                      # list of names, any one of which will do
```
``${num_classes}`` is the number of label names of the checkpoint's dataset.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..catalog import rules
from ..catalog.contract import Tolerance
from ..errors import RegistryError
from .digest import digest_of
from .targets import check_targets

SPLITS = ("train", "val", "test")
_METRIC_NAME = re.compile(rules.METRIC_NAME_PATTERN)
_TASK_KEYS = {"description", "evaluator", "metrics", "primary_metric", "select_split", "report_split", "required_files"}
_METRIC_KEYS = {"metric", "reproducibility", "range", "higher_is_better", "description"}


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a task."""

    name: str
    config: Mapping[str, Any]          # what Hydra instantiates (a torchmetrics.Metric)
    tolerance: Tolerance               # how far two machines may differ
    higher_is_better: bool
    low: float | None                  # the values it can take (None: unbounded)
    high: float | None

    def settle(self, value: float) -> float:
        """A computed value with float32 rounding past a bound put back on it (1.0000001 -> 1.0)."""
        for bound in (self.low, self.high):
            if bound is not None and value != bound and abs(value - bound) <= 1e-6 * max(1.0, abs(bound)):
                inside = value > bound if bound == self.low else value < bound
                if not inside:
                    return bound
        return value

    def value_problem(self, value: float, what: str) -> str | None:
        """Why ``value`` cannot be this metric's value (not finite, out of range), or None."""
        import math

        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{what}: {self.name}={value} is not a finite number"
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            return f"{what}: {self.name}={value} is out of range; {self.name} lies in [{lo}, {hi}]"
        return None


@dataclass(frozen=True)
class TaskSpec:
    """One registered task."""

    name: str
    file: str
    description: str
    evaluator: Mapping[str, Any]
    metrics: Mapping[str, MetricSpec]
    primary_metric: str
    select_split: str
    report_split: str
    digest: str
    # files a checkpoint of the task must hold, each a tuple of names any one of which will do
    required_files: tuple[tuple[str, ...], ...] = ()

    @property
    def primary(self) -> MetricSpec:
        """The metric that ranks checkpoints."""
        return self.metrics[self.primary_metric]

    def files_problem(self, files: Collection[str] | None, where: str) -> str | None:
        """Why a checkpoint holding ``files`` (names inside its folder; None: one file) lacks a file the task
        requires (the first, with what to do), or None."""
        for names in self.required_files:
            if files is not None and any(n in files for n in names):
                continue
            wanted = " or ".join(names)
            if files is None:
                return (f"{where}: a {self.name} checkpoint is a folder holding {wanted} ({self.file} required_files); "
                        "save the model and what it needs (save_pretrained) into one folder and add the folder")
            return (f"{where}: has no {wanted}, which a {self.name} checkpoint must hold ({self.file} required_files); "
                    "save it into the folder (the tokenizer's save_pretrained writes it) and add the folder again")
        return None


def _tolerance(value: object, where: str) -> Tolerance:
    if value in (None, "exact"):
        return Tolerance()
    if isinstance(value, Mapping) and set(value) <= {"rel", "abs"}:
        try:
            tol = Tolerance(rel=float(value.get("rel", 0.0)), abs=float(value.get("abs", 0.0)))
        except (TypeError, ValueError):
            tol = Tolerance(rel=-1.0)
        if tol.rel >= 0 and tol.abs >= 0:
            return tol
    raise RegistryError(f"{where}: reproducibility must be `exact` or a mapping such as {{rel: 1.0e-5, abs: 1.0e-6}}")


def _bound(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RegistryError(f"{where}: range must be [low, high] with numbers or null")
    return float(value)


def parse_metric(name: str, cfg: object, where: str) -> MetricSpec:
    """Check one metric entry of a task file."""
    if not _METRIC_NAME.fullmatch(name):
        raise RegistryError(f"{where}: metric name {name!r} must match {_METRIC_NAME.pattern} (used as a column name)")
    if not isinstance(cfg, Mapping) or not isinstance(cfg.get("metric"), Mapping) or "_target_" not in cfg["metric"]:
        raise RegistryError(f"{where}: give `metric: {{_target_: torchmetrics....}}` (and optionally reproducibility, "
                            "range, higher_is_better)")
    extra = sorted(set(cfg) - _METRIC_KEYS)
    if extra:
        raise RegistryError(f"{where}: unknown key {extra[0]!r}; allowed: {', '.join(sorted(_METRIC_KEYS))}")
    check_targets(cfg["metric"], f"{where}.metric", code_allowed=True)
    rng = cfg.get("range")
    if rng is not None and (not isinstance(rng, list) or len(rng) != 2):
        raise RegistryError(f"{where}: range must be [low, high] (null for unbounded)")
    low, high = (_bound(rng[0], where), _bound(rng[1], where)) if rng else (None, None)
    higher = cfg.get("higher_is_better", True)
    if not isinstance(higher, bool):
        raise RegistryError(f"{where}: higher_is_better must be true or false")
    return MetricSpec(name, dict(cfg["metric"]), _tolerance(cfg.get("reproducibility"), f"{where}.reproducibility"),
                      higher, low, high)


def _required_files(value: object, where: str) -> tuple[tuple[str, ...], ...]:
    """``required_files``: a list whose entries are a file name or a list of names (any one of them will do)."""
    if value is None:
        return ()
    if isinstance(value, list):
        out = [tuple(v) if isinstance(v, list) else (v,) for v in value]
        if all(names and all(isinstance(n, str) and n and not n.startswith("/") and "\\" not in n
                             and not {".", ".."} & set(n.split("/")) for n in names) for names in out):
            return tuple(out)
    raise RegistryError(f"{where}: required_files must be a list of file names inside the folder (an entry may be a "
                        "list of names, any one of which will do), e.g. [tokenizer.json]")


def _semantic(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a task file that can change results (descriptions and required files cannot)."""
    out = {k: v for k, v in cfg.items() if k not in ("description", "required_files")}
    if isinstance(out.get("metrics"), Mapping):
        out["metrics"] = {k: {kk: vv for kk, vv in v.items() if kk != "description"} if isinstance(v, Mapping) else v
                          for k, v in out["metrics"].items()}
    return out


def parse_task(name: str, rel: str, cfg: Mapping[str, Any]) -> TaskSpec:
    """Check one task file and describe it."""
    extra = sorted(set(cfg) - _TASK_KEYS)
    if extra:
        raise RegistryError(f"{rel}: unknown key {extra[0]!r}; a task file has {', '.join(sorted(_TASK_KEYS))}")
    evaluator = cfg.get("evaluator")
    if not isinstance(evaluator, Mapping) or "_target_" not in evaluator:
        raise RegistryError(f"{rel}: needs `evaluator: {{_target_: ...}}`, e.g. checkpoint_zoo.evaluation.evaluators.classify")
    check_targets(evaluator, f"{rel}: evaluator", code_allowed=True)
    raw = cfg.get("metrics")
    if not isinstance(raw, Mapping) or not raw:
        raise RegistryError(f"{rel}: needs `metrics:` with at least one metric")
    metrics = {str(k): parse_metric(str(k), v, f"{rel}: metrics.{k}") for k, v in raw.items()}
    primary = cfg.get("primary_metric")
    if primary not in metrics:
        raise RegistryError(f"{rel}: primary_metric {primary!r} must be one of its metrics ({', '.join(metrics)})")
    splits = {}
    for key, default in (("select_split", "val"), ("report_split", "test")):
        value = cfg.get(key, default)
        if value not in SPLITS:
            raise RegistryError(f"{rel}: {key} {value!r} must be one of {', '.join(SPLITS)}")
        splits[key] = str(value)
    if splits["select_split"] == splits["report_split"]:
        raise RegistryError(f"{rel}: select_split and report_split are both {splits['report_split']!r}; choosing "
                            "@best on the reported split overstates it: select on val, report on test")
    return TaskSpec(name, rel, str(cfg.get("description") or ""), dict(evaluator), metrics, str(primary),
                    splits["select_split"], splits["report_split"], digest_of(_semantic(cfg)),
                    _required_files(cfg.get("required_files"), rel))
