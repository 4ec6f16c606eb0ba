"""``zoo init``: a team's own zoo from the installed package, with a pipeline that runs anywhere."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT, git, ran_stages, run_zoo, snapshot, write_safetensors

BIN = Path(sys.executable).parent


def _dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # the stages run `python -m …`
    return subprocess.run([str(BIN / "dvc"), *args], cwd=cwd, capture_output=True, text=True, env=env)


def test_a_new_zoo_adds_evaluates_commits_and_a_clone_reruns_nothing(tmp_path):
    # an existing git repository with its own files: they stay as they are, uncommitted
    root = tmp_path / "team-zoo"
    root.mkdir()
    git("init", "-q", cwd=root)
    (root / "notes.txt").write_text("ours\n")
    r = run_zoo("init", str(root), "--remote", str(tmp_path / "remote"), "--reference", cwd=tmp_path)
    assert r.code == 0, r.err
    assert git("status", "--porcelain", cwd=root).strip() == "?? notes.txt"
    assert {"dvc.yaml", "params.yaml", "README.md", "schemas", "conf", "zoo_code"} <= {p.name for p in root.iterdir()}
    assert not any("src/" in line for line in (root / "dvc.yaml").read_text().splitlines())
    assert "package:" in (root / "params.yaml").read_text()

    f = write_safetensors(tmp_path / "w.safetensors", seed=4)
    r = run_zoo("add", str(f), "--model=lin", "--step=1", "--arch=linear", "--task=tabular-classification",
                "--dataset=wine", "--license=MIT", cwd=root)
    assert r.code == 0, r.err
    repro = _dvc("repro", cwd=root)
    assert repro.returncode == 0, repro.stdout + repro.stderr
    assert (root / "zoo/metrics/evaluations/lin.json").is_file() and (root / "site/index.html").is_file()
    assert run_zoo("push", cwd=root).code == 0
    r = run_zoo("commit", "-m", "Add lin@1", cwd=root)
    assert r.code == 0, r.err
    # every file the stages wrote is committed or ignored: nothing of the pipeline is left over
    assert git("status", "--porcelain", cwd=root).strip() == "?? notes.txt"

    clone = tmp_path / "clone"
    git("clone", "-q", str(root), str(clone), cwd=tmp_path)
    again = _dvc("repro", cwd=clone)
    # nothing but the always-changed registry stage (it reads the tags and finds its file unchanged)
    assert again.returncode == 0 and ran_stages(again.stdout) == ["registry"], again.stdout
    assert git("status", "--porcelain", cwd=clone).strip() == ""
    assert run_zoo("pull", "lin@1", cwd=clone).code == 0


def test_init_inside_a_zoo_is_refused_with_nothing_changed(small_zoo):
    before = snapshot(small_zoo)
    r = run_zoo("init", str(small_zoo / "zoo"), cwd=small_zoo)
    assert r.code == 1 and "inside the zoo" in r.err and len(r.err.strip().splitlines()) == 1
    assert snapshot(small_zoo) == before


def test_the_package_defaults_are_this_repositorys_conf():
    """The wheel carries conf/ for `zoo init`: it must not drift from what this repository runs."""
    defaults = PROJECT / "src/checkpoint_zoo/defaults/conf"
    for group in ("task", "eval", "executor", "run", "index"):
        cmp = filecmp.dircmp(PROJECT / "conf" / group, defaults / group)
        assert not (cmp.left_only or cmp.right_only or cmp.diff_files), (group, cmp.left_only, cmp.right_only,
                                                                         cmp.diff_files)
    for group in ("arch", "dataset"):
        cmp = filecmp.dircmp(PROJECT / "conf" / group, defaults / "reference" / group)
        assert not (cmp.left_only or cmp.right_only or cmp.diff_files), (group, cmp.diff_files)


def test_doctor_names_what_a_clone_needs_once_and_then_nothing(tmp_path):
    import csv
    import io

    root = tmp_path / "z"
    assert run_zoo("init", str(root), cwd=tmp_path).code == 0  # no remote yet
    clone = tmp_path / "clone"
    git("clone", "-q", str(root), str(clone), cwd=tmp_path)  # a clone has no merge drivers
    table = clone / "zoo/checkpoints.csv"
    header = next(csv.reader(io.StringIO(table.read_text())))
    table.write_text(",".join(c for c in header if c not in ("state_sha256", "files")) + "\n")  # an older table
    run_conf = clone / "conf/run/default.yaml"
    run_conf.write_text(run_conf.read_text().replace("batch_size: 256", "batch_size: 128"))
    r = run_zoo("doctor", cwd=clone)
    assert r.code == 1, r.out + r.err
    for says in ("no default DVC remote", "zoo merge-setup", "written by an older version",
                 "python -m checkpoint_zoo.pipeline compose"):
        assert says in r.out, (says, r.out)
    assert run_zoo("remote", "add", "store", str(tmp_path / "remote"), "--default", cwd=clone).code == 0
    assert run_zoo("merge-setup", cwd=clone).code == 0
    git("checkout", "--", "zoo/checkpoints.csv", "conf/run/default.yaml", cwd=clone)
    r = run_zoo("doctor", cwd=clone)
    assert r.code == 0 and r.out.strip() == "nothing to do", r.out + r.err
