"""Evaluation fan-out (conf/executor): serial, a local process pool and a real Dask LocalCluster on
127.0.0.1 give the same metrics; a worker killed mid-task is rescheduled by Dask, fails the run naming the
checkpoint on a process pool, and either way every finished result is kept; a killed run resumes with only
the rest; a scheduler that is down is one clear line within seconds. All on a clone of this repository."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest
from conftest import ZOO_BIN, evaluations, sh, write_safetensors

from checkpoint_zoo.catalog.records import JOURNAL

PIPELINE = (sys.executable, "-m", "checkpoint_zoo.pipeline")
TABULAR = "conf/task/tabular-classification.yaml"

# A task evaluator in the zoo's own code that kills the process running it once, at the KILL_AT-th call
# counted across processes (each checkpoint calls it twice: report and selection split).
KILLER = '''\
import os
import signal
from pathlib import Path

from checkpoint_zoo.evaluation.evaluators import classify as _classify


def classify(model, split, metrics, batch_size, device="cpu"):
    counter = Path(os.environ["KILL_COUNTER"])
    with open(counter, "a") as f:
        f.write("x")
    if counter.stat().st_size == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return _classify(model, split, metrics, batch_size, device)
'''


def compose(root: Path, *overrides: str) -> None:
    sh(*PIPELINE, "compose", *overrides, cwd=root)


# the evaluate stage, then whether its process imported torch
STAGE_THEN_MODULES = ("import sys\nfrom checkpoint_zoo.pipeline import main\ncode = main(sys.argv[1:])\n"
                      "print('torch:', 'torch' in sys.modules)\nsys.exit(code)\n")


def evaluate(root: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, stage: str = ""):
    import subprocess

    full = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"], **(env or {})}
    command = [sys.executable, "-c", stage] if stage else list(PIPELINE)
    proc = subprocess.run([*command, "evaluate", *args], cwd=root, env=full, capture_output=True, text=True,
                          timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def records(root: Path) -> dict[str, dict]:
    out = {}
    for f in sorted((root / "zoo/metrics/evaluations").glob("*.json")):
        data = json.loads(f.read_text())
        out.update({f"{data['model']}@{c['step']}": c for c in data["checkpoints"]})
    return out


def same_metrics(a: dict[str, dict], b: dict[str, dict]) -> None:
    """Records ``b`` agree with ``a`` under each metric's stated contract (checked here, not by the package)."""
    import math

    assert set(a) == set(b) and a
    for ref in a:
        x, y = a[ref], b[ref]
        assert x["sha256"] == y["sha256"] and x["metrics"].keys() == y["metrics"].keys()
        for metric, rule in x["reproducibility"].items():
            for va, vb in ((x["metrics"][metric], y["metrics"][metric]),
                           (x["selection"]["metrics"][metric], y["selection"]["metrics"][metric])):
                ok = va == vb if rule["kind"] == "exact" else math.isclose(va, vb, rel_tol=rule["rel"],
                                                                            abs_tol=rule["abs"])
                assert ok, (ref, metric, va, vb, rule)


@pytest.mark.parametrize("kind", ["processes", "dask"])
def test_every_executor_gives_the_serial_results(pipeline_clone, kind):
    before = evaluations(pipeline_clone)
    n = len(records(pipeline_clone))
    compose(pipeline_clone, f"executor={kind}")
    r = evaluate(pipeline_clone, "--force", stage=STAGE_THEN_MODULES)
    where = "processes (2 local worker processes)" if kind == "processes" else "dask (a LocalCluster started"
    assert f"evaluate: {n} checkpoint(s) on {where}" in r.stdout, r.stdout
    assert f"re-evaluated {n} with an unchanged key: {n} agree" in r.stdout, r.stdout
    assert f"ckpt/s on {kind})" in r.stdout, r.stdout
    assert evaluations(pipeline_clone) == before, "an executor changed committed metrics"
    # a local Dask cluster's workers import the evaluation stack (forked from a forkserver that started
    # importing it beside the plan); the stage's own process, which only plans and schedules, never does
    imported = r.stdout.splitlines()[-1]
    assert imported == ("torch: False" if kind == "dask" else "torch: True"), r.stdout


