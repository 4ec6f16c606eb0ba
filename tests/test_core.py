"""The core verbs end to end: real git + DVC zoos in temp folders, through the `zoo` entry point and the API."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import ADD_ARGS, dvc, git, run_zoo, snapshot, write_safetensors


def test_add_places_tracks_records_and_stages(empty_zoo, tmp_path):
    f = write_safetensors(tmp_path / "w.safetensors", seed=7)
    r = run_zoo("add", str(f), "--model", "m1", "--step", "3", *ADD_ARGS, "--epoch", "1.5",
                "--tags", "a,b", "--description", "first", "--reported", "accuracy=0.5", cwd=empty_zoo)
    assert r.code == 0, r.err
    assert "added m1@3" in r.out and "next: dvc repro && zoo commit --push -m 'Add m1@3'" in r.out
    target = empty_zoo / "zoo/checkpoints/m1/step-00000003.safetensors"
    assert target.read_bytes() == f.read_bytes()
    rows = list(csv.DictReader(io.StringIO((empty_zoo / "zoo/checkpoints.csv").read_text())))
    assert len(rows) == 1
    row = rows[0]
    import hashlib

    assert row["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert row["size_bytes"] == str(f.stat().st_size)
    assert row["num_params"] == str(3 * 13 + 3 + 13 + 13)
    assert row["dtype"] == "F32" and row["tags"] == "a;b" and row["epoch"] == "1.5"
    assert row["reported_metric"] == "accuracy" and row["reported_value"] == "0.5"
    staged = git("diff", "--cached", "--name-only", cwd=empty_zoo).split()
    assert set(staged) >= {"zoo/checkpoints.csv", "zoo/checkpoints/m1.dvc"}
    # one wildcard line in the .gitignore, not one line per model folder
    assert (empty_zoo / "zoo/checkpoints/.gitignore").read_text().splitlines() == ["/*/"]
    st = dvc("status", cwd=empty_zoo)
    assert st.returncode == 0 and "up to date" in st.stdout.lower()


def test_add_identical_is_noop_and_replace_overwrites(small_zoo, tmp_path):
    before = snapshot(small_zoo)
    same = small_zoo / "zoo/checkpoints/alpha/step-00000010.safetensors"
    copy = tmp_path / "same.safetensors"
    copy.write_bytes(same.read_bytes())
    r = run_zoo("add", str(copy), "--model", "alpha", "--step", "10", *ADD_ARGS, cwd=small_zoo)
    assert r.code == 0 and "nothing to do" in r.out
    assert snapshot(small_zoo) == before
    other = write_safetensors(tmp_path / "other.safetensors", seed=99)
    r = run_zoo("add", str(other), "--model", "alpha", "--step", "10", *ADD_ARGS, "--replace", cwd=small_zoo)
    assert r.code == 0, r.err
    assert "replaced alpha@10" in r.out
    assert same.read_bytes() == other.read_bytes()
    r = run_zoo("verify", "alpha@10", cwd=small_zoo)
    assert r.code == 0, r.out


def test_add_move_moves_the_file(empty_zoo, tmp_path):
    f = write_safetensors(tmp_path / "mv.safetensors")
    data = f.read_bytes()
    r = run_zoo("add", str(f), "--model", "m", "--step", "0", *ADD_ARGS, "--move", cwd=empty_zoo)
    assert r.code == 0, r.err
    assert not f.exists()
    assert (empty_zoo / "zoo/checkpoints/m/step-00000000.safetensors").read_bytes() == data


def test_ls_filters_sort_and_formats(small_zoo):
    r = run_zoo("ls", cwd=small_zoo)
    assert r.code == 0, r.err
    lines = [l.split() for l in r.out.splitlines() if l and not l.startswith(("MODEL", "2 models"))]
    assert [(l[0], l[1]) for l in lines if l[0] in {"alpha", "beta"}] == [("alpha", "20"), ("beta", "5")]
    data = json.loads(run_zoo("ls", "--all-steps", "--format", "json", cwd=small_zoo).out)
    assert [d["ref"] for d in data] == ["alpha@10", "alpha@20", "beta@5"]
    assert data[0]["pull_command"] == "zoo pull alpha@10"
    data = json.loads(run_zoo("ls", "a*", "--all-steps", "--format", "json", cwd=small_zoo).out)
    assert {d["model"] for d in data} == {"alpha"}
    data = json.loads(run_zoo("ls", "--all-steps", "--where", "step >= 10 and model != beta",
                              "--sort=-step", "--format", "json", cwd=small_zoo).out)
    assert [d["ref"] for d in data] == ["alpha@20", "alpha@10"]
    data = json.loads(run_zoo("ls", "--all-steps", "--tag", "test", "--format", "json", cwd=small_zoo).out)
    assert {d["model"] for d in data} == {"alpha"}
    assert json.loads(run_zoo("ls", "--arch", "mlp", "--format", "json", cwd=small_zoo).out) == []
    data = json.loads(run_zoo("ls", "--task", "tabular-classification", "--format", "json", cwd=small_zoo).out)
    assert len(data) == 2
    out = run_zoo("ls", "--all-steps", "--format", "csv", cwd=small_zoo).out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["step"] for r in rows] == ["10", "20", "5"]


def test_ls_csv_neutralises_formula_prefix(empty_zoo, tmp_path):
    # a row written by hand can start with '@' only if the schema lets it; the CSV output still guards
    f = write_safetensors(tmp_path / "x.safetensors")
    assert run_zoo("add", str(f), "--model", "m", "--step", "1", *ADD_ARGS, cwd=empty_zoo).code == 0
    from checkpoint_zoo.cli import _csv_safe

    assert _csv_safe("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert _csv_safe("-1.5") == "-1.5"


def test_show_every_field_and_pull_command(small_zoo):
    r = run_zoo("show", "alpha@10", "--format", "json", cwd=small_zoo)
    assert r.code == 0, r.err
    d = json.loads(r.out)
    from checkpoint_zoo.catalog.rules import COLUMNS

    assert set(COLUMNS) <= set(d)
    assert d["pull_command"] == "zoo pull alpha@10"
    assert d["dvc_pull_command"] == "dvc pull zoo/checkpoints/alpha/step-00000010.safetensors"
    assert json.loads(run_zoo("show", "alpha", "--format", "json", cwd=small_zoo).out)["step"] == 20
    assert json.loads(run_zoo("show", "alpha@latest", "--format", "json", cwd=small_zoo).out)["step"] == 20
    text = run_zoo("show", "beta@5", cwd=small_zoo).out
    assert "zoo pull beta@5" in text and "sha256" in text


def _write_evaluations(root, accuracies, on_val=None):
    """Records as the evaluate stage writes them: accuracy on test, and on val (which ranks @best)."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.catalog.records import write_results

    zoo = Zoo(root)
    recs = {}
    for ref, acc in accuracies.items():
        c = zoo.get(ref)
        val = (on_val or accuracies)[ref]
        recs[ref] = {"step": c.step, "sha256": c.sha256, "metrics": {"accuracy": acc}, "provenance": {},
                     "selection": {"split": "val", "metric": "accuracy", "higher_is_better": True, "value": val,
                                   "metrics": {"accuracy": val}}}
    write_results(root / "zoo/metrics/evaluations", recs)


