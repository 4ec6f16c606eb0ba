"""Bulk add (`zoo add --from MANIFEST`, `Zoo.add_many`): one transaction for a whole training run.

Real zoos, real files, the real `zoo` entry point: a manifest of mixed good lines lands whole; one with bad
lines names every one of them and changes nothing; a batch killed at each phase leaves the zoo as it was
(or complete) and the same command then completes it."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import ADD_ARGS, ZOO_BIN, dvc, git, kill_when, run_zoo, snapshot, write_safetensors

TABLE = "zoo/checkpoints.csv"
INCOMING = ".dvc/tmp/zoo/incoming"


def write_run(folder: Path, steps: range, seed: int = 0) -> list[Path]:
    """A training run's folder of linear wine checkpoints, one per step."""
    return [write_safetensors(folder / f"step-{s}.safetensors", seed=seed * 1000 + s) for s in steps]


def write_csv(path: Path, header: list[str], lines: list[list[object]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(lines)
    return path


def table_rows(root: Path) -> dict[str, dict[str, str]]:
    with open(root / TABLE, newline="") as f:
        return {f"{r['model']}@{r['step']}": r for r in csv.DictReader(f)}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_consistent(root: Path) -> None:
    """validate, verify and dvc status all agree the zoo is whole."""
    r = run_zoo("validate", cwd=root)
    assert r.code == 0, r.out + r.err
    r = run_zoo("verify", "--all", cwd=root)
    assert r.code == 0, r.out + r.err
    st = dvc("status", cwd=root)
    assert st.returncode == 0 and "up to date" in st.stdout, st.stdout + st.stderr


def test_manifest_of_mixed_lines_lands_whole(small_zoo, tmp_path):
    run = tmp_path / "run"
    files = write_run(run, range(3), seed=7)
    extra = write_safetensors(run / "alpha-30.safetensors", seed=99)
    manifest = write_csv(run / "manifest.csv",
                         ["file", "model", "step", "epoch", "tags", "description", "parent", "reported", "license"], [
                             [files[0].name, "gamma", 0, "", "", "", "", "", ""],
                             [files[1].name, "gamma", 100, 1.5, "run-a;best", "second stage", "gamma@0", "accuracy=0.9", ""],
                             [files[2].name, "gamma", 200, 3, "", "", "", "", "MIT"],
                             # an existing model folder gets a new file; an existing checkpoint comes again unchanged
                             [str(extra), "alpha", 30, "", "", "", "alpha@20", "", ""],
                             [str(tmp_path / "in" / "alpha-10.safetensors"), "alpha", 10, "", "", "", "", "", ""],
                         ])
    before = table_rows(small_zoo)
    r = run_zoo("add", "--from", str(manifest), "--arch", "linear", "--task", "tabular-classification",
                "--dataset", "wine", "--license", "MIT", cwd=small_zoo)
    assert r.code == 0, r.err
    assert "added 4, replaced 0, unchanged 1" in r.out, r.out
    assert "staged:" in r.out and "zoo/checkpoints/gamma.dvc" in r.out
    rows = table_rows(small_zoo)
    assert set(rows) == set(before) | {"gamma@0", "gamma@100", "gamma@200", "alpha@30"}
    assert rows["alpha@10"] == before["alpha@10"], "an unchanged line must leave its row as it was"
    g = rows["gamma@100"]
    assert (g["epoch"], g["tags"], g["description"], g["parent"]) == ("1.5", "run-a;best", "second stage", "gamma@0")
    assert (g["reported_metric"], g["reported_value"], g["license"]) == ("accuracy", "0.9", "MIT")
    assert rows["gamma@200"]["license"] == "MIT", "a line may repeat the batch's value"
    assert rows["gamma@0"]["description"] == "" and rows["gamma@0"]["source"] == "zoo add --from step-0.safetensors"
    assert rows["gamma@200"]["sha256"] == sha(files[2])
    assert rows["alpha@30"]["sha256"] == sha(extra) and rows["alpha@30"]["parent"] == "alpha@20"
    for f in files:
        assert f.exists(), "a copy leaves the run's files where they were"
    staged = git("diff", "--cached", "--name-only", cwd=small_zoo).split()
    assert {TABLE, "zoo/checkpoints/gamma.dvc", "zoo/checkpoints/alpha.dvc"} <= set(staged)
    assert_consistent(small_zoo)
    assert list((small_zoo / INCOMING).iterdir()) == []

    # the same manifest again: nothing to do, nothing changes
    snap = snapshot(small_zoo)
    r = run_zoo("add", "--from", str(manifest), "--arch", "linear", "--task", "tabular-classification",
                "--dataset", "wine", "--license", "MIT", cwd=small_zoo)
    assert r.code == 0 and "added 0, replaced 0, unchanged 5" in r.out, r.out + r.err
    assert snapshot(small_zoo) == snap


def test_json_lines_from_python_and_move(empty_zoo, tmp_path):
    from checkpoint_zoo import Zoo

    run = tmp_path / "run"
    files = write_run(run, range(0, 40, 10), seed=3)
    expected = {f.name: sha(f) for f in files}
    manifest = run / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps({"file": f.name, "model": "delta", "step": int(f.stem.split("-")[1]),
                                              "tags": ["nightly"], "sha256": expected[f.name]}) for f in files) + "\n")
    with Zoo(empty_zoo) as zoo:
        res = zoo.add_from(manifest, move=True, arch="linear", task="tabular-classification", dataset="wine",
                           license="MIT")
        assert [c.ref for c in res.added] == ["delta@0", "delta@10", "delta@20", "delta@30"]
        assert res.staged and not res.replaced and not res.unchanged
        assert [c.tags for c in res.added] == [("nightly",)] * 4
        assert {c.sha256 for c in res.added} == set(expected.values())
        assert not any(f.exists() for f in files), "--move takes the files"
        # add_many: the same from Python objects; a value that contradicts the common one is refused
        with pytest.raises(ValueError, match=r"item 1: license is 'GPL-3.0' here but 'MIT' for the whole batch"):
            zoo.add_many([{"file": write_safetensors(tmp_path / "x.safetensors", seed=5), "model": "delta",
                           "step": 40, "license": "GPL-3.0"}], arch="linear", task="tabular-classification",
                         dataset="wine", license="MIT")
    assert_consistent(empty_zoo)