def _kill_setup(root: Path, tmp: Path, kill_at: int) -> dict[str, str]:
    (root / "zoo_code").mkdir(exist_ok=True)
    (root / "zoo_code/killer.py").write_text(KILLER)
    task = (root / TABULAR).read_text()
    (root / TABULAR).write_text(task.replace("checkpoint_zoo.evaluation.evaluators.classify", "zoo_code.killer.classify"))
    return {"KILL_COUNTER": str(tmp / "calls"), "KILL_AT": str(kill_at)}


def _tabular(recs: dict[str, dict]) -> dict[str, dict]:
    return {k: v for k, v in recs.items() if v["task"] == "tabular-classification"}


def test_dask_reschedules_the_task_of_a_killed_worker(pipeline_clone, tmp_path):
    serial = _tabular(records(pipeline_clone))
    env = _kill_setup(pipeline_clone, tmp_path, kill_at=5)  # the 3rd checkpoint's first call
    compose(pipeline_clone, "executor=dask")
    r = evaluate(pipeline_clone, env=env)
    assert f"evaluated {len(serial)}, reused" in r.stdout, r.stdout
    # the killed task ran again (with any other result the dead worker held)
    assert len((tmp_path / "calls").read_text()) > 2 * len(serial), "the killed worker's task did not run again"
    same_metrics(_tabular(records(pipeline_clone)), serial)


