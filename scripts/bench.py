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

The benchmarks live in ``bench_cli.py`` (local commands), ``bench_pipeline.py`` (the DVC pipeline and its
executors) and ``bench_remote.py`` (``zoo serve``, the Hub clients, S3), which import this file's helpers;
add one by writing ``bench_<name>(ctx) -> list[Result]`` in one of them and listing it in ``BENCHMARKS``.

The pipeline benchmarks (``noop``, ``plus1``, ``scale``) run on real git + DVC zoos built from a clone
of this repository (its dvc.yaml, conf/, params.yaml and src/, which dvc.yaml lists as deps), with
the reference checkpoints dropped and N tiny but real ``linear`` checkpoints for wine written
straight into ``zoo/checkpoints/<model>/`` (one ``dvc add`` of all model folders, table rows with
the files' real sha256/size/params/dtype); see ``build_pipeline_zoo``. ``--quick`` uses small
sizes, and its figures are printed but not judged against the targets.
"""

from __future__ import annotations

import argparse
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
    """A no-op repro runs no stage but ``registry`` (always changed: it reads the git tags, and rewrites nothing
    when no release or stage changed)."""
    if [s for s in re.findall(r"^Running stage '([^']+)'", out, re.M) if s != "registry"]:
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


def load_script(name: str):
    """Another script of scripts/ as a module. Those scripts import this one as ``bench``: when this file runs
    as ``__main__``, it is registered under that name first, so they share its classes and state."""
    import importlib

    sys.modules.setdefault("bench", sys.modules[__name__])
    if str(PROJECT / "scripts") not in sys.path:
        sys.path.insert(0, str(PROJECT / "scripts"))
    return importlib.import_module(name)


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


# name -> (the script of scripts/ that holds it, its function): a benchmark's module is imported only when it runs
BENCHMARKS: dict[str, tuple[str, str]] = {
    "help": ("bench_cli", "bench_help"),
    "ls": ("bench_cli", "bench_ls"),
    "add": ("bench_cli", "bench_add"),
    "noop": ("bench_pipeline", "bench_noop"),
    "plus1": ("bench_pipeline", "bench_plus1"),
    "scale": ("bench_pipeline", "bench_scale"),
    "scale-curve": ("bench_pipeline", "bench_scale_curve"),
    "s3": ("bench_remote", "bench_s3"),
    "transfer": ("bench_remote", "bench_transfer"),
    "versions": ("bench_cli", "bench_versions"),
    "release": ("bench_cli", "bench_release"),
    "fit": ("bench_cli", "bench_fit"),
    "bulk": ("bench_cli", "bench_bulk"),
    "executors": ("bench_pipeline", "bench_executors"),
    "serve": ("bench_remote", "bench_serve"),
    "hub": ("bench_remote", "bench_hub"),
    "state": ("bench_cli", "bench_state"),
    "install": ("bench_cli", "bench_install"),
}


def benchmark(name: str) -> Callable[[Context], list[Result]]:
    """The function of benchmark ``name``, from its script."""
    module, function = BENCHMARKS[name]
    return getattr(load_script(module), function)


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
                results += benchmark(name)(ctx)
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
