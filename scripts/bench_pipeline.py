"""Benchmarks of the DVC pipeline (run through ``scripts/bench.py``): no-op ``dvc repro``/``status``, +1
checkpoint, validate + index at scale, the scale curve (``bench_curve.py``) and the evaluation executors, on
zoos built by ``bench.build_pipeline_zoo``."""

from __future__ import annotations

import re
import statistics
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import (
    DVC,
    PYTHON,
    STEP_GAP,
    ZOO,
    Context,
    Result,
    build_pipeline_zoo,
    check_counts,
    check_noop,
    free_port,
    linear_checkpoint,
    load_script,
    model_name,
    pipeline_zoo,
    run,
    run_out,
    side_by_side,
)


def bench_noop(ctx: Context) -> list[Result]:
    """No-op ``dvc repro`` and ``dvc status`` on evaluated zoos, against ``dvc --version``."""
    sizes = [(2, 25)] if ctx.quick else [(10, 100), (100, 100)]
    results: list[Result] = []
    for models, steps in sizes:
        root, setup = pipeline_zoo(ctx, models, steps)
        results += setup

        def repro(i: int) -> tuple[float, float]:
            seconds, rss, out = run_out(ctx, [*DVC, "repro"], cwd=root)
            check_noop(out, "no-op dvc repro")
            return seconds, rss

        def status(i: int) -> tuple[float, float]:
            seconds, rss, out = run_out(ctx, [*DVC, "status"], cwd=root)
            rest = out.replace("registry:\n\talways changed", "").strip()  # the stage that reads the git tags
            if rest and "up to date" not in rest:
                raise RuntimeError(f"dvc status: expected 'up to date', got:\n{out[-2000:]}")
            return seconds, rss

        commands = {"version": lambda i: run(ctx, [*DVC, "--version"], cwd=root), "repro": repro, "status": status}
        side_by_side(ctx, 1, commands)  # warm-up: byte-code, page cache, DVC's state database
        m = side_by_side(ctx, ctx.n(5, 2), commands)
        base = m["version"][0]
        label = f"{models * steps:,} checkpoints ({models} × {steps})"
        judged = not ctx.quick and models * steps >= 10_000
        results += [
            Result("noop", f"dvc --version ({label})", *m["version"]),
            Result("noop", f"dvc repro, no-op, {label}", *m["repro"], "dvc --version", base,
                   "≤ 3 s at 10,000", statistics.median(m["repro"][0]) <= 3 if judged else None),
            Result("noop", f"dvc status, {label}", *m["status"], "dvc --version", base,
                   "≤ 3 s at 10,000", statistics.median(m["status"][0]) <= 3 if judged else None),
        ]
    return results


# Times the evaluation of one checkpoint inside one process, after the imports and the evaluation
# data are loaded: exactly the loop body of evaluation.run.evaluate_zoo (stamp-checked sha256, load, build,
# forward, metrics). Prints one time per repetition, the first (cold) one dropped.
IN_PROCESS_EVAL = """
import sys, time
from pathlib import Path
from checkpoint_zoo.api import Zoo
from checkpoint_zoo.evaluation.run import evaluate_checkpoint, load_eval_data, setup_determinism
from checkpoint_zoo.pipeline import load_params
root, reps = Path(sys.argv[1]), int(sys.argv[2])
params = load_params(root)
zoo = Zoo(root)
reg = zoo.registry()
row = zoo.rows()[0]
data = load_eval_data(reg.dataset(row["dataset"]), reg.task(row["task"]), reg, params["eval"])
setup_determinism(int(params["run"].get("threads", 1)))
times = []
for _ in range(reps + 1):
    start = time.perf_counter()
    path = zoo.workspace.path(row["path"])
    assert zoo.stamps.sha256(path) == row["sha256"]
    evaluate_checkpoint(path, row, reg, data, {**params["eval"], **params["run"]}, "cpu")
    times.append(time.perf_counter() - start)
print(" ".join(str(t) for t in times[1:]))
"""