def test_bad_lines_are_all_named_and_nothing_changes(small_zoo, tmp_path):
    run = tmp_path / "run"
    good = write_run(run, range(2), seed=11)
    (run / "garbage.safetensors").write_bytes(b"not a checkpoint at all")
    wrong_shape = write_safetensors(run / "wide.safetensors", seed=1,
                                    shapes={"fc.weight": (3, 14), "fc.bias": (3,), "norm.mean": (14,), "norm.std": (14,)})
    other_bytes = write_safetensors(run / "other.safetensors", seed=12345)
    manifest = write_csv(run / "manifest.csv", ["file", "model", "step", "arch", "reported"], [
        [good[0].name, "gamma", 1, "linear", ""],             # line 2: good
        ["garbage.safetensors", "gamma", 2, "linear", ""],    # 3: not safetensors
        ["missing.safetensors", "gamma", 3, "linear", ""],    # 4: no such file
        [good[1].name, "gamma", 1, "linear", ""],             # 5: duplicate step in the batch
        [wrong_shape.name, "gamma", 5, "linear", ""],         # 6: does not fit the architecture
        [other_bytes.name, "alpha", 10, "linear", ""],        # 7: exists with other bytes
        [good[1].name, "Gamma", 7, "linear", ""],             # 8: bad name
        [good[1].name, "gamma", 8, "no-such-arch", ""],       # 9: unregistered architecture
        [good[1].name, "gamma", 9, "linear", "accuracy=7"],   # 10: impossible reported value
        [good[1].name, "gamma", "ten", "linear", ""],         # 11: step not a number
        [good[1].name, "gamma", 12, "linear", ""],            # 12: good
    ])
    snap, staged = snapshot(small_zoo), git("diff", "--cached", "--name-only", cwd=small_zoo)
    r = run_zoo("add", "--from", str(manifest), "--task", "tabular-classification", "--dataset", "wine",
                "--license", "MIT", cwd=small_zoo)
    assert r.code == 1, r.out + r.err
    err = r.err
    assert "9 of 11 line(s) refused; nothing was added" in err, err
    for line, words in {3: "not a safetensors file", 4: "no such file", 5: "gamma@1 is also on", 6: "fc.weight",
                        7: "alpha@10 exists with other bytes", 8: "model 'Gamma'", 9: "no-such-arch",
                        10: "accuracy", 11: "step 'ten'"}.items():
        hit = [x for x in err.splitlines() if f"manifest.csv:{line}:" in x]
        assert hit and words in hit[0], (line, words, err)
    assert not any(f"manifest.csv:{n}:" in err for n in (2, 12)), err
    assert snapshot(small_zoo) == snap, "a refused batch must change nothing"
    assert git("diff", "--cached", "--name-only", cwd=small_zoo) == staged
    assert list((small_zoo / INCOMING).iterdir()) == []
    assert all(f.exists() for f in good)


