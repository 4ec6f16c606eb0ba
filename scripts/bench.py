"""Benchmarks for the targets in docs/architecture.md, each against a baseline run side by side.

Every figure is the median over several repetitions; the verdict is the ratio to a baseline measured
in the same run (interleaved with it), never an absolute time. Times and peak memory (max RSS) come
from ``os.wait4`` in a small launcher process. Usage::

    python scripts/bench.py [--quick] [--only NAME] [--json FILE] [--markdown FILE] [--reps N]

help      ``zoo --help`` vs ``python -c pass`` and ``dvc --version``
ls        ``zoo ls`` at 100,000 rows (cold, warm, filtered CSV export) vs the same
add       ``zoo add`` of 1 GiB vs ``dvc add`` of the same file alone and ``sha256sum`` of it
noop      no-op ``dvc repro`` / ``dvc status`` at 1,000 and 10,000 evaluated checkpoints
plus1     ``dvc repro`` after adding 1 checkpoint to 1,000 evaluated ones vs no-op + 2 × one evaluation
scale     validate + index at 1,000 / 10,000 / 100,000 rows (time per added row shows linearity)
scale-curve  ls, show, validate, index, serve's first answer and add at 10³ … 10⁶ checkpoints, and each one's
          growth exponent (``scripts/bench_curve.py``)
s3        ``zoo pull`` of 1 of 10,000 checkpoints from moto's S3 server vs boto3 (objects and bytes
          counted from the server's request log); 1 GiB push/pull vs boto3 (``scripts/bench_s3.py``)
transfer  push and pull of 1 GiB and of 2,000 × 64 KiB over S3: zoo vs ``dvc push``/``pull`` vs s5cmd vs boto3,
          interleaved; throughput, ratio to s5cmd, peak memory (``scripts/bench_s3.py --only transfer``)
versions  ``Zoo(url, rev).fetch`` first (vs ``dvc get``) and cached; ``zoo diff`` at 10,000 rows vs ``git diff``
fit       the add-time fit check (header vs architecture) of a 1 GiB file vs safetensors' header read; memory
serve     ``zoo serve``: ``GET /api/models?search=`` at 100,000 checkpoints (one client vs the server's 404
          floor; requests/s with 32 clients, wrk) and a 1 GiB download vs nginx serving the same file
hub       ``zoo serve`` to the real ``huggingface_hub``: a cached ``hf_hub_download`` (one HEAD) at 100,000
          checkpoints and ``snapshot_download``'s cost per file, vs the 404 floor; ``/resolve`` 1 GiB vs nginx
install   the core install (no torch) from the wheel: pip's seconds, the venv's bytes vs the full install's

Add a benchmark by writing ``bench_<name>(ctx) -> list[Result]`` and listing it in ``BENCHMARKS``.

The pipeline benchmarks (``noop``, ``plus1``, ``scale``) run on real git + DVC zoos built from a clone
of this repository (its dvc.yaml, conf/, params.yaml and src/, which dvc.yaml lists as deps), with
the reference checkpoints dropped and N tiny but real ``linear`` checkpoints for wine written
straight into ``zoo/checkpoints/<model>/`` (one ``dvc add`` of all model folders, table rows with
the files' real sha256/size/params/dtype); see ``build_pipeline_zoo``. ``--quick`` uses small
sizes, and its figures are printed but not judged against the targets.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import IO

from checkpoint_zoo import layout
from checkpoint_zoo.catalog import rules

PYTHON = sys.executable
ZOO = str(Path(sys.executable).with_name("zoo"))
DVC = [PYTHON, "-m", "dvc"]
VENV_BIN = str(Path(sys.executable).parent)
PROJECT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


@dataclass
class Result:
    """One measured command: its samples, its baseline's samples, and the target it is held to."""

    bench: str
    what: str
    samples: list[float]
    rss_mb: list[float]
    baseline: str = ""
    baseline_samples: list[float] = field(default_factory=list)
    target: str = ""
    met: bool | None = None  # the target's verdict where this run can judge it (never in --quick)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline_samples) if self.baseline_samples else None

    @property
    def ratio(self) -> float | None:
        base = self.baseline_median
        return self.median / base if base else None

    def to_dict(self) -> dict:
        """All figures, including the derived medians and ratio."""
        return {**asdict(self), "median": self.median, "baseline_median": self.baseline_median,
                "ratio": self.ratio, "peak_rss_mb": max(self.rss_mb) if self.rss_mb else None}


@dataclass
class Context:
    """Where and how benchmarks run: a temp folder, the children's environment, sizes and repetitions."""

    tmp: Path
    env: dict[str, str]
    quick: bool
    reps: int | None
    zoos: dict[tuple[int, int], Path] = field(default_factory=dict)  # pipeline zoos shared between benchmarks

    def n(self, full: int, quick: int) -> int:
        """Repetitions: ``--reps`` if given, else the default for this mode."""
        return self.reps or (quick if self.quick else full)

    def folder(self, name: str) -> Path:
        """A fresh empty folder under the temp root."""
        path = self.tmp / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


# Runs the command as its grandchild and reports (seconds, max RSS KB, exit code) from os.wait4.
# A direct child's ru_maxrss starts at this process's own RSS (exec records the RSS of the address
# space it replaces), so a tiny launcher forks it instead; its RSS is the floor (see rss_floor).
LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(sys.argv[1], "w") as f:
    f.write(f"{seconds} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run(ctx: Context, cmd: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None,
        stdout: int | IO[bytes] | None = subprocess.DEVNULL) -> tuple[float, float]:
    """Run a command to completion; (wall seconds, max RSS in MB). Raises with its stderr if it fails."""
    errlog, report = ctx.tmp / "stderr.log", ctx.tmp / "wait4.txt"
    report.unlink(missing_ok=True)
    with open(errlog, "wb") as err:
        subprocess.run([PYTHON, "-S", "-c", LAUNCHER, str(report), *cmd], cwd=cwd, env=env or ctx.env,
                       stdout=stdout, stderr=err, check=False)
    try:
        seconds, rss_kb, code = report.read_text().split()
    except (OSError, ValueError):
        seconds, rss_kb, code = "0", "0", "-1"
    if int(code) != 0:
        tail = errlog.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {code} in {cwd}:\n{tail}")
    return float(seconds), int(rss_kb) / 1024


def run_out(ctx: Context, cmd: Sequence[str], cwd: Path | None = None,
            env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """``run`` that also returns what the command printed on stdout."""
    out = ctx.tmp / "stdout.log"
    with open(out, "wb") as f:
        seconds, rss = run(ctx, cmd, cwd=cwd, env=env, stdout=f)
    return seconds, rss, out.read_text(errors="replace")


def side_by_side(ctx: Context, reps: int, commands: dict[str, Callable[[int], tuple[float, float]]]) -> dict:
    """Run each named measurement once per repetition, interleaved so drift hits all of them alike."""
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in commands}
    for i in range(reps):
        for name, measure in commands.items():
            seconds, rss = measure(i)
            out[name][0].append(seconds)
            out[name][1].append(rss)
    return out


def new_zoo(ctx: Context, path: Path) -> Path:
    """An empty zoo made by ``checkpoint_zoo.api.init`` in a child with the benchmark environment, with this
    project's registries (conf/arch, conf/task, conf/dataset)."""
    run(ctx, [PYTHON, "-c", "import sys; from checkpoint_zoo.api import init; init(sys.argv[1], registries_from=sys.argv[2])",
              str(path), str(PROJECT)])
    return path


def register_vector_arch(root: Path, name: str, n_floats: int) -> str:
    """conf/arch/<name>.yaml whose one tensor is a 1-D ``weight`` of ``n_floats`` (what write_safetensors writes)."""
    (root / "conf/arch").mkdir(parents=True, exist_ok=True)
    (root / "conf/arch" / f"{name}.yaml").write_text(f"_target_: torch.nn.LayerNorm\nnormalized_shape: {n_floats}\nbias: false\n")
    undeclare_wine_input(root)
    return name


def undeclare_wine_input(root: Path) -> None:
    """These benchmarks' archs are holders of shapes, no models of wine: their zoo's wine declares no input
    shape, so ``zoo add`` does not probe them with wine's input (it would rightly refuse them)."""
    import yaml

    wine = root / "conf" / "dataset" / "wine.yaml"
    cfg = yaml.safe_load(wine.read_text())
    cfg["input"].pop("shape", None)
    wine.write_text(yaml.safe_dump(cfg, sort_keys=False))


def bench_help(ctx: Context) -> list[Result]:
    """``zoo --help`` against starting the same interpreter with nothing to do."""
    commands = {
        "pass": lambda i: run(ctx, [PYTHON, "-c", "pass"]),
        "dvc": lambda i: run(ctx, [PYTHON, "-m", "dvc", "--version"]),
        "help": lambda i: run(ctx, [ZOO, "--help"]),
    }
    side_by_side(ctx, 1, commands)  # warm-up: byte-code and page cache
    m = side_by_side(ctx, ctx.n(10, 5), commands)
    base = m["pass"][0]
    help_ = Result("help", "zoo --help", *m["help"], "python -c pass", base, "≤ 0.3 s")
    help_.met = None if ctx.quick else help_.median <= 0.3
    return [
        Result("help", "python -c pass", *m["pass"]),
        Result("help", "dvc --version", *m["dvc"], "python -c pass", base),
        help_,
        Result("help", "zoo --help vs dvc --version", *m["help"], "dvc --version", m["dvc"][0]),
    ]


def write_table(path: Path, models: int, steps: int) -> None:
    """A valid synthetic table of models × steps rows, sorted by (model, step)."""
    # (arch, task, dataset) as the reference zoo registers them in conf/
    kinds = [("linear", "tabular-classification", "wine"), ("shufflenet-mnist", "image-classification", "mnist-5k"),
             ("resmlp", "tabular-classification", "breast-cancer"), ("mobilenetv3-mnist", "image-classification", "mnist-5k")]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(rules.COLUMNS)
        for m in range(models):
            model = f"model-{m:04d}"
            arch, task, dataset = kinds[m % len(kinds)]
            for s in range(steps):
                step = s * 100
                row = {
                    "model": model, "step": step, "epoch": f"{s / 10:.1f}", "format": "safetensors",
                    "path": rules.checkpoint_path(model, step), "size_bytes": 4096 + m, "dtype": "F32",
                    "sha256": hashlib.sha256(f"{model}@{step}".encode()).hexdigest(), "num_params": 1000 + m,
                    "arch": arch, "task": task, "dataset": dataset, "license": rules.LICENSES[m % 3],
                    "parent": "", "tags": "bench;synthetic" if s % 2 else "", "description": "synthetic row",
                    "created": "2026-01-01T00:00:00Z", "source": "scripts/bench.py",
                    "reported_metric": "accuracy" if s % 10 == 0 else "",
                    "reported_value": f"{s / steps:.4f}" if s % 10 == 0 else "",
                }
                w.writerow([row.get(c, "") for c in rules.COLUMNS])  # computed columns not set here stay empty