def bench_plus1(ctx: Context) -> list[Result]:
    """``dvc repro`` after ``zoo add`` of one checkpoint to N evaluated ones, against a no-op repro plus
    two evaluations of one checkpoint alone.

    "One evaluation alone" is ``python -m checkpoint_zoo.pipeline evaluate --force`` on a zoo that
    holds just one checkpoint: everything it takes to evaluate one checkpoint as its own job
    (interpreter, imports of torch and scikit-learn, the evaluation split, the evaluation, writing
    the result), which is the unit of work the +1 repro must not exceed twice on top of the no-op
    overhead. The in-process cost of one evaluation (what each further checkpoint adds) is printed
    beside it, to show that the rest is fixed per-process and per-stage cost. Each repetition adds a
    new checkpoint (new bytes, new step), times the repro, checks that it evaluated exactly 1 and
    reused N, and then puts the zoo back (``zoo rm`` + ``dvc repro``, untimed) so that every
    repetition starts from the same N evaluated checkpoints with warm stamps and DVC state.
    """
    models, steps = (2, 25) if ctx.quick else (10, 100)
    n = models * steps
    root, results = pipeline_zoo(ctx, models, steps)
    # the one-checkpoint zoo: validated once so that its table verdict and file stamps are warm
    one = build_pipeline_zoo(ctx, ctx.folder("plus1-one") / "zoo", 1, 1)
    run(ctx, [PYTHON, "-m", "checkpoint_zoo.pipeline", "validate"], cwd=one)
    incoming = ctx.folder("plus1-incoming")
    model, counts, state = model_name(0), [], {"k": 0}
    reps = ctx.n(5, 1)
    rounds = reps + (0 if ctx.quick else 1)  # a warm-up round first, except in --quick

    def current() -> tuple[Path, int]:
        k = state["k"]
        return incoming / f"new-{k}.safetensors", steps * STEP_GAP + k

    def noop(i: int) -> tuple[float, float]:
        seconds, rss, out = run_out(ctx, [*DVC, "repro"], cwd=root)
        check_noop(out, "no-op dvc repro")
        return seconds, rss

    def alone(i: int) -> tuple[float, float]:
        return run(ctx, [PYTHON, "-m", "checkpoint_zoo.pipeline", "evaluate", "--force"], cwd=one)

    def add(i: int) -> tuple[float, float]:
        path, step = current()
        path.write_bytes(linear_checkpoint(10_000_000 + state["k"])[0])
        return run(ctx, [ZOO, "add", str(path), "--model", model, "--step", str(step), "--arch", "linear",
                         "--task", "tabular-classification", "--dataset", "wine", "--license", "CC0-1.0"], cwd=root)

    def plus1(i: int) -> tuple[float, float]:
        seconds, rss, out = run_out(ctx, [*DVC, "repro"], cwd=root)
        counts.append(check_counts(out, -1, -1, f"dvc repro after adding 1 to {n}"))
        return seconds, rss

    def reset(i: int) -> tuple[float, float]:
        state["k"] += 1
        if state["k"] == rounds:  # the last round: leave the zoo at n + 1 and stop sharing it
            ctx.zoos.pop((models, steps), None)
            return 0.0, 0.0
        run(ctx, [ZOO, "rm", f"{model}@{steps * STEP_GAP + state['k'] - 1}"], cwd=root)
        check_counts(run_out(ctx, [*DVC, "repro"], cwd=root)[2], 0, n, "dvc repro after zoo rm")
        check_noop(run_out(ctx, [*DVC, "repro"], cwd=root)[2], "dvc repro after the reset")  # settles DVC's state
        return 0.0, 0.0

    commands = {"noop": noop, "alone": alone, "add": add, "plus1": plus1, "reset": reset}
    if rounds > reps:
        side_by_side(ctx, 1, commands)  # warm-up
        counts.clear()
    m = side_by_side(ctx, reps, commands)
    target = [a + 2 * b for a, b in zip(m["noop"][0], m["alone"][0])]
    inproc_out = ctx.tmp / "inproc.txt"
    with open(inproc_out, "wb") as f:
        run(ctx, [PYTHON, "-c", IN_PROCESS_EVAL, str(one), "20"], cwd=one, stdout=f)
    inproc = [float(t) for t in inproc_out.read_text().split()]
    exact = all(c == (1, n) for c in counts)
    plus = Result("plus1", f"dvc repro after zoo add of 1 to {n:,} evaluated", *m["plus1"],
                  "no-op + 2 × one evaluation alone", target, "evaluates exactly 1; ratio ≤ 1")
    plus.met = None if ctx.quick else exact and plus.ratio is not None and plus.ratio <= 1
    seen = ", ".join(sorted({f"evaluated {e}, reused {r}" for e, r in counts}))
    plus.note = f"{seen} in {len(counts)}/{len(counts)} runs" + ("" if exact else f" (expected evaluated 1, reused {n})")
    return [
        *results,
        Result("plus1", f"dvc repro, no-op, {n:,} evaluated", *m["noop"]),
        Result("plus1", "one evaluation alone: pipeline evaluate --force, 1-checkpoint zoo", *m["alone"]),
        Result("plus1", "one evaluation in-process (sha check, load, build, forward)", inproc, [],
               note=f"median of {len(inproc)} after imports and data load"),
        Result("plus1", f"zoo add of 1 checkpoint to {n:,}", *m["add"]),
        plus,
    ]


