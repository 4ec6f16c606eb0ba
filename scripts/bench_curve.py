"""The scale curve: the same operations on zoos of 10³, 10⁴, 10⁵ and 10⁶ checkpoints, each operation's time and
peak memory per size, and its growth exponent (run through ``scripts/bench.py --only scale-curve``).

A zoo of N checkpoints is simulated the way ``bench.build_pipeline_zoo(files=False)`` builds one: a clone of
this repository with N rows written straight into the table (N/100 models of 100 steps) and an evaluation
record for each, plus one DVC pointer per model written directly (no bytes behind them), so that DVC sees
a zoo of N/100 tracked folders. One extra model, ``curve-real``, holds real files, so that adding a step
to it is a real ``zoo add``. Every operation is a fresh process; ``zoo serve`` is timed from its start to
its first ``/api/models`` answer, its memory read from /proc at that moment; then once more, with each model's
part of the snapshot in the user cache from the first start.

The exponent k of an operation is the slope of log(t - t₀) against log(N) between the two largest sizes, where
t₀ is the interpreter's start (``python -c pass``): k ≈ 0 is flat, k ≈ 1 linear. The warm operations run
after one untimed ``zoo ls`` has filled the cache, and the timed adds after one untimed add (the first add of an
architecture in a cache builds its fit-check shapes). An operation that does not finish
within the time limit at a size is reported as such, and is what breaks first there.

``ZOO_CURVE_SIZES=1000,10000,100000`` runs only these sizes (10⁶ takes about 15 minutes on an idle 2-core machine,
13.6 GB of memory in the index stage and 13 GB of disk), and ``ZOO_CURVE_OPS=ls,serve`` only the operations whose
names start with ``zoo <one of them>`` (the interpreter's start is always measured: the exponents need it).
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench import PYTHON, ZOO, Context, Result, build_pipeline_zoo, free_port, linear_checkpoint, rss_mb, run

from checkpoint_zoo import layout

LIMIT_S = 900  # a size's operation that takes longer has broken there
STEPS = 100
ADD_ARGS = ("--arch", "linear", "--task", "tabular-classification", "--dataset", "wine", "--license", "CC0-1.0")


def _pointers(root: Path, models: int) -> None:
    """One DVC pointer per synthetic model, as ``zoo add`` leaves them (the objects are never read)."""
    from bench import model_name

    base = root / layout.CHECKPOINTS_DIR
    base.mkdir(parents=True, exist_ok=True)
    for m in range(models):
        name = model_name(m)
        md5 = hashlib.md5(name.encode()).hexdigest()
        (base / f"{name}.dvc").write_text(f"outs:\n- md5: {md5}.dir\n  size: {4096 * STEPS}\n  nfiles: {STEPS}\n"
                                          f"  hash: md5\n  path: {name}\n")


def build(ctx: Context, n: int) -> tuple[Path, list[Path]]:
    """The zoo of ``n`` checkpoints, committed, and files for the ``zoo add`` repetitions."""
    root = build_pipeline_zoo(ctx, ctx.folder(f"curve-{n}") / "zoo", n // STEPS, STEPS, files=False)
    _pointers(root, n // STEPS)
    files = []
    for i in range(8):
        data, _ = linear_checkpoint(9_000_000 + i)
        files.append(ctx.tmp / f"curve-{n}-add-{i}.safetensors")
        files[-1].write_bytes(data)
    run(ctx, [ZOO, "add", str(files[0]), "--model", "curve-real", "--step", "0", *ADD_ARGS], cwd=root)
    _evaluate_real(root)
    run(ctx, ["git", "add", "-A"], cwd=root)
    run(ctx, ["git", "commit", "-qm", f"{n} checkpoints"], cwd=root)
    return root, files[1:]


def _evaluate_real(root: Path) -> None:
    """An evaluation record for ``curve-real@0`` beside the synthetic ones (``write_evaluations`` writes a
    folder's every file, so it writes this one alone in a folder of its own)."""
    from bench import write_evaluations

    from checkpoint_zoo.catalog import table

    folder = root / layout.EVALUATIONS_DIR
    aside = folder.with_name(folder.name + ".all")
    folder.rename(aside)
    try:
        rows = [r for r in table.load(table.read_table(root), validate=False) if r["model"] == "curve-real"]
        write_evaluations(root, rows)
        (folder / "curve-real.json").rename(aside / "curve-real.json")
        folder.rmdir()
    finally:
        aside.rename(folder)


def _limited(ctx: Context, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    try:
        return run(ctx, ["timeout", str(LIMIT_S), *cmd], cwd=cwd, env=env)
    except RuntimeError as e:
        if " exited 124 " in str(e):
            return math.inf, 0.0
        raise


def first_answer(ctx: Context, root: Path, cached_parts: bool = True) -> tuple[float, float]:
    """``zoo serve`` from its start to its first ``/api/models`` answer; its RSS then. Without ``cached_parts``
    the snapshot parts kept by an earlier start (``server/part_cache.py``) are dropped first: a first start."""
    if not cached_parts:
        shutil.rmtree(Path(ctx.env["ZOO_CACHE_DIR"]) / "snapshots", ignore_errors=True)
    port = free_port()
    log = open(ctx.tmp / "curve-serve.log", "wb")
    start = time.perf_counter()
    proc = subprocess.Popen([ZOO, "serve", "--port", str(port)], cwd=root, env=ctx.env, stdout=log, stderr=log,
                            start_new_session=True)
    try:
        while time.perf_counter() - start < LIMIT_S:
            if proc.poll() is not None:
                raise RuntimeError(f"zoo serve exited {proc.returncode}: "
                                   f"{(ctx.tmp / 'curve-serve.log').read_text(errors='replace')[-1500:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=LIMIT_S)
                conn.request("GET", "/api/models")
                status = conn.getresponse()
                status.read()
                conn.close()
                if status.status == 200:
                    return time.perf_counter() - start, rss_mb(proc.pid)
            except OSError:
                time.sleep(0.05)
        return math.inf, rss_mb(proc.pid)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()
        log.close()


def operations(ctx: Context, root: Path, files: list[Path], n: int) -> dict[str, Callable[[int], tuple[float, float]]]:
    caches = ctx.tmp / f"curve-caches-{n}"

    def cache(name: str) -> dict[str, str]:
        return {**ctx.env, "ZOO_CACHE_DIR": str(caches / name)}

    def cold(args: list[str]) -> Callable[[int], tuple[float, float]]:
        return lambda i: _limited(ctx, args, root, cache(f"cold-{args[-1]}-{i}"))

    return {
        "python -c pass": lambda i: run(ctx, [PYTHON, "-c", "pass"]),
        "zoo ls, cold": cold([ZOO, "ls"]),
        "zoo ls, warm": lambda i: _limited(ctx, [ZOO, "ls"], root, cache("warm")),
        "zoo show MODEL@STEP, warm": lambda i: _limited(ctx, [ZOO, "show", "wine-lin-0000@10"], root, cache("warm")),
        "pipeline validate, cold": cold([PYTHON, "-m", "checkpoint_zoo.pipeline", "validate"]),
        "pipeline index": lambda i: _limited(ctx, [PYTHON, "-m", "checkpoint_zoo.pipeline", "index"], root,
                                             cache("warm")),
        "zoo serve, first answer": lambda i: first_answer(ctx, root, cached_parts=False),
        # the same again: each model's part of the snapshot is now in the user cache (server/part_cache.py)
        "zoo serve, first answer, parts cached": lambda i: first_answer(ctx, root),
        "zoo add of 1 (then the ls is warm again)": lambda i: _limited(
            ctx, [ZOO, "add", str(files[i]), "--model", "curve-real", "--step", str(10 * (i + 1)), *ADD_ARGS], root,
            cache("warm")),
    }


def exponent(points: list[tuple[int, float]], floor: float) -> float | None:
    """Slope of log(t - floor) over log(n) between the two largest sizes that finished: how the operation grows
    where it matters (over all sizes, a constant start-up cost at the small ones would flatten it)."""
    pts = [(math.log(n), math.log(max(t - floor, 1e-3))) for n, t in points if math.isfinite(t)]
    if len(pts) < 2:
        return None
    (x0, y0), (x1, y1) = pts[-2:]
    return (y1 - y0) / (x1 - x0)


def _sizes(ctx: Context) -> list[int]:
    """The sizes to run: ``ZOO_CURVE_SIZES`` (comma-separated counts of checkpoints, each a multiple of 100)."""
    given = os.environ.get("ZOO_CURVE_SIZES", "").strip()
    if not given:
        return [1_000, 3_000] if ctx.quick else [1_000, 10_000, 100_000, 1_000_000]
    try:
        sizes = sorted({int(x.replace("_", "")) for x in given.split(",") if x.strip()})
    except ValueError:
        raise SystemExit(f"ZOO_CURVE_SIZES={given!r}: not a list of whole numbers; e.g. 1000,10000,100000") from None
    if not sizes or any(n < STEPS or n % STEPS for n in sizes):
        raise SystemExit(f"ZOO_CURVE_SIZES={given!r}: each size must be a multiple of {STEPS} (models of {STEPS} steps)")
    return sizes


def _chosen(ops: dict[str, Callable[[int], tuple[float, float]]]) -> dict[str, Callable[[int], tuple[float, float]]]:
    """The operations ``ZOO_CURVE_OPS`` names (``ls,serve``: those starting ``zoo ls``, ``zoo serve``), and the floor."""
    given = [x.strip() for x in os.environ.get("ZOO_CURVE_OPS", "").split(",") if x.strip()]
    if not given:
        return ops
    chosen = {k: v for k, v in ops.items() if k == "python -c pass" or any(k.startswith(x) or k.startswith(f"zoo {x}")
                                                                          for x in given)}
    if len(chosen) == 1:
        raise SystemExit(f"ZOO_CURVE_OPS={','.join(given)!r} names no operation; they are: {', '.join(list(ops)[1:])}")
    return chosen


def curve(ctx: Context) -> list[Result]:
    sizes = _sizes(ctx)
    series: dict[str, list[tuple[int, float, list[float], list[float]]]] = {}
    for n in sizes:
        root, files = build(ctx, n)
        ops = _chosen(operations(ctx, root, files, n))
        reps = ctx.n(3 if n <= 10_000 else 1, 1)
        warm = {**ctx.env, "ZOO_CACHE_DIR": str(ctx.tmp / f"curve-caches-{n}" / "warm")}
        _limited(ctx, [ZOO, "ls"], root, warm)
        add = [k for k in ops if k.startswith("zoo add")]
        warmed = False
        order = [(i, k) for i in range(reps) for k in ops if k not in add] + [(i, k) for i in range(reps) for k in add]
        for i, name in order:  # the adds last: each leaves a row the index stage has no evaluation for
            if name in add and not warmed:  # untimed: an architecture's first add in a cache builds its fit shapes
                _limited(ctx, [ZOO, "add", str(files[-1]), "--model", "curve-real", "--step", "5", *ADD_ARGS], root,
                         warm)
                warmed = True
            entry = series.setdefault(name, [])
            if entry and entry[-1][0] == n and not math.isfinite(entry[-1][1]):
                continue  # broken at this size already
            seconds, rss = ops[name](i)
            if entry and entry[-1][0] == n:
                samples, peaks = entry[-1][2] + [seconds], entry[-1][3] + [rss]
                entry[-1] = (n, statistics.median(samples), samples, peaks)
            else:
                entry.append((n, seconds, [seconds], [rss]))
        if not ctx.quick and n >= 100_000:
            subprocess.run(["rm", "-rf", str(root.parent)], check=False)  # a 10⁶ clone is gigabytes
    floor = statistics.median(series["python -c pass"][-1][2])
    results = []
    for name, points in series.items():
        k = exponent([(n, t) for n, t, _, _ in points], floor)
        broke = [n for n, t, _, _ in points if not math.isfinite(t)]
        for n, _t, samples, rss in points:
            note = f"{n:,} checkpoints"
            if n == points[-1][0] and name != "python -c pass":
                note += f"; growth exponent {k:.2f}" if k is not None else "; growth exponent: too few sizes"
                if broke:
                    note += f"; did not finish within {LIMIT_S} s at {broke[0]:,}"
            finite = [s if math.isfinite(s) else float(LIMIT_S) for s in samples]
            results.append(Result("scale-curve", f"{name} @ {n:,}", finite, rss, note=note))
    return results
