"""Reproducible evaluation of checkpoints, memoised per checkpoint.

Every stored result is keyed on (checkpoint sha256, evaluation-code hash, eval-params hash, data
hash); a result is reused only when all four match, so adding one checkpoint evaluates one, and a
change of params, code or data re-evaluates all. Results live in git-tracked JSON files, one per
model (``zoo/metrics/evaluations/<model>.json``), written deterministically: sorted keys, floats
rounded to 8 significant digits, one CPU thread and deterministic torch algorithms. Across machines
the metrics agree under the contract of ``contract.py``, which each record states; a forced
re-evaluation that agrees with a stored result of the same key keeps the stored bytes, so a clone on
another CPU never rewrites committed metrics.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, contract, rules
from .errors import IntegrityError, MissingFileError, ZooError
from .results import read_results, write_results

# The code whose change must re-evaluate everything: this module and what it builds models and data with.
_CODE_FILES = ("evaluate.py", "archs.py", "datasets.py", "contract.py")


def code_hash() -> str:
    """sha256 over the evaluation code's source files."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in _CODE_FILES:
        h.update(name.encode() + b"\0" + (here / name).read_bytes())
    return h.hexdigest()


def params_hash(params: Mapping[str, object]) -> str:
    """sha256 of the eval params as canonical JSON."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _round(x: float) -> float:
    return float(f"{x:.8g}")


@dataclass(frozen=True)
class EvalData:
    """One task's evaluation split and its hash."""

    x: np.ndarray
    y: np.ndarray
    n_classes: int
    digest: str


def classification_metrics(logits: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, float]:
    """accuracy, macro-F1 (over every class of the dataset) and mean negative log-likelihood."""
    pred = logits.argmax(axis=1)
    accuracy = float((pred == y).mean())
    f1s = []
    for c in range(n_classes):
        tp = float(((pred == c) & (y == c)).sum())
        fp = float(((pred == c) & (y != c)).sum())
        fn = float(((pred != c) & (y == c)).sum())
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    nll = float(-log_probs[np.arange(len(y)), y].mean())
    return {"accuracy": _round(accuracy), "macro_f1": _round(sum(f1s) / n_classes), "nll": _round(nll)}


def _evaluate_classifier(model, data: EvalData, params: Mapping[str, object]) -> dict[str, float]:
    import torch

    batch = int(params.get("batch_size", 256))
    outs = []
    with torch.no_grad():
        for i in range(0, len(data.y), batch):
            outs.append(model(torch.from_numpy(data.x[i:i + batch])).double().numpy())
    logits = np.concatenate(outs) if outs else np.zeros((0, data.n_classes))
    metrics = classification_metrics(logits, data.y, data.n_classes)
    if not all(math.isfinite(v) for v in metrics.values()):
        raise ZooError("evaluation produced a NaN or infinite metric")
    return metrics


# task -> evaluator; rules.TASKS lists exactly these (a test keeps them in step).
EVALUATORS: dict[str, Callable] = {
    "image-classification": _evaluate_classifier,
    "tabular-classification": _evaluate_classifier,
}


def load_eval_data(dataset: str, params: Mapping[str, object]) -> EvalData:
    """The held-out split the reference checkpoints never saw, with its content hash."""
    from .datasets import load_split

    split = load_split(dataset, str(params.get("split", "test")))
    limit = params.get("max_examples")
    x, y = split.x, split.y
    if limit:
        x, y = x[: int(limit)], y[: int(limit)]
    h = hashlib.sha256(np.ascontiguousarray(x).tobytes() + np.ascontiguousarray(y).tobytes()).hexdigest()
    return EvalData(x, y, split.n_classes, h)


def setup_determinism(threads: int) -> None:
    """One path through the maths on every run and machine."""
    import torch

    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)


@dataclass(frozen=True)
class EvalReport:
    """What an evaluate run did: refs evaluated, reused (with why), and failed (with why)."""

    evaluated: tuple[tuple[str, str], ...]
    reused: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    # forced re-evaluations of an unchanged key: agreed within the contract (stored bytes kept) or not
    verified: tuple[str, ...] = ()
    disagreed: tuple[tuple[str, str], ...] = ()


def _key(rec: Mapping[str, object]) -> tuple:
    p = rec.get("provenance", {})
    return (rec.get("sha256"), p.get("code_hash"), p.get("params_hash"), p.get("data_hash"))