def bench_scale(ctx: Context) -> list[Result]:
    """``pipeline validate`` (cold verdict cache) and ``pipeline index`` (evaluations present) on tables
    of growing size, with the time per row and the added time per added row, so linearity shows.

    The main series grows the zoo by models (100 checkpoints each); one more 100,000-row table has
    100 models × 1,000 steps. No checkpoint files are present (validate checks only the files that
    are); the evaluations are written directly in the evaluate stage's format. Each repetition
    validates with a fresh, empty ``ZOO_CACHE_DIR`` and then indexes with the cache that validate
    filled, as in ``dvc repro``.
    """
    shapes = [(2, 100), (10, 100)] if ctx.quick else [(10, 100), (100, 100), (1000, 100), (100, 1000)]
    results: list[Result] = []
    caches = ctx.tmp / "scale-caches"
    series: list[tuple[int, float]] = []
    for models, steps in shapes:
        rows = models * steps
        root = build_pipeline_zoo(ctx, ctx.folder(f"scale-{models}x{steps}") / "zoo", models, steps, files=False)

        def stages(round_: str) -> dict[str, Callable[[int], tuple[float, float]]]:
            # validate with an empty verdict cache of its own, then index with the cache validate filled
            def env(i: int) -> dict[str, str]:
                return {**ctx.env, "ZOO_CACHE_DIR": str(caches / f"{models}x{steps}-{round_}-{i}")}

            return {
                "pass": lambda i: run(ctx, [PYTHON, "-c", "pass"]),
                "validate": lambda i: run(ctx, [PYTHON, "-m", "checkpoint_zoo.pipeline", "validate"], cwd=root,
                                          env=env(i)),
                "index": lambda i: run(ctx, [PYTHON, "-m", "checkpoint_zoo.pipeline", "index"], cwd=root, env=env(i)),
            }

        side_by_side(ctx, 1, stages("warm-up"))
        m = side_by_side(ctx, ctx.n(3 if rows >= 100_000 else 5, 2), stages("rep"))
        both = [a + b for a, b in zip(m["validate"][0], m["index"][0])]
        total = Result("scale", f"validate + index, {rows:,} rows ({models} × {steps})", both,
                       [max(a, b) for a, b in zip(m["validate"][1], m["index"][1])], "python -c pass", m["pass"][0],
                       "≤ 10 s at 100,000, linear" if rows >= 100_000 else "")
        note = f"{total.median / rows * 1e6:.0f} µs/row"
        if steps == 100 and series:
            prev_rows, prev_t = series[-1]
            added = (total.median - prev_t) / (rows - prev_rows) * 1e6
            note += f"; +{added:.0f} µs per added row since {prev_rows:,}"
            if rows >= 100_000 and len(series) >= 2:
                earlier = (prev_t - series[-2][1]) / (prev_rows - series[-2][0]) * 1e6
                total.met = None if ctx.quick else total.median <= 10 and added <= 1.5 * earlier
        elif rows >= 100_000:
            total.met = None if ctx.quick else total.median <= 10
        if steps == 100:
            series.append((rows, total.median))
        total.note = note
        results += [
            Result("scale", f"pipeline validate, {rows:,} rows, cold verdict cache", *m["validate"], "python -c pass",
                   m["pass"][0], note=f"{statistics.median(m['validate'][0]) / rows * 1e6:.0f} µs/row"),
            Result("scale", f"pipeline index, {rows:,} rows", *m["index"], "python -c pass", m["pass"][0],
                   note=f"{statistics.median(m['index'][0]) / rows * 1e6:.0f} µs/row"),
            total,
        ]
    return [Result("scale", "python -c pass", *m["pass"]), *results]