def test_best_needs_metrics_then_resolves(small_zoo):
    r = run_zoo("show", "alpha@best", cwd=small_zoo)
    assert r.code == 1 and "dvc repro" in r.err
    _write_evaluations(small_zoo, {"alpha@10": 0.9, "alpha@20": 0.8})
    assert json.loads(run_zoo("show", "alpha@best", "--format", "json", cwd=small_zoo).out)["step"] == 10
    _write_evaluations(small_zoo, {"alpha@10": 0.9, "alpha@20": 0.9})  # a tie goes to the later step
    assert json.loads(run_zoo("show", "alpha@best", "--format", "json", cwd=small_zoo).out)["step"] == 20
    # chosen on val, never on the reported (test) split
    _write_evaluations(small_zoo, {"alpha@10": 0.7, "alpha@20": 0.95}, on_val={"alpha@10": 0.9, "alpha@20": 0.6})
    assert json.loads(run_zoo("show", "alpha@best", "--format", "json", cwd=small_zoo).out)["step"] == 10
    _write_evaluations(small_zoo, {"alpha@10": 0.9, "alpha@20": 0.9})
    data = json.loads(run_zoo("ls", "--all-steps", "--sort=-accuracy", "--where", "accuracy > 0.5",
                              "--format", "json", cwd=small_zoo).out)
    assert [d["ref"] for d in data] == ["alpha@10", "alpha@20"]
    assert data[0]["metrics"] == {"accuracy": 0.9}


