"""Stored evaluation results: ``zoo/metrics/evaluations/<model>.json``, one file per model.

A record is either a result (metrics on the report split, the selection used by ``@best``, ...) or a
failure (``status: failed`` with a one-line ``error`` and empty metrics): a checkpoint whose evaluation
raises is recorded, so the other checkpoints are evaluated and published while it shows as failed.
Every float of every record goes through ``canonical_float`` once, in ``dump_model_results``, so a
record has one serialization whichever code path produced it.

Light on purpose (json only): ``zoo ls``/``show`` read metrics without importing numpy or torch.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Collection, Iterable
from pathlib import Path

from .. import layout
from ..errors import ZooError
from . import rules
from .table import atomic_write

FAILED = "failed"  # the status of a record whose evaluation raised
MAX_ERROR = 500     # characters of a failure's one-line reason


def canonical_float(x: float) -> float:
    """The one rounding of a stored float: 8 significant digits (a float32 result has about 7), so the
    stored text is the same whether a value came straight from torch or back from a JSON file."""
    return float(f"{x:.8g}")


def canonical(value: object) -> object:
    """``value`` with every float in it (nested in mappings and lists) rounded by ``canonical_float``."""
    if isinstance(value, float):
        return canonical_float(value) if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def is_failed(rec: object) -> bool:
    """Whether a stored record is a failed evaluation (``status: failed``), not a result."""
    return isinstance(rec, dict) and rec.get("status") == FAILED


def one_line(text: str) -> str:
    """A failure's reason as stored: its first non-blank line, printable, at most ``MAX_ERROR`` characters."""
    line = next((x.strip() for x in str(text).splitlines() if x.strip()), "") or "no message"
    line = "".join(c if c.isprintable() else " " for c in line)
    return line if len(line) <= MAX_ERROR else line[:MAX_ERROR - 1] + "…"


class _Bad(Exception):
    """One field of an evaluation record is wrong; the message names it."""