def bench_scale_curve(ctx: Context) -> list[Result]:
    """The same operations at 10³ … 10⁶ checkpoints, with each one's growth exponent (``scripts/bench_curve.py``)."""
    return load_script("bench_curve").curve(ctx)


# ---- evaluation executors ---------------------------------------------------------------------------

# The per-checkpoint overhead of evaluation: the worker's task (``executors.evaluate_task``: sha256 check, header
# fit check, model from its template, weights, the task's metrics and evaluator) run in one process over
# checkpoints after a first one (imports, evaluation data, what a worker builds once), with the model's
# forward passes timed beside it by global module hooks (the outermost module call of each batch). Prints
# each checkpoint's total and forward seconds.
EVAL_OVERHEAD = """
import sys, time
from pathlib import Path
import torch
from checkpoint_zoo.api import Zoo
from checkpoint_zoo.evaluation import executors
from checkpoint_zoo.pipeline import load_params
root, count = Path(sys.argv[1]), int(sys.argv[2])
params = load_params(root)
rows = Zoo(root).rows()[:count + 1]
depth, clock = [0], {"start": 0.0, "forward": 0.0}
def pre(module, args):
    if depth[0] == 0:
        clock["start"] = time.perf_counter()
    depth[0] += 1
def post(module, args, out):
    depth[0] -= 1
    if depth[0] == 0:
        clock["forward"] += time.perf_counter() - clock["start"]
torch.nn.modules.module.register_module_forward_pre_hook(pre)
torch.nn.modules.module.register_module_forward_hook(post)
for i, row in enumerate(rows):
    clock["forward"] = 0.0
    start = time.perf_counter()
    body = executors.evaluate_task(str(root), dict(row), dict(params["eval"]), dict(params["run"]))
    total = time.perf_counter() - start
    assert "status" not in body, body
    if i:
        print(total, clock["forward"])
"""
READY_RE = re.compile(r"checkpoint\(s\) on .*, ready in ([0-9.]+) s")
RATE_RE = re.compile(r"evaluated \d+, reused \d+ .* in ([0-9.]+) s \(")


def evaluation_overhead(ctx: Context, root: Path, count: int) -> tuple[list[float], list[float]]:
    """Per checkpoint (``EVAL_OVERHEAD``): seconds of its whole evaluation and of its forward passes."""
    out = ctx.tmp / "overhead.txt"
    with open(out, "wb") as f:
        run(ctx, [PYTHON, "-c", EVAL_OVERHEAD, str(root), str(count)], cwd=root, stdout=f)
    pairs = [line.split() for line in out.read_text().splitlines() if line.strip()]
    return [float(t) for t, _ in pairs], [float(f) for _, f in pairs]