def test_pull_fetches_only_what_is_asked(fresh_clone):
    r = run_zoo("pull", "alpha@10", cwd=fresh_clone)
    assert r.code == 0, r.err
    assert "downloaded" in r.out and "sha256 verified" in r.out
    present = sorted(p.relative_to(fresh_clone).as_posix() for p in (fresh_clone / "zoo/checkpoints").rglob("*.safetensors"))
    assert present == ["zoo/checkpoints/alpha/step-00000010.safetensors"]
    objects = [p for p in (fresh_clone / ".dvc/cache").rglob("*") if p.is_file()]
    # exactly the file's object and its folder's .dir manifest
    assert len(objects) == 2 and sum(p.suffix == ".dir" for p in objects) == 1
    again = run_zoo("pull", "alpha@10", cwd=fresh_clone)
    assert again.code == 0 and "present" in again.out


def test_commands_taking_several_refs_take_wildcards(fresh_clone):
    r = run_zoo("pull", "a*@latest", "beta", cwd=fresh_clone)
    assert r.code == 0, r.err
    present = sorted(p.relative_to(fresh_clone).as_posix() for p in (fresh_clone / "zoo/checkpoints").rglob("*.safetensors"))
    assert present == ["zoo/checkpoints/alpha/step-00000020.safetensors", "zoo/checkpoints/beta/step-00000005.safetensors"]
    assert run_zoo("verify", "*", cwd=fresh_clone).code == 0  # '*' is the latest of every model: both pulled
    missing = run_zoo("verify", "al*@10", cwd=fresh_clone)
    assert missing.code == 1 and "1 missing" in missing.out
    none = run_zoo("pull", "gamma-*", cwd=fresh_clone)
    assert none.code == 1 and "no model matches 'gamma-*'" in none.err


def test_list_takes_one_pattern_or_several(small_zoo):
    from checkpoint_zoo import Zoo

    zoo = Zoo(small_zoo)
    assert [c.ref for c in zoo.list("alpha")] == ["alpha@20"]
    assert [c.ref for c in zoo.list("a*", all_steps=True)] == ["alpha@10", "alpha@20"]
    assert [c.ref for c in zoo.list(["beta", "alpha"])] == ["alpha@20", "beta@5"]
    assert [c.ref for c in zoo.list(exclude="alpha")] == ["beta@5"]


def test_plain_dvc_pull_of_one_path(fresh_clone):
    p = dvc("pull", "zoo/checkpoints/beta/step-00000005.safetensors", cwd=fresh_clone)
    assert p.returncode == 0, p.stderr
    assert (fresh_clone / "zoo/checkpoints/beta/step-00000005.safetensors").is_file()
    assert not (fresh_clone / "zoo/checkpoints/alpha").exists()
    assert run_zoo("verify", "beta@5", cwd=fresh_clone).code == 0