def evaluate_zoo(zoo, params: Mapping[str, object], out_dir: Path, force: bool = False,
                 log: Callable[[str], None] = print) -> EvalReport:
    """Evaluate what changed, reuse the rest, prune removed checkpoints, write results; raise if any failed."""
    from .archs import build_model
    from .progress import progress

    rows = zoo.rows()
    stored = read_results(out_dir)
    chash, phash = code_hash(), params_hash(params)
    data_cache: dict[str, EvalData] = {}
    records: dict[str, dict] = {}
    todo: list[tuple[dict, str]] = []
    reused: list[str] = []
    for row in rows:
        ref = f"{row['model']}@{row['step']}"
        task = row["task"]
        if task not in EVALUATORS:
            raise ZooError(f"{ref}: task {task!r} has no evaluator; use one of {', '.join(EVALUATORS)}")
        if row["dataset"] not in data_cache:
            data_cache[row["dataset"]] = load_eval_data(row["dataset"], params)
        key = (row["sha256"], chash, phash, data_cache[row["dataset"]].digest)
        old = stored.get(ref)
        if old is not None and _key(old) == key and not force:
            records[ref] = old
            reused.append(ref)
            continue
        if force:
            why = "forced"
        elif old is None:
            why = "new checkpoint"
        elif old.get("sha256") != row["sha256"]:
            why = "checkpoint bytes changed"
        elif old.get("provenance", {}).get("code_hash") != chash:
            why = "evaluation code changed"
        elif old.get("provenance", {}).get("params_hash") != phash:
            why = "eval params changed"
        else:
            why = "evaluation data changed"
        todo.append((row, why))
    setup_determinism(int(params.get("threads", 1)))
    evaluated, failed, verified, disagreed = [], [], [], []
    for row, why in progress(todo, desc="evaluate", unit="ckpt"):
        ref = f"{row['model']}@{row['step']}"
        try:
            path = zoo._abs(row["path"])
            if not path.is_file():
                raise MissingFileError(f"{row['path']} is not pulled: run `zoo pull {ref}` (or `dvc pull {row['path']}`)")
            if zoo.stamps.sha256(path) != row["sha256"]:
                raise IntegrityError(f"{row['path']} does not match its sha256 in the table: restore it with `zoo pull {ref}`")
            from safetensors.torch import load_file

            model = build_model(row["arch"], load_file(str(path)))
            data = data_cache[row["dataset"]]
            metrics = EVALUATORS[row["task"]](model, data, params)
        except ZooError as e:
            failed.append((ref, str(e)))
            if ref in stored:
                records[ref] = stored[ref]  # keep the old result visible; the run still fails
            continue
        record = {
            "step": int(row["step"]),
            "sha256": row["sha256"],
            "task": row["task"],
            "dataset": row["dataset"],
            "metrics": metrics,
            "reproducibility": contract.contract_for(metrics),
            "n_examples": int(len(data.y)),
            "provenance": {
                "code_hash": chash, "params_hash": phash, "data_hash": data.digest,
                "code_version": f"checkpoint-zoo {__version__}",
            },
        }
        old = stored.get(ref)
        if old is not None and _key(old) == _key(record):
            beyond = contract.disagreements(old.get("metrics", {}), metrics)
            if not beyond and set(old.get("metrics", {})) == set(metrics):
                records[ref] = old
                verified.append(ref)
                continue
            disagreed.append((ref, ", ".join(f"{k} {a} -> {b} (beyond {contract.tolerance(k).describe()})"
                                             for k, (a, b) in beyond.items()) or "other metric names"))
        records[ref] = record
        evaluated.append((ref, why))
    write_results(out_dir, records)
    for ref, why in evaluated:
        log(f"evaluated {ref} ({why})")
    for ref, what in disagreed:
        log(f"NOT REPRODUCED {ref}: same checkpoint, code, params and data, but {what}; stored the new result")
    log(f"evaluated {len(evaluated)}, reused {len(reused)} (same checkpoint sha256, code, params and data)")
    if force:
        log(f"re-evaluated {len(verified) + len(disagreed)} with an unchanged key: {len(verified)} agree with "
            f"the stored result within the reproducibility contract (kept as stored), {len(disagreed)} do not")
    if failed:
        for ref, msg in failed:
            log(f"FAILED {ref}: {msg}")
        raise ZooError(f"evaluation failed for {len(failed)} checkpoint(s): "
                       + "; ".join(f"{ref}: {msg}" for ref, msg in failed))
    if disagreed:
        raise ZooError(f"{len(disagreed)} checkpoint(s) did not reproduce their stored metrics within the "
                       f"reproducibility contract ({', '.join(ref for ref, _ in disagreed)}); the new results are "
                       "written: compare them with `git diff zoo/metrics/evaluations` before committing")
    return EvalReport(tuple(evaluated), tuple(reused), tuple(failed), tuple(verified), tuple(disagreed))


def primary_metric(task: str) -> tuple[str, bool]:
    """(metric name, higher is better) of a task, from rules.TASKS."""
    rule = rules.TASKS[task]
    return str(rule["primary_metric"]), bool(rule["higher_is_better"])
