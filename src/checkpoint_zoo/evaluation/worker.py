"""Evaluating one checkpoint: what an executor's task runs, in this process or in a worker.

Loading a dataset's evaluation splits, making the maths deterministic, building the model from its
checkpoint and computing its task's metrics on both splits. Nothing here plans, memoises or writes results
(that is ``run``): an executor imports this module only, so the two do not import each other.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog.records import FAILED, canonical_float, one_line
from ..errors import ZooError
from ..registry import ArchSpec, DatasetSpec, Registry, TaskSpec

_round = canonical_float  # the one rounding of a stored float (catalog.records)


@dataclass(frozen=True)
class EvalData:
    """One dataset's selection and report splits (cut to ``max_examples``) and their joint hash."""

    splits: Mapping[str, Any]   # split name -> datasets.Split
    n_classes: int
    digest: str


def load_eval_data(spec: DatasetSpec, task: TaskSpec, registry: Registry, params: Mapping[str, Any]) -> EvalData:
    """The splits a task evaluates on, from the dataset's loader, with their content hash."""
    from ..registry.datasets import load_splits

    splits = load_splits(spec, registry)
    limit = params.get("max_examples")
    chosen = {name: splits.get(name).head(int(limit) if limit else None)
              for name in (task.select_split, task.report_split)}
    h = hashlib.sha256()
    for name in sorted(chosen):
        h.update(name.encode() + b"\0" + chosen[name].digest().encode())
    n_classes = len(spec.labels or splits.labels) or int(max(int(s.y.max()) for s in chosen.values() if len(s)) + 1)
    return EvalData(chosen, n_classes, h.hexdigest())


def setup_determinism(threads: int) -> None:
    """One path through the maths on every run of a machine."""
    import torch

    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)


def resolve_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``auto`` (cuda when available)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ZooError(f"run.device {device!r}: use cpu, cuda or auto")
    if device == "cuda" and not torch.cuda.is_available():
        raise ZooError("run.device is cuda but no CUDA device is available; use cpu or auto")
    return device


def _takes_checkpoint(evaluator: Callable[..., Any]) -> bool:
    import inspect

    try:
        return "checkpoint" in inspect.signature(evaluator).parameters
    except (TypeError, ValueError):  # a callable without a readable signature takes the five arguments only
        return False


@dataclass(frozen=True)
class TaskTools:
    """A task's metric objects (for one number of classes) and its evaluator, built through Hydra."""

    metrics: Mapping[str, Any]
    run: Callable[..., Any]
    takes_checkpoint: bool

    @classmethod
    def build(cls, task: TaskSpec, n_classes: int) -> TaskTools:
        """Instantiate every metric and the evaluator of ``task`` (conf/task) afresh."""
        from ..registry.targets import instantiate

        metrics = {name: instantiate(m.config, f"{task.file}: metrics.{name}", code_allowed=True,
                                     context={"num_classes": n_classes})
                   for name, m in task.metrics.items()}
        run = instantiate(task.evaluator, f"{task.file}: evaluator", code_allowed=True, _partial_=True)
        return cls(metrics, run, _takes_checkpoint(run))


class _Built(threading.local):
    """What this thread has built, least recently used first: metric objects are stateful, so each thread of
    a worker keeps its own."""

    def __init__(self) -> None:
        self.items: OrderedDict[tuple, Any] = OrderedDict()


_BUILT = _Built()
_BUILT_MAX = 16  # (task, classes) and architecture templates a worker keeps; a run uses a handful


def _built(key: tuple, make: Callable[[], Any]) -> Any:
    """``make()``, once per ``key`` in this thread (an LRU of ``_BUILT_MAX`` entries)."""
    items = _BUILT.items
    if key in items:
        items.move_to_end(key)
        return items[key]
    value = items[key] = make()
    while len(items) > _BUILT_MAX:
        items.popitem(last=False)
    return value


def task_tools(task: TaskSpec, n_classes: int, registry: Registry) -> TaskTools:
    """The task's metrics and evaluator, built once per (task, its config's digest, classes, zoo code) in
    this thread: instantiating them through Hydra costs more than evaluating a small checkpoint. The
    caller resets the metrics before each use (``evaluate_split``)."""
    from ..registry.targets import uses_code_folder

    code = registry.code_dir if uses_code_folder({"e": dict(task.evaluator),
                                                  **{n: dict(m.config) for n, m in task.metrics.items()}}) else None
    return _built(("task", task.name, task.digest, n_classes, str(code), registry.trusted),
                  lambda: TaskTools.build(task, n_classes))