def test_add_in_partial_clone_keeps_unpulled_entries(fresh_clone, tmp_path):
    """Adding to a model folder whose other files were never pulled must not drop them from the pointer."""
    f = write_safetensors(tmp_path / "a30.safetensors", seed=30)
    r = run_zoo("add", str(f), "--model", "alpha", "--step", "30", *ADD_ARGS, cwd=fresh_clone)
    assert r.code == 0, r.err
    assert run_zoo("push", "alpha@30", cwd=fresh_clone).code == 0
    git("commit", "-qm", "alpha@30", cwd=fresh_clone)
    import shutil

    shutil.rmtree(fresh_clone / ".dvc/cache")
    shutil.rmtree(fresh_clone / "zoo/checkpoints/alpha")
    r = run_zoo("pull", "alpha@10", "alpha@20", "alpha@30", cwd=fresh_clone)
    assert r.code == 0, r.err
    assert run_zoo("verify", "alpha@10", "alpha@20", "alpha@30", cwd=fresh_clone).code == 0


def test_push_second_time_uploads_nothing(empty_zoo, tmp_path):
    f = write_safetensors(tmp_path / "p.safetensors")
    assert run_zoo("add", str(f), "--model", "p", "--step", "1", *ADD_ARGS, cwd=empty_zoo).code == 0
    first = run_zoo("push", cwd=empty_zoo)
    assert first.code == 0 and "2 object(s)" in first.out, first.out  # the file and its .dir manifest
    second = run_zoo("push", cwd=empty_zoo)
    assert second.code == 0 and "0 object(s)" in second.out


def test_push_refuses_bit_rot_in_cache(empty_zoo, tmp_path):
    f = write_safetensors(tmp_path / "r.safetensors")
    assert run_zoo("add", str(f), "--model", "r", "--step", "1", *ADD_ARGS, cwd=empty_zoo).code == 0
    from checkpoint_zoo.storage.dvc import Storage

    obj = Storage(empty_zoo).cached_object("zoo/checkpoints/r/step-00000001.safetensors")
    data = bytearray(obj.read_bytes())
    data[-1] ^= 1
    import os

    st = obj.stat()
    os.chmod(obj, 0o644)
    obj.write_bytes(bytes(data))
    os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns))  # keep mtime: the case DVC cannot see
    r = run_zoo("push", cwd=empty_zoo)
    assert r.code == 1 and "r/step-00000001.safetensors" in r.err and "nothing was pushed" in r.err
    assert not any(p.is_file() for p in (tmp_path / "remote").rglob("*")) if (tmp_path / "remote").exists() else True


def test_push_refuses_bit_rot_among_many_hashed_together(empty_zoo, tmp_path):
    """The objects of many checkpoints are hashed several at a time before a push: one damaged among them
    (same size and mtime) is still refused by name, the first in table order when two are, before anything
    moves."""
    import os

    from checkpoint_zoo import Zoo
    from checkpoint_zoo.storage.dvc import Storage

    with Zoo(empty_zoo) as zoo:
        for step in range(12):
            zoo.add(write_safetensors(tmp_path / f"m{step}.safetensors", seed=step), model="m", step=step,
                    arch="linear", task="tabular-classification", dataset="wine", license="MIT")
    store = Storage(empty_zoo)
    for step in (9, 5):
        obj = store.cached_object(f"zoo/checkpoints/m/step-{step:08d}.safetensors")
        st = obj.stat()
        os.chmod(obj, 0o644)
        data = bytearray(obj.read_bytes())
        data[-1] ^= 1
        obj.write_bytes(bytes(data))
        os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = run_zoo("push", cwd=empty_zoo)
    assert r.code == 1 and "nothing was pushed" in r.err, r.err
    assert "m/step-00000005.safetensors" in r.err and "step-00000009" not in r.err
    remote = tmp_path / "remote"
    assert not remote.exists() or not any(p.is_file() for p in remote.rglob("*"))


