"""Where evaluation runs: each checkpoint is one task on a ``concurrent.futures.Executor``.

``serial`` runs tasks inline in this process; ``processes`` on a local pool of worker processes;
``dask`` on a Dask cluster: the scheduler at ``ZOO_DASK_SCHEDULER`` (the user's environment), else a
``LocalCluster`` on 127.0.0.1 started for the run. A scheduler runs the evaluation code and its results
are unpickled here, so its address is never read from committed configuration (conf/, params.yaml): a
pull request could point every teammate's ``dvc repro`` at its own machine. The choice is an execution setting, not part of any
memo key: every executor gives the same results within the reproducibility contract.

A task (``evaluate_task``) runs in a worker: it opens the zoo at its path (the workers need the same package
and the zoo at the same path, e.g. a shared filesystem), keeps the registry and the evaluation data per
process and run (local workers forked from the stage start with the stage's), and returns the record body; the
caller writes each result as it completes. An evaluation that raises (the checkpoint does not fit its
architecture's input, a folder lacks a file its evaluator reads) returns a failed body (``worker.failure``),
recorded like a result; what is wrong with this machine instead (a file not pulled or damaged here, a worker
that died) raises, and the stage fails keeping the stored result.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ZooError
from ..utils import environ

KINDS = ("serial", "processes", "dask")


@dataclass(frozen=True)
class ExecutorSpec:
    """The ``executor`` section of params.yaml (composed from ``conf/executor/<kind>.yaml``)."""

    kind: str = "serial"
    workers: int = 2
    address: str | None = None
    connect_timeout: float = 10.0

    @classmethod
    def from_params(cls, section: Mapping[str, Any] | None) -> ExecutorSpec:
        """Check the section; one clear line naming the field on a bad value."""
        section = dict(section or {})
        kind = str(section.get("kind", "serial"))
        if kind not in KINDS:
            raise ZooError(f"params.yaml executor.kind {kind!r}: use one of {', '.join(KINDS)} (conf/executor/)")
        workers = section.get("workers", 2)
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1024:
            raise ZooError(f"params.yaml executor.workers {workers!r}: a whole number from 1 to 1024")
        timeout = section.get("connect_timeout", 10.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600:
            raise ZooError(f"params.yaml executor.connect_timeout {timeout!r}: seconds, more than 0 and at most 600")
        problem = address_problem(section)
        if problem:
            raise ZooError(problem)
        return cls(kind, workers, environ.dask_scheduler(), float(timeout))


def address_problem(section: Mapping[str, Any] | None, source: str = "params.yaml") -> str | None:
    """Why the executor section may not be used: it names a scheduler address (committed configuration
    is not where a scheduler comes from), or None."""
    address = (section or {}).get("address") if isinstance(section, Mapping) else None
    if address is None:
        return None
    return (f"{source} executor.address {address!r}: a scheduler address is never taken from conf/ or params.yaml "
            "(the scheduler runs the evaluation code and its results are unpickled here, so a committed address "
            "would send every teammate's dvc repro to that machine); set address: null and export "
            "ZOO_DASK_SCHEDULER=tcp://host:8786 in your own environment")


class SerialExecutor(Executor):
    """Runs each task inline when submitted (the executor of ``serial``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:
            future.set_exception(e)
        return future


def completed(pool: Executor, calls: list[tuple[Any, tuple]], chunk: int = 1) -> Iterator[tuple[Any, Future]]:
    """(tag, future) of ``fn(*args)`` for each ``(tag, (fn, *args))``, in the order they finish; inline
    executors run each call only when the previous result has been taken (and written). With ``chunk`` > 1
    a pool runs that many consecutive calls as one task (``run_chunk``): the scheduler's cost is paid per
    task, and a small checkpoint's evaluation costs less than a Dask task's round trip; each call still
    has its own future, resolved when its chunk returns."""
    from concurrent.futures import as_completed

    if isinstance(pool, SerialExecutor):
        for tag, (fn, *args) in calls:
            yield tag, pool.submit(fn, *args)
        return
    if chunk <= 1:
        futures = {pool.submit(fn, *args): tag for tag, (fn, *args) in calls}
        for future in as_completed(futures):
            yield futures[future], future
        return
    chunks = [calls[i:i + chunk] for i in range(0, len(calls), chunk)]
    tasks = {pool.submit(run_chunk, [call for _tag, call in part]): [tag for tag, _call in part] for part in chunks}
    for task in as_completed(tasks):
        try:
            outcomes = task.result()
        except Exception as e:  # noqa: BLE001  (the chunk's worker died: every call of it fails with that)
            outcomes = [(None, e)] * len(tasks[task])
        for tag, (value, error) in zip(tasks[task], outcomes):
            outcome: Future = Future()
            if error is None:
                outcome.set_result(value)
            else:
                outcome.set_exception(error)
            yield tag, outcome


def run_chunk(calls: list[tuple]) -> list[tuple[Any, BaseException | None]]:
    """(result, None) or (None, exception) of each ``(fn, *args)`` in turn, in a worker: one call's exception
    is that call's outcome, the others still run."""
    outcomes: list[tuple[Any, BaseException | None]] = []
    for fn, *args in calls:
        try:
            outcomes.append((fn(*args), None))
        except Exception as e:  # noqa: BLE001  (returned to the caller, who reports it for this call only)
            outcomes.append((None, e))
    return outcomes


def chunk_size(calls: int, workers: int) -> int:
    """How many calls one pool task runs: about ``TASKS_PER_WORKER`` tasks per worker (enough to balance
    the load, few enough that the scheduler's per-task cost stays small), at most ``CHUNK_MAX``, so that a
    killed worker loses little and results keep arriving. Small runs get one call per task."""
    return max(1, min(CHUNK_MAX, calls // (max(1, workers) * TASKS_PER_WORKER)))


TASKS_PER_WORKER = 8
CHUNK_MAX = 32


@contextmanager
def open_executor(spec: ExecutorSpec) -> Iterator[tuple[Executor, str, int]]:
    """The executor, a description of it for the log (kind, where, how many workers) and its number of workers."""
    if spec.kind == "serial":
        _import_stack()  # as local workers have it when they start: "ready in" means the same for every kind
        yield SerialExecutor(), "serial (in this process)", 1
    elif spec.kind == "processes":
        with ProcessPoolExecutor(spec.workers, mp_context=_start_method()) as pool:
            yield pool, f"processes ({spec.workers} local worker processes)", spec.workers
    else:
        with _dask_client(spec) as (client, where):
            workers = len(client.scheduler_info().get("workers", {}))
            yield client.get_executor(pure=False), f"dask ({where}, {workers} workers)", workers


def _start_method():
    """How local workers start. On Linux, forked from this process with the evaluation stack already
    imported (torch, torchmetrics, the registry: seconds per worker otherwise); this process has run no
    torch operation, so torch has started no threads that a fork could leave locked. Elsewhere, spawned."""
    import sys

    if sys.platform != "linux":
        return multiprocessing.get_context("spawn")
    _import_stack()
    return multiprocessing.get_context("fork")


# What a warmed-up forkserver imports before it forks a local Dask cluster's workers (``warm_up``).
STACK = ("distributed", "torchmetrics", "checkpoint_zoo.evaluation.evaluators", "checkpoint_zoo.evaluation.worker")
_WARM: dict[str, bool] = {}


def warm_up(spec: ExecutorSpec) -> None:
    """Start importing the evaluation stack for a local Dask cluster's workers now, on the other core, while
    this process plans: a forkserver (Linux) that imports ``STACK`` and later forks each worker from
    itself. Without it the stack is imported here after the plan and the workers forked from this process,
    one after the other (seconds at the head of every run). This process then never imports torch: the
    plan and the scheduler do not use it. Other executors start as before."""
    import sys

    if spec.kind != "dask" or spec.address or sys.platform != "linux":
        return
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(STACK))
    forkserver.ensure_running()
    _WARM["forkserver"] = True


def _import_stack() -> None:
    """Import the evaluation stack (torch, torchmetrics, the evaluators and metrics)."""
    import torchmetrics  # noqa: F401

    from . import (
        evaluators,  # noqa: F401  (torch)
        run,  # noqa: F401
    )


@contextmanager
def _dask_client(spec: ExecutorSpec) -> Iterator[tuple[Any, str]]:
    import logging

    from distributed import Client, LocalCluster

    if spec.address:
        client = _connect(spec.address, spec.connect_timeout)
        try:
            yield client, f"scheduler {spec.address}"
        finally:
            client.close()
        return
    import dask

    # forked from the warmed-up forkserver (warm_up), else like the local pool's workers (see _start_method)
    method = "forkserver" if _WARM.get("forkserver") else _start_method().get_start_method()
    with dask.config.set({"distributed.worker.multiprocessing-method": method}), \
            LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client, f"a LocalCluster started for this run at {cluster.scheduler_address}"


def _connect(address: str, timeout: float) -> Any:
    """A Client of the scheduler at ``address``, or one ZooError once ``timeout`` seconds have passed.
    Dask's own timeout bounds the TCP connect but not the handshake after it (a listener that accepts and
    never answers would hang the run), so the connection is made in a thread and waited for; a client that
    connects after the caller gave up is closed."""
    import threading

    from distributed import Client

    box: dict[str, Any] = {}
    lock = threading.Lock()

    def connect() -> None:
        try:
            client = Client(address, timeout=timeout)
        except BaseException as e:  # noqa: BLE001  (reported by the waiting caller)
            box["error"] = e
            return
        with lock:
            if box.get("abandoned"):
                client.close()
            else:
                box["client"] = client

    thread = threading.Thread(target=connect, name="zoo-dask-connect", daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    with lock:
        box["abandoned"] = "client" not in box
        if "client" in box:
            return box["client"]
    reason = type(box["error"]).__name__ if "error" in box else "no handshake"
    raise ZooError(f"executor dask: no scheduler answers at {address} within {timeout:g} s ({reason}); start it "
                   "(`dask scheduler`), fix ZOO_DASK_SCHEDULER, or unset it to start a local cluster")


# ---- the task, as a worker runs it -------------------------------------------------------------------------

# per process: root -> (the run it was loaded for, workspace, registry, data by (dataset, task)); a worker that
# outlives a run (a scheduler's) loads them again for the next run, which may follow an edit of conf/
_STATE: dict[str, tuple[str, Any, Any, dict]] = {}
_PRELOADED: dict[str, tuple[str, Any, dict]] = {}  # root -> (run, registry, data) for workers forked from here


def new_run() -> str:
    """An identity for one evaluate run (what a worker's loaded state is valid for)."""
    import os
    import time

    return f"{os.getpid()}-{time.time_ns()}"


def seed(zoo: Any, registry: Any, data: dict, run_id: str = "") -> None:
    """Give this process's tasks the zoo's workspace, registry and data the caller has already loaded (serial runs)."""
    _STATE[str(zoo.root)] = (run_id, zoo.workspace, registry, data)


def preload(root: str | Path, registry: Any, data: dict, run_id: str) -> None:
    """Start local workers forked from this process (``_start_method``) with the registry and evaluation data
    it has already loaded, instead of each loading them again before its first checkpoint; a worker started
    any other way loads its own."""
    _STATE.pop(str(root), None)  # a serial run's state in this process is not the workers' to inherit
    _PRELOADED[str(root)] = (run_id, registry, data)


def evaluate_task(root: str, row: Mapping[str, str], params: Mapping[str, Any], run: Mapping[str, Any],
                  run_id: str = "") -> dict:
    """Evaluate one checkpoint of the zoo at ``root`` (a path this worker can read) for the run ``run_id``
    (``new_run``); the record body."""
    from ..catalog import rules
    from ..errors import IntegrityError, MissingFileError
    from ..workspace.source import WorkTree
    from ..workspace.tree import Workspace
    from .worker import evaluate_checkpoint, failure, load_eval_data, resolve_device, setup_determinism

    ref = f"{row['model']}@{row['step']}"
    loaded = _STATE.get(root)
    if loaded is None or loaded[0] != run_id:
        setup_determinism(int(run.get("threads", 1)))
        ws = Workspace(WorkTree(Path(root)))  # the worker reads the working tree: no store, no facade
        preloaded = _PRELOADED.pop(root, None)
        registry, data = preloaded[1:] if preloaded and preloaded[0] == run_id else (ws.registry(), {})
        _STATE[root] = (run_id, ws, registry, dict(data))
    _, ws, registry, data = _STATE[root]
    path = ws.path(row["path"])
    if row.get("files"):  # a folder checkpoint: every file of it, as the table lists them
        for part, sha in rules.parts(dict(row)):
            if not ws.path(part).is_file():
                raise MissingFileError(f"{part} is not here (on this worker: {ws.path(part)}): run `zoo pull {ref}` "
                                       "where the worker reads the zoo")
            if ws.stamps.sha256(ws.path(part)) != sha:
                raise IntegrityError(f"{part} does not match its sha256 in the table: restore it with `zoo pull {ref}`")
    elif not path.is_file():
        raise MissingFileError(f"{row['path']} is not here (on this worker: {path}): run `zoo pull {ref}` where "
                               "the workers read the zoo")
    elif ws.stamps.sha256(path) != row["sha256"]:
        raise IntegrityError(f"{row['path']} does not match its sha256 in the table: restore it with `zoo pull {ref}`")
    key = (row["dataset"], row["task"])
    if key not in data:
        data[key] = load_eval_data(registry.dataset(row["dataset"]), registry.task(row["task"]), registry, params)
    device = resolve_device(str(run.get("device", "cpu")))
    try:
        return evaluate_checkpoint(path, row, registry, data[key], {**params, **run}, device)
    except MemoryError:
        raise  # this machine's limit, not the checkpoint's fault: the run fails and the old result stays
    except Exception as e:  # noqa: BLE001  (the checkpoint's own failure: recorded, the others go on)
        return failure(e, root)