_TEMPLATE_MAX_BYTES = 64 * 1024 * 1024  # larger models are built anew: a template would hold their memory twice


def fresh_model(arch: ArchSpec, registry: Registry) -> Any:
    """A new model of ``arch`` with its constructor's weights: a copy of a template built once per
    (architecture, config, libraries, zoo code) in this thread, so that Hydra and the constructor's
    initialisation run once, not per checkpoint. A large model, or one that cannot be copied, is built anew."""
    import copy

    from ..registry.archs import build, versions_key

    key = ("arch", arch.name, versions_key(arch, registry), str(registry.code_dir), registry.trusted)
    template = _BUILT.items.get(key)
    if template is not None:
        _BUILT.items.move_to_end(key)
        return copy.deepcopy(template)
    model = build(arch, registry)
    if sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers())) <= _TEMPLATE_MAX_BYTES:
        try:
            template = copy.deepcopy(model)
        except Exception:  # noqa: BLE001  (a module holding something uncopyable: built per checkpoint, as before)
            return model
        _built(key, lambda: template)
    return model


def evaluate_split(model: Any, task: TaskSpec, split: Any, n_classes: int, batch_size: int,
                   device: str, checkpoint: Path | None = None, tools: TaskTools | None = None) -> dict[str, float]:
    """Every metric of ``task`` on one split, rounded; raise on a value that is not finite or out of range.
    ``checkpoint`` (the checkpoint's file or folder) goes to an evaluator that has a ``checkpoint``
    parameter (``classify_text`` reads the tokenizer there); the others are called as before. ``tools``:
    the task's metrics and evaluator when the caller keeps them (reset here), else built for this call."""
    if tools is None:
        tools = TaskTools.build(task, n_classes)
    for metric in tools.metrics.values():
        metric.reset()
    if tools.takes_checkpoint:
        tools.run(model, split, tools.metrics, batch_size, device, checkpoint=checkpoint)
    else:
        tools.run(model, split, tools.metrics, batch_size, device)
    out = {}
    for name, metric in tools.metrics.items():
        value = task.metrics[name].settle(_round(float(metric.compute())))
        problem = task.metrics[name].value_problem(value, "evaluation")
        if problem:
            raise ZooError(problem)
        out[name] = value
    return out


def failure(error: BaseException, root: str | Path | None = None) -> dict[str, Any]:
    """The record body of a checkpoint whose evaluation raised: ``status: failed`` and the reason in one
    line (the zoo's own path left out, so the committed record is the same on every machine)."""
    text = str(error) or "no message"
    if root:
        text = text.replace(f"{Path(root)}/", "").replace(str(Path(root)), ".")
    if not isinstance(error, ZooError):
        text = f"{type(error).__name__}: {text}"
    return {"status": FAILED, "error": one_line(text), "metrics": {}}


def evaluate_checkpoint(path: Path, row: Mapping[str, str], registry: Registry, data: EvalData,
                        params: Mapping[str, Any], device: str) -> dict[str, Any]:
    """The record body (metrics, selection, split sizes) of one checkpoint file."""
    from ..formats import load_weights_file, weight_shapes
    from ..registry.archs import expected_shapes, fit_problem, load_weights, shape_cache_dir

    arch, task = registry.arch(row["arch"]), registry.task(row["task"])
    # the file is judged by its header before the model is built (a hand-edited row may name another arch)
    problem = fit_problem(arch, weight_shapes(path), expected_shapes(arch, registry, shape_cache_dir()))
    if problem:
        raise ZooError(f"{row['model']}@{row['step']}: {problem}")
    model = load_weights(fresh_model(arch, registry), load_weights_file(path), arch).to(device)
    batch = int(params.get("batch_size", 256))
    tools = task_tools(task, data.n_classes, registry)
    report = evaluate_split(model, task, data.splits[task.report_split], data.n_classes, batch, device, path, tools)
    select = evaluate_split(model, task, data.splits[task.select_split], data.n_classes, batch, device, path, tools)
    primary = task.primary
    return {
        "metrics": report,
        "split": task.report_split,
        "n_examples": len(data.splits[task.report_split]),
        "selection": {"split": task.select_split, "n_examples": len(data.splits[task.select_split]),
                      "metric": primary.name, "higher_is_better": primary.higher_is_better,
                      "value": select[primary.name], "metrics": select},
        "reproducibility": {name: m.tolerance.to_dict() for name, m in sorted(task.metrics.items())},
        "higher_is_better": {name: m.higher_is_better for name, m in sorted(task.metrics.items())},
    }