def test_rm_removes_row_file_and_pointer_entry(small_zoo):
    r = run_zoo("rm", "alpha@10", cwd=small_zoo)
    assert r.code == 0, r.err
    assert not (small_zoo / "zoo/checkpoints/alpha/step-00000010.safetensors").exists()
    data = json.loads(run_zoo("ls", "--all-steps", "--format", "json", cwd=small_zoo).out)
    assert [d["ref"] for d in data] == ["alpha@20", "beta@5"]
    assert dvc("status", cwd=small_zoo).returncode == 0
    from checkpoint_zoo.storage.dvc import Storage

    assert set(Storage(small_zoo).manifest("zoo/checkpoints/alpha")) == {"step-00000020.safetensors"}
    r = run_zoo("rm", "beta@5", cwd=small_zoo)
    assert r.code == 0, r.err
    assert not (small_zoo / "zoo/checkpoints/beta.dvc").exists()
    assert run_zoo("validate", cwd=small_zoo).code == 0


def test_verify_and_validate_clean_zoo(small_zoo):
    r = run_zoo("verify", "-v", cwd=small_zoo)
    assert r.code == 0 and "3 ok" in r.out
    r = run_zoo("validate", cwd=small_zoo)
    assert r.code == 0 and "valid (3 rows)" in r.out


def test_verify_reports_missing_in_partial_clone(fresh_clone):
    assert run_zoo("pull", "beta", cwd=fresh_clone).code == 0
    r = run_zoo("verify", "--all", cwd=fresh_clone)
    assert r.code == 1 and "2 missing" in r.out and "alpha@10" in r.out
    assert run_zoo("verify", "--present-only", cwd=fresh_clone).code == 0


def test_python_api(fresh_clone):
    from checkpoint_zoo import Checkpoint, Zoo

    zoo = Zoo(fresh_clone)
    listed = zoo.list(all_steps=True)
    assert [c.ref for c in listed] == ["alpha@10", "alpha@20", "beta@5"]
    c = zoo.get("alpha")
    assert isinstance(c, Checkpoint) and c.step == 20
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        c.step = 3  # type: ignore[misc]
    path = zoo.fetch("alpha@10")
    import hashlib

    assert hashlib.sha256(path.read_bytes()).hexdigest() == zoo.get("alpha@10").sha256
    sd = zoo.load_state_dict("alpha@10")
    assert set(sd) == {"fc.weight", "fc.bias", "norm.mean", "norm.std"}
    model = zoo.load_model("alpha@10")
    import torch

    assert model(torch.zeros(2, 13)).shape == (2, 3)
    from checkpoint_zoo.errors import CheckpointNotFoundError

    with pytest.raises(CheckpointNotFoundError):
        zoo.get("gamma")
    with pytest.raises(KeyError):
        zoo.get("alpha@11")


def test_zoo_from_subfolder_and_env(small_zoo, monkeypatch):
    from checkpoint_zoo import Zoo

    assert Zoo(small_zoo / "zoo" / "checkpoints").root == small_zoo.resolve()
    monkeypatch.setenv("ZOO_REPO", str(small_zoo))
    assert Zoo().root == small_zoo.resolve()
    r = run_zoo("-C", str(small_zoo), "ls", cwd=small_zoo.parent)
    assert r.code == 0 and "alpha" in r.out


