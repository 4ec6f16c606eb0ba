"""Shared fixtures: isolated HOME and git config, real git + DVC zoos in temp folders, the real `zoo` entry point."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

PROJECT = Path(__file__).resolve().parents[1]
ZOO_BIN = Path(sys.executable).with_name("zoo")


def isolate(mp: pytest.MonkeyPatch, home: Path) -> None:
    """Give the environment a HOME, cache and git identity of its own (GTO-style isolation)."""
    home.mkdir(parents=True, exist_ok=True)
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[user]\n\tname = Zoo Test\n\temail = zoo@example.invalid\n[init]\n\tdefaultBranch = main\n")
    for key, value in {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
                       "ZOO_CACHE_DIR": str(home / ".cache" / "checkpoint-zoo"), "GIT_CONFIG_GLOBAL": str(gitconfig),
                       "GIT_CONFIG_NOSYSTEM": "1", "DVC_NO_ANALYTICS": "1", "ZOO_NO_PROGRESS": "1"}.items():
        mp.setenv(key, value)
    mp.delenv("ZOO_REPO", raising=False)


@pytest.fixture(scope="session")
def arch_cache(tmp_path_factory) -> Path:
    """One architecture cache for the session: its entries are keyed by content (config, library versions,
    code), and building an architecture on the meta device and probing its input costs seconds the first
    time (torch loads its meta kernels), which every test's own HOME would pay again."""
    return tmp_path_factory.mktemp("arch-cache")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch, arch_cache):
    """Every test runs isolated (``isolate``) in a HOME of its own."""
    home = tmp_path_factory.mktemp("home")
    isolate(monkeypatch, home)
    monkeypatch.setenv("ZOO_ARCH_CACHE_DIR", str(arch_cache))
    yield home


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_zoo(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
    """Run the installed `zoo` console script."""
    proc = subprocess.run([str(ZOO_BIN), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)


def write_safetensors(path: Path, seed: int = 0, shapes: dict[str, tuple[int, ...]] | None = None) -> Path:
    """A small real safetensors file (by default the shapes of conf/arch/linear.yaml: wine's 13 features)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    shapes = shapes or {"fc.weight": (3, 13), "fc.bias": (3,), "norm.mean": (13,), "norm.std": (13,)}
    tensors = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    if "norm.std" in tensors:
        tensors["norm.std"] = np.abs(tensors["norm.std"]) + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def register_arch(root: Path, name: str, target: str = "torch.nn.Linear", **kwargs: object) -> str:
    """Declare ``conf/arch/<name>.yaml`` in a test zoo (e.g. a bias-free ``torch.nn.Linear`` whose one
    tensor, ``weight``, has whatever shape a test's file needs); returns the name."""
    import yaml

    path = root / "conf" / "arch" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"_target_": target, **kwargs}, sort_keys=False))
    if target == "torch.nn.Linear":  # a holder of shapes, no model of wine: this zoo's wine declares no input shape
        undeclare_input(root)
    return name


def undeclare_input(root: Path, dataset: str = "wine") -> None:
    """Drop the input shape ``dataset`` declares in this test zoo, so that ``zoo add`` does not probe an
    architecture that is a stand-in (a holder of shapes, a tiny BERT) with it."""
    import yaml

    path = root / "conf" / "dataset" / f"{dataset}.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["input"].pop("shape", None)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of a zoo outside .git and the DVC cache/tmp, for 'nothing changed' assertions."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith((".git/", ".dvc/tmp", ".dvc/cache")) or not p.is_file():
            continue
        out[rel] = p.read_bytes()
    return out


ADD_ARGS = ("--arch", "linear", "--task", "tabular-classification", "--dataset", "wine", "--license", "MIT")


def add_args(path: Path | str, model: str = "gamma", step: str = "1", *extra: str) -> tuple[str, ...]:
    """``zoo add`` arguments for a linear wine checkpoint."""
    return ("add", str(path), f"--model={model}", f"--step={step}", *ADD_ARGS, *extra)


