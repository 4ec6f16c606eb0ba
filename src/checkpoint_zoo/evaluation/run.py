"""Reproducible evaluation of checkpoints, memoised per checkpoint (keys: ``plan``).

Each checkpoint is evaluated by its task's evaluator and metrics (``conf/task``) on its dataset's
selection split (val: ranks ``@best``) and report split (test: what leaderboards show). Results live
in git-tracked JSON files, one per model (``zoo/metrics/evaluations/<model>.json``), written
deterministically: sorted keys, floats rounded to 8 significant digits (``catalog.records.canonical_float``,
the one serialization of every stored record), fixed torch threads and deterministic torch algorithms.
Across machines the metrics agree under the contract the task declares, which each record states; a
forced re-evaluation that agrees with a stored result of the same key keeps the stored bytes,
so a clone on another CPU never rewrites committed metrics.

A checkpoint whose evaluation raises (or whose row the registries refuse) is recorded as failed with its
reason and the run goes on: every other checkpoint is evaluated, the stage succeeds and the index
publishes the failure. A failed record is never reused: each run evaluates it again, so a fix (a replaced
checkpoint, an edited conf/) shows at the next ``dvc repro``. What is wrong with this machine rather than
the checkpoint (a file not pulled or damaged here, a worker that died) fails the stage and keeps the
stored result, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import contract
from ..catalog.records import FAILED, Journal, is_failed, one_line, read_results, recover_journal, write_results
from ..errors import ZooError
from ..registry import Registry
from ..utils.version import __version__
from .plan import Key, key_for, package_code_hash, params_hash, zoo_code_hash

# evaluating one checkpoint lives in .worker (what the executors run); these names stay importable from here
from .worker import (  # noqa: F401
    EvalData,
    _round,
    _takes_checkpoint,
    evaluate_checkpoint,
    evaluate_split,
    load_eval_data,
    resolve_device,
    setup_determinism,
)

Todo = tuple[Mapping[str, str], Key, str]  # a row to evaluate, its memo key, and why it is evaluated


@dataclass(frozen=True)
class EvalReport:
    """What an evaluate run did: refs evaluated, reused (with why), failed on this machine (with why: the
    run fails) and ``recorded_failures``: checkpoints whose evaluation failed, recorded as failed."""

    evaluated: tuple[tuple[str, str], ...]
    reused: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    # forced re-evaluations of an unchanged key: agreed within the contract (stored bytes kept) or not
    verified: tuple[str, ...] = ()
    disagreed: tuple[tuple[str, str], ...] = ()
    recorded_failures: tuple[tuple[str, str], ...] = ()


def _ref(row: Mapping[str, str]) -> str:
    return f"{row['model']}@{row['step']}"


@dataclass
class _Run:
    """The state of one evaluate run: what is stored, what is written, and what happened to each checkpoint."""

    out_dir: Path
    stored: dict[str, dict]
    records: dict[str, dict] = field(default_factory=dict)
    data_cache: dict[tuple[str, str], EvalData] = field(default_factory=dict)
    todo: list[Todo] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    evaluated: list[tuple[str, str]] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    disagreed: list[tuple[str, str]] = field(default_factory=list)
    recorded_failures: list[tuple[str, str]] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)  # models with a result stored by this run, not yet in their file
    journal: Journal | None = None

    def changed_by_plan(self) -> set[str]:
        """The models whose file the plan changes: a stored result pruned (its row is gone) or replaced by a
        failure the registries' refusal recorded."""
        refs = {ref for ref in self.stored if self.records.get(ref) is not self.stored[ref]}
        refs |= {ref for ref, rec in self.records.items() if self.stored.get(ref) is not rec}
        return {ref.rsplit("@", 1)[0] for ref in refs}

    def plan(self, rows: list[Mapping[str, str]], registry: Registry, params: Mapping[str, Any], force: bool) -> None:
        """Sort the rows into reused, to evaluate (with why) and failed (a row the registries refuse)."""
        chash, zhash, phash = package_code_hash(), zoo_code_hash(registry.code_dir), params_hash(params)
        for row in rows:
            ref = _ref(row)
            if ref in self.stored:
                self.records[ref] = self.stored[ref]  # until replaced: a killed run leaves the old result, never none
            try:
                key = self._key(row, registry, params, chash, zhash, phash)
            except ZooError as e:  # the row's own conf (an undeclared arch, a dataset that does not load)
                self.record_failure(row, None, {"status": FAILED, "error": one_line(str(e)), "metrics": {}},
                                    write=False)  # written with the rest once planned
                continue
            old = self.stored.get(ref)
            if old is not None and Key.of_record(old) == key and not force and not is_failed(old):
                self.reused.append(ref)
                continue
            why = ("forced" if force else "new checkpoint" if old is None
                   else "its last evaluation failed" if is_failed(old) else key.why_not(Key.of_record(old)))
            self.todo.append((row, key, why))

    def _key(self, row: Mapping[str, str], registry: Registry, params: Mapping[str, Any], *hashes: str) -> Key:
        problems = registry.row_problems(row["arch"], row["task"], row["dataset"])
        if problems:
            raise ZooError(problems[0])
        cache_key = (row["dataset"], row["task"])
        if cache_key not in self.data_cache:
            self.data_cache[cache_key] = load_eval_data(registry.dataset(row["dataset"]), registry.task(row["task"]),
                                                        registry, params)
        chash, zhash, phash = hashes
        return key_for(row, registry, chash, zhash, phash, self.data_cache[cache_key].digest)

    def record_failure(self, row: Mapping[str, str], key: Key | None, body: dict, write: bool = True) -> None:
        """Store a failed evaluation (its key, when known, says under what it failed) and go on."""
        record = {"step": int(row["step"]), "sha256": row["sha256"], "task": row["task"], "dataset": row["dataset"],
                  "arch": row["arch"], **body}
        if key is not None:
            record["provenance"] = {**key.provenance(), "code_version": f"checkpoint-zoo {__version__}"}
        self.recorded_failures.append((_ref(row), body["error"]))
        if write:
            self._store(row, record)
        else:
            self.records[_ref(row)] = record

    def _store(self, row: Mapping[str, str], record: dict) -> None:
        self.records[_ref(row)] = record
        self.dirty.add(row["model"])
        if self.journal is None:
            self.journal = Journal(self.out_dir)
        self.journal.append(row["model"], record)

    def flush(self) -> None:
        """Write the files of the models this run changed, then drop the journal that kept their results."""
        write_results(self.out_dir, self.records, self.dirty)
        self.dirty.clear()
        if self.journal is not None:
            self.journal.close()

    def done(self, row: Mapping[str, str], key: Key, why: str, body: dict) -> None:
        """Record one finished evaluation (a forced one that agrees with the stored result keeps its bytes)."""
        ref = _ref(row)
        if is_failed(body):
            self.record_failure(row, key, body)
            return
        record = {"step": int(row["step"]), "sha256": row["sha256"], "task": row["task"], "dataset": row["dataset"],
                  "arch": row["arch"], **body,
                  "provenance": {**key.provenance(), "code_version": f"checkpoint-zoo {__version__}"}}
        old = self.stored.get(ref)
        if old is not None and not is_failed(old) and Key.of_record(old) == key:
            beyond = _beyond_contract(old, record)
            if not beyond and set(old.get("metrics", {})) == set(record["metrics"]):
                self.verified.append(ref)
                return
            self.disagreed.append((ref, ", ".join(f"{k} {a} -> {b}" for k, (a, b) in beyond.items())
                                   or "other metric names"))
        self.evaluated.append((ref, why))
        self._store(row, record)

    def report(self) -> EvalReport:
        return EvalReport(tuple(self.evaluated), tuple(self.reused), tuple(self.failed), tuple(self.verified),
                          tuple(self.disagreed), tuple(self.recorded_failures))


