"""Teamwork through git: contributors on branches each add, `dvc repro`, `zoo push` and `zoo commit`, then
merge with plain `git merge`. Real clones of this repository sharing a bare origin; the DVC remote is the
in-repo one (`.dvc-remote/`), so checkpoints reach teammates through git. README's contributor recipe is
what these tests run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT, ZOO_BIN, kill_when, repro, sh, write_safetensors

ADD = ("--arch", "linear", "--task", "tabular-classification", "--dataset", "wine", "--license", "MIT")
STAGES = ("validate", "evaluate", "index")


def zoo(root: Path, *args: str, code: int = 0) -> str:
    r = sh(str(ZOO_BIN), *args, cwd=root, check=False)
    assert r.returncode == code, f"zoo {' '.join(args)} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("git", *args, cwd=root, check=check)


@pytest.fixture
def origin(tmp_path) -> Path:
    """The team's shared repository: a bare clone of this project."""
    dest = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(PROJECT), str(dest)], check=True)
    return dest


def contributor(origin: Path, where: Path, branch: str | None = None) -> Path:
    git(origin.parent, "clone", "-q", str(origin), str(where))
    if branch:
        git(where, "checkout", "-qb", branch)
    return where


def contribute(root: Path, tmp: Path, model: str, step: int, seed: int) -> str:
    """README's recipe: zoo add -> dvc repro -> zoo push -> zoo commit; returns the checkpoint's sha256."""
    import hashlib

    src = write_safetensors(tmp / f"{root.name}-{model}-{step}.safetensors", seed=seed)
    out = zoo(root, "add", str(src), "--model", model, "--step", str(step), *ADD)
    assert f"next: dvc repro && zoo commit --push -m 'Add {model}@{step}'" in out, out
    repro(root)
    out = zoo(root, "push", f"{model}@{step}")
    assert "staged .dvc-remote" in out, out  # the in-repo remote's new objects travel in git
    zoo(root, "commit", "-m", f"Add {model}@{step}")
    assert git(root, "status", "--porcelain").stdout == "", "the recipe must leave nothing uncommitted"
    return hashlib.sha256(src.read_bytes()).hexdigest()


def pipeline_clean(root: Path) -> None:
    st = sh(sys.executable, "-m", "dvc", "status", *STAGES, cwd=root)
    assert "up to date" in st.stdout, st.stdout


def check_fresh_clone(origin: Path, where: Path, expected: dict[str, str]) -> None:
    """A fresh clone of the merged result: pipeline clean, table valid, each new checkpoint pulls and verifies."""
    git(origin.parent, "clone", "-q", str(origin), str(where))
    r = repro(where)  # site/ is not in git; everything else is, and must come out the same
    assert "evaluated 0" in r.stdout or "didn't change" in r.stdout, r.stdout
    assert git(where, "status", "--porcelain").stdout == "", "the merged outputs were not consistent"
    pipeline_clean(where)
    zoo(where, "validate")
    out = zoo(where, "pull", *expected)
    assert out.count("(sha256 verified)") == len(expected), out
    zoo(where, "verify", *expected)
    index = json.loads((where / "zoo/index.json").read_text())
    by_ref = {c["ref"]: c for c in index["checkpoints"]}
    for ref, sha in expected.items():
        assert by_ref[ref]["sha256"] == sha and by_ref[ref]["metrics"], (ref, by_ref.get(ref))
        model = ref.split("@")[0]
        assert ref.split("@")[1] in (where / f"zoo/metrics/curves/{model}.csv").read_text()
        assert f"{model}" in (where / f"zoo/cards/{model}.md").read_text()


def merge(root: Path, branch: str) -> None:
    git(root, "fetch", "-q", "origin")
    r = git(root, "merge", "--no-edit", f"origin/{branch}", check=False)
    assert r.returncode == 0, f"git merge {branch} conflicted:\n{r.stdout}\n{r.stderr}"
    repro(root)
    pipeline_clean(root)
    zoo(root, "push")  # the merged folder manifests (DVC's merge driver made them here)
    zoo(root, "commit", "-m", f"Merge {branch}: regenerate the index")
    git(root, "push", "-q", "origin", "HEAD")