def test_a_killed_pool_worker_fails_naming_the_checkpoint_and_keeps_finished_results(pipeline_clone, tmp_path):
    serial = _tabular(records(pipeline_clone))
    env = _kill_setup(pipeline_clone, tmp_path, kill_at=9)  # after at least 4 checkpoints finished
    compose(pipeline_clone, "executor=processes")
    r = evaluate(pipeline_clone, env=env, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "BrokenProcessPool on the processes executor" in out and "FAILED " in out, out
    assert "every finished result is written" in out
    finished = int(out.split("evaluated ")[-1].split(",")[0])
    assert finished >= 3, out
    # the next run (no more kills) evaluates only what did not finish
    r = evaluate(pipeline_clone, env=env)
    assert f"evaluated {len(serial) - finished}, reused" in r.stdout, (finished, r.stdout)
    same_metrics(_tabular(records(pipeline_clone)), serial)


def test_a_killed_run_keeps_finished_results_and_resumes(pipeline_clone, tmp_path):
    serial = _tabular(records(pipeline_clone))
    env = _kill_setup(pipeline_clone, tmp_path, kill_at=7)  # serial: the stage's own process dies
    compose(pipeline_clone, "executor=serial")
    files = records(pipeline_clone)
    r = evaluate(pipeline_clone, env=env, check=False)
    assert r.returncode == -9, r.stdout + r.stderr
    # the finished results are in the run's journal (each model's file is written once, at the end)
    assert records(pipeline_clone) == files
    lines = (pipeline_clone / "zoo/metrics/evaluations" / JOURNAL).read_text().splitlines()
    journaled = {f"{e['model']}@{e['record']['step']}": e["record"] for e in map(json.loads, lines)}
    keyed = {k: v for k, v in journaled.items()
             if v["provenance"]["config_hash"] != serial[k]["provenance"]["config_hash"]}  # new task config
    assert len(keyed) == 3, "the three checkpoints finished before the kill must be kept"
    r = evaluate(pipeline_clone, env=env)
    assert f"evaluated {len(serial) - 3}, reused" in r.stdout, r.stdout
    assert not (pipeline_clone / "zoo/metrics/evaluations" / JOURNAL).exists()
    same_metrics(_tabular(records(pipeline_clone)), serial)
    assert {k: records(pipeline_clone)[k] for k in keyed} == keyed  # folded in as they were


def test_a_scheduler_that_is_down_is_one_clear_line_within_seconds(pipeline_clone):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    address = f"tcp://127.0.0.1:{port}"
    compose(pipeline_clone, "executor=dask", "executor.connect_timeout=2")
    before = evaluations(pipeline_clone)
    started = time.monotonic()
    r = evaluate(pipeline_clone, "--force", env={"ZOO_DASK_SCHEDULER": address}, check=False)
    assert r.returncode == 1 and time.monotonic() - started < 30, r.stdout + r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and address in lines[0] and "no scheduler answers" in lines[0], r.stderr
    assert evaluations(pipeline_clone) == before


def test_dvc_exp_run_with_the_dask_executor_evaluates_exactly_the_new_checkpoint(pipeline_clone, tmp_path):
    src = write_safetensors(tmp_path / "w.safetensors", seed=31)
    sh(str(ZOO_BIN), "add", str(src), "--model", "wine-linear", "--step", "999", "--arch", "linear", "--task",
       "tabular-classification", "--dataset", "wine", "--license", "CC0-1.0", cwd=pipeline_clone)
    r = sh(sys.executable, "-m", "dvc", "exp", "run", "-S", "executor=dask", cwd=pipeline_clone)
    out = r.stdout + r.stderr
    assert "evaluate: 1 checkpoint(s) on dask" in out and "evaluated 1, reused" in out, out
    assert "wine-linear@999" in json.dumps(records(pipeline_clone))


# A metric in the zoo's own code that counts its constructions across processes (one "x" per build).
COUNTED = '''\
import os

from checkpoint_zoo.evaluation.metrics import NegativeLogLikelihood


class CountedNLL(NegativeLogLikelihood):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with open(os.environ["BUILD_COUNTER"], "a") as f:
            f.write("x")
'''


@pytest.mark.parametrize("kind, workers", [("serial", 1), ("processes", 2)])
def test_a_worker_builds_a_tasks_metrics_once_and_resets_them_between_checkpoints(pipeline_clone, tmp_path, kind,
                                                                                   workers):
    serial = _tabular(records(pipeline_clone))
    assert len(serial) >= 3
    (pipeline_clone / "zoo_code/counted.py").write_text(COUNTED)
    task = (pipeline_clone / TABULAR).read_text()
    (pipeline_clone / TABULAR).write_text(task.replace("checkpoint_zoo.evaluation.metrics.NegativeLogLikelihood",
                                                       "zoo_code.counted.CountedNLL"))
    compose(pipeline_clone, f"executor={kind}")
    r = evaluate(pipeline_clone, env={"BUILD_COUNTER": str(tmp_path / "builds")})
    assert f"evaluated {len(serial)}, reused" in r.stdout, r.stdout
    # built for each split of each checkpoint before; now once per worker and dataset (its number of classes)
    datasets = {rec["dataset"] for rec in serial.values()}
    assert 1 <= len((tmp_path / "builds").read_text()) <= workers * len(datasets) < 2 * len(serial)
    # the metrics were reset between splits and checkpoints: the results are the serial ones
    same_metrics(_tabular(records(pipeline_clone)), serial)


def _ok_or_raise(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * 10


def test_chunked_calls_resolve_each_future_and_fail_only_the_call_that_raised():
    from concurrent.futures import ProcessPoolExecutor

    from checkpoint_zoo.evaluation.executors import chunk_size, completed

    assert chunk_size(10, 2) == 1 and chunk_size(1000, 2) == 32 and chunk_size(400, 2) == 25
    calls = [(i, (_ok_or_raise, i)) for i in range(10)]
    with ProcessPoolExecutor(2) as pool:
        seen = dict(completed(pool, calls, chunk=4))
    assert sorted(seen) == list(range(10))
    assert {i: f.result() for i, f in seen.items() if i != 3} == {i: i * 10 for i in range(10) if i != 3}
    with pytest.raises(ValueError, match="three"):
        seen[3].result()


def test_a_worker_that_outlives_a_run_reads_the_registry_again_for_the_next(pipeline_clone):
    import yaml

    from checkpoint_zoo.api import Zoo
    from checkpoint_zoo.evaluation.executors import evaluate_task, new_run
    from checkpoint_zoo.pipeline import load_params

    params = load_params(pipeline_clone)
    row = next(r for r in Zoo(pipeline_clone).rows() if r["task"] == "tabular-classification")
    root, first = str(pipeline_clone), new_run()
    before = evaluate_task(root, row, params["eval"], params["run"], first)
    assert "macro_f1" in before["metrics"]
    task = yaml.safe_load((pipeline_clone / TABULAR).read_text())
    del task["metrics"]["macro_f1"]
    (pipeline_clone / TABULAR).write_text(yaml.safe_dump(task))
    # within a run the worker keeps what it loaded; the next run (a long-lived Dask worker's) sees the edit
    assert evaluate_task(root, row, params["eval"], params["run"], first) == before
    after = evaluate_task(root, row, params["eval"], params["run"], new_run())
    assert set(after["metrics"]) == set(before["metrics"]) - {"macro_f1"}
    assert after["metrics"]["accuracy"] == before["metrics"]["accuracy"]