def test_reference_remote_holds_what_every_pointer_references(reference_clone):
    """The in-repo remote as committed (a fresh clone, nothing pulled): each model folder's manifest and every
    file it lists are there and match their md5, and each manifest lists exactly that model's rows, with the
    table's sha256. Retiring a model (`zoo rm`, then `dvc gc -w -c` of the remote) must leave the rest whole."""
    import hashlib
    from pathlib import Path

    import yaml
    from conftest import reference_rows

    from checkpoint_zoo.catalog import rules

    objects = reference_clone / ".dvc-remote" / "files" / "md5"

    def stored(md5: str) -> bytes:
        path = objects / md5[:2] / md5[2:]
        assert path.is_file(), f"{md5} is referenced but not in .dvc-remote/"
        data = path.read_bytes()
        assert hashlib.md5(data).hexdigest() == md5.removesuffix(".dir"), f"{path}: not the bytes of its md5"
        return data

    rows = reference_rows()
    pointers = sorted((reference_clone / "zoo/checkpoints").glob("*.dvc"))
    assert [p.stem for p in pointers] == sorted({r["model"] for r in rows})
    for pointer in pointers:
        (out,) = yaml.safe_load(pointer.read_text())["outs"]
        manifest = {e["relpath"]: e["md5"] for e in json.loads(stored(out["md5"]))}
        mine = [r for r in rows if r["model"] == pointer.stem]
        folder = f"zoo/checkpoints/{pointer.stem}/"
        # every file of each checkpoint: its one file, or each file of a folder checkpoint (step-N/NAME)
        expected = {path.removeprefix(folder): sha for r in mine for path, sha in rules.parts(r)}
        expected |= {Path(rules.state_path(r["model"], int(r["step"]))).name: r["state_sha256"]
                     for r in mine if r["state_sha256"]}
        assert sorted(manifest) == sorted(expected), pointer.name
        for name, md5 in manifest.items():
            assert hashlib.sha256(stored(md5)).hexdigest() == expected[name], f"{pointer.stem}/{name}"


def test_reference_zoo_loads_every_checkpoint(reference_clone):
    """The shipped zoo: >= 4 archs, >= 2 tasks, >= 4 stages each, all pullable and loadable, under the 40 MB budget."""
    import numpy as np

    from checkpoint_zoo import Zoo
    from checkpoint_zoo.datasets import Split
    from checkpoint_zoo.registry.datasets import load_splits

    zoo = Zoo(reference_clone)
    ckpts = zoo.list(all_steps=True)
    assert len({c.arch for c in ckpts}) >= 4 and len({c.task for c in ckpts}) >= 2
    by_model: dict[str, int] = {}
    for c in ckpts:
        by_model[c.model] = by_model.get(c.model, 0) + 1
        assert c.source.startswith(("scripts/train_reference.py", "scripts/finetune_reference.py")), c.source
    assert min(by_model.values()) >= 4
    # at least one real fine-tune of another reference model, registered with its lineage
    assert any(c.parent and c.parent.split("@")[0] != c.model and zoo.get(c.parent) for c in ckpts)
    remote = reference_clone / ".dvc-remote"
    assert sum(p.stat().st_size for p in remote.rglob("*") if p.is_file()) < 40_000_000  # the budget
    r = run_zoo("pull", *[c.ref for c in ckpts], cwd=reference_clone)
    assert r.code == 0, r.err
    import torch

    for c in zoo.list():  # the latest of each model must actually have learned something
        if "--family" in c.source or "finetune_reference" in c.source:  # these report on test, checked elsewhere
            continue
        model = zoo.load_model(c.ref)
        splits = load_splits(zoo.registry().dataset(c.dataset), zoo.registry())
        # the training script reported accuracy on everything held out from training: val and test together
        test = Split(np.concatenate([splits.val.x, splits.test.x]), np.concatenate([splits.val.y, splits.test.y]))
        with torch.no_grad():
            acc = float((model(torch.from_numpy(test.x)).argmax(1).numpy() == test.y).mean())
        majority = np.bincount(test.y).max() / len(test.y)
        assert acc > majority + 0.05, (c.ref, acc, majority)
        assert abs(acc - c.reported_value) < 1e-3, (c.ref, acc, c.reported_value)
    assert run_zoo("verify", cwd=reference_clone).code == 0
    assert run_zoo("validate", cwd=reference_clone).code == 0