def test_three_branches_merged_in_turn(origin, tmp_path):
    """The lead merges b1 (wine-x), then b2 (another model: wine-y), then b3 (wine-x again: the same model's
    pointer and evaluation records changed on both sides), each a real two-sided merge after the first."""
    lead = contributor(origin, tmp_path / "lead")
    expected = {}
    for n, (branch, model, step) in enumerate((("b1", "wine-x", 1), ("b2", "wine-y", 1), ("b3", "wine-x", 2))):
        clone = contributor(origin, tmp_path / branch, branch)
        expected[f"{model}@{step}"] = contribute(clone, tmp_path, model, step, seed=10 + n)
        git(clone, "push", "-q", "origin", branch)
    for branch in ("b1", "b2", "b3"):
        merge(lead, branch)
    log = json.loads((lead / "zoo/metrics/evaluations/wine-x.json").read_text())
    assert [c["step"] for c in log["checkpoints"]] == [1, 2], "both branches' evaluations are kept"
    check_fresh_clone(origin, tmp_path / "fresh", expected)


def test_a_real_conflict_still_stops_and_validate_explains_it(origin, tmp_path):
    alice = contributor(origin, tmp_path / "alice")
    bob = contributor(origin, tmp_path / "bob", "other")
    for root, description in ((alice, "alice's words"), (bob, "bob's words")):
        src = write_safetensors(tmp_path / f"{root.name}.safetensors", seed=5)  # same bytes, other metadata
        zoo(root, "add", str(src), "--model", "wine-c", "--step", "1", "--description", description, *ADD)
        zoo(root, "commit", "--no-check", "-m", "Add wine-c@1")  # the pipeline is beside the point here
    git(bob, "push", "-q", "origin", "other")
    git(alice, "fetch", "-q", "origin")
    r = git(alice, "merge", "--no-edit", "origin/other", check=False)
    assert r.returncode != 0 and "zoo/checkpoints.csv" in r.stdout + r.stderr
    out = zoo(alice, "validate", code=1)
    assert "wine-c@1" in out and "alice's words" in out and "bob's words" in out, out


def test_push_to_a_remote_outside_the_tree_stages_nothing(small_zoo, tmp_path):
    src = write_safetensors(tmp_path / "x.safetensors", seed=8)
    zoo(small_zoo, "add", str(src), "--model", "gamma", "--step", "1", *ADD)
    out = zoo(small_zoo, "push", "gamma@1")
    assert "staged" not in out, out


# ---- a killed zoo rm, a refused stage ---------------------------------------------------------------------


RM_PHASES = {
    # the pointer has changed (entry gone) but the table not yet
    "pointer-rewritten": lambda z, before: (z / "zoo/checkpoints/alpha.dvc").read_bytes() != before,
    # the whole folder's pointer is gone (removing beta's only checkpoint)
    "folder-untracked": lambda z, before: not (z / "zoo/checkpoints/beta.dvc").exists(),
    "files-deleted": lambda z, before: not (z / "zoo/checkpoints/alpha/step-00000010.safetensors").exists(),
}