def _beyond_contract(old: dict, record: dict) -> dict[str, tuple[Any, Any]]:
    """The metrics (report and selection split) of ``record`` that differ from ``old`` beyond the task's contract."""
    tolerances = {m: contract.Tolerance.from_dict(t) for m, t in record["reproducibility"].items()}
    beyond = contract.disagreements(old.get("metrics", {}), record["metrics"], tolerances)
    beyond.update({f"{m} ({record['selection']['split']})": v for m, v in contract.disagreements(
        (old.get("selection") or {}).get("metrics", {}), record["selection"]["metrics"], tolerances).items()})
    return beyond


def _execute(state: _Run, zoo: Any, registry: Registry, spec: Any, params: Mapping[str, Any],
             run: Mapping[str, Any], log: Callable[[str], None]) -> None:
    """Run every planned evaluation on the executor, recording each result as it completes."""
    import time

    from ..utils.progress import bar
    from . import executors

    run_id = executors.new_run()
    if spec.kind == "serial":
        setup_determinism(int(run.get("threads", 1)))
        executors.seed(zoo, registry, state.data_cache, run_id)
    else:
        executors.preload(zoo.root, registry, state.data_cache, run_id)
    started = time.monotonic()
    with executors.open_executor(spec) as (pool, described, workers):
        log(f"evaluate: {len(state.todo)} checkpoint(s) on {described}, ready in {time.monotonic() - started:.2f} s")
        calls = [((row, key, why), (executors.evaluate_task, str(zoo.root), dict(row), dict(params), dict(run), run_id))
                 for row, key, why in state.todo]
        with bar(len(calls), "evaluate", "ckpt") as advance:
            for (row, key, why), future in executors.completed(pool, calls, executors.chunk_size(len(calls), workers)):
                advance()
                try:
                    state.done(row, key, why, future.result())
                except ZooError as e:
                    state.failed.append((_ref(row), str(e)))
                except Exception as e:  # a worker that died, a lost connection: name the checkpoint
                    state.failed.append((_ref(row),
                                         f"{type(e).__name__} on the {spec.kind} executor: {str(e)[:200] or 'no message'}"))