def test_unreadable_manifests_get_one_clear_line(empty_zoo, tmp_path):
    cases = {
        "cols.csv": ("file,model,step,sha256x\n", "unknown column 'sha256x'"),
        "computed.csv": ("file,model,step,size_bytes\n", "column 'size_bytes' is computed from the file"),
        "empty.csv": ("file,model,step\n", "no checkpoint lines"),
        "bad.jsonl": ('{"file": "a", "model": "m", "step": 1}\n[1, 2]\n', "bad.jsonl:2: a JSON list"),
        "broken.jsonl": ('{"file": \n', "broken.jsonl:1: not JSON"),
    }
    for name, (text, words) in cases.items():
        (tmp_path / name).write_text(text)
        r = run_zoo("add", "--from", str(tmp_path / name), *ADD_ARGS, cwd=empty_zoo)
        assert r.code == 2 and words in r.err and len(r.err.strip().splitlines()) == 1, (name, r)
    r = run_zoo("add", "--from", str(tmp_path / "nope.csv"), *ADD_ARGS, cwd=empty_zoo)
    assert r.code == 2 and "no such file" in r.err, r
    r = run_zoo("add", "x.safetensors", "--from", str(tmp_path / "cols.csv"), cwd=empty_zoo)
    assert r.code == 2 and "not both" in r.err, r
    r = run_zoo("add", "--model", "m", cwd=empty_zoo)
    assert r.code == 2 and "missing the checkpoint file (FILE), --step, --task" in r.err, r


# ---- killed batches ---------------------------------------------------------------------------------------

MIB_FLOATS = (1 << 20) // 4


def _placed(root: Path) -> int:
    folder = root / "zoo/checkpoints/big"
    return sum(1 for p in folder.glob("step-*.safetensors")) if folder.exists() else 0


PHASES = {
    # phase -> condition on the zoo that says the batch is inside it
    "copy": lambda z: len(list((z / INCOMING).glob("big-*.safetensors"))) >= 3,
    "placed": lambda z: _placed(z) >= 5,
    "dvc": lambda z: _placed(z) == 24,  # all placed: DVC is hashing them into its cache
    "pointer": lambda z: (z / "zoo/checkpoints/big.dvc").exists(),
}