def zoo_of_small_checkpoints(base: Path, count: int) -> Path:
    """A committed zoo at ``base/zoo`` of ``count`` small checkpoints many@0.. in one model folder, with a local
    remote and no S3 one (the template of the S3 transfer tests' modules)."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.api import init

    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = base / "zoo"
        init(root, remote_url=str(base / "local-remote"), registries_from=PROJECT)
        with Zoo(root) as zoo:
            for step in range(count):
                zoo.add(write_safetensors(base / f"{step}.safetensors", seed=step), model="many", step=step,
                        arch="linear", task="tabular-classification", dataset="wine", license="MIT")
        git("add", "-A", cwd=root)
        git("commit", "-qm", "many small checkpoints", cwd=root)
    return root


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server (tests/s3_server.py) on 127.0.0.1, a free port, bucket `zoo`: one per test module."""
    from s3_server import MotoServer

    server = MotoServer(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def empty_zoo(tmp_path) -> Path:
    """A fresh git + DVC zoo with a local directory remote and one commit."""
    from checkpoint_zoo.api import init

    root = tmp_path / "zoo"
    init(root, remote_url=str(tmp_path / "remote"), registries_from=PROJECT)
    git("commit", "-qm", "empty zoo", cwd=root)
    return root


@pytest.fixture
def small_zoo(empty_zoo, tmp_path) -> Path:
    """Two models, three checkpoints, committed and pushed to the local remote."""
    from checkpoint_zoo import Zoo

    zoo = Zoo(empty_zoo)
    for model, step, seed in (("alpha", 10, 1), ("alpha", 20, 2), ("beta", 5, 3)):
        f = write_safetensors(tmp_path / "in" / f"{model}-{step}.safetensors", seed=seed)
        zoo.add(f, model=model, step=step, arch="linear", task="tabular-classification", dataset="wine",
                license="MIT", tags=("test",) if model == "alpha" else (), description=f"{model} test")
    zoo.push()
    zoo.close()
    git("commit", "-qm", "add checkpoints", cwd=empty_zoo)
    return empty_zoo


@pytest.fixture(scope="session")
def reference_clone(tmp_path_factory) -> Path:
    """A git clone of this project (its reference zoo) with nothing pulled."""
    dest = tmp_path_factory.mktemp("ref") / "clone"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(dest)], check=True)
    return dest


@pytest.fixture
def fresh_clone(small_zoo, tmp_path) -> Path:
    """A second clone of ``small_zoo`` with no checkpoint bytes, sharing its remote."""
    dest = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(small_zoo), str(dest)], check=True)
    shutil.rmtree(dest / ".dvc" / "cache", ignore_errors=True)
    return dest



def reference_rows() -> list[dict[str, str]]:
    """The reference zoo's table rows, as committed: the counts the pipeline prints are derived from it."""
    import csv
    import io

    return list(csv.DictReader(io.StringIO((PROJECT / "zoo/checkpoints.csv").read_text())))

# ---- the pipeline on a clone of this repository -------------------------------------------------

VENV_BIN = str(Path(sys.executable).parent)


def sh(*cmd: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run with the venv first on PATH, as README's commands do (dvc.yaml runs `python -m ...`)."""
    env = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def repro(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`dvc repro` in ``cwd``."""
    return sh(sys.executable, "-m", "dvc", "repro", *args, cwd=cwd, check=check)


def ran_stages(repro_stdout: str) -> list[str]:
    """The stages a `dvc repro` ran, in order. `registry` (always_changed: it reads the git tags) runs every time."""
    return re.findall(r"^Running stage '([^']+)'", repro_stdout, re.M)


def evaluations(root: Path) -> dict[str, bytes]:
    """The evaluation files of a zoo, by name."""
    return {p.name: p.read_bytes() for p in sorted((root / "zoo/metrics/evaluations").glob("*.json"))}


@pytest.fixture(scope="session")
def pipeline_base(tmp_path_factory) -> Path:
    """A clone of this repo with every reference checkpoint pulled and the pipeline run once (read-only:
    tests work on ``pipeline_clone``)."""
    dest = tmp_path_factory.mktemp("pipe") / "base"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(dest)], check=True)
    sh(sys.executable, "-m", "dvc", "pull", "-q", cwd=dest)
    repro(dest)
    return dest


@pytest.fixture
def pipeline_clone(pipeline_base, tmp_path) -> Path:
    """A private copy of ``pipeline_base``."""
    dest = tmp_path / "zoo"
    shutil.copytree(pipeline_base, dest, symlinks=True)
    return dest


def kill_when(proc: subprocess.Popen, condition, after: float = 0.0, limit: float = 120) -> bool:
    """SIGKILL ``proc`` once ``condition()`` holds (plus ``after`` seconds); False if it finished first."""
    deadline = time.monotonic() + limit
    while proc.poll() is None and not condition():
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the condition never came true")
        time.sleep(0.001)
    if after and proc.poll() is None:
        time.sleep(after)
    if proc.poll() is not None:
        proc.communicate()
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    return True


# ---- a real headless browser (Debian's chromium + chromedriver) -----------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        pytest.fail("Debian's chromium and chromium-driver are required: apt-get install chromium chromium-driver "
                    "(scripts/install.sh --browser does it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,900"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()