def bench_ls(ctx: Context) -> list[Result]:
    """``zoo ls`` on a large table: cold (pandera validation), warm (cached verdict), filtered CSV export."""
    models, steps = (100, 100) if ctx.quick else (100, 1000)
    root = new_zoo(ctx, ctx.folder("ls") / "zoo")
    write_table(root / "zoo" / "checkpoints.csv", models, steps)
    caches = ctx.tmp / "ls-caches"

    def ls(args: Sequence[str], cache: str = "rep"):
        # each repetition has its own verdict cache: the cold run finds it empty and fills it
        return lambda i: run(ctx, [ZOO, *args], cwd=root, env={**ctx.env, "ZOO_CACHE_DIR": str(caches / f"{cache}-{i}")})

    where = ["ls", "--all-steps", "--where", "step >= 500", "--format", "csv"]
    commands = {
        "pass": lambda i: run(ctx, [PYTHON, "-c", "pass"]),
        "dvc": lambda i: run(ctx, [PYTHON, "-m", "dvc", "--version"]),
        "cold": ls(["ls"]),
        "warm": ls(["ls"]),
        "where": ls(where),
    }
    side_by_side(ctx, 1, {"cold": ls(["ls"], "warmup")})  # warm-up: imports and the table in page cache
    m = side_by_side(ctx, ctx.n(5, 3), commands)
    base = m["pass"][0]
    rows = f"{models * steps:,} rows"
    judged = not ctx.quick
    return [
        Result("ls", "python -c pass", *m["pass"]),
        Result("ls", "dvc --version", *m["dvc"], "python -c pass", base),
        Result("ls", f"zoo ls, cold ({rows})", *m["cold"], "dvc --version", m["dvc"][0], "(validates once)"),
        Result("ls", f"zoo ls, warm ({rows})", *m["warm"], "dvc --version", m["dvc"][0], "≤ 1 s",
               statistics.median(m["warm"][0]) <= 1 if judged else None),
        Result("ls", f"zoo ls --all-steps --where 'step >= 500' --format csv ({rows})", *m["where"], "dvc --version",
               m["dvc"][0], "≤ 1 s", statistics.median(m["where"][0]) <= 1 if judged else None),
    ]


def write_safetensors(path: Path, nbytes: int) -> None:
    """One F32 tensor of ``nbytes`` random bytes, written chunk by chunk (no second copy in memory)."""
    import numpy as np

    count = nbytes // 4
    header = json.dumps({"weight": {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]}}).encode()
    header += b" " * (-len(header) % 8)  # safetensors pads the header to 8 bytes with spaces
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        left = count
        while left:
            n = min(left, 16 * MIB)
            f.write(rng.standard_normal(n, dtype=np.float32).tobytes())  # random: no sparse or compressible shortcut
            left -= n


