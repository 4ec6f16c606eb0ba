"""Benchmarks for the targets of DESIGN.md section 8, each against a baseline run side by side.

Every figure is the median over several repetitions; the verdict is the ratio to a baseline measured
in the same run (interleaved with it), never an absolute time. Times and peak memory (max RSS) come
from ``os.wait4`` in a small launcher process. Usage::

    python scripts/bench.py [--quick] [--only NAME] [--json FILE] [--reps N]

Add a benchmark by writing ``bench_<name>(ctx) -> list[Result]`` and listing it in ``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
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

from checkpoint_zoo import rules

PYTHON = sys.executable
ZOO = str(Path(sys.executable).with_name("zoo"))
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
                "ratio": self.ratio, "peak_rss_mb": max(self.rss_mb)}


@dataclass
class Context:
    """Where and how benchmarks run: a temp folder, the children's environment, sizes and repetitions."""

    tmp: Path
    env: dict[str, str]
    quick: bool
    reps: int | None

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
        stdout: int | None = subprocess.DEVNULL) -> tuple[float, float]:
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
    """An empty zoo made by ``checkpoint_zoo.api.init`` in a child with the benchmark environment."""
    run(ctx, [PYTHON, "-c", "import sys; from checkpoint_zoo.api import init; init(sys.argv[1])", str(path)])
    return path


def bench_help(ctx: Context) -> list[Result]:
    """``zoo --help`` against starting the same interpreter with nothing to do."""
    commands = {
        "pass": lambda i: run(ctx, [PYTHON, "-c", "pass"]),
        "help": lambda i: run(ctx, [ZOO, "--help"]),
    }
    side_by_side(ctx, 1, commands)  # warm-up: byte-code and page cache
    m = side_by_side(ctx, ctx.n(10, 5), commands)
    base = m["pass"][0]
    return [
        Result("help", "python -c pass", *m["pass"]),
        Result("help", "zoo --help", *m["help"], "python -c pass", base, "≤ 0.3 s"),
    ]


def write_table(path: Path, models: int, steps: int) -> None:
    """A valid synthetic table of models × steps rows, sorted by (model, step)."""
    tasks = list(rules.TASKS)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(rules.COLUMNS)
        for m in range(models):
            model = f"model-{m:04d}"
            arch, task = rules.ARCHS[m % len(rules.ARCHS)], tasks[m % len(tasks)]
            for s in range(steps):
                step = s * 100
                row = {
                    "model": model, "step": step, "epoch": f"{s / 10:.1f}", "format": "safetensors",
                    "path": rules.checkpoint_path(model, step), "size_bytes": 4096 + m, "dtype": "F32",
                    "sha256": hashlib.sha256(f"{model}@{step}".encode()).hexdigest(), "num_params": 1000 + m,
                    "arch": arch, "task": task, "dataset": "digits", "license": rules.LICENSES[m % 3],
                    "parent": "", "tags": "bench;synthetic" if s % 2 else "", "description": "synthetic row",
                    "created": "2026-01-01T00:00:00Z", "source": "scripts/bench.py",
                    "reported_metric": "accuracy" if s % 10 == 0 else "",
                    "reported_value": f"{s / steps:.4f}" if s % 10 == 0 else "",
                }
                w.writerow([row[c] for c in rules.COLUMNS])


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
        "cold": ls(["ls"]),
        "warm": ls(["ls"]),
        "where": ls(where),
    }
    side_by_side(ctx, 1, {"cold": ls(["ls"], "warmup")})  # warm-up: imports and the table in page cache
    m = side_by_side(ctx, ctx.n(5, 3), commands)
    base = m["pass"][0]
    rows = f"{models * steps:,} rows"
    return [
        Result("ls", "python -c pass", *m["pass"]),
        Result("ls", f"zoo ls, cold ({rows})", *m["cold"], "python -c pass", base, "(validates once)"),
        Result("ls", f"zoo ls, warm ({rows})", *m["warm"], "python -c pass", base, "≤ 1 s"),
        Result("ls", "zoo ls --all-steps --where 'step >= 500' --format csv", *m["where"], "python -c pass", base,
               "≤ 1 s"),
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
        try:
            return timed([ZOO, "add", str(src), "--model", "big", "--step", "1", "--arch", "mlp", "--task",
                          "image-classification", "--dataset", "digits", "--license", "MIT"], cwd=root)
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
        Result("add", f"zoo add {label}", *m["zoo"], "dvc add", m["dvc"][0], "≤ 1.5 × dvc add"),
    ]


BENCHMARKS: dict[str, Callable[[Context], list[Result]]] = {
    "help": bench_help,
    "ls": bench_ls,
    "add": bench_add,
}


def machine() -> dict[str, str]:
    """CPU, cores, RAM and tool versions, to read the figures against."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": str(os.cpu_count()), "ram_gib": f"{mem_kb / MIB:.1f}",
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
        DVC_SITE_CACHE_DIR=str(home / "dvc-site"), DVC_GLOBAL_CONFIG_DIR=str(home / "dvc-global"),
        DVC_SYSTEM_CONFIG_DIR=str(home / "dvc-system"),
    )
    return env


def print_report(results: list[Result], info: dict[str, str]) -> None:
    """The results table and the machine line."""
    headers = ["benchmark", "what", "median s", "baseline median s", "ratio", "target", "peak RSS MB"]
    rows = [[r.bench, r.what, f"{r.median:.3f}",
             f"{r.baseline_median:.3f} ({r.baseline})" if r.baseline_samples else "",
             f"{r.ratio:.2f}" if r.ratio is not None else "", r.target, f"{max(r.rss_mb):.0f}"] for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    for line in [headers, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    print("\nmachine: " + ", ".join(f"{k} {v}" for k, v in info.items()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks in a temp folder, print the table, optionally write JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few repetitions (under 2 minutes)")
    p.add_argument("--only", action="append", choices=list(BENCHMARKS), metavar="NAME",
                   help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    p.add_argument("--json", type=Path, metavar="FILE", help="write every figure and sample here")
    p.add_argument("--reps", type=int, metavar="N", help="repetitions per measurement (default: per benchmark)")
    args = p.parse_args(argv)
    if args.reps is not None and args.reps < 1:
        p.error("--reps must be at least 1")
    if not Path(ZOO).exists():
        p.error(f"{ZOO}: no zoo console script beside this interpreter; run with the venv's python")
    info = machine()
    results: list[Result] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        ctx = Context(Path(tmp), child_env(Path(tmp)), args.quick, args.reps)
        info["rss_floor_mb"] = f"{run(ctx, ['true'])[1]:.0f}"
        for name in args.only or BENCHMARKS:
            print(f"running {name} …", file=sys.stderr, flush=True)
            results += BENCHMARKS[name](ctx)
    print_report(results, info)
    print(f"mode: {'quick' if args.quick else 'full'}, total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "quick": args.quick,
                                         "results": [r.to_dict() for r in results]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