def _wait_for_workers(address: str, workers: int, limit: float = 120) -> None:
    """Return once ``workers`` workers have joined the scheduler at ``address``: the stage uses the workers
    that are there, so a warm-up run before both joined would warm only one."""
    from distributed import Client

    with Client(address, timeout=limit) as client:
        client.wait_for_workers(workers, timeout=limit)


def evaluation_phase(out: str, seconds: float) -> float:
    """The evaluation's own seconds in a ``pipeline evaluate`` log: its rate line's time less the executor's
    start ("ready in"); ``seconds`` (the whole command) when the log lacks them."""
    ready, rate = READY_RE.search(out), RATE_RE.search(out)
    return float(rate.group(1)) - float(ready.group(1)) if ready and rate else seconds


@contextmanager
def running_cluster(ctx: Context, root: Path, workers: int = 2) -> Iterator[str]:
    """A Dask scheduler and ``workers`` single-threaded workers on 127.0.0.1, started outside the stage (as a
    team's cluster is) and stopped at the end; its address."""
    address = f"tcp://127.0.0.1:{free_port()}"
    log = open(ctx.tmp / "dask-cluster.log", "wb")  # noqa: SIM115  (closed below)
    procs = [subprocess.Popen([PYTHON, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                               address.rsplit(":", 1)[1], "--no-dashboard"], cwd=root, env=ctx.env, stdout=log,
                              stderr=log)]
    try:
        procs += [subprocess.Popen([PYTHON, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                    "--host", "127.0.0.1", "--no-dashboard"], cwd=root, env=ctx.env, stdout=log,
                                   stderr=log) for _ in range(workers)]
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def bench_executors(ctx: Context) -> list[Result]:
    """The evaluate stage on each executor, side by side: throughput of a forced re-evaluation of N
    checkpoints (``pipeline evaluate --force``; the results agree with the stored ones, so nothing is
    rewritten) on serial, a local pool, a Dask LocalCluster started by the stage and a Dask cluster already
    running (``ZOO_DASK_SCHEDULER``; warmed by one untimed run), the cost of evaluating a single new
    checkpoint (cluster start included), and +1 to N evaluated evaluating exactly 1 under every executor."""
    models, steps = (2, 20) if ctx.quick else (10, 100)
    n = models * steps
    root, results = pipeline_zoo(ctx, models, steps)
    evaluate = [PYTHON, "-m", "checkpoint_zoo.pipeline", "evaluate"]
    kinds = ("serial", "processes", "dask")

    def compose(kind: str) -> None:
        run(ctx, [PYTHON, "-m", "checkpoint_zoo.pipeline", "compose", f"executor={kind}"], cwd=root)

    phases: dict[str, list[float]] = {kind: [] for kind in (*kinds, "running")}  # executor start excluded

    def forced(kind: str, address: str | None = None) -> Callable[[int], tuple[float, float]]:
        env = {**ctx.env, "ZOO_DASK_SCHEDULER": address} if address else None

        def measure(i: int) -> tuple[float, float]:
            compose("dask" if address else kind)
            seconds, rss, out = run_out(ctx, [*evaluate, "--force"], cwd=root, env=env)
            if f"{n} agree" not in out:
                raise RuntimeError(f"{kind}: a forced re-evaluation of {n} did not agree with the stored results:\n"
                                   f"{out[-2000:]}")
            phases[kind].append(evaluation_phase(out, seconds))
            return seconds, rss
        return measure

    with running_cluster(ctx, root) as address:
        _wait_for_workers(address, 2)
        forced("running", address)(-1)  # warm-up: the workers import the evaluation stack once
        phases["running"].clear()
        commands = {kind: forced(kind) for kind in kinds}
        m = side_by_side(ctx, ctx.n(2, 1), {**commands, "running": forced("running", address)})
    judged = not ctx.quick
    results.append(Result("executors", f"forced evaluation of {n:,} on serial", *m["serial"],
                          note=f"evaluation alone (executor start excluded) {statistics.median(phases['serial']):.2f} s"))
    labels = {"processes": "processes (2 workers)", "dask": "dask (a LocalCluster of 2 workers started by the stage)",
              "running": "dask (a running cluster of 2 workers, ZOO_DASK_SCHEDULER)"}
    for kind, label in labels.items():
        speedup = statistics.median(m["serial"][0]) / statistics.median(m[kind][0])
        alone = statistics.median(phases["serial"]) / statistics.median(phases[kind])
        results.append(Result("executors", f"forced evaluation of {n:,} on {label}", *m[kind], "serial",
                              m["serial"][0], "throughput ≥ 1.7 × serial", speedup >= 1.7 if judged else None,
                              note=f"throughput {speedup:.2f} × serial; the evaluation alone (executor start "
                                   f"excluded) {alone:.2f} × serial"))
    count = 200 if judged else 50
    total, forward = evaluation_overhead(ctx, root, count)
    overhead = [t - f for t, f in zip(total, forward)]
    results.append(Result("executors", "per-checkpoint evaluation overhead (all but the forward passes)", overhead, [],
                          target="≤ 5 ms", met=statistics.median(overhead) <= 0.005 if judged else None,
                          note=f"{statistics.median(overhead) * 1000:.2f} ms: median of {len(overhead)} in one worker, "
                               f"of {statistics.median(total) * 1000:.2f} ms per checkpoint with forward passes "
                               f"{statistics.median(forward) * 1000:.2f} ms"))

    # +1: a new checkpoint, evaluated alone on each executor, then removed again (untimed)
    incoming = ctx.folder("executors-incoming")
    counts: dict[str, list[tuple[int, int]]] = {kind: [] for kind in kinds}
    state = {"k": 0}

    def plus1(kind: str) -> Callable[[int], tuple[float, float]]:
        def measure(i: int) -> tuple[float, float]:
            state["k"] += 1
            step = steps * STEP_GAP + state["k"]
            path = incoming / f"new-{state['k']}.safetensors"
            path.write_bytes(linear_checkpoint(20_000_000 + state["k"])[0])
            run(ctx, [ZOO, "add", str(path), "--model", model_name(0), "--step", str(step), "--arch", "linear",
                      "--task", "tabular-classification", "--dataset", "wine", "--license", "CC0-1.0"], cwd=root)
            compose(kind)
            seconds, rss, out = run_out(ctx, evaluate, cwd=root)
            counts[kind].append(check_counts(out, -1, -1, f"+1 on {kind}"))
            run(ctx, [ZOO, "rm", f"{model_name(0)}@{step}"], cwd=root)
            run_out(ctx, evaluate, cwd=root)  # prunes its result again
            return seconds, rss
        return measure

    p = side_by_side(ctx, ctx.n(3, 1), {kind: plus1(kind) for kind in kinds})
    compose("serial")
    for kind in kinds:
        exact = all(c == (1, n) for c in counts[kind])
        seen = ", ".join(sorted({f"evaluated {e}, reused {r}" for e, r in counts[kind]}))
        if kind == "serial":
            results.append(Result("executors", f"+1 to {n:,} evaluated, on serial", *p[kind], target="evaluates exactly 1",
                                  met=exact if judged else None, note=seen))
            continue
        extra = statistics.median(p[kind][0]) - statistics.median(p["serial"][0])
        limit = [t + 3 for t in p["serial"][0]]
        results.append(Result("executors", f"+1 to {n:,} evaluated, on {kind} (start included)", *p[kind],
                              "serial + 3 s", limit, "evaluates exactly 1; ≤ serial + 3 s",
                              (exact and extra <= 3) if judged else None, note=f"{seen}; +{extra:.2f} s over serial"))
    return results


