"""Git branches and tags as zoo versions: versions, diff, --rev, Zoo(url, rev) with no clone, merges.

An "upstream" repo gets a tag v1 and a branch exp; everything else runs from separate clones or from
no clone at all, against the upstream's local DVC remote.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ADD_ARGS, dvc, git, run_zoo, write_safetensors


def _evaluations(root: Path, accuracies: dict[str, float]) -> None:
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.catalog.records import write_results

    zoo = Zoo(root)
    recs = {}
    for ref, acc in accuracies.items():
        c = zoo.get(ref)
        recs[ref] = {"step": c.step, "sha256": c.sha256, "metrics": {"accuracy": acc, "nll": 1 - acc}, "provenance": {}}
    write_results(root / "zoo/metrics/evaluations", recs)


@pytest.fixture
def upstream(small_zoo, tmp_path) -> Path:
    """main = tag v1 (alpha@10, alpha@20, beta@5); branch exp: +gamma@1, beta@5 re-described, alpha@20 replaced."""
    root = small_zoo
    _evaluations(root, {"alpha@10": 0.5, "alpha@20": 0.6, "beta@5": 0.7})
    git("add", "-A", cwd=root)
    git("commit", "-qm", "metrics", cwd=root)
    git("tag", "-a", "v1", "-m", "first release", cwd=root)
    git("checkout", "-qb", "exp", cwd=root)
    f = write_safetensors(tmp_path / "g.safetensors", seed=11)
    assert run_zoo("add", str(f), "--model", "gamma", "--step", "1", *ADD_ARGS, cwd=root).code == 0
    f = write_safetensors(tmp_path / "a20.safetensors", seed=12)
    assert run_zoo("add", str(f), "--model", "alpha", "--step", "20", *ADD_ARGS, "--replace", cwd=root).code == 0
    table = root / "zoo/checkpoints.csv"
    table.write_text(table.read_text().replace("beta test", "beta: better described"))
    _evaluations(root, {"alpha@10": 0.55, "alpha@20": 0.65, "beta@5": 0.7, "gamma@1": 0.8})
    assert run_zoo("push", cwd=root).code == 0
    git("add", "-A", cwd=root)
    git("commit", "-qm", "exp: gamma, new alpha@20", cwd=root)
    git("checkout", "-q", "main", cwd=root)
    return root


@pytest.fixture
def clone(upstream, tmp_path) -> Path:
    dest = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-local", str(upstream), str(dest)], check=True)
    for branch in ("exp",):
        git("branch", "-q", branch, f"origin/{branch}", cwd=dest)
    return dest


def test_versions_lists_branches_and_tags(clone):
    r = run_zoo("versions", "--format", "json", cwd=clone)
    assert r.code == 0, r.err
    found = {v["name"]: v for v in json.loads(r.out)}
    assert set(found) >= {"main", "exp", "v1"}
    assert found["v1"]["kind"] == "tag" and found["exp"]["kind"] == "branch"
    assert (found["v1"]["models"], found["v1"]["checkpoints"]) == (2, 3)
    assert (found["exp"]["models"], found["exp"]["checkpoints"]) == (3, 4)
    assert found["v1"]["commit"] == git("rev-parse", "v1^{commit}", cwd=clone).strip()
    text = run_zoo("versions", cwd=clone).out
    assert "v1" in text and "exp" in text


def test_diff_between_versions_reads_git_only(clone):
    r = run_zoo("diff", "v1", "exp", "--format", "json", cwd=clone)
    assert r.code == 0, r.err
    d = json.loads(r.out)
    assert d["added"] == ["gamma@1"] and d["removed"] == [] and d["replaced"] == ["alpha@20"]
    assert d["changed"]["beta@5"]["description"] == ["beta test", "beta: better described"]
    assert d["metrics"]["alpha@10"]["accuracy"] == {"a": 0.5, "b": 0.55, "delta": 0.05, "changed": True}
    assert d["metrics"]["alpha@20"]["accuracy"]["delta"] == 0.05  # what the replacement changed
    reverse = json.loads(run_zoo("diff", "exp", "v1", "--format", "json", cwd=clone).out)
    assert reverse["removed"] == ["gamma@1"]
    assert not (clone / ".dvc/cache").exists()  # no checkpoint bytes were downloaded
    text = run_zoo("diff", "v1", "exp", cwd=clone).out
    assert "added" in text and "gamma@1" in text and "1 added, 0 removed, 1 replaced" in text


def test_diff_head_against_working_tree(clone, tmp_path):
    f = write_safetensors(tmp_path / "d.safetensors", seed=21)
    assert run_zoo("add", str(f), "--model", "delta", "--step", "3", *ADD_ARGS, cwd=clone).code == 0
    d = json.loads(run_zoo("diff", "--format", "json", cwd=clone).out)
    assert d["a"] == "HEAD" and d["b"] == "working tree" and d["added"] == ["delta@3"]


def test_diff_counts_a_metric_as_changed_only_beyond_its_tolerance(clone):
    """NLL that moved in its 8th digit (another CPU's kernels) is unchanged; accuracy is exact; NLL +2 % is a change."""
    from checkpoint_zoo.catalog.records import read_results, write_results

    folder = clone / "zoo/metrics/evaluations"
    recs = read_results(folder)
    recs["alpha@10"]["metrics"]["nll"] = float(f"{recs['alpha@10']['metrics']['nll'] * (1 + 3e-8):.8g}")
    recs["alpha@20"]["metrics"]["nll"] *= 1.02
    recs["beta@5"]["metrics"]["accuracy"] += 1 / 143
    write_results(folder, recs)
    d = json.loads(run_zoo("diff", "--format", "json", cwd=clone).out)
    assert d["metrics"]["alpha@10"]["nll"]["delta"] != 0 and d["metrics"]["alpha@10"]["nll"]["changed"] is False
    assert d["metrics"]["alpha@20"]["nll"]["changed"] is True
    assert d["metrics"]["beta@5"]["accuracy"]["changed"] is True
    text = run_zoo("diff", cwd=clone).out
    assert "2 with metric changes beyond their reproducibility tolerance (1 compared unchanged)" in text, text
    assert "alpha@10" not in text and "alpha@20  nll" in text and "beta@5  accuracy" in text


def test_ls_show_pull_at_a_revision_without_checkout(clone):
    head = git("rev-parse", "HEAD", cwd=clone)
    data = json.loads(run_zoo("ls", "--all-steps", "--rev", "exp", "--format", "json", cwd=clone).out)
    assert [d["ref"] for d in data] == ["alpha@10", "alpha@20", "beta@5", "gamma@1"]
    shown = json.loads(run_zoo("show", "gamma@1", "--rev", "exp", "--format", "json", cwd=clone).out)
    assert shown["metrics"] == {"accuracy": 0.8, "nll": pytest.approx(0.2)}
    r = run_zoo("pull", "gamma@1", "--rev", "exp", cwd=clone)
    assert r.code == 0, r.err
    path = Path(r.out.split()[2])
    import hashlib

    assert hashlib.sha256(path.read_bytes()).hexdigest() == shown["sha256"]
    assert git("rev-parse", "HEAD", cwd=clone) == head and git("status", "--porcelain", cwd=clone) == ""
    assert not (clone / "zoo/checkpoints/gamma").exists()
    assert run_zoo("show", "gamma@1", cwd=clone).code == 1  # not on the checked-out version


def test_python_api_from_git_url_without_clone(upstream, monkeypatch):
    from checkpoint_zoo import Zoo

    url = upstream.as_uri()  # file:// URL: the git transport, not the folder
    v1 = Zoo(url, rev="v1")
    assert [c.ref for c in v1.list(all_steps=True)] == ["alpha@10", "alpha@20", "beta@5"]
    p1 = v1.fetch("alpha@10")
    exp = Zoo(url, rev="exp")
    assert exp.fetch("alpha@10") == p1  # shared by the two revisions: one file in the cache
    assert exp.fetch("alpha@20") != v1.fetch("alpha@20")
    model = exp.load_model("gamma@1")
    import torch

    assert model(torch.zeros(1, 13)).shape == (1, 3)
    with pytest.raises(Exception, match="read-only"):
        exp.add(p1, model="x", step=1, arch="linear", task="tabular-classification", dataset="wine", license="MIT")

    monkeypatch.setenv("ZOO_OFFLINE", "1")
    start = time.perf_counter()
    again = Zoo(url, rev="v1").fetch("alpha@10")
    assert again == p1 and time.perf_counter() - start < 2.0
    from checkpoint_zoo.errors import MissingFileError

    with pytest.raises(MissingFileError, match="ZOO_OFFLINE"):
        Zoo(url, rev="v1").fetch("beta@5")

    # a tampered cache entry is never returned: refused offline, fetched again online
    data = bytearray(p1.read_bytes())
    data[-1] ^= 1
    p1.write_bytes(bytes(data))
    with pytest.raises(MissingFileError):
        Zoo(url, rev="v1").fetch("alpha@10")
    monkeypatch.delenv("ZOO_OFFLINE")
    fixed = Zoo(url, rev="v1").fetch("alpha@10")
    import hashlib

    assert hashlib.sha256(fixed.read_bytes()).hexdigest() == v1.get("alpha@10").sha256


def test_bad_revisions_and_urls(upstream, clone):
    r = run_zoo("ls", "--rev", "no-such-branch", cwd=clone)
    assert r.code == 1 and "unknown revision 'no-such-branch'" in r.err
    git("checkout", "-q", "--orphan", "nozoo", cwd=upstream)
    git("rm", "-rq", "--cached", ".", cwd=upstream)
    (upstream / "README").write_text("not a zoo\n")
    git("add", "README", cwd=upstream)
    git("commit", "-qm", "no zoo here", cwd=upstream)
    git("checkout", "-qf", "main", cwd=upstream)
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import NotAZooError, StorageError

    with pytest.raises(NotAZooError, match="holds no zoo"):
        Zoo(upstream.as_uri(), rev="nozoo")
    start = time.perf_counter()
    with pytest.raises(StorageError, match="127.0.0.1:9"):
        Zoo("http://127.0.0.1:9/zoo.git", rev="main")
    assert time.perf_counter() - start < 10


def _branch_adds(root: Path, branch: str, step: int, seed: int, tmp: Path) -> None:
    git("checkout", "-qb", branch, "main", cwd=root)
    f = write_safetensors(tmp / f"{branch}.safetensors", seed=seed)
    r = run_zoo("add", str(f), "--model", "alpha", "--step", str(step), *ADD_ARGS, cwd=root)
    assert r.code == 0, r.err
    assert run_zoo("push", f"alpha@{step}", cwd=root).code == 0
    git("commit", "-qm", f"{branch}: alpha@{step}", cwd=root)


def test_two_branches_adding_to_one_model_merge_cleanly(clone, tmp_path):
    _branch_adds(clone, "b1", 30, 31, tmp_path)
    _branch_adds(clone, "b2", 40, 41, tmp_path)
    git("checkout", "-q", "main", cwd=clone)
    # a fresh clone, as a second person would have: no .dir manifests in its cache
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(clone), str(other)], check=True)
    for b in ("b1", "b2"):
        git("branch", "-q", b, f"origin/{b}", cwd=other)
    assert run_zoo("merge-setup", cwd=other).code == 0
    git("checkout", "-q", "b1", cwd=other)
    proc = subprocess.run(["git", "merge", "--no-edit", "b2"], cwd=other, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert run_zoo("validate", cwd=other).code == 0
    refs = [d["ref"] for d in json.loads(run_zoo("ls", "alpha", "--all-steps", "--format", "json", cwd=other).out)]
    assert refs == ["alpha@10", "alpha@20", "alpha@30", "alpha@40"]
    pulled = dvc("pull", cwd=other)
    assert pulled.returncode == 0, pulled.stderr
    assert run_zoo("verify", cwd=other).code == 0


def test_same_checkpoint_changed_on_both_branches_conflicts_and_validate_explains(clone, tmp_path):
    assert run_zoo("merge-setup", cwd=clone).code == 0
    for branch, seed in (("c1", 51), ("c2", 52)):
        git("checkout", "-qb", branch, "main", cwd=clone)
        f = write_safetensors(tmp_path / f"{branch}.safetensors", seed=seed)
        assert run_zoo("add", str(f), "--model", "beta", "--step", "5", *ADD_ARGS, "--replace", cwd=clone).code == 0
        git("commit", "-qm", f"{branch}: new beta@5", cwd=clone)
    proc = subprocess.run(["git", "merge", "--no-edit", "c1"], cwd=clone, capture_output=True, text=True)
    assert proc.returncode != 0
    r = run_zoo("validate", cwd=clone)
    assert r.code == 1
    assert "unresolved merge conflict" in r.err and "beta@5" in r.err and "keep one row" in r.err
    assert "Traceback" not in r.err


def test_url_zoo_verbs_work_on_that_zoo_not_the_current_folder(upstream, tmp_path):
    """`zoo -C file:///… versions|diff|merge-setup` act on that zoo, from any folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    git("init", "-q", cwd=elsewhere)  # another repo: nothing here may be read
    url = upstream.as_uri()
    r = run_zoo("-C", url, "versions", "--format", "json", cwd=elsewhere)
    assert r.code == 0, r.err
    assert {"main", "exp", "v1"} <= {v["name"] for v in json.loads(r.out)}
    d = run_zoo("-C", url, "diff", "v1", "exp", "--format", "json", cwd=elsewhere)
    assert d.code == 0 and json.loads(d.out)["added"] == ["gamma@1"], d.err
    no_tree = run_zoo("-C", url, "diff", cwd=elsewhere)
    assert no_tree.code == 2 and "no working tree" in no_tree.err
    setup = run_zoo("-C", url, "merge-setup", cwd=elsewhere)
    assert setup.code == 2 and "read-only" in setup.err
    found = subprocess.run(["git", "config", "--get-regexp", "merge"], cwd=elsewhere, capture_output=True, text=True)
    assert found.stdout == ""