@pytest.fixture(scope="module")
def big_run(tmp_path_factory) -> tuple[Path, Path]:
    """24 checkpoints of 4 MiB (a bias-free Linear 64 × 16384) and their manifest."""
    folder = tmp_path_factory.mktemp("big-run")
    files = [write_safetensors(folder / f"s{s}.safetensors", seed=s, shapes={"weight": (64, MIB_FLOATS * 4 // 64)})
             for s in range(24)]
    manifest = write_csv(folder / "manifest.csv", ["file", "model", "step"], [[f.name, "big", i * 10]
                                                                               for i, f in enumerate(files)])
    return folder, manifest


@pytest.mark.parametrize("phase", list(PHASES))
def test_killed_batch_leaves_zoo_as_before_and_rerun_completes(small_zoo, big_run, phase):
    from conftest import register_arch

    register_arch(small_zoo, "big", bias=False, in_features=MIB_FLOATS * 4 // 64, out_features=64)
    git("add", "conf/arch/big.yaml", cwd=small_zoo)
    git("commit", "-qm", "big arch", cwd=small_zoo)
    folder, manifest = big_run
    before = (small_zoo / TABLE).read_bytes()
    args = ["add", "--from", str(manifest), "--arch", "big", "--task", "tabular-classification", "--dataset", "wine",
            "--license", "MIT"]
    proc = subprocess.Popen([str(ZOO_BIN), *args], cwd=small_zoo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = kill_when(proc, lambda: PHASES[phase](small_zoo))
    assert killed or phase == "pointer", f"the batch finished before the kill at phase {phase!r}"
    table_now = (small_zoo / TABLE).read_bytes()
    rows = table_rows(small_zoo)
    assert table_now == before or len(rows) == 3 + 24, "a killed batch must leave the table as it was, or complete"
    if table_now == before:
        # any add first undoes what the killed batch left: no file of it stays in the zoo, DVC agrees
        other = write_safetensors(folder.parent / f"other-{phase}.safetensors", seed=77)
        r = run_zoo("add", str(other), "--model", "gamma", "--step", "1", *ADD_ARGS, cwd=small_zoo)
        assert r.code == 0, r.out + r.err
        big = small_zoo / "zoo/checkpoints/big"
        assert not (big.exists() and any(big.iterdir())), sorted(p.name for p in big.iterdir())
        assert not (small_zoo / "zoo/checkpoints/big.dvc").exists()
        assert_consistent(small_zoo)
    r = run_zoo(*args, cwd=small_zoo)
    assert r.code == 0, r.out + r.err
    assert "added 24" in r.out or "unchanged 24" in r.out, r.out
    rows = table_rows(small_zoo)
    assert len(rows) == 3 + 24 + (table_now == before)
    assert all(rows[f"big@{i * 10}"]["sha256"] == sha(folder / f"s{i}.safetensors") for i in range(24))
    assert list((small_zoo / INCOMING).iterdir()) == []
    assert sorted(p.name for p in (small_zoo / "zoo/checkpoints/big").iterdir()) == [
        f"step-{i * 10:08d}.safetensors" for i in range(24)]
    assert_consistent(small_zoo)


def test_batch_refused_by_the_table_puts_moved_files_back(small_zoo, tmp_path):
    """--move of a batch that a late check refuses (a case clash with an existing model): every file is back."""
    files = write_run(tmp_path / "run", range(3), seed=21)
    manifest = write_csv(tmp_path / "run" / "m.csv", ["file", "model", "step"],
                         [[files[0].name, "zeta", 1], [files[1].name, "zeta", 2], [files[2].name, "zeta", 2]])
    snap = snapshot(small_zoo)
    r = run_zoo("add", "--from", str(manifest), "--move", *ADD_ARGS, cwd=small_zoo)
    assert r.code == 1 and "m.csv:4: zeta@2 is also on" in r.err, r
    assert all(f.exists() for f in files)
    assert snapshot(small_zoo) == snap


def test_push_and_pull_of_many_run_concurrently_and_arrive_whole(empty_zoo, tmp_path):
    run = tmp_path / "run"
    files = write_run(run, range(12), seed=5)
    manifest = write_csv(run / "m.csv", ["file", "model", "step"], [[f.name, "eta", i] for i, f in enumerate(files)])
    assert run_zoo("add", "--from", str(manifest), *ADD_ARGS, cwd=empty_zoo).code == 0
    git("commit", "-qm", "a run", cwd=empty_zoo)
    r = run_zoo("push", "-j", "3", cwd=empty_zoo)
    assert r.code == 0 and "13 object(s) uploaded" in r.out, r.out + r.err  # 12 files + the folder manifest
    clone = tmp_path / "clone"
    git("clone", "-q", str(empty_zoo), str(clone), cwd=tmp_path)
    r = run_zoo("pull", "-j", "4", *(f"eta@{i}" for i in range(12)), cwd=clone)
    assert r.code == 0 and r.out.count("(sha256 verified)") == 12, r.out + r.err
    assert all((clone / f"zoo/checkpoints/eta/step-{i:08d}.safetensors").read_bytes() == f.read_bytes()
               for i, f in enumerate(files))
    r = run_zoo("pull", "-j", "0", "eta@1", cwd=clone)
    assert r.code == 2 and "from 1 to 256" in r.err, r