def _summarise(state: _Run, seconds: float, kind: str, force: bool, log: Callable[[str], None]) -> None:
    """Log what the run did; raise if any checkpoint failed or did not reproduce its stored metrics."""
    for ref, why in sorted(state.evaluated):
        log(f"evaluated {ref} ({why})")
    for ref, what in state.disagreed:
        log(f"NOT REPRODUCED {ref}: same checkpoint, code, config, params and data, but {what} "
            "(beyond the task's reproducibility contract); stored the new result")
    todo = len(state.todo)
    rate = f" in {seconds:.2f} s ({todo / seconds:.1f} ckpt/s on {kind})" if todo and seconds > 0 else ""
    log(f"evaluated {len(state.evaluated)}, reused {len(state.reused)} (same checkpoint sha256, code, config, params "
        "and data)" + rate)
    if force:
        log(f"re-evaluated {len(state.verified) + len(state.disagreed)} with an unchanged key: {len(state.verified)} "
            f"agree with the stored result within the reproducibility contract (kept as stored), "
            f"{len(state.disagreed)} do not")
    for ref, msg in state.recorded_failures:
        log(f"FAILED {ref} (recorded as failed; the others are published): {msg}")
    if state.recorded_failures:
        log(f"{len(state.recorded_failures)} checkpoint(s) failed their evaluation and are recorded as failed: fix "
            "each (e.g. `zoo add --replace`, or its conf/) and run `dvc repro` again, or remove it with "
            f"`zoo rm {state.recorded_failures[0][0]}`; `zoo validate` and `zoo commit` refuse until then")
    if state.failed:
        for ref, msg in state.failed:
            log(f"FAILED {ref}: {msg}")
        raise ZooError(f"evaluation failed for {len(state.failed)} checkpoint(s): "
                       + "; ".join(f"{ref}: {msg}" for ref, msg in state.failed)
                       + " (every finished result is written; the next run evaluates only the rest)")
    if state.disagreed:
        raise ZooError(f"{len(state.disagreed)} checkpoint(s) did not reproduce their stored metrics within the "
                       f"reproducibility contract ({', '.join(ref for ref, _ in state.disagreed)}); the new results "
                       "are written: compare them with `git diff zoo/metrics/evaluations` before committing")


def evaluate_zoo(zoo: Any, params: Mapping[str, Any], run: Mapping[str, Any], out_dir: Path, force: bool = False,
                 log: Callable[[str], None] = print, executor: Mapping[str, Any] | None = None) -> EvalReport:
    """Evaluate what changed, reuse the rest, prune removed checkpoints, write results; raise if any failed.

    ``params`` are the semantic eval params (in the memo key); ``run`` the execution settings
    (batch_size, threads, device) and ``executor`` where the tasks run (``executors.ExecutorSpec``),
    neither of which is. Each result is journaled as it completes (``records.Journal``) and each changed
    model's file written once at the end, so a run that is killed keeps every finished result (the next
    run folds the journal in first) and evaluates only the rest."""
    import time

    from . import executors

    spec = executors.ExecutorSpec.from_params(executor)
    registry = zoo.registry()
    rows = zoo.rows()
    recover_journal(out_dir)  # what a killed run finished
    state = _Run(out_dir, read_results(out_dir))
    if force or any(_ref(row) not in state.stored or is_failed(state.stored[_ref(row)]) for row in rows):
        executors.warm_up(spec)  # work ahead: the workers' imports run beside the plan
    state.plan(rows, registry, params, force)
    # prunes the results of removed checkpoints before the long part
    write_results(out_dir, state.records, state.changed_by_plan())
    started = time.monotonic()
    try:
        if state.todo:
            _execute(state, zoo, registry, spec, params, run, log)
    finally:
        state.flush()
    _summarise(state, time.monotonic() - started, spec.kind, force, log)
    return state.report()