@pytest.mark.parametrize("phase", list(RM_PHASES))
def test_killed_rm_is_completed_by_running_it_again(small_zoo, phase):
    """kill -9 inside `zoo rm`: the zoo stays usable (validate, pull of what remains) and the same rm completes."""
    refs = ("alpha@10", "beta@5")
    pointer = small_zoo / "zoo/checkpoints/alpha.dvc"
    before = pointer.read_bytes()
    proc = subprocess.Popen([str(ZOO_BIN), "rm", *refs], cwd=small_zoo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    killed = kill_when(proc, lambda: RM_PHASES[phase](small_zoo, before))
    rows = (small_zoo / "zoo/checkpoints.csv").read_text()
    if killed and "alpha,10," in rows:
        # the rm did not finish: the next writing command puts the zoo back as it was
        other = write_safetensors(small_zoo.parent / "other.safetensors", seed=9)
        zoo(small_zoo, "add", str(other), "--model", "gamma", "--step", "1", *ADD)
        zoo(small_zoo, "validate")
        (small_zoo / "zoo/checkpoints/alpha/step-00000020.safetensors").unlink()
        zoo(small_zoo, "pull", "alpha@20", "alpha@10")  # what the table lists can be pulled
    r = sh(str(ZOO_BIN), "rm", *refs, cwd=small_zoo, check=False)
    assert r.returncode == 0 or "alpha has no step 10" in r.stderr, r.stdout + r.stderr  # it had completed
    rows = (small_zoo / "zoo/checkpoints.csv").read_text()
    assert "alpha,10," not in rows and "beta,5," not in rows
    zoo(small_zoo, "validate")
    (small_zoo / "zoo/checkpoints/alpha/step-00000020.safetensors").unlink(missing_ok=True)
    zoo(small_zoo, "pull", "alpha@20")
    zoo(small_zoo, "verify")
    st = sh(sys.executable, "-m", "dvc", "status", cwd=small_zoo)
    assert "up to date" in st.stdout, st.stdout


def test_a_refused_stage_leaves_the_previous_outputs(pipeline_clone):
    outputs = ["zoo/index.json", "zoo/INDEX.md", "zoo/metrics/summary.json", "zoo/metrics/validation.json",
               *(p.relative_to(pipeline_clone).as_posix() for p in (pipeline_clone / "zoo/cards").glob("*.md")),
               *(p.relative_to(pipeline_clone).as_posix() for p in (pipeline_clone / "zoo/metrics/curves").glob("*"))]
    before = {p: (pipeline_clone / p).read_bytes() for p in outputs}
    # a stale evaluation file: the index stage refuses (evaluations do not match the table one to one)
    ev = pipeline_clone / "zoo/metrics/evaluations/wine-linear.json"
    data = json.loads(ev.read_text())
    data["checkpoints"] = data["checkpoints"][:-1]
    ev.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    r = sh(sys.executable, "-m", "dvc", "repro", "index", "--single-item", cwd=pipeline_clone, check=False)
    assert r.returncode != 0, r.stdout
    assert {p: (pipeline_clone / p).read_bytes() for p in outputs} == before

    # and while a zoo add holds the zoo's lock, every stage refuses clearly and changes nothing
    from filelock import FileLock

    lock = FileLock(str(pipeline_clone / ".dvc/tmp/zoo/zoo.lock"))
    (pipeline_clone / "zoo/checkpoints.csv").write_text((pipeline_clone / "zoo/checkpoints.csv").read_text())
    with lock:
        r = sh(sys.executable, "-m", "dvc", "repro", "--force", cwd=pipeline_clone, check=False)
    assert r.returncode != 0 and "a zoo add or rm is changing this zoo" in r.stdout + r.stderr, r.stdout + r.stderr
    assert {p: (pipeline_clone / p).read_bytes() for p in outputs} == before


def test_dvc_stage_lock_cut_short_by_a_kill_is_repaired(small_zoo, tmp_path):
    """A DVC call killed while writing .dvc/tmp/rwlock leaves it cut short; the next add or rm repairs it."""
    (small_zoo / ".dvc/tmp").mkdir(parents=True, exist_ok=True)
    (small_zoo / ".dvc/tmp/rwlock").write_text('{"read": {}, "wri')
    src = write_safetensors(tmp_path / "y.safetensors", seed=12)
    zoo(small_zoo, "add", str(src), "--model", "gamma", "--step", "2", *ADD)
    zoo(small_zoo, "rm", "gamma@2")
    zoo(small_zoo, "verify")


def test_registry_json_changed_on_both_sides_merges_and_repro_rewrites_it(origin, tmp_path):
    """registry.json is the pipeline's (from the tags), so a merge keeps this branch's and `dvc repro` rewrites it."""
    alice = contributor(origin, tmp_path / "alice")
    bob = contributor(origin, tmp_path / "bob", "other")
    zoo(alice, "merge-setup")
    path = "zoo/metrics/registry.json"
    committed = (alice / path).read_bytes()
    for root, who in ((alice, "alice"), (bob, "bob")):
        (root / path).write_text(json.dumps({"format": 1, "models": {}, "by": who}, indent=2) + "\n")
        git(root, "commit", "-qam", f"{who}'s registry.json")
    git(bob, "push", "-q", "origin", "other")
    git(alice, "fetch", "-q", "origin")
    r = git(alice, "merge", "--no-edit", "origin/other", check=False)
    assert r.returncode == 0, f"registry.json conflicted:\n{r.stdout}\n{r.stderr}"
    assert json.loads((alice / path).read_text())["by"] == "alice"
    sh(sys.executable, "-m", "dvc", "repro", "registry", cwd=alice)
    assert (alice / path).read_bytes() == committed