def _finite(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Bad(f"{field} is {json.dumps(value)[:40]}; must be a finite number")
    return float(value)


def _count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= rules.MAX_COUNT:
        raise _Bad(f"{field} is {json.dumps(value)[:40]}; must be a whole number >= 0")
    return value


def _mapping(value: object, field: str) -> dict:
    if not isinstance(value, dict):
        raise _Bad(f"{field} is {type(value).__name__}; must be an object")
    return value


_SHA256 = re.compile(rules.SHA256_PATTERN)


@functools.lru_cache(maxsize=1024)  # a zoo's records repeat a handful of metric names
def _metric_name_ok(name: str) -> bool:
    return re.fullmatch(rules.METRIC_NAME_PATTERN, name) is not None


def _metrics(value: object, field: str) -> None:
    for name, v in _mapping(value, field).items():
        if not isinstance(name, str) or not _metric_name_ok(name):
            raise _Bad(f"{field} has the metric name {name!r}; must match {rules.METRIC_NAME_PATTERN}")
        if isinstance(v, float) and math.isfinite(v):
            continue
        _finite(v, f"{field}.{name}")


def check_record(rec: object) -> None:
    """Raise _Bad when a stored evaluation record has not the shape the zoo writes (finite metrics, an
    integer step, a sha256, the selection used by @best ...)."""
    rec = _mapping(rec, "the record")
    if "status" in rec:
        _check_failed(rec)
    _count(rec.get("step"), "step")
    if not isinstance(rec.get("sha256"), str) or not _SHA256.fullmatch(rec["sha256"]):
        raise _Bad(f"sha256 is {json.dumps(rec.get('sha256'))[:40]}; must be 64 hex digits")
    for key in ("task", "arch", "dataset", "split"):
        if key in rec and not isinstance(rec[key], str):
            raise _Bad(f"{key} is {json.dumps(rec[key])[:40]}; must be text")
    _metrics(rec.get("metrics"), "metrics")
    if "n_examples" in rec:
        _count(rec["n_examples"], "n_examples")
    for name, v in _mapping(rec.get("higher_is_better", {}), "higher_is_better").items():
        if not isinstance(v, bool):
            raise _Bad(f"higher_is_better.{name} is {json.dumps(v)[:40]}; must be true or false")
    if "reproducibility" in rec:
        _mapping(rec["reproducibility"], "reproducibility")
    if "provenance" in rec:
        _mapping(rec["provenance"], "provenance")
    if "selection" in rec:
        sel = _mapping(rec["selection"], "selection")
        if not isinstance(sel.get("metric"), str) or not isinstance(sel.get("split"), str):
            raise _Bad("selection needs a metric and a split (text)")
        _finite(sel.get("value"), "selection.value")
        if not isinstance(sel.get("higher_is_better"), bool):
            raise _Bad("selection.higher_is_better must be true or false")
        _metrics(sel.get("metrics", {}), "selection.metrics")


def _check_failed(rec: dict) -> None:
    """A failed record: ``status: failed``, a one-line ``error``, empty metrics and nothing of a result."""
    if rec["status"] != FAILED:
        raise _Bad(f"status is {json.dumps(rec['status'])[:40]}; must be \"failed\" (or absent, for a result)")
    error = rec.get("error")
    if not isinstance(error, str) or not error.strip() or error != one_line(error):
        raise _Bad(f"error is {json.dumps(error)[:40]}; a failed record needs its reason as one line of text "
                   f"(at most {MAX_ERROR} characters)")
    if rec.get("metrics") != {}:
        raise _Bad("metrics must be {} in a failed record (a failed evaluation has no results)")
    extra = sorted(k for k in ("selection", "split", "n_examples", "reproducibility", "higher_is_better") if k in rec)
    if extra:
        raise _Bad(f"{extra[0]} is set in a failed record; a failed evaluation has no results")


def _loads(doc: bytes | str) -> object:
    """The document's JSON: orjson (several times faster on a 100-record file), and ``json`` for whatever orjson
    refuses (NaN, Infinity, integers past 64 bits, a byte-order mark), so every document reads to what ``json``
    reads and fails as it fails."""
    import orjson

    try:
        return orjson.loads(doc)
    except orjson.JSONDecodeError:
        return json.loads(doc)


def _file_records(name: str, doc: bytes | str) -> tuple[str, list, str]:
    """(model, its records, the fix to name in an error) of one results file whose outer shape is checked."""
    fix = f"restore it with `git checkout -- {name}` or delete it and run `dvc repro`"
    try:
        data = _mapping(_loads(doc), "the file")  # NaN and Infinity (not JSON, but Python reads them) fail the checks
        model = data.get("model")
        if not isinstance(model, str) or rules.slug_problem(model) is not None:
            raise _Bad(f"model is {json.dumps(model)[:40]}; must be a model name")
        if not isinstance(data.get("checkpoints"), list):
            raise _Bad("checkpoints must be a list of records")
    except (_Bad, ValueError) as e:
        raise ZooError(f"{name}: not evaluation results ({e}); {fix}") from None
    return model, data["checkpoints"], fix


def _checked(name: str, model: str, n: int, rec: object, fix: str) -> dict:
    try:
        check_record(rec)
    except _Bad as e:
        step = rec.get("step") if isinstance(rec, dict) else None
        which = f"step {step}" if isinstance(step, int) and not isinstance(step, bool) else f"record {n + 1}"
        raise ZooError(f"{name}: {model}, {which}: {e}; {fix}") from None
    assert isinstance(rec, dict)
    return rec


def parse_results(documents: Iterable[tuple[str, bytes | str | None]]) -> dict[str, dict]:
    """Records by ``MODEL@STEP`` from (name, contents) of per-model result files (None contents skipped).

    Every record is checked on read (``check_record``): a record the zoo cannot have written (a NaN
    metric, a step that is not an integer, a list instead of an object ...) raises ZooError naming the
    file, the record and the field, instead of ranking or printing a wrong value."""
    out: dict[str, dict] = {}
    for name, doc in documents:
        if doc is None:
            continue
        model, checkpoints, fix = _file_records(name, doc)
        for n, rec in enumerate(checkpoints):
            rec = _checked(name, model, n, rec, fix)
            ref = f"{model}@{rec['step']}"
            if ref in out:
                raise ZooError(f"{name}: {model}, step {rec['step']}: recorded twice; {fix}")
            out[ref] = rec
    return out


def parse_steps(name: str, doc: bytes | str, steps: Collection[int]) -> tuple[str, dict[str, dict]]:
    """(the file's model, its records of ``steps`` and its last record, by ``MODEL@STEP``): what a listing shows.

    Only those records are checked in full (``check_record``, the same error as ``parse_results`` for a bad one);
    the others only as far as finding these needs (an object with a whole-number step, no step twice), a record
    failing that raising as ``parse_results`` would on it. The full check of every record stays with
    ``parse_results`` (the validate and evaluate stages, ``zoo verify``): a listing of 1,000 models need not check
    the 99,000 records it does not show (most of a cold ``zoo ls`` at 100,000 checkpoints)."""
    model, checkpoints, fix = _file_records(name, doc)
    picked: dict[int, int] = {}
    seen: set[int] = set()
    last, last_n = -1, -1
    for n, rec in enumerate(checkpoints):
        step = rec.get("step") if type(rec) is dict else None
        if type(step) is not int or not 0 <= step <= rules.MAX_COUNT:
            _checked(name, model, n, rec, fix)  # raises: not an object, or no whole-number step
            continue
        if step in seen:
            _checked(name, model, n, rec, fix)
            raise ZooError(f"{name}: {model}, step {step}: recorded twice; {fix}")
        seen.add(step)
        if step in steps:
            picked[step] = n
        if step > last:
            last, last_n = step, n
    if last_n >= 0:
        picked[last] = last_n
    return model, {f"{model}@{step}": _checked(name, model, n, checkpoints[n], fix)
                   for step, n in sorted(picked.items(), key=lambda kv: kv[1])}


def read_steps(folder: Path, model: str, steps: Collection[int]) -> tuple[str, dict[str, dict]] | None:
    """``parse_steps`` of ``MODEL.json`` in ``folder`` (None when there is no such file)."""
    f = folder / f"{model}.json"
    try:
        doc = f.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ZooError(f"{f}: unreadable evaluation results ({e.strerror}); delete it and run `dvc repro`") from None
    return parse_steps(f"{layout.EVALUATIONS_DIR}/{f.name}", doc, steps)


def read_results(folder: Path, models: Iterable[str] | None = None) -> dict[str, dict]:
    """Stored records by ``MODEL@STEP`` from ``zoo/metrics/evaluations`` (all models, or these)."""
    if not folder.is_dir():
        return {}
    files = sorted(folder.glob("*.json")) if models is None else [folder / f"{m}.json" for m in sorted(set(models))]
    docs = []
    for f in files:
        try:
            docs.append((f"{layout.EVALUATIONS_DIR}/{f.name}", f.read_bytes()))
        except FileNotFoundError:
            continue
        except OSError as e:
            raise ZooError(f"{f}: unreadable evaluation results ({e.strerror}); delete it and run `dvc repro`") from None
    return parse_results(docs)


def dump_model_results(model: str, records: list[dict]) -> bytes:
    """The deterministic bytes of one model's results file (records sorted by step)."""
    body = {"model": model, "checkpoints": canonical(sorted(records, key=lambda r: r["step"]))}
    return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()


def write_model_results(folder: Path, model: str, records: list[dict]) -> None:
    """One model's file, written atomically (and only when it changes)."""
    data = dump_model_results(model, records)
    path = folder / f"{model}.json"
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        atomic_write(path, data)


def write_results(folder: Path, records: dict[str, dict], models: Iterable[str] | None = None) -> None:
    """One file per model, deterministic bytes; files of models no longer present are removed. With
    ``models``, only those models' files are written (the caller knows the others are unchanged: serialising
    every record to compare costs more than the run's own writes)."""
    by_model: dict[str, list[dict]] = {}
    for ref, rec in records.items():
        by_model.setdefault(ref.rsplit("@", 1)[0], []).append(rec)
    folder.mkdir(parents=True, exist_ok=True)
    chosen = set(by_model) if models is None else set(models) & set(by_model)
    for model in sorted(chosen):
        write_model_results(folder, model, by_model[model])
    for f in folder.glob("*.json"):
        if f.stem not in by_model:
            f.unlink()


JOURNAL = ".journal.jsonl"  # in the results folder: what a running evaluation has finished, one record a line


class Journal:
    """The results of a running evaluation, appended one line each as they finish, so that a run killed at
    any point keeps every finished result (``recover_journal`` folds them in at the next run) while each
    model's file is written once, at the end, instead of after every result of the model (a first
    evaluation of 1,000 checkpoints of 100 each rewrote 100 records a result)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / JOURNAL
        self._fd: int | None = None

    def append(self, model: str, record: dict) -> None:
        """One finished record, as one ``write`` to the end of the file (a kill leaves whole lines, or a last
        line cut short, which ``recover_journal`` ignores)."""
        import os

        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        line = json.dumps({"model": model, "record": canonical(record)}, sort_keys=True) + "\n"
        os.write(self._fd, line.encode())

    def close(self) -> None:
        """Remove the journal: call once every record in it is in its model's file."""
        import os

        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.path.unlink(missing_ok=True)


def recover_journal(folder: Path) -> list[str]:
    """Fold the journal a killed run left (``Journal``) into its models' files, then remove it; the models
    recovered. A line cut short by the kill is ignored (its checkpoint is evaluated again); any other line
    that is not a record the zoo writes stops the run with one line naming the journal and the line."""
    path = folder / JOURNAL
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    name = f"{layout.EVALUATIONS_DIR}/{JOURNAL}"
    found: dict[str, dict[int, dict]] = {}
    for n, line in enumerate(data.split(b"\n")[:-1], 1):  # after the last newline: a cut line, or nothing
        try:
            entry = _mapping(json.loads(line), "the line")
            model, rec = entry.get("model"), _mapping(entry.get("record"), "record")
            if not isinstance(model, str) or rules.slug_problem(model) is not None:
                raise _Bad(f"model is {json.dumps(model)[:40]}; must be a model name")
            check_record(rec)
        except (_Bad, ValueError) as e:
            raise ZooError(f"{name}: line {n}: not an evaluation record ({e}); delete the file and run `dvc repro` "
                           "(the checkpoints it lists are evaluated again)") from None
        found.setdefault(model, {})[rec["step"]] = rec
    stored = read_results(folder, found)
    for model, recs in sorted(found.items()):
        mine = {rec["step"]: rec for ref, rec in stored.items() if ref.rsplit("@", 1)[0] == model}
        write_model_results(folder, model, list({**mine, **recs}.values()))
    path.unlink()
    return sorted(found)
