"""Reproducible evaluation of checkpoints, memoised per checkpoint (keys: ``plan``).

Each checkpoint is evaluated by its task's evaluator and metrics (``conf/task``) on its dataset's
selection split (val: ranks ``@best``) and report split (test: what leaderboards show). Results live
in git-tracked JSON files, one per model (``zoo/metrics/evaluations/<model>.json``), written
deterministically: sorted keys, floats rounded to 8 significant digits, fixed torch threads and
deterministic torch algorithms. Across machines the metrics agree under the contract the task
declares, which each record states; a forced re-evaluation that agrees with a stored result of the
same key keeps the stored bytes, so a clone on another CPU never rewrites committed metrics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ZooError
from ..registry import DatasetSpec, Registry, TaskSpec
from . import contract
from .plan import Key, key_for, package_code_hash, params_hash, zoo_code_hash
from .results import read_results, write_model_results, write_results


def _round(x: float) -> float:
    return float(f"{x:.8g}")


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


def evaluate_split(model: Any, task: TaskSpec, split: Any, n_classes: int, batch_size: int,
                   device: str, checkpoint: Path | None = None) -> dict[str, float]:
    """Every metric of ``task`` on one split, rounded; raise on a value that is not finite or out of range.
    ``checkpoint`` (the checkpoint's file or folder) goes to an evaluator that has a ``checkpoint``
    parameter (``classify_text`` reads the tokenizer there); the others are called as before."""
    from ..registry.targets import instantiate

    metrics = {name: instantiate(m.config, f"{task.file}: metrics.{name}", code_allowed=True,
                                 context={"num_classes": n_classes})
               for name, m in task.metrics.items()}
    run = instantiate(task.evaluator, f"{task.file}: evaluator", code_allowed=True, _partial_=True)
    if _takes_checkpoint(run):
        run(model, split, metrics, batch_size, device, checkpoint=checkpoint)
    else:
        run(model, split, metrics, batch_size, device)
    out = {}
    for name, metric in metrics.items():
        value = task.metrics[name].settle(_round(float(metric.compute())))
        problem = task.metrics[name].value_problem(value, "evaluation")
        if problem:
            raise ZooError(problem)
        out[name] = value
    return out


def evaluate_checkpoint(path: Path, row: Mapping[str, str], registry: Registry, data: EvalData,
                        params: Mapping[str, Any], device: str) -> dict[str, Any]:
    """The record body (metrics, selection, split sizes) of one checkpoint file."""
    from ..formats import load_weights_file, weight_shapes
    from ..registry.archs import build, expected_shapes, fit_problem, load_weights, shape_cache_dir

    arch, task = registry.arch(row["arch"]), registry.task(row["task"])
    # the file is judged by its header before the model is built (a hand-edited row may name another arch)
    problem = fit_problem(arch, weight_shapes(path), expected_shapes(arch, registry, shape_cache_dir()))
    if problem:
        raise ZooError(f"{row['model']}@{row['step']}: {problem}")
    model = load_weights(build(arch, registry), load_weights_file(path), arch).to(device)
    batch = int(params.get("batch_size", 256))
    report = evaluate_split(model, task, data.splits[task.report_split], data.n_classes, batch, device, path)
    select = evaluate_split(model, task, data.splits[task.select_split], data.n_classes, batch, device, path)
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


@dataclass(frozen=True)
class EvalReport:
    """What an evaluate run did: refs evaluated, reused (with why), and failed (with why)."""

    evaluated: tuple[tuple[str, str], ...]
    reused: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    # forced re-evaluations of an unchanged key: agreed within the contract (stored bytes kept) or not
    verified: tuple[str, ...] = ()
    disagreed: tuple[tuple[str, str], ...] = ()


def evaluate_zoo(zoo: Any, params: Mapping[str, Any], run: Mapping[str, Any], out_dir: Path, force: bool = False,
                 log: Callable[[str], None] = print, executor: Mapping[str, Any] | None = None) -> EvalReport:
    """Evaluate what changed, reuse the rest, prune removed checkpoints, write results; raise if any failed.

    ``params`` are the semantic eval params (in the memo key); ``run`` the execution settings
    (batch_size, threads, device) and ``executor`` where the tasks run (``executors.ExecutorSpec``),
    neither of which is. Each result is written as it completes, so a run that is killed keeps every
    finished result and the next run evaluates only the rest."""
    import time

    from ..progress import bar
    from . import executors

    spec = executors.ExecutorSpec.from_params(executor)
    registry = zoo.registry()
    rows = zoo.rows()
    stored = read_results(out_dir)
    chash, zhash, phash = package_code_hash(), zoo_code_hash(registry.code_dir), params_hash(params)
    data_cache: dict[tuple[str, str], EvalData] = {}
    records: dict[str, dict] = {}
    todo: list[tuple[Mapping[str, str], Key, str]] = []
    reused: list[str] = []
    failed: list[tuple[str, str]] = []
    for row in rows:
        ref = f"{row['model']}@{row['step']}"
        if ref in stored:
            records[ref] = stored[ref]  # until replaced: a killed run leaves the old result, never none
        try:
            problems = registry.row_problems(row["arch"], row["task"], row["dataset"])
            if problems:
                raise ZooError(problems[0])
            cache_key = (row["dataset"], row["task"])
            if cache_key not in data_cache:
                data_cache[cache_key] = load_eval_data(registry.dataset(row["dataset"]), registry.task(row["task"]),
                                                       registry, params)
            key = key_for(row, registry, chash, zhash, phash, data_cache[cache_key].digest)
        except ZooError as e:
            failed.append((ref, str(e)))
            continue
        old = stored.get(ref)
        if old is not None and Key.of_record(old) == key and not force:
            reused.append(ref)
            continue
        why = "forced" if force else "new checkpoint" if old is None else key.why_not(Key.of_record(old))
        todo.append((row, key, why))
    write_results(out_dir, records)  # prunes the results of removed checkpoints before the long part
    rows_of: dict[str, list[Mapping[str, str]]] = {}  # a result rewrites its model's file, not every model's
    for row in rows:
        rows_of.setdefault(row["model"], []).append(row)
    evaluated: list[tuple[str, str]] = []
    verified: list[str] = []
    disagreed: list[tuple[str, str]] = []

    def done(row: Mapping[str, str], key: Key, why: str, body: dict) -> None:
        ref = f"{row['model']}@{row['step']}"
        record = {"step": int(row["step"]), "sha256": row["sha256"], "task": row["task"], "dataset": row["dataset"],
                  "arch": row["arch"], **body,
                  "provenance": {**key.provenance(), "code_version": f"checkpoint-zoo {__version__}"}}
        old = stored.get(ref)
        if old is not None and Key.of_record(old) == key:
            tolerances = {m: contract.Tolerance.from_dict(t) for m, t in record["reproducibility"].items()}
            beyond = contract.disagreements(old.get("metrics", {}), record["metrics"], tolerances)
            beyond.update({f"{m} ({record['selection']['split']})": v for m, v in contract.disagreements(
                (old.get("selection") or {}).get("metrics", {}), record["selection"]["metrics"], tolerances).items()})
            if not beyond and set(old.get("metrics", {})) == set(record["metrics"]):
                verified.append(ref)
                return
            disagreed.append((ref, ", ".join(f"{k} {a} -> {b}" for k, (a, b) in beyond.items())
                              or "other metric names"))
        records[ref] = record
        evaluated.append((ref, why))
        mine = [rec for r in rows_of[row["model"]] if (rec := records.get(f"{r['model']}@{r['step']}"))]
        write_model_results(out_dir, row["model"], mine)

    started = time.monotonic()
    if todo:
        with executors.open_executor(spec) as (pool, described):
            log(f"evaluate: {len(todo)} checkpoint(s) on {described}")
            if spec.kind == "serial":
                setup_determinism(int(run.get("threads", 1)))
                executors.seed(zoo, registry, data_cache)
            calls = [((row, key, why), (executors.evaluate_task, str(zoo.root), dict(row), dict(params), dict(run)))
                     for row, key, why in todo]
            with bar(len(calls), "evaluate", "ckpt") as advance:
                for (row, key, why), future in executors.completed(pool, calls):
                    advance()
                    try:
                        done(row, key, why, future.result())
                    except ZooError as e:
                        failed.append((f"{row['model']}@{row['step']}", str(e)))
                    except Exception as e:  # a worker that died, a lost connection: name the checkpoint
                        failed.append((f"{row['model']}@{row['step']}",
                                       f"{type(e).__name__} on the {spec.kind} executor: {str(e)[:200] or 'no message'}"))
    write_results(out_dir, records)
    seconds = time.monotonic() - started
    for ref, why in sorted(evaluated):
        log(f"evaluated {ref} ({why})")
    for ref, what in disagreed:
        log(f"NOT REPRODUCED {ref}: same checkpoint, code, config, params and data, but {what} "
            "(beyond the task's reproducibility contract); stored the new result")
    rate = f" in {seconds:.1f} s ({len(todo) / seconds:.1f} ckpt/s on {spec.kind})" if todo and seconds > 0 else ""
    log(f"evaluated {len(evaluated)}, reused {len(reused)} (same checkpoint sha256, code, config, params and data)"
        + rate)
    if force:
        log(f"re-evaluated {len(verified) + len(disagreed)} with an unchanged key: {len(verified)} agree with "
            f"the stored result within the reproducibility contract (kept as stored), {len(disagreed)} do not")
    if failed:
        for ref, msg in failed:
            log(f"FAILED {ref}: {msg}")
        raise ZooError(f"evaluation failed for {len(failed)} checkpoint(s): "
                       + "; ".join(f"{ref}: {msg}" for ref, msg in failed)
                       + " (every finished result is written; the next run evaluates only the rest)")
    if disagreed:
        raise ZooError(f"{len(disagreed)} checkpoint(s) did not reproduce their stored metrics within the "
                       f"reproducibility contract ({', '.join(ref for ref, _ in disagreed)}); the new results are "
                       "written: compare them with `git diff zoo/metrics/evaluations` before committing")
    return EvalReport(tuple(evaluated), tuple(reused), tuple(failed), tuple(verified), tuple(disagreed))
