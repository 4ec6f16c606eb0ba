"""Benchmarks of the zoo's local commands (run through ``scripts/bench.py``): ``--help``, ``ls``, ``add`` and
its fit check, bulk add, one add into a big zoo, pull in a fresh clone, versions, releases, training state and
the core install. Each ``bench_<name>(ctx)`` returns the ``bench.Result`` rows of one benchmark."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import (
    DVC,
    MIB,
    PROJECT,
    PYTHON,
    ZOO,
    Context,
    Result,
    new_zoo,
    register_vector_arch,
    run,
    run_out,
    side_by_side,
    write_safetensors,
)

from checkpoint_zoo.catalog import rules


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


