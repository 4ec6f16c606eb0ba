"""Hostile inputs, round three, class 4: a killed ``--move`` never loses a checkpoint.

Every writing command journals each step before it happens (workspace/transaction.py);
``ZOO_TEST_KILL_AT_STEP=N`` makes the real ``zoo`` process SIGKILL itself right after its N-th journal
write, so these tests stop a single and a bulk ``--move`` at every step in turn, let the next command
recover, and check that each checkpoint is either back at its source with its bytes or in the zoo
with its bytes and its row — never neither.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ZOO_BIN, add_args, git, run_zoo, write_safetensors

TABLE = "zoo/checkpoints.csv"
INCOMING = ".dvc/tmp/zoo/incoming"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """An empty zoo with one committed checkpoint (alpha@1), copied for every run."""
    from conftest import PROJECT, isolate

    from checkpoint_zoo.api import init

    base = tmp_path_factory.mktemp("move")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = base / "zoo"
        init(root, remote_url=str(base / "remote"), registries_from=PROJECT)
        r = run_zoo(*add_args(write_safetensors(base / "a.safetensors", seed=1), "alpha", "1"), cwd=root)
        assert r.code == 0, r.err
        git("commit", "-qm", "alpha", cwd=root)
    return root


def _copy(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    return dest


def _rows(root: Path) -> dict[str, dict[str, str]]:
    rows = csv.DictReader(io.StringIO((root / TABLE).read_text()))
    return {f"{r['model']}@{r['step']}": r for r in rows}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _nothing_lost(root: Path, sources: dict[Path, tuple[str, str]]) -> None:
    """Each source (ref, sha256) is back where it was with its bytes, or in the table and the zoo with them."""
    from checkpoint_zoo.catalog import table

    table.load((root / TABLE).read_bytes())  # the table parses and validates
    rows = _rows(root)
    for src, (ref, sha) in sources.items():
        if ref in rows:
            assert rows[ref]["sha256"] == sha, ref
            assert _sha(root / rows[ref]["path"]) == sha, f"{ref}: listed, but its bytes in the zoo are wrong"
        else:
            assert src.is_file(), f"{ref}: neither in the table nor back at {src}: lost"
            assert _sha(src) == sha, f"{src}: put back with other bytes"


def _recover(root: Path, tmp: Path) -> None:
    """The next writing command (an add of another model) recovers what the killed one left."""
    r = run_zoo(*add_args(write_safetensors(tmp / "other.safetensors", seed=99), "other", "1"), cwd=root)
    assert r.code == 0, r.err
    leftover = sorted(p.name for p in (root / INCOMING).iterdir()) if (root / INCOMING).exists() else []
    assert leftover == [], leftover


def test_single_move_killed_at_every_step(template, tmp_path):
    completed = False
    for step in range(1, 15):
        run = tmp_path / f"run{step}"
        root = _copy(template, run / "zoo")
        src = write_safetensors(run / "in" / "w.safetensors", seed=7)
        sha = _sha(src)
        r = run_zoo(*add_args(src, "beta", "5", "--move"), cwd=root, env={"ZOO_TEST_KILL_AT_STEP": str(step)})
        if r.code == 0:
            assert "added beta@5" in r.out and not src.exists()
            completed = True
            break
        assert r.code == -signal.SIGKILL, (step, r)
        _recover(root, run)
        _nothing_lost(root, {src: ("beta@5", sha)})
        if "beta@5" not in _rows(root):  # put back: the same add now goes through
            r = run_zoo(*add_args(src, "beta", "5", "--move"), cwd=root)
            assert r.code == 0 and not src.exists(), r.err
        assert _sha(root / _rows(root)["beta@5"]["path"]) == sha
        r = run_zoo("verify", "--all", cwd=root)
        assert r.code == 0, r.out + r.err
    assert completed, "the add never ran to its end: the step loop is too short"


def _manifest(run: Path, n: int) -> tuple[Path, dict[Path, tuple[str, str]]]:
    sources = {}
    lines = ["file,model,step"]
    for i in range(n):
        f = write_safetensors(run / "in" / f"w{i}.safetensors", seed=100 + i)
        sources[f] = (f"gamma@{i + 1}", _sha(f))
        lines.append(f"{f},gamma,{i + 1}")
    manifest = run / "m.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, sources


BULK_ARGS = ("--arch", "linear", "--task", "tabular-classification", "--dataset", "wine", "--license", "MIT", "--move")


def test_bulk_move_killed_at_every_step(template, tmp_path):
    completed = False
    for step in range(1, 15):
        run = tmp_path / f"run{step}"
        root = _copy(template, run / "zoo")
        manifest, sources = _manifest(run, 12)
        r = run_zoo("add", "--from", str(manifest), *BULK_ARGS, cwd=root, env={"ZOO_TEST_KILL_AT_STEP": str(step)})
        if r.code == 0:
            assert all(not s.exists() for s in sources) and len(_rows(root)) == 13
            completed = True
            break
        assert r.code == -signal.SIGKILL, (step, r)
        _recover(root, run)
        _nothing_lost(root, sources)
        listed = [ref for ref, _ in sources.values() if ref in _rows(root)]
        assert len(listed) in (0, len(sources)), "a batch is all or nothing"
        if not listed:  # every file back at its source: the same command now goes through
            r = run_zoo("add", "--from", str(manifest), *BULK_ARGS, cwd=root)
            assert r.code == 0, r.err
        _nothing_lost(root, sources)
    assert completed, "the batch never ran to its end: the step loop is too short"


def test_bulk_move_killed_mid_copy_puts_every_file_back(template, tmp_path):
    """A real kill while the files are being moved in (between journal writes)."""
    root = _copy(template, tmp_path / "zoo")
    manifest, sources = _manifest(tmp_path, 150)
    proc = subprocess.Popen([str(ZOO_BIN), "add", "--from", str(manifest), *BULK_ARGS], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    incoming = root / INCOMING
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if incoming.is_dir() and sum(1 for p in incoming.iterdir() if p.suffix == ".safetensors") >= 50:
            break
        time.sleep(0.002)
    killed = proc.poll() is None
    proc.kill()
    proc.communicate()
    _recover(root, tmp_path)
    _nothing_lost(root, sources)
    if killed:
        assert sum(1 for s in sources if s.exists()) in (0, len(sources))


def test_move_of_a_file_inside_the_zoo_is_refused(template, tmp_path):
    root = _copy(template, tmp_path / "zoo")
    tracked = root / _rows(root)["alpha@1"]["path"]
    before = tracked.read_bytes()
    for src in (tracked, root / "zoo" / "checkpoints" / "alpha" / ".." / "alpha" / tracked.name):
        r = run_zoo(*add_args(src, "beta", "1", "--move"), cwd=root)
        assert r.code != 0 and "inside the zoo" in r.err, r
    obj = next(p for p in (root / ".dvc" / "cache").rglob("*") if p.is_file())
    r = run_zoo(*add_args(obj, "beta", "1", "--move"), cwd=root)
    assert r.code != 0 and "inside the zoo" in r.err, r
    assert tracked.read_bytes() == before and "beta@1" not in _rows(root)