def bench_add(ctx: Context) -> list[Result]:
    """``zoo add`` of a big checkpoint into a fresh zoo, against ``dvc add`` of it and ``sha256sum`` of it."""
    size = 64 * MIB if ctx.quick else 1024 * MIB
    src = ctx.folder("add-input") / "big.safetensors"
    write_safetensors(src, size)
    work = ctx.tmp / "add-work"

    def timed(cmd: Sequence[str], cwd: Path | None = None) -> tuple[float, float]:
        os.sync()  # setup writes must not be flushed on the timed command's clock
        return run(ctx, cmd, cwd=cwd)

    def zoo_add(i: int) -> tuple[float, float]:
        root = new_zoo(ctx, ctx.folder("add-work") / "zoo")
        register_vector_arch(root, "vector", size // 4)
        try:  # a fresh zoo: the timed add includes the first fit check of this architecture (meta build)
            return timed([ZOO, "add", str(src), "--model", "big", "--step", "1", "--arch", "vector", "--task",
                          "tabular-classification", "--dataset", "wine", "--license", "MIT"], cwd=root)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def dvc_add(i: int) -> tuple[float, float]:
        root = ctx.folder("add-work/plain")
        run(ctx, ["git", "init", "-q"], cwd=root)
        run(ctx, [PYTHON, "-m", "dvc", "init", "-q"], cwd=root)
        shutil.copyfile(src, root / src.name)
        try:
            return timed([PYTHON, "-m", "dvc", "add", "-q", src.name], cwd=root)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # coreutils sha256sum may lack the SHA extensions OpenSSL uses, so hashlib (what zoo uses) runs too
    hashlib_sha = "import hashlib, sys; hashlib.file_digest(open(sys.argv[1], 'rb'), 'sha256')"
    commands = {
        "sha": lambda i: timed(["sha256sum", str(src)]),
        "hashlib": lambda i: timed([PYTHON, "-c", hashlib_sha, str(src)]),
        "dvc": dvc_add,
        "zoo": zoo_add,
    }
    m = side_by_side(ctx, ctx.n(5, 2), commands)
    label = f"{size // MIB} MiB"
    return [
        Result("add", f"sha256sum {label}", *m["sha"]),
        Result("add", f"python hashlib sha256 {label}", *m["hashlib"], "sha256sum", m["sha"][0]),
        Result("add", f"dvc add {label}", *m["dvc"], "sha256sum", m["sha"][0]),
        Result("add", f"zoo add {label}", *m["zoo"], "dvc add", m["dvc"][0], "≤ 1.5 × dvc add",
               None if ctx.quick else statistics.median(m["zoo"][0]) <= 1.5 * statistics.median(m["dvc"][0])),
        Result("add", f"zoo add {label} vs sha256sum", *m["zoo"], "sha256sum", m["sha"][0]),
    ]


# ---- pipeline benchmarks: the pipeline targets ------------------------------------------------

WINE_FEATURES, WINE_CLASSES = 13, 3
STEP_GAP = 10  # steps of one model: 0, 10, 20, …
COUNTS_RE = re.compile(r"evaluated (\d+), reused (\d+)")


def model_name(m: int) -> str:
    """Synthetic model names: wine-lin-0000, wine-lin-0001, …"""
    return f"wine-lin-{m:04d}"


_WINE_STATS: list = []


def linear_checkpoint(seed: int) -> tuple[bytes, int]:
    """A real ``linear`` checkpoint for wine as safetensors bytes, and its parameter count.

    fc.weight [3, 13] and fc.bias [3] are random (seeded), norm.mean/norm.std [13] are the wine
    training split's statistics (std > 0), so evaluation runs exactly as for a trained checkpoint.
    """
    import numpy as np
    from safetensors.numpy import save

    if not _WINE_STATS:
        from checkpoint_zoo.datasets import sklearn_splits

        x = sklearn_splits("load_wine").train.x
        _WINE_STATS[:] = [x.mean(axis=0).astype(np.float32), np.maximum(x.std(axis=0), 1e-3).astype(np.float32)]
    rng = np.random.default_rng(seed)
    tensors = {
        "fc.weight": rng.normal(0, 0.5, (WINE_CLASSES, WINE_FEATURES)).astype(np.float32),
        "fc.bias": rng.normal(0, 0.1, WINE_CLASSES).astype(np.float32),
        "norm.mean": _WINE_STATS[0], "norm.std": _WINE_STATS[1],
    }
    return save(tensors), sum(int(t.size) for t in tensors.values())


def checkpoint_row(model: str, step: int, size: int, sha256: str, num_params: int) -> dict[str, str]:
    """A table row as ``zoo add`` writes it (every column rule of rules.py / schema.py)."""
    s = step // STEP_GAP
    return {
        "model": model, "step": str(step), "epoch": repr(s / 10), "path": rules.checkpoint_path(model, step),
        "format": "safetensors", "size_bytes": str(size), "sha256": sha256, "num_params": str(num_params),
        "dtype": "F32", "arch": "linear", "task": "tabular-classification", "dataset": "wine",
        "license": "CC0-1.0", "parent": "", "tags": "bench;synthetic", "description": "synthetic linear model",
        "created": "2026-01-01T00:00:00Z", "source": "scripts/bench.py",
        "reported_metric": "accuracy" if s % 10 == 0 else "", "reported_value": repr(0.5 + s % 100 / 200) if s % 10 == 0 else "",
        "state_sha256": "",
    }


def write_evaluations(root: Path, rows: list[dict[str, str]]) -> None:
    """``zoo/metrics/evaluations/<model>.json`` for every row, in the exact format of the evaluate stage
    (``results.write_results`` with records shaped like ``evaluation.run``'s, real memo keys)."""
    import random

    import yaml

    from checkpoint_zoo import __version__, layout
    from checkpoint_zoo.catalog.records import write_results
    from checkpoint_zoo.evaluation.plan import key_for, package_code_hash, params_hash, zoo_code_hash
    from checkpoint_zoo.evaluation.run import load_eval_data
    from checkpoint_zoo.registry import workspace_registry

    reg = workspace_registry(root)
    task = reg.task("tabular-classification")
    params = yaml.safe_load((root / "params.yaml").read_text())["eval"]
    data = load_eval_data(reg.dataset("wine"), task, reg, params)
    chash, zhash, phash = package_code_hash(), zoo_code_hash(reg.code_dir), params_hash(params)
    n_test, n_val = len(data.splits[task.report_split]), len(data.splits[task.select_split])
    rnd = random.Random(0)
    records = {}
    for row in rows:
        key = key_for(row, reg, chash, zhash, phash, data.digest)
        acc, val = rnd.randint(0, n_test) / n_test, rnd.randint(0, n_val) / n_val
        metrics = {"accuracy": float(f"{acc:.8g}"), "macro_f1": float(f"{acc * 0.97:.8g}"),
                   "nll": float(f"{rnd.uniform(0.05, 3):.8g}")}
        records[f"{row['model']}@{row['step']}"] = {
            "step": int(row["step"]), "sha256": row["sha256"], "task": row["task"], "dataset": row["dataset"],
            "arch": row["arch"], "metrics": metrics, "split": task.report_split, "n_examples": n_test,
            "selection": {"split": task.select_split, "n_examples": n_val, "metric": "accuracy",
                          "higher_is_better": True, "value": float(f"{val:.8g}"), "metrics": dict(metrics, accuracy=val)},
            "reproducibility": {n: m.tolerance.to_dict() for n, m in sorted(task.metrics.items())},
            "higher_is_better": {n: m.higher_is_better for n, m in sorted(task.metrics.items())},
            "provenance": {**key.provenance(), "code_version": f"checkpoint-zoo {__version__}"},
        }
    write_results(root / layout.EVALUATIONS_DIR, records)


def build_pipeline_zoo(ctx: Context, root: Path, models: int, steps: int, files: bool = True) -> Path:
    """A real git + DVC zoo of ``models`` × ``steps`` checkpoints with this repository's pipeline.

    ``git clone`` of this project (dvc.yaml, dvc.lock, conf/, params.yaml, src/), its reference
    pointers removed, then for each model a folder of real ``linear`` safetensors files written in
    place (``zoo add`` one at a time would take hours at 10,000), tracked by one ``dvc add`` of all
    model folders (one pointer per folder, as ``zoo add`` makes), and the table written by
    ``table.dump_csv`` with each file's real sha256, size and parameter count. With ``files=False``
    there are no files (validate only checks files that are present) and the evaluations are written
    directly instead, so that the stages can be timed on tables of any size.
    """
    from checkpoint_zoo.catalog import table

    run(ctx, ["git", "clone", "-q", str(PROJECT), str(root)])
    pointers = sorted(str(p.relative_to(root)) for p in (root / layout.CHECKPOINTS_DIR).glob("*.dvc"))
    if pointers:
        run(ctx, ["git", "rm", "-q", *pointers], cwd=root)
    rows, folders = [], []
    sample, n_params = linear_checkpoint(0)  # every synthetic checkpoint has this size and parameter count
    for m in range(models):
        model = model_name(m)
        if files:
            folders.append(f"{layout.CHECKPOINTS_DIR}/{model}")
            (root / folders[-1]).mkdir(parents=True, exist_ok=True)
        for s in range(steps):
            step = s * STEP_GAP
            if files:
                data, count = linear_checkpoint(m * 1_000_000 + s)
                (root / rules.checkpoint_path(model, step)).write_bytes(data)
                rows.append(checkpoint_row(model, step, len(data), hashlib.sha256(data).hexdigest(), count))
            else:
                fake = hashlib.sha256(f"{model}@{step}".encode()).hexdigest()
                rows.append(checkpoint_row(model, step, len(sample), fake, n_params))
    table.atomic_write(root / layout.TABLE_PATH, table.dump_csv(rows))
    if files:
        run(ctx, [*DVC, "add", "-q", *folders], cwd=root)
    else:
        write_evaluations(root, rows)
    return root


def check_counts(out: str, evaluated: int, reused: int, what: str) -> tuple[int, int]:
    """The evaluate stage's "evaluated N, reused M" line; raises unless it says what is expected
    (``-1`` accepts any count)."""
    found = COUNTS_RE.findall(out)
    if len(found) != 1:
        raise RuntimeError(f"{what}: expected one 'evaluated N, reused M' line in dvc repro's output:\n{out[-2000:]}")
    got = int(found[0][0]), int(found[0][1])
    if evaluated >= 0 and got[0] != evaluated or reused >= 0 and got[1] != reused:
        raise RuntimeError(f"{what}: evaluated {got[0]}, reused {got[1]}; expected {evaluated}, {reused}")
    return got


def check_noop(out: str, what: str) -> None:
    """A no-op repro runs no stage."""
    if "Running stage" in out:
        raise RuntimeError(f"{what}: expected a no-op dvc repro, but it ran a stage:\n{out[-2000:]}")


def pipeline_zoo(ctx: Context, models: int, steps: int) -> tuple[Path, list[Result]]:
    """The evaluated, committed zoo of models × steps checkpoints (built once per run and shared);
    the Results of building it (only the first time)."""
    if (models, steps) in ctx.zoos:
        return ctx.zoos[(models, steps)], []
    n = models * steps
    root = ctx.folder(f"pipeline-{models}x{steps}") / "zoo"
    started = time.perf_counter()
    build_pipeline_zoo(ctx, root, models, steps)
    built = time.perf_counter() - started
    # the first full repro: validates (hashing every file once), evaluates every checkpoint, indexes
    seconds, rss, out = run_out(ctx, [*DVC, "repro"], cwd=root)
    check_counts(out, n, 0, f"first dvc repro of {n:,}")
    run(ctx, ["git", "add", "-A"], cwd=root)
    run(ctx, ["git", "commit", "-q", "-m", f"bench: {n} checkpoints, evaluated"], cwd=root)
    ctx.zoos[(models, steps)] = root
    label = f"{n:,} ({models} models × {steps})"
    return root, [
        Result("setup", f"build zoo {label}: write files, one dvc add, table", [built], [],
               note=f"{built / n * 1000:.1f} ms/checkpoint (bench.py + dvc add)"),
        Result("setup", f"first full dvc repro {label}", [seconds], [rss],
               note=f"{seconds / n * 1000:.1f} ms/checkpoint; evaluated {n:,}, reused 0"),
    ]


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
            if "up to date" not in out:
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


def load_script(name: str):
    """Another benchmark script of scripts/ as a module (it imports this one, so it is loaded on use)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, PROJECT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_scale_curve(ctx: Context) -> list[Result]:
    """The same operations at 10³ … 10⁶ checkpoints, with each one's growth exponent (``scripts/bench_curve.py``)."""
    return load_script("bench_curve").curve(ctx)


def bench_s3(ctx: Context) -> list[Result]:
    """The S3 remote against boto3 on the same moto server (``scripts/bench_s3.py``, whose docstring
    says how): ``zoo pull`` of one checkpoint of 10,000 (objects and bytes fetched, counted from the
    server's request log), and push/pull of a 1 GiB checkpoint as throughput ratios."""
    s3 = load_script("bench_s3")
    work = ctx.folder("s3")
    server = s3.Server(work)
    try:
        env = s3.child_env(work, server)
        models, steps = (2, 25) if ctx.quick else (100, 100)
        one = s3.bench_pull_one(work, server, env, models, steps, ctx.n(5, 1), ctx.quick)
        big = s3.bench_big(work, server, env, 16 if ctx.quick else 1024, ctx.n(3, 1), ctx.quick)
    except SystemExit as e:  # bench_s3's way to fail a check; here it must not end the other benchmarks
        raise RuntimeError(str(e)) from None
    finally:
        server.stop()
    rss = s3.RSS_MB
    n = f"{one['checkpoints']:,}"
    boto = one["boto3_download_s"]
    pull = Result("s3", f"zoo pull 1 of {n} from S3 ({one['object_bytes']:,} B)", one["zoo_pull_s"],
                  [rss["zoo pull one"]], "1.5 × boto3 download_file + 1 s", [1.5 * b + 1 for b in boto],
                  "only its object + manifest; ratio ≤ 1", one["met"],
                  f"fetched {len(one['objects_fetched'])} objects (object + folder manifest), "
                  f"{one['bytes_transferred_per_pull']:,} B in {one['requests_per_pull']} requests; "
                  f"first pull in the clone {one['zoo_pull_cold_s']:.2f} s")
    mib = big["bytes"] / MIB
    label = f"{mib:,.0f} MiB"
    return [
        Result("s3", "boto3 download_file of that object", boto, [rss["boto3 download one"]]),
        Result("s3", "dvc pull of that file -r s3", one["dvc_pull_s"], [rss["dvc pull one"]],
               "boto3 download_file", boto),
        pull,
        Result("s3", f"boto3 upload_file {label}", big["boto3_upload_file_s"], [rss["boto3 upload big"]],
               note=f"{big['boto3_upload_mib_s']} MiB/s"),
        Result("s3", f"zoo push {label}", big["zoo_push_s"], [rss["zoo push big"]], "boto3 upload_file",
               big["boto3_upload_file_s"], note=f"{big['push_mib_s']} MiB/s; dvc push {big['dvc_push_mib_s']} MiB/s"),
        Result("s3", f"boto3 download_file {label}", big["boto3_download_file_s"], [rss["boto3 download big"]],
               note=f"{big['boto3_download_mib_s']} MiB/s; get_object {big['boto3_get_object_mib_s']} MiB/s"),
        Result("s3", f"zoo pull {label}", big["zoo_pull_s"], [rss["zoo pull big"]], "boto3 download_file",
               big["boto3_download_file_s"], note=f"{big['pull_mib_s']} MiB/s; dvc pull {big['dvc_pull_mib_s']} MiB/s"),
        Result("s3", f"dvc push {label} -r s3", big["dvc_push_s"], [rss["dvc push big"]], "boto3 upload_file",
               big["boto3_upload_file_s"]),
        Result("s3", f"dvc pull {label} -r s3", big["dvc_pull_s"], [rss["dvc pull big"]], "boto3 download_file",
               big["boto3_download_file_s"]),
    ]


def bench_transfer(ctx: Context) -> list[Result]:
    """Push and pull of 1 GiB and of 2,000 × 64 KiB (``--quick``: 64 MiB and 200) by zoo, dvc, s5cmd and boto3
    on one moto server, interleaved (``scripts/bench_s3.py --only transfer``); zoo's target: ≥ 0.8 × s5cmd's
    throughput and never slower than dvc."""
    s3 = load_script("bench_s3")
    work = ctx.folder("transfer")
    server = s3.Server(work)
    try:
        found = s3.bench_transfer(work, server, s3.child_env(work, server), 64 if ctx.quick else 1024,
                                  200 if ctx.quick else 2000, 64, ctx.n(3, 1), ctx.quick)
    except SystemExit as e:  # bench_s3's way to fail a check; here it must not end the other benchmarks
        raise RuntimeError(str(e)) from None
    finally:
        server.stop()
    out = []
    for r in found:
        what = f"{r['bytes'] / MIB:,.0f} MiB in {r['files']:,} objects"
        for op in ("push", "pull"):
            base = r[f"s5cmd_{op}_s"]
            for way in ("s5cmd", "boto3", "dvc", "zoo"):
                judged = way == "zoo" and r["met"] is not None
                out.append(Result("transfer", f"{way} {op} {what}", r[f"{way}_{op}_s"], [r[f"{way}_{op}_rss_mb"]],
                                  "" if way == "s5cmd" else "s5cmd", [] if way == "s5cmd" else base,
                                  "zoo ≥ 0.8 × s5cmd, ≥ dvc" if way == "zoo" else "",
                                  (r[f"zoo_{op}_vs_s5cmd"] >= 0.8 and r[f"zoo_{op}_mib_s"] >= r[f"dvc_{op}_mib_s"])
                                  if judged else None, f"{r[f'{way}_{op}_mib_s']} MiB/s"))
    return out


# Fetches one checkpoint of a zoo given by URL at a revision, in a fresh process (what a user's
# training script does): the first time with an empty cache, then from the verified cache.
FETCH_AT_REV = """
import sys
from checkpoint_zoo import Zoo
Zoo(sys.argv[1], rev=sys.argv[2]).fetch(sys.argv[3])
"""


def bench_versions(ctx: Context) -> list[Result]:
    """Zoo versions: ``Zoo(url, rev).fetch(ref)`` of one reference checkpoint from a ``file://`` URL,
    first time (empty cache: mirror clone, worktree, DVC read) against ``dvc get`` of the same file at
    the same revision, and cached against ``python -c pass``; ``zoo diff`` of two revisions of a
    10,000-checkpoint table against ``git diff`` of them."""
    head = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    url = PROJECT.as_uri()
    ref, rel = "cancer-resmlp@100", rules.checkpoint_path("cancer-resmlp", 100)  # a small one: 14.5 KB
    caches, gets = ctx.folder("versions-caches"), ctx.folder("versions-gets")

    def first(i: int) -> tuple[float, float]:
        env = {**ctx.env, "ZOO_CACHE_DIR": str(caches / f"first-{i}")}
        return run(ctx, [PYTHON, "-c", FETCH_AT_REV, url, head, ref], env=env)

    def cached(i: int) -> tuple[float, float]:
        env = {**ctx.env, "ZOO_CACHE_DIR": str(caches / f"first-{i}"), "ZOO_OFFLINE": "1"}
        return run(ctx, [PYTHON, "-c", FETCH_AT_REV, url, head, ref], env=env)

    def dvc_get(i: int) -> tuple[float, float]:
        # the reference remote is repo-relative (../.dvc-remote), which DVC resolves against its own temp
        # clone; Zoo(url) resolves it in a worktree of the URL's repository, dvc get needs it spelled out
        return run(ctx, [*DVC, "get", "-q", url, rel, "--rev", head, "-o", str(gets / f"{i}.safetensors"),
                         "--remote-config", f"url={PROJECT / '.dvc-remote'}"], cwd=gets)

    commands = {"pass": lambda i: run(ctx, [PYTHON, "-c", "pass"]), "dvc_get": dvc_get, "first": first,
                "cached": cached}
    m = side_by_side(ctx, ctx.n(5, 1), commands)

    # zoo diff at 10,000 checkpoints: 100 rows changed (metadata), 50 replaced (sha256), 50 added, 50 removed
    models, steps = (20, 50) if ctx.quick else (100, 100)
    root = new_zoo(ctx, ctx.folder("diff") / "zoo")
    path = root / "zoo" / "checkpoints.csv"
    write_table(path, models, steps)
    run(ctx, ["git", "add", "-A"], cwd=root)
    run(ctx, ["git", "commit", "-q", "-m", "v1"], cwd=root)
    lines = path.read_text().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    for k in range(0, 100):
        body[k * 7] = body[k * 7].replace("synthetic row", "edited row")
    for k in range(50):
        row = body[k * 11 + 3].split(",")
        row[rules.COLUMNS.index("sha256")] = hashlib.sha256(f"replaced {k}".encode()).hexdigest()
        body[k * 11 + 3] = ",".join(row)
    body = body[50:]
    path.write_text(header + "".join(body))
    write_table(root / "extra.csv", 1, 50)
    extra = (root / "extra.csv").read_text().splitlines(keepends=True)[1:]
    path.write_text(path.read_text() + "".join(e.replace("model-0000", "model-zzzz") for e in extra))
    (root / "extra.csv").unlink()
    run(ctx, ["git", "commit", "-q", "-am", "v2"], cwd=root)
    caches_diff = ctx.tmp / "diff-caches"
    diff_cmds = {
        "git": lambda i: run(ctx, ["git", "diff", "--stat", "HEAD~1", "HEAD"], cwd=root),
        "zoo": lambda i: run(ctx, [ZOO, "diff", "HEAD~1", "HEAD"], cwd=root,
                             env={**ctx.env, "ZOO_CACHE_DIR": str(caches_diff / str(i))}),
    }
    _, _, out = run_out(ctx, [ZOO, "diff", "HEAD~1", "HEAD", "--format", "json"], cwd=root)
    got = json.loads(out)
    counts = {k: len(v) for k, v in got.items() if isinstance(v, (list, dict))}
    side_by_side(ctx, 1, diff_cmds)
    d = side_by_side(ctx, ctx.n(5, 1), diff_cmds)
    n = models * steps
    return [
        Result("versions", "python -c pass", *m["pass"]),
        Result("versions", f"dvc get {ref} --rev (file:// URL)", *m["dvc_get"], "python -c pass", m["pass"][0]),
        Result("versions", f"Zoo(url, rev).fetch({ref}), empty cache", *m["first"], "dvc get", m["dvc_get"][0]),
        Result("versions", f"Zoo(url, rev).fetch({ref}), cached, ZOO_OFFLINE=1", *m["cached"], "python -c pass",
               m["pass"][0], "≤ 0.5 s", None if ctx.quick else statistics.median(m["cached"][0]) <= 0.5),
        Result("versions", f"git diff --stat, {n:,}-row table", *d["git"]),
        Result("versions", f"zoo diff, {n:,}-row table", *d["zoo"], "git diff --stat", d["git"][0],
               note=", ".join(f"{k} {v}" for k, v in counts.items())),
    ]


# A zoo with one small checkpoint pushed to a local remote, and ``n`` release tags of other models made by git.
RELEASE_ZOO = """
import subprocess, sys
from pathlib import Path
import numpy as np
from safetensors.numpy import save_file
from checkpoint_zoo.api import init
root, n = Path(sys.argv[1]), int(sys.argv[2])
zoo = init(root, remote_url=str(root.parent / "remote"), registries_from=sys.argv[3])
f = root.parent / "w.safetensors"
(root / "conf/arch/vec13.yaml").write_text("_target_: torch.nn.LayerNorm\\nnormalized_shape: 13\\nbias: false\\n")
wine = root / "conf/dataset/wine.yaml"
wine.write_text("\\n".join(l for l in wine.read_text().splitlines() if not l.lstrip().startswith("shape:")) + "\\n")
save_file({"weight": np.ones(13, np.float32)}, str(f))
zoo.add(f, model="alpha", step=1, arch="vec13", task="tabular-classification", dataset="wine", license="MIT")
zoo.push()
(root / "dvc.yaml").write_text("stages: {}\\n")
git = lambda *a: subprocess.run(["git", *a], cwd=root, check=True, capture_output=True)
git("add", "-A"); git("commit", "-qm", "alpha@1")
for i in range(n):
    git("tag", "-a", "-m", "r", f"other-{i // 10}@v1.0.{i % 10}")
"""


def bench_release(ctx: Context) -> list[Result]:
    """``zoo release`` and ``zoo stage`` at a zoo with 1,000 release tags, against their floor (the same git
    writes by hand: append to dvc.yaml, ``git commit -- dvc.yaml``, ``git tag -a``) and against ``gto assign``."""
    n = ctx.n(1000, 50)
    root = ctx.folder("release") / "zoo"
    run(ctx, [PYTHON, "-c", RELEASE_ZOO, str(root), str(n), str(PROJECT)])
    gto = str(Path(sys.executable).with_name("gto"))

    def floor(i: int) -> tuple[float, float]:
        script = (f"printf '# r{i}\\n' >> dvc.yaml && git commit -q -m r{i} -- dvc.yaml && "
                  f"git tag -a -m r{i} floor@v0.{i}.0")
        return run(ctx, ["sh", "-c", script], cwd=root)

    commands = {
        "floor": floor,
        "python": lambda i: run(ctx, [PYTHON, "-c", "pass"], cwd=root),
        "release": lambda i: run(ctx, [ZOO, "release", "alpha@1", f"v2.{i}.0"], cwd=root),
        "stage": lambda i: run(ctx, [ZOO, "stage", f"alpha@v2.{i}.0", "prod"], cwd=root),
        "gto": lambda i: run(ctx, [gto, "assign", "alpha", "--version", f"v2.{i}.0", "--stage", "staging"],
                             cwd=root),
    }
    m = side_by_side(ctx, ctx.n(5, 1), commands)
    note = f"{n:,} release tags in the repo"
    return [
        Result("release", "floor: dvc.yaml edit + git commit + git tag -a", *m["floor"], note=note),
        Result("release", "zoo release MODEL@STEP vX.Y.Z", *m["release"], "floor", m["floor"][0], "≤ 1.5 × floor",
               None if ctx.quick else statistics.median(m["release"][0]) <= 1.5 * statistics.median(m["floor"][0]),
               note),
        Result("release", "zoo stage MODEL@vX.Y.Z prod", *m["stage"], "floor", m["floor"][0], "≤ 1.5 × floor",
               None if ctx.quick else statistics.median(m["stage"][0]) <= 1.5 * statistics.median(m["floor"][0]),
               note),
        Result("release", "gto assign --stage (GTO itself)", *m["gto"], "floor", m["floor"][0], note=note),
        Result("release", "python -c pass (any Python tool's start)", *m["python"], "floor", m["floor"][0],
               note="why ≤ 1.5 × floor is out of reach of a Python command"),
    ]


# Times registry.fit.check_fit (safetensors header against the architecture's expected shapes) in one process:
# the first call per architecture builds it on the meta device and caches the shapes; then ``reps``
# warm calls each, and as many reads of the same header by safetensors itself (the baseline).
FIT_CHECK = """
import sys, time
from pathlib import Path
from safetensors import safe_open
from checkpoint_zoo.api import Zoo
from checkpoint_zoo.registry.fit import check_fit
root, reps, arch, path = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
zoo = Zoo(root)
spec = zoo.registry().arch(arch)
start = time.perf_counter()
check_fit(zoo.registry(), spec, path, str(path))
first = time.perf_counter() - start
fit, header = [], []
for _ in range(reps):
    t = time.perf_counter()
    check_fit(zoo.registry(), spec, path, str(path))
    fit.append(time.perf_counter() - t)
    t = time.perf_counter()
    with safe_open(str(path), framework="numpy") as f:
        shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
    header.append(time.perf_counter() - t)
print(first, " ".join(map(str, fit)), " ".join(map(str, header)), sep="|")
"""


def bench_fit(ctx: Context) -> list[Result]:
    """The add-time fit check of a checkpoint against its architecture, for a 1 GiB file and a 4 KiB one
    (the same architecture kind, so only the file size differs): time per check against safetensors'
    own header read of the same file, and the peak memory of a whole cold check in a fresh process."""
    big_bytes = 64 * MIB if ctx.quick else 1024 * MIB
    root = new_zoo(ctx, ctx.folder("fit") / "zoo")
    files = {}
    for name, nbytes in (("big", big_bytes), ("small", 4096)):
        register_vector_arch(root, name, nbytes // 4)
        files[name] = ctx.tmp / f"fit-{name}.safetensors"
        write_safetensors(files[name], nbytes)
    reps = ctx.n(50, 10)
    measured = {}
    for name in ("big", "small"):
        _, _, out = run_out(ctx, [PYTHON, "-c", FIT_CHECK, str(root), str(reps), name, str(files[name])], cwd=root)
        first, fit, header = out.strip().split("|")
        measured[name] = (float(first), [float(x) for x in fit.split()], [float(x) for x in header.split()])
    def cold(name: str) -> Callable[[int], tuple[float, float]]:
        def measure(i: int) -> tuple[float, float]:
            shutil.rmtree(Path(ctx.env["ZOO_CACHE_DIR"]) / "arch-shapes", ignore_errors=True)  # build on meta again
            return run(ctx, [PYTHON, "-c", FIT_CHECK, str(root), "1", name, str(files[name])], cwd=root)
        return measure

    cold_runs = {name: cold(name) for name in ("big", "small")}
    m = side_by_side(ctx, ctx.n(3, 2), cold_runs)
    size = f"{big_bytes // MIB} MiB"
    fit = Result("fit", f"fit check {size} (header vs arch, shapes cached)", measured["big"][1], [],
                 f"safetensors header read of it ({statistics.median(measured['big'][2]) * 1000:.2f} ms)",
                 measured["big"][2], "≤ 50 ms at 1 GiB")
    fit.met = None if ctx.quick else fit.median <= 0.05
    rss = Result("fit", f"whole first check in a fresh process (imports, meta build), {size} file", *m["big"],
                 "the same, 4 KiB file", m["small"][0], "memory independent of size",
                 note=f"peak RSS {max(m['big'][1]):.0f} MB vs {max(m['small'][1]):.0f} MB")
    rss.met = None if ctx.quick else max(m["big"][1]) <= 1.1 * max(m["small"][1]) + 20
    return [
        fit,
        Result("fit", f"fit check 4 KiB (shapes cached) vs {size}", measured["small"][1], [],
               f"{size} file", measured["big"][1]),
        Result("fit", f"first check of an architecture (meta-device build, {size} file)", [measured["big"][0]], []),
        rss,
    ]


# ---- bulk add (zoo add --from), one add into a big zoo, pull in a fresh clone --------------------------

BULK_FLOATS = 4096  # 16 KiB of float32 per checkpoint, as in the measurements the targets were set against
ADD_ARGS = ("--arch", "vector", "--task", "tabular-classification", "--dataset", "wine", "--license", "MIT")

# The floor of registering a batch: write the files into their model folders, one `dvc add` of all the
# folders, one table write; in one interpreter, as zoo runs.
FLOOR = """
import csv, shutil, sys
from pathlib import Path
from dvc.repo import Repo
manifest, root = Path(sys.argv[1]), Path(sys.argv[2])
rows = list(csv.DictReader(open(manifest)))
folders = []
for r in rows:
    dest = root / "zoo/checkpoints" / r["model"] / f"step-{int(r['step']):08d}.safetensors"
    if dest.parent not in folders:
        dest.parent.mkdir(parents=True)
        folders.append(dest.parent)
    shutil.copyfile(manifest.parent / r["file"], dest)
Repo(str(root)).add([str(f) for f in folders])
with open(root / "table.csv", "w", newline="") as f:
    csv.DictWriter(f, list(rows[0])).writeheader()
    csv.DictWriter(f, list(rows[0])).writerows(rows)
"""

# The one-at-a-time loop: Zoo.add for every line of the manifest, in one interpreter.
ADD_LOOP = """
import csv, sys
from pathlib import Path
from checkpoint_zoo import Zoo
manifest, root = Path(sys.argv[1]), sys.argv[2]
zoo = Zoo(root)
for r in csv.DictReader(open(manifest)):
    zoo.add(manifest.parent / r["file"], model=r["model"], step=int(r["step"]), arch="vector",
            task="tabular-classification", dataset="wine", license="MIT")
"""


def write_batch(folder: Path, models: int, steps: int, first_step: int = 0) -> Path:
    """``models`` × ``steps`` 16 KiB checkpoints (arch ``vector``) and their CSV manifest; the manifest's path."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for m in range(models):
        for s in range(first_step, first_step + steps):
            name = f"m{m:03d}-s{s:05d}.safetensors"
            weight = np.random.default_rng(m * 100_003 + s).standard_normal(BULK_FLOATS).astype(np.float32)
            save_file({"weight": weight}, str(folder / name))
            lines.append({"file": name, "model": f"run-{m:03d}", "step": str(s)})
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, ["file", "model", "step"])
        writer.writeheader()
        writer.writerows(lines)
    return manifest


def vector_zoo(ctx: Context, path: Path) -> Path:
    """A fresh zoo (committed) with the ``vector`` architecture of the bulk benchmarks registered."""
    new_zoo(ctx, path)
    register_vector_arch(path, "vector", BULK_FLOATS)
    run(ctx, ["git", "add", "-A"], cwd=path)
    run(ctx, ["git", "commit", "-qm", "vector arch"], cwd=path)
    return path


def bench_bulk(ctx: Context) -> list[Result]:
    """``zoo add --from`` of 1,000 checkpoints (10 models × 100 steps of 16 KiB) against the floor (files
    written into their folders + one ``dvc add`` of the folders + one table write) and against a loop of
    ``Zoo.add``; one more ``zoo add`` into a zoo of 10,000 against one into a zoo of 100; ``zoo pull
    MODEL@STEP`` in a fresh clone against ``dvc pull`` of the same file in another fresh clone."""
    models, steps = (2, 50) if ctx.quick else (10, 100)
    manifest = write_batch(ctx.folder("bulk-input"), models, steps)
    work = ctx.tmp / "bulk-work"

    def fresh(i: int, name: str) -> Path:
        shutil.rmtree(work, ignore_errors=True)
        return vector_zoo(ctx, work / name)

    def floor(i: int) -> tuple[float, float]:
        root = work / "floor"
        shutil.rmtree(work, ignore_errors=True)
        root.mkdir(parents=True)
        run(ctx, ["git", "init", "-q"], cwd=root)
        run(ctx, [*DVC, "init", "-q"], cwd=root)
        os.sync()
        return run(ctx, [PYTHON, "-c", FLOOR, str(manifest), str(root)], cwd=root)

    def bulk(i: int) -> tuple[float, float]:
        root = fresh(i, "bulk")
        os.sync()
        return run(ctx, [ZOO, "add", "--from", str(manifest), *ADD_ARGS], cwd=root)

    def loop(i: int) -> tuple[float, float]:
        root = fresh(i, "loop")
        os.sync()
        return run(ctx, [PYTHON, "-c", ADD_LOOP, str(manifest), str(root)], cwd=root)

    # the first fit check of an architecture on a machine builds its expected shapes (imports torch,
    # once per machine and architecture): a warm-up run takes it, and it is reported on its own
    cold = bulk(-1)
    m = side_by_side(ctx, ctx.n(3, 1), {"floor": floor, "bulk": bulk})
    # the loop is ~100 × slower than the batch: one side-by-side repetition of it
    loop_m = side_by_side(ctx, 1, {"loop": loop, "bulk": bulk})
    n = models * steps
    judged = not ctx.quick
    bulk_median = statistics.median(m["bulk"][0])
    results = [
        Result("bulk", f"zoo add --from of {n:,}, first on this machine (fit-check shapes built)", [cold[0]],
               [cold[1]]),
        Result("bulk", f"floor: write {n:,} files + dvc add of {models} folders + table", *m["floor"]),
        Result("bulk", f"zoo add --from of {n:,}", *m["bulk"], "floor", m["floor"][0], "≤ 1.5 × floor",
               bulk_median <= 1.5 * statistics.median(m["floor"][0]) if judged else None),
        Result("bulk", f"Zoo.add loop of {n:,}", *loop_m["loop"]),
        Result("bulk", f"zoo add --from of {n:,} (same repetition as the loop)", *loop_m["bulk"], "Zoo.add loop",
               loop_m["loop"][0], "≤ 0.15 × the loop",
               statistics.median(loop_m["bulk"][0]) <= 0.15 * statistics.median(loop_m["loop"][0]) if judged else None),
    ]
    return results + _bench_add_one(ctx) + _bench_fresh_pull(ctx)


def _bench_add_one(ctx: Context) -> list[Result]:
    """One more ``zoo add`` (whole process) into a committed zoo of 100 and one of 10,000 checkpoints; the
    model it goes to has 100 checkpoints in both (the folder DVC updates is the same size)."""
    sizes = {"small": (1, 100), "big": (20, 100) if ctx.quick else (100, 100)}
    zoos = {}
    for name, (models, steps) in sizes.items():
        root = vector_zoo(ctx, ctx.folder(f"bulk-one-{name}") / "zoo")
        manifest = write_batch(ctx.tmp / f"bulk-one-{name}-input", models, steps)
        run(ctx, [ZOO, "add", "--from", str(manifest), *ADD_ARGS], cwd=root)
        run(ctx, ["git", "commit", "-qm", "batch"], cwd=root)
        zoos[name] = root
    extra = write_batch(ctx.folder("bulk-one-extra"), 1, ctx.n(5, 2), first_step=100_000)
    files = sorted(extra.parent.glob("*.safetensors"))

    def one(name: str) -> Callable[[int], tuple[float, float]]:
        def measure(i: int) -> tuple[float, float]:
            os.sync()
            return run(ctx, [ZOO, "add", str(files[i]), "--model", "run-000", "--step", str(100_000 + i), *ADD_ARGS],
                       cwd=zoos[name])
        return measure

    m = side_by_side(ctx, len(files), {"small": one("small"), "big": one("big")})
    n_big = sizes["big"][0] * sizes["big"][1]
    ratio = statistics.median(m["big"][0]) / statistics.median(m["small"][0])
    return [
        Result("bulk", "zoo add of 1 into a zoo of 100", *m["small"]),
        Result("bulk", f"zoo add of 1 into a zoo of {n_big:,}", *m["big"], "zoo of 100", m["small"][0],
               "within ± 20 % of the zoo of 100", abs(ratio - 1) <= 0.2 if not ctx.quick else None),
    ]


def _bench_fresh_pull(ctx: Context) -> list[Result]:
    """``zoo pull MODEL@STEP`` in a fresh clone of a pushed zoo of 1,000 against ``dvc pull FILE`` in another."""
    models, steps = (2, 50) if ctx.quick else (10, 100)
    base = ctx.folder("bulk-pull")
    root = vector_zoo(ctx, base / "zoo")
    manifest = write_batch(base / "input", models, steps)
    run(ctx, [ZOO, "add", "--from", str(manifest), *ADD_ARGS], cwd=root)
    run(ctx, ["git", "commit", "-qm", "batch"], cwd=root)
    run(ctx, [ZOO, "remote", "add", "bench", str(base / "remote"), "--default"], cwd=root)
    run(ctx, ["git", "commit", "-qam", "remote"], cwd=root)
    run(ctx, [ZOO, "push"], cwd=root)
    step = steps // 2
    rel = f"zoo/checkpoints/run-001/step-{step:08d}.safetensors"

    def clone(name: str) -> Path:
        dest = base / name
        shutil.rmtree(dest, ignore_errors=True)
        run(ctx, ["git", "clone", "-q", str(root), str(dest)])
        os.sync()
        return dest

    commands = {
        "dvc": lambda i: run(ctx, [*DVC, "pull", "-q", rel], cwd=clone("clone-dvc")),
        "zoo": lambda i: run(ctx, [ZOO, "pull", f"run-001@{step}"], cwd=clone("clone-zoo")),
    }
    m = side_by_side(ctx, ctx.n(5, 2), commands)
    return [
        Result("bulk", f"dvc pull of 1 file of {models * steps:,}, fresh clone", *m["dvc"]),
        Result("bulk", f"zoo pull MODEL@STEP of 1 of {models * steps:,}, fresh clone (+ sha256 check)", *m["zoo"],
               "dvc pull", m["dvc"][0], "≤ 1.2 × dvc pull",
               statistics.median(m["zoo"][0]) <= 1.2 * statistics.median(m["dvc"][0]) if not ctx.quick else None),
    ]


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


def evaluation_phase(out: str, seconds: float) -> float:
    """The evaluation's own seconds in a ``pipeline evaluate`` log: its rate line's time less the executor's
    start ("ready in"); ``seconds`` (the whole command) when the log lacks them."""
    ready, rate = READY_RE.search(out), RATE_RE.search(out)
    return float(rate.group(1)) - float(ready.group(1)) if ready and rate else seconds


def bench_executors(ctx: Context) -> list[Result]:
    """The evaluate stage on each executor, side by side: throughput of a forced re-evaluation of N
    checkpoints (``pipeline evaluate --force``; the results agree with the stored ones, so nothing is
    rewritten), the cost of evaluating a single new checkpoint (cluster start included), and +1 to N
    evaluated evaluating exactly 1 under every executor."""
    models, steps = (2, 20) if ctx.quick else (10, 100)
    n = models * steps
    root, results = pipeline_zoo(ctx, models, steps)
    evaluate = [PYTHON, "-m", "checkpoint_zoo.pipeline", "evaluate"]
    kinds = ("serial", "processes", "dask")

    def compose(kind: str) -> None:
        run(ctx, [PYTHON, "-m", "checkpoint_zoo.pipeline", "compose", f"executor={kind}"], cwd=root)

    phases: dict[str, list[float]] = {kind: [] for kind in kinds}  # the evaluation alone, executor start excluded

    def forced(kind: str) -> Callable[[int], tuple[float, float]]:
        def measure(i: int) -> tuple[float, float]:
            compose(kind)
            seconds, rss, out = run_out(ctx, [*evaluate, "--force"], cwd=root)
            if f"{n} agree" not in out:
                raise RuntimeError(f"{kind}: a forced re-evaluation of {n} did not agree with the stored results:\n"
                                   f"{out[-2000:]}")
            phases[kind].append(evaluation_phase(out, seconds))
            return seconds, rss
        return measure

    m = side_by_side(ctx, ctx.n(2, 1), {kind: forced(kind) for kind in kinds})
    judged = not ctx.quick
    results.append(Result("executors", f"forced evaluation of {n:,} on serial", *m["serial"],
                          note=f"evaluation alone (executor start excluded) {statistics.median(phases['serial']):.2f} s"))
    for kind in ("processes", "dask"):
        speedup = statistics.median(m["serial"][0]) / statistics.median(m[kind][0])
        alone = statistics.median(phases["serial"]) / statistics.median(phases[kind])
        results.append(Result("executors", f"forced evaluation of {n:,} on {kind} (2 workers)", *m[kind], "serial",
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


# ---- zoo serve: the JSON API under load, downloads against nginx ------------------------------------

# The searches of the API benchmark, cycled over requests (so no one answer is repeated back to back):
# terms that match one, some, all or none of the synthetic models, with sorts, a facet and a limit.
SEARCHES = [
    "/api/models?search=wine-lin-00", "/api/models?search=lin-01&sort=accuracy&direction=desc",
    "/api/models?search=0042", "/api/models?search=synthetic&limit=20", "/api/models?search=linear&sort=checkpoints",
    "/api/models?search=tabular&task=tabular-classification", "/api/models?search=nomatch",
    "/api/models?search=9&sort=lastModified&direction=desc", "/api/models?search=lin-005&sort=nll",
    "/api/models?search=WINE&limit=1000",
]
FLOOR_PATH = "/nope"  # a 404 from Starlette's router: uvicorn, routing and the middleware, no zoo work
WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""
WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def debian_tool(command: str, package: str) -> str | None:
    """The path of ``command``, installing Debian's ``package`` with apt-get first when it is missing (as
    scripts/install.sh installs chromium: sudo only when not root); None where that is not possible."""
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found or not shutil.which("apt-get"):
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and not shutil.which("sudo"):
        return None
    # RUNLEVEL=1: invoke-rc.d starts no service, so installing nginx never opens its default site on port 80
    # of every interface (the benchmark starts its own, on 127.0.0.1 only); `env` carries it through sudo
    apt = [*sudo, "env", "DEBIAN_FRONTEND=noninteractive", "RUNLEVEL=1", "apt-get"]
    print(f"  installing Debian's {package} (apt-get) …", file=sys.stderr, flush=True)
    for cmd in ([*apt, "update", "-qq"], [*apt, "install", "-y", "-qq", package]):
        if subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
                          check=False).returncode != 0:
            return None
    return shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin:/sbin:/bin")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """VmRSS of a process and its children (nginx's workers), in MB; 0 once it is gone."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, ValueError):
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


class Served:
    """A server in a child process (its own session) on 127.0.0.1:port, answering before it is used,
    stopped (SIGTERM to its process group) at the end."""

    def __init__(self, ctx: Context, cmd: Sequence[str], port: int, probe: str, name: str) -> None:
        import http.client

        self.port, self.name = port, name
        self.log = ctx.tmp / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(list(cmd), env=ctx.env, stdout=log, stderr=log, start_new_session=True)
        started = time.perf_counter()
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited {self.proc.returncode}:\n{self.log.read_text(errors='replace')[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", probe)
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{name} did not answer on 127.0.0.1:{port} within 90 s") from None
                time.sleep(0.05)
        self.started = time.perf_counter() - started

    @property
    def rss(self) -> float:
        return rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


def sequential(port: int, paths: Sequence[str], count: int, status: int, method: str = "GET") -> list[float]:
    """``count`` GETs (or ``method``) one after another on one keep-alive connection, cycling over ``paths``;
    each one's seconds (request sent to body read). Raises on any other status than ``status``."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    try:
        for k in range(count):
            path = paths[k % len(paths)]
            start = time.perf_counter()
            conn.request(method, path)
            r = conn.getresponse()
            r.read()
            times.append(time.perf_counter() - start)
            if r.status != status:
                raise RuntimeError(f"{method} {path}: {r.status}, expected {status}")
    finally:
        conn.close()
    return times


def python_load(port: int, paths: Sequence[str], clients: int, seconds: float, max_requests: int) -> dict:
    """The fallback load generator where wrk is missing: ``clients`` threads, each with its own keep-alive
    connection, sending GETs until ``seconds`` have passed or ``max_requests`` were sent in all."""
    import http.client
    import threading

    lock = threading.Lock()
    sent = {"n": 0, "bad": 0}
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        try:
            while time.perf_counter() < deadline:
                with lock:
                    if sent["n"] >= max_requests:
                        break
                    k = sent["n"]
                    sent["n"] += 1
                start = time.perf_counter()
                conn.request("GET", paths[k % len(paths)])
                r = conn.getresponse()
                r.read()
                mine.append(time.perf_counter() - start)
                if not 200 <= r.status < 400:
                    with lock:
                        sent["bad"] += 1
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "seconds": elapsed, "non2xx": sent["bad"], "errors": 0,
            "p50": statistics.median(latencies), "p99": sorted(latencies)[int(len(latencies) * 0.99)]}


def wrk_load(ctx: Context, wrk: str, port: int, paths: Sequence[str], clients: int, seconds: float) -> dict:
    """``wrk`` with ``clients`` connections on one thread for ``seconds``, cycling over ``paths`` (Lua)."""
    script = ctx.tmp / f"wrk-{abs(hash(tuple(paths)))}.lua"
    script.write_text(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
    out = subprocess.run([wrk, "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "10s", "--latency", "-s",
                          str(script), f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=seconds + 60,
                         check=True).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", out)
    if not done:
        raise RuntimeError(f"wrk: no request count in its output:\n{out}")

    def latency(pct: str) -> float:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        return float(m.group(1)) * WRK_UNITS[m.group(2)] if m else float("nan")

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": int(done.group(1)), "seconds": float(done.group(2)) * WRK_UNITS[done.group(3)],
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": sum(map(int, errors.groups())) if errors else 0,
            "p50": latency("50"), "p99": latency("99")}


NGINX_CONF = """daemon off;
worker_processes 1;
{user}pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type application/octet-stream;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {root}; }}
    }}
}}
"""


def curl_get(ctx: Context, url: str, size: int, server: Served) -> tuple[float, float]:
    """One download with curl into /dev/null: (curl's total seconds, the server's peak RSS in MB, sampled
    every 10 ms while it runs). Raises unless it was a 200 of ``size`` bytes."""
    import threading

    peak = [server.rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], server.rss)
            time.sleep(0.01)

    watcher = threading.Thread(target=sample)
    watcher.start()
    try:
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
                              url], capture_output=True, text=True, timeout=600, check=True).stdout
    finally:
        done.set()
        watcher.join()
    code, got, seconds = out.split()
    if code != "200" or int(got) != size:
        raise RuntimeError(f"GET {url}: {code}, {got} bytes; expected 200 and {size}")
    return float(seconds), peak[0]


def bench_serve(ctx: Context) -> list[Result]:
    """``zoo serve``: ``GET /api/models?search=…`` on a zoo of 100,000 checkpoints (1,000 models × 100,
    table and evaluation records written directly, no checkpoint bytes): latency of one client against
    the server's floor (a 404 from its router) and requests/s with 32 concurrent clients (wrk, else a
    bounded Python client); then the download of a 1 GiB checkpoint against Debian's nginx serving the
    same file from 127.0.0.1 (both read by curl), and the server's memory during it. wrk and nginx are
    Debian's, installed with apt-get when missing; nginx runs from a minimal config in the temp folder
    (``daemon off``, ``sendfile on``, 127.0.0.1 only) and is stopped at the end. The peak RSS of these
    rows is the server's (zoo serve's, nginx's master and worker), sampled while the requests run."""
    return _bench_serve_api(ctx) + _bench_serve_download(ctx)


def _bench_serve_api(ctx: Context) -> list[Result]:
    models, steps = (20, 100) if ctx.quick else (1000, 100)
    n = models * steps
    root = build_pipeline_zoo(ctx, ctx.folder("serve-api") / "zoo", models, steps, files=False)
    wrk = debian_tool("wrk", "wrk")
    clients, load_s = 32, (1 if ctx.quick else 5)
    count = 100 if ctx.quick else 300  # sequential requests per repetition
    port = free_port()
    server = Served(ctx, [ZOO, "-C", str(root), "serve", "--port", str(port)], port, FLOOR_PATH, "zoo-serve-api")
    try:
        first = sequential(port, SEARCHES[:1], 1, 200)[0]  # builds the snapshot of the working tree
        first_rss = server.rss
        sequential(port, SEARCHES, 2 * len(SEARCHES), 200)  # warm-up
        lat: dict[str, list[float]] = {"floor": [], "search": [], "versions": []}
        loads: dict[str, list[dict]] = {"floor": [], "search": []}

        def latency(name: str, paths: Sequence[str], k: int, status: int) -> Callable[[int], tuple[float, float]]:
            def measure(i: int) -> tuple[float, float]:
                times = sequential(port, paths, k, status)
                lat[name] += times
                return statistics.median(times), server.rss
            return measure

        def load(name: str, paths: Sequence[str], ok: Callable[[dict], bool]) -> Callable[[int], tuple[float, float]]:
            def measure(i: int) -> tuple[float, float]:
                if wrk:
                    got = wrk_load(ctx, wrk, port, paths, clients, load_s)
                else:
                    got = python_load(port, paths, clients, load_s, 20_000)
                if got["errors"] or not ok(got):
                    raise RuntimeError(f"load on {paths[0]}: {got}")
                loads[name].append(got)
                return got["seconds"] / got["requests"] * 1000, server.rss  # seconds per 1,000 requests
            return measure

        commands = {
            "floor": latency("floor", [FLOOR_PATH], count, 404),
            "search": latency("search", SEARCHES, count, 200),
            "versions": latency("versions", ["/api/versions"], count // 10, 200),
            "floor_load": load("floor", [FLOOR_PATH], lambda g: g["non2xx"] == g["requests"]),
            "search_load": load("search", SEARCHES, lambda g: g["non2xx"] == 0),
        }
        m = side_by_side(ctx, ctx.n(5, 2), commands)
    finally:
        server.stop()

    def pct(name: str) -> str:
        times = sorted(lat[name])
        return (f"median {statistics.median(m[name][0]) * 1000:.2f} ms; {len(times):,} requests; "
                f"p90 {times[int(len(times) * 0.9)] * 1000:.2f} ms, "
                f"p99 {times[int(len(times) * 0.99)] * 1000:.2f} ms")

    def rate(name: str) -> str:
        runs = loads[name]
        rps = statistics.median(g["requests"] / g["seconds"] for g in runs)
        return (f"{rps:,.0f} requests/s; latency p50 {statistics.median(g['p50'] for g in runs) * 1000:.1f} ms, "
                f"p99 {statistics.median(g['p99'] for g in runs) * 1000:.1f} ms; {sum(g['requests'] for g in runs):,} "
                f"requests in {len(runs)} runs of {load_s} s")

    tool = "wrk" if wrk else "Python threads"
    label = f"{n:,} checkpoints ({models} × {steps})"
    search = Result("serve", f"GET /api/models?search=… ({len(SEARCHES)} queries in turn), {label}, one client",
                    *m["search"], f"GET {FLOOR_PATH} (404)", m["floor"][0], "median ≤ 20 ms", note=pct("search"))
    search.met = None if ctx.quick else search.median <= 0.02
    load_ = Result("serve", f"GET /api/models?search=…, {clients} concurrent clients ({tool}): s per 1,000 requests",
                   *m["search_load"], f"GET {FLOOR_PATH}, same load", m["floor_load"][0], "≥ 500 requests/s",
                   note=rate("search"))
    load_.met = None if ctx.quick else 1000 / load_.median >= 500
    return [
        Result("serve", f"zoo serve: first GET /api/models, {label} (snapshot build)", [first], [first_rss],
               note=f"server answered {server.started:.2f} s after start"),
        Result("serve", f"GET {FLOOR_PATH} (404 from the router: the server's floor), one client", *m["floor"],
               note=pct("floor")),
        search,
        Result("serve", "GET /api/versions (git for-each-ref + cat-file per ref), one client", *m["versions"],
               f"GET {FLOOR_PATH} (404)", m["floor"][0], note=pct("versions")),
        Result("serve", f"GET {FLOOR_PATH}, {clients} concurrent clients ({tool}): s per 1,000 requests",
               *m["floor_load"], note=rate("floor")),
        load_,
    ]


def _bench_serve_download(ctx: Context, hub: bool = False) -> list[Result]:
    """The 1 GiB download against nginx: ``/files/big/1``, or with ``hub`` the Hub's ``/resolve`` URL of it."""
    size = 64 * MIB if ctx.quick else 1024 * MIB
    bench = "hub" if hub else "serve"
    root = new_zoo(ctx, ctx.folder(f"{bench}-files") / "zoo")
    register_vector_arch(root, "vector", size // 4)
    src = ctx.tmp / f"{bench}-files" / "big.safetensors"
    write_safetensors(src, size)
    run(ctx, [ZOO, "add", str(src), "--model", "big", "--step", "1", *ADD_ARGS], cwd=root)
    src.unlink()
    # the file zoo serve sends (the working tree's, else the DVC cache object): nginx serves that one
    _, _, out = run_out(ctx, [PYTHON, "-c", "import sys; from checkpoint_zoo.api import Zoo; "
                                            "print(Zoo(sys.argv[1]).verified_file('big@1'))", str(root)])
    path = Path(out.strip())
    nbytes = path.stat().st_size
    nginx = debian_tool("nginx", "nginx")
    port = free_port()
    zoo = Served(ctx, [ZOO, "-C", str(root), "serve", "--port", str(port)], port, FLOOR_PATH, f"zoo-{bench}-files")
    web = None
    zoo_path = "/zoo/big/resolve/step-1/model.safetensors" if hub else "/files/big/1"
    try:
        zoo_url = f"http://127.0.0.1:{port}{zoo_path}"

        def zoo_get(i: int) -> tuple[float, float]:
            return curl_get(ctx, zoo_url, nbytes, zoo)

        commands = {"zoo": zoo_get}
        if nginx:
            prefix = ctx.folder("serve-nginx")
            nport = free_port()
            user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the 0700 temp folder
            (prefix / "nginx.conf").write_text(NGINX_CONF.format(user=user, prefix=prefix, port=nport, root=path.parent))
            web = Served(ctx, [nginx, "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                         nport, "/", "nginx")
            nginx_url = f"http://127.0.0.1:{nport}/{path.name}"
            commands = {"nginx": lambda i: curl_get(ctx, nginx_url, nbytes, web), "zoo": zoo_get}
        before = zoo.rss
        side_by_side(ctx, 1, commands)  # warm-up: page cache, the server's stamp of the file
        m = side_by_side(ctx, ctx.n(5, 2), commands)
    finally:
        zoo.stop()
        if web is not None:
            web.stop()
    label = f"{size // MIB} MiB"
    mib_s = {k: nbytes / MIB / statistics.median(v[0]) for k, v in m.items()}
    kind = "working-tree file" if root in path.parents else "DVC cache object"
    results = []
    if nginx:
        results.append(Result(bench, f"nginx (sendfile) {label} from 127.0.0.1, curl -o /dev/null", *m["nginx"],
                              note=f"{mib_s['nginx']:,.0f} MiB/s; the {kind} zoo serve sends"))
        ratio = statistics.median(m["nginx"][0]) / statistics.median(m["zoo"][0])
        download = Result(bench, f"zoo serve GET {zoo_path} {label}, curl -o /dev/null", *m["zoo"], "nginx",
                          m["nginx"][0], "throughput ≥ 0.8 × nginx", None if ctx.quick else ratio >= 0.8,
                          note=f"{mib_s['zoo']:,.0f} MiB/s: throughput {ratio:.2f} × nginx")
    else:
        download = Result(bench, f"zoo serve GET {zoo_path} {label}, curl -o /dev/null", *m["zoo"],
                          note=f"{mib_s['zoo']:,.0f} MiB/s; no nginx on this machine to compare with")
    growth = max(m["zoo"][1]) - before
    memory = Result(bench, f"zoo serve memory during the {label} downloads", *m["zoo"], target="flat: peak growth < 64 MB",
                    met=None if ctx.quick else growth < 64,
                    note=f"RSS {before:.0f} MB before, peak {max(m['zoo'][1]):.0f} MB: +{growth:.0f} MB")
    return [*results, download, memory]


def bench_hub(ctx: Context) -> list[Result]:
    """``zoo serve`` through the Hugging Face Hub's protocol, the real ``huggingface_hub`` client in this process
    (``endpoint=`` the server), against the same server's 404 floor, interleaved: a cached ``hf_hub_download``
    (one HEAD) and a raw HEAD of the weights (answered from the table: the zoo has 100,000 checkpoints and no
    bytes), and ``snapshot_download`` of steps never fetched before (revision, tree, HEAD + GET per file) of one
    file and of two (the generated config.json and README.md: the synthetic rows have no bytes), whose difference
    is the cost of a file more; then the weights' download through ``/resolve`` against nginx on the same file
    (as ``serve`` does for ``/files``)."""
    return _bench_hub_api(ctx) + _bench_serve_download(ctx, hub=True)


def _bench_hub_api(ctx: Context) -> list[Result]:
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    models, steps = (20, 100) if ctx.quick else (1000, 100)
    root = build_pipeline_zoo(ctx, ctx.folder("hub-api") / "zoo", models, steps, files=False)
    count = 50 if ctx.quick else 300  # requests (or cached downloads) per repetition
    snaps = 4 if ctx.quick else 20  # fresh snapshots per repetition
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    cache, fresh_cache = ctx.folder("hub-cache"), ctx.folder("hub-snapshots")
    repos = [f"zoo/{model_name(m)}" for m in range(0, models, max(1, models // 10))]
    weights = [f"/{repo}/resolve/main/model.safetensors" for repo in repos]
    fresh = iter([(model_name(m), s * STEP_GAP) for s in range(steps) for m in range(models)])
    server = Served(ctx, [ZOO, "-C", str(root), "serve", "--port", str(port)], port, FLOOR_PATH, "zoo-serve-hub")
    try:
        started = time.perf_counter()
        for repo in repos:  # the first builds the snapshot of 100,000 rows; each a cached copy of config.json
            hf_hub_download(repo, "config.json", cache_dir=cache, endpoint=endpoint)
        first = time.perf_counter() - started
        sequential(port, weights, 2 * len(weights), 200, "HEAD")  # warm-up

        def timed(name: str, times: Callable[[], list[float]]) -> Callable[[int], tuple[float, float]]:
            def measure(i: int) -> tuple[float, float]:
                got = times()
                samples.setdefault(name, []).extend(got)
                return statistics.median(got), server.rss
            return measure

        def cached() -> list[float]:
            out = []
            for k in range(count):
                start = time.perf_counter()
                hf_hub_download(repos[k % len(repos)], "config.json", cache_dir=cache, endpoint=endpoint)
                out.append(time.perf_counter() - start)
            return out

        def snapshot(patterns: list[str]) -> Callable[[], list[float]]:
            def times() -> list[float]:
                out = []
                for _ in range(snaps):
                    model, step = next(fresh)
                    start = time.perf_counter()
                    path = snapshot_download(f"zoo/{model}", revision=f"step-{step}", cache_dir=fresh_cache,
                                             endpoint=endpoint, allow_patterns=patterns)
                    out.append(time.perf_counter() - start)
                    if len(list(Path(path).iterdir())) != len(patterns):
                        raise RuntimeError(f"snapshot_download zoo/{model}@step-{step}: {list(Path(path).iterdir())}")
                return out
            return times

        samples: dict[str, list[float]] = {}
        m = side_by_side(ctx, ctx.n(5, 2), {
            "floor": timed("floor", lambda: sequential(port, [FLOOR_PATH], count, 404)),
            "head": timed("head", lambda: sequential(port, weights, count, 200, "HEAD")),
            "cached": timed("cached", cached),
            "one": timed("one", snapshot(["config.json"])),
            "two": timed("two", snapshot(["config.json", "README.md"])),
        })
    finally:
        server.stop()
    return _hub_rows(ctx, m, samples, f"{models * steps:,} checkpoints",
                     Result("hub", f"first hf_hub_download calls ({len(repos)} repos, {models * steps:,} checkpoints: "
                                   "snapshot build)", [first], [server.rss],
                            note=f"server answered {server.started:.2f} s after start"))


def _hub_rows(ctx: Context, m: dict, samples: dict[str, list[float]], label: str, first: Result) -> list[Result]:
    """The rows of ``_bench_hub_api``'s measurements, each judged against its target outside --quick."""
    def note(name: str) -> str:
        times = sorted(samples[name])
        return (f"median {statistics.median(times) * 1000:.2f} ms; {len(times):,} samples; "
                f"p90 {times[int(len(times) * 0.9)] * 1000:.2f} ms")

    floor = f"GET {FLOOR_PATH} (404)"
    cached_ = Result("hub", f"cached hf_hub_download (one HEAD, config.json), {label}", *m["cached"], floor,
                     m["floor"][0], "median ≤ 10 ms", None if ctx.quick else statistics.median(m["cached"][0]) <= 0.01,
                     note=note("cached"))
    # a file more in the same snapshot (HEAD + GET, the client's lock, cache entry and symlink): the difference of
    # the medians of fresh snapshots of two files and of one; the whole call's fixed cost is the one-file row
    extra = statistics.median(samples["two"]) - statistics.median(samples["one"])
    per_file = Result("hub", f"snapshot_download: each file more (2-file minus 1-file fresh snapshots), {label}",
                      [extra], [max(m["two"][1])], target="≤ 10 ms a file", met=None if ctx.quick else extra <= 0.01,
                      note=f"{extra * 1000:.2f} ms a file; two files: {note('two')}")
    return [
        first,
        Result("hub", f"GET {FLOOR_PATH} (404 from the router: the server's floor), one client", *m["floor"],
               note=note("floor")),
        Result("hub", f"HEAD /zoo/M/resolve/main/model.safetensors (from the table, no bytes), {label}", *m["head"],
               floor, m["floor"][0], note=note("head")),
        cached_,
        Result("hub", f"snapshot_download of a step never fetched, 1 file (revision, tree, HEAD + GET), {label}",
               *m["one"], floor, m["floor"][0], note=note("one")),
        per_file,
    ]


# ---- training state: store and load against torch.save / torch.load of the same state ------------------

# One interpreter: an Adam + StepLR state over a model of N floats (two steps taken), then, interleaved, the
# zoo's save_state / load_state and torch.save (+ fsync, as save_state does) / torch.load(weights_only=True)
# of the same optimizer, scheduler and RNG state dicts, on the same disk; each load reads every tensor.
STATE_BENCH = """
import os, random, sys, time
import numpy as np, torch
from checkpoint_zoo.training import capture, load_state, save_state
folder, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = torch.nn.Sequential(torch.nn.Linear(n // 1024, 1024, bias=False))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
sched = torch.optim.lr_scheduler.StepLR(opt, 10)
for _ in range(2):
    model(torch.randn(4, n // 1024)).sum().backward()
    opt.step()
    sched.step()
zoo_file, pt_file = os.path.join(folder, "s.state.safetensors"), os.path.join(folder, "s.pt")
def touch(tensors):  # every byte read, whether the loader copied it or mapped it lazily
    return sum(float(t.double().sum()) for t in tensors)
out = {"zoo_save": [], "zoo_load": [], "pt_save": [], "pt_load": []}
for _ in range(reps):
    t = time.perf_counter()
    save_state(capture(model, opt, sched, step=2), zoo_file)
    out["zoo_save"].append(time.perf_counter() - t)
    t = time.perf_counter()
    with open(pt_file, "wb") as f:
        torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": 2,
                    "rng": {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
                            "python": random.getstate()}}, f)
        f.flush()
        os.fsync(f.fileno())
    out["pt_save"].append(time.perf_counter() - t)
    t = time.perf_counter()
    touch(load_state(zoo_file).tensors.values())
    out["zoo_load"].append(time.perf_counter() - t)
    t = time.perf_counter()
    loaded = torch.load(pt_file, weights_only=True)
    touch([v for entry in loaded["optimizer"]["state"].values() for v in entry.values()]
          + [loaded["rng"]["torch"], loaded["rng"]["numpy"]])
    out["pt_load"].append(time.perf_counter() - t)
print(os.path.getsize(zoo_file), os.path.getsize(pt_file), *(" ".join(map(str, v)) for v in out.values()), sep="|")
"""


def bench_state(ctx: Context) -> list[Result]:
    """Storing and loading a training state (Adam over a model of 16 M floats; 1 M in --quick) against
    torch.save / torch.load(weights_only=True) of the same state dicts, side by side in one process."""
    floats = (1 if ctx.quick else 16) * 1024 * 1024
    folder = ctx.folder("state")
    _, _, out = run_out(ctx, [PYTHON, "-c", STATE_BENCH, str(folder), str(floats), str(ctx.n(7, 3))], cwd=folder)
    zoo_size, pt_size, *columns = out.strip().split("|")
    zs, zl, ps, pl = ([float(x) for x in c.split()] for c in columns)
    size = f"{int(zoo_size) / MIB:.0f} MiB state"
    results = []
    for what, zoo, torch_, base in (("store", zs, ps, "torch.save + fsync"), ("load", zl, pl, "torch.load(weights_only)"),
                                    ("store + load", [a + b for a, b in zip(zs, zl)], [a + b for a, b in zip(ps, pl)],
                                     "torch.save + torch.load")):
        r = Result("state", f"{what} a training state ({size})", zoo, [], base, torch_, "≤ 1.2 × torch",
                   note=f"file {int(zoo_size) / MIB:.1f} MiB vs {int(pt_size) / MIB:.1f} MiB")
        r.met = None if ctx.quick else (r.ratio or 0) <= 1.2
        results.append(r)
    return results


def bench_install(ctx: Context) -> list[Result]:
    """The core install (no torch), as ``scripts/check_core_install.sh --core-only`` makes it from this checkout's
    wheel into a fresh venv: pip's seconds and the venv's bytes, beside the bytes of this interpreter's venv, the
    full install (every extra; a CUDA build of torch). Its time is not measured: unpacking torch alone takes
    minutes. Target: the core is at most 10 % of the full install's bytes."""
    script = PROJECT / "scripts" / "check_core_install.sh"
    full = int(subprocess.run(["du", "-sb", sys.prefix], capture_output=True, text=True, check=True).stdout.split()[0])
    seconds, core = [], []
    for _ in range(ctx.n(3, 1)):
        figures = dict(kv.split("=") for kv in run_out(ctx, ["bash", str(script), "--core-only"])[2].split())
        seconds.append(float(figures["seconds"]))
        core.append(int(figures["core_bytes"]))
    share = max(core) / full
    result = Result("install", "pip install of the core (wheel + -c constraints.txt, warm pip cache) into a fresh venv",
                    seconds, [], target="core ≤ 10 % of the full install's bytes",
                    met=None if ctx.quick else share <= 0.10,
                    note=f"core venv {max(core) / MIB:.0f} MiB vs the full {Path(sys.prefix).name} {full / MIB:,.0f} MiB: "
                         f"{100 * share:.1f} %")
    return [result]


BENCHMARKS: dict[str, Callable[[Context], list[Result]]] = {
    "help": bench_help,
    "ls": bench_ls,
    "add": bench_add,
    "noop": bench_noop,
    "plus1": bench_plus1,
    "scale": bench_scale,
    "scale-curve": bench_scale_curve,
    "s3": bench_s3,
    "transfer": bench_transfer,
    "versions": bench_versions,
    "release": bench_release,
    "fit": bench_fit,
    "bulk": bench_bulk,
    "executors": bench_executors,
    "serve": bench_serve,
    "hub": bench_hub,
    "state": bench_state,
    "install": bench_install,
}


def machine() -> dict[str, str]:
    """CPU, cores, RAM and tool versions, to read the figures against."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    # the code measured is this checkout's working tree (an editable install), committed or not
    head = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "unknown"
    src = hashlib.sha256()
    for f in sorted((PROJECT / "src" / "checkpoint_zoo").rglob("*")):
        if f.is_file() and f.suffix in {".py", ".j2"}:
            src.update(f.relative_to(PROJECT).as_posix().encode() + b"\0" + f.read_bytes())
    return {"cpu": cpu, "cores": str(os.cpu_count()), "ram_gib": f"{mem_kb / MIB:.1f}",
            "commit": head, "src_sha256": src.hexdigest()[:12],
            "python": platform.python_version(), "dvc": version("dvc"), "pandera": version("pandera"),
            "pandas": version("pandas")}


def child_env(tmp: Path) -> dict[str, str]:
    """The children's environment: own HOME, git identity, caches; no analytics, no progress bars."""
    home = tmp / "home"
    home.mkdir()
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[user]\n\tname = Zoo Bench\n\temail = bench@example.invalid\n[init]\n\tdefaultBranch = main\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "DVC_", "GIT_"))}
    env.update(
        HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), ZOO_CACHE_DIR=str(home / ".cache" / "zoo"),
        GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1", DVC_NO_ANALYTICS="1", ZOO_NO_PROGRESS="1",
        # dvc.yaml's stages run `python -m checkpoint_zoo.pipeline …`: that must be this venv's python
        PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        DVC_SITE_CACHE_DIR=str(home / "dvc-site"), DVC_GLOBAL_CONFIG_DIR=str(home / "dvc-global"),
        DVC_SYSTEM_CONFIG_DIR=str(home / "dvc-system"),
    )
    return env


def print_report(results: list[Result], info: dict[str, str]) -> None:
    """The results table and the machine line."""
    headers = ["benchmark", "what", "median s", "baseline median s", "ratio", "target", "met", "peak RSS MB", "note"]
    rows = [[r.bench, r.what, f"{r.median:.3f}",
             f"{r.baseline_median:.3f} ({r.baseline})" if r.baseline_samples else "",
             f"{r.ratio:.2f}" if r.ratio is not None else "", r.target,
             "" if r.met is None else "yes" if r.met else "NO", f"{max(r.rss_mb):.0f}" if r.rss_mb else "",
             r.note] for r in results]
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    for line in [headers, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    print("\nmachine: " + ", ".join(f"{k} {v}" for k, v in info.items()))


def markdown_report(results: list[Result], info: dict[str, str]) -> str:
    """The table for README's Performance section: ratio and its baseline first."""
    lines = ["| benchmark | what | ratio | baseline | median s | target | met | peak RSS MB | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        cells = [r.bench, r.what, f"**{r.ratio:.2f}**" if r.ratio is not None else "",
                 f"{r.baseline} ({r.baseline_median:.3f} s)" if r.baseline_samples else "", f"{r.median:.3f}",
                 r.target, "" if r.met is None else "yes" if r.met else "**NO**",
                 f"{max(r.rss_mb):.0f}" if r.rss_mb else "", r.note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines.append("Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ".")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks in a temp folder, print the table, optionally write JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few repetitions (under 2 minutes)")
    p.add_argument("--only", action="append", choices=list(BENCHMARKS), metavar="NAME",
                   help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    p.add_argument("--skip", action="append", choices=list(BENCHMARKS), default=[], metavar="NAME",
                   help="leave this benchmark out (repeatable)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write every figure and sample here")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write the table as Markdown here (README)")
    p.add_argument("--reps", type=int, metavar="N", help="repetitions per measurement (default: per benchmark)")
    args = p.parse_args(argv)
    if args.reps is not None and args.reps < 1:
        p.error("--reps must be at least 1")
    if not Path(ZOO).exists():
        p.error(f"{ZOO}: no zoo console script beside this interpreter; run with the venv's python")
    info = machine()
    results: list[Result] = []
    failed: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        ctx = Context(Path(tmp), child_env(Path(tmp)), args.quick, args.reps)
        info["rss_floor_mb"] = f"{run(ctx, ['true'])[1]:.0f}"
        for name in [n for n in args.only or BENCHMARKS if n not in args.skip]:
            print(f"running {name} …", file=sys.stderr, flush=True)
            try:
                results += BENCHMARKS[name](ctx)
            except Exception:  # report it, keep the figures of the other benchmarks
                import traceback

                traceback.print_exc()
                failed.append(name)
    print_report(results, info)
    print(f"mode: {'quick' if args.quick else 'full'}, total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "quick": args.quick,
                                         "results": [r.to_dict() for r in results], "failed": failed}, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown_report(results, info))
    if failed:
        print(f"FAILED: {', '.join(failed)} (traceback above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
