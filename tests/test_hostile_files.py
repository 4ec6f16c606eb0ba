"""Hostile files, round three: a folder file swapped after its check, pickles under any name, names that collide
by case, a table committed as a symlink in front of ``zoo serve``, limits that must agree, and ``--from``
manifests that are not files (classes 6 and 7 of the hostile-input issue). Real files, real zoos."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ADD_ARGS, git, run_zoo, snapshot
from test_folder_checkpoints import _folder

SECRET = "SECRET-TOKEN-5f1d,only-in-the-outside-file"


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside any zoo, holding a file whose first line must never come back."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET + "\nsecond line\n")
    return folder


# ---- class 6: a folder's file is opened once, without following a link, and must be what was checked ----------


def test_folder_file_swapped_for_symlink_after_the_check_is_not_copied(tmp_path, outside):
    from checkpoint_zoo.errors import ZooError
    from checkpoint_zoo.formats import copy_hashed, folder_members

    src = _folder(tmp_path / "in" / "ckpt")
    assert "config.json" in folder_members(src)
    (src / "config.json").unlink()
    (src / "config.json").symlink_to(outside / "secret.txt")  # after the check, before the copy
    dst = tmp_path / "copy" / "config.json"
    with pytest.raises(ZooError, match="config.json.*symlink"):
        copy_hashed(src / "config.json", dst)
    assert not dst.exists() and not (dst.parent.exists() and any(dst.parent.iterdir()))


def test_folder_file_replaced_by_another_file_after_the_check_is_not_copied(tmp_path, outside):
    from checkpoint_zoo.errors import ZooError
    from checkpoint_zoo.formats import copy_hashed, folder_members

    src = _folder(tmp_path / "in" / "ckpt")
    folder_members(src)
    # a hard link is a regular file, not a symlink: only the inode shows it is not the file that was checked
    (src / "tokenizer.json").unlink()
    os.link(outside / "secret.txt", src / "tokenizer.json")
    with pytest.raises(ZooError, match="tokenizer.json.*not the file that was checked"):
        copy_hashed(src / "tokenizer.json", tmp_path / "copy" / "tokenizer.json")


def test_the_add_copy_of_a_checked_folder_refuses_a_swapped_file(empty_zoo, tmp_path, outside):
    """The copy ``zoo add`` makes of a checked folder (``copy_folder_in``) refuses a member turned symlink, and
    leaves nothing in the incoming area."""
    from checkpoint_zoo.errors import ZooError
    from checkpoint_zoo.formats import folder_members
    from checkpoint_zoo.verbs.add import copy_folder_in

    src = _folder(tmp_path / "in" / "ckpt")
    members = folder_members(src)
    (src / "1_Pooling" / "config.json").unlink()
    (src / "1_Pooling" / "config.json").symlink_to(outside / "secret.txt")
    incoming = tmp_path / "incoming" / "gamma-1.folder"
    with pytest.raises(ZooError, match="symlink"):
        copy_folder_in(src, members, incoming)
    assert not incoming.exists()


@pytest.mark.parametrize("name", ["rng_state", "optimizer.joblib", "1_Pooling/scheduler"])
def test_a_pickle_in_a_folder_is_refused_whatever_its_name(empty_zoo, tmp_path, name):
    src = _folder(tmp_path / "in" / "ckpt")
    (src / name).write_bytes(pickle.dumps({"step": 3, "rng": [1, 2, 3]}, protocol=4))
    before = snapshot(empty_zoo)
    r = run_zoo("add", str(src), "--model=gamma", "--step=1", *ADD_ARGS, cwd=empty_zoo)
    assert r.code != 0 and name in r.err and "pickle" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert snapshot(empty_zoo) == before


def test_a_protocol_0_pickle_in_a_folder_is_refused(tmp_path):
    from checkpoint_zoo.errors import UnsafeFormatError
    from checkpoint_zoo.formats import folder_members

    src = _folder(tmp_path / "in" / "ckpt")
    (src / "trainer_state").write_bytes(pickle.dumps({"a": [1, 2, 3], "b": ("x", 2.5)}, protocol=0))
    with pytest.raises(UnsafeFormatError, match="trainer_state"):
        folder_members(src)


@pytest.mark.parametrize("pair", [("Config.json", "config.json"), ("1_pooling/x.json", "1_Pooling/config.json")])
def test_names_that_differ_only_by_case_are_refused(tmp_path, pair):
    from checkpoint_zoo.errors import InvalidValueError
    from checkpoint_zoo.formats import folder_members

    src = _folder(tmp_path / "in" / "ckpt")
    extra = src / pair[0]
    extra.parent.mkdir(parents=True, exist_ok=True)
    extra.write_text("{}")
    with pytest.raises(InvalidValueError, match="differ only by case") as e:
        folder_members(src)
    first = pair[0].split("/")[0]
    assert first in str(e.value) and "\n" not in str(e.value)


# ---- class 6: the table is resolved like any other zoo path; zoo serve's errors carry no file contents ---------


def _symlink_table(root: Path, target: Path) -> None:
    table = root / "zoo/checkpoints.csv"
    table.unlink()
    table.symlink_to(target)


def test_a_symlinked_table_is_refused_naming_it(small_zoo, outside):
    from checkpoint_zoo.catalog.table import read_table, table_file
    from checkpoint_zoo.errors import UnsafePathError

    assert read_table(small_zoo).startswith(b"model,step,")
    _symlink_table(small_zoo, outside / "secret.txt")
    for call in (table_file, read_table):
        with pytest.raises(UnsafePathError, match="zoo/checkpoints.csv: is a symlink") as e:
            call(small_zoo)
        assert SECRET not in str(e.value) and "\n" not in str(e.value)


def test_a_table_reached_through_a_symlinked_folder_is_refused(small_zoo, tmp_path):
    from checkpoint_zoo.catalog.table import table_file
    from checkpoint_zoo.errors import UnsafePathError

    elsewhere = tmp_path / "elsewhere"
    (small_zoo / "zoo").rename(elsewhere)
    (small_zoo / "zoo").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="outside the zoo"):
        table_file(small_zoo)


def test_serve_never_answers_with_the_target_of_a_symlinked_table(small_zoo, outside):
    from starlette.testclient import TestClient

    from checkpoint_zoo.server.app import create_app

    _symlink_table(small_zoo, outside / "secret.txt")
    git("add", "-A", cwd=small_zoo)
    git("commit", "-qm", "the table, as a symlink", cwd=small_zoo)
    client = TestClient(create_app(small_zoo))
    paths = ("/api/models", "/api/models/alpha", "/api/models/alpha/checkpoints/10", "/api/leaderboard",
             "/files/alpha/10", "/data.js", "/api/models?rev=HEAD", "/data.js?rev=HEAD")
    for path in paths:
        r = client.get(path)
        assert SECRET.split(",")[0] not in r.text and "only-in-the-outside-file" not in r.text, (path, r.text)
    r = client.get("/api/models")
    assert r.status_code >= 400 and "zoo/checkpoints.csv" in r.json()["error"], r.text
    assert "\n" not in r.json()["error"]


def test_serve_error_answers_carry_one_line(small_zoo):
    """A table that fails its schema: the answer names the table and the count, the problems (which quote its
    cells) stay on the server."""
    from starlette.testclient import TestClient

    from checkpoint_zoo.server.app import create_app

    table = small_zoo / "zoo/checkpoints.csv"
    table.write_text(table.read_text().replace("alpha test", "=HYPERLINK(\"private-cell-value\")", 1))
    r = TestClient(create_app(small_zoo)).get("/api/models")
    assert r.status_code == 500 and "zoo/checkpoints.csv" in r.json()["error"], r.text
    assert "private-cell-value" not in r.text and "\n" not in r.json()["error"]


# ---- class 7: limits that agree ---------------------------------------------------------------------------------


def test_a_folder_of_a_hundred_files_fits_the_table(empty_zoo, tmp_path):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.catalog import rules

    src = _folder(tmp_path / "in" / "ckpt")
    for i in range(100):
        (src / f"extra_{i:03d}.json").write_text(f'{{"i": {i}}}')
    with Zoo(empty_zoo) as zoo:
        zoo.add(src, model="gamma", step=1, arch="linear", task="tabular-classification", dataset="wine",
                license="MIT")
        row = next(r for r in zoo.rows() if r["model"] == "gamma")
    assert len(rules.parse_files(row["files"])) == 107 and len(row["files"]) > rules.MAX_TEXT_CHARS
    r = run_zoo("validate", cwd=empty_zoo)
    assert r.code == 0, r.err


def test_a_folder_whose_names_overflow_the_files_cell_is_refused_naming_the_limit(tmp_path):
    from checkpoint_zoo.catalog import rules
    from checkpoint_zoo.errors import InvalidValueError
    from checkpoint_zoo.formats import folder_members

    src = _folder(tmp_path / "in" / "ckpt")
    deep = src / ("d" * 120)
    deep.mkdir()
    for i in range(420):  # 420 files (under the 512-file limit) of 240-character paths
        (deep / f"{i:03d}{'n' * 116}").write_text("{}")
    with pytest.raises(InvalidValueError, match=f"{rules.MAX_FILES_CHARS:,}") as e:
        folder_members(src)
    assert "files column" in str(e.value) and str(rules.MAX_FOLDER_FILES) in str(e.value)


def test_the_schema_and_the_folder_limit_agree(tmp_path):
    """The longest files cell a folder may have passes the schema's length check; one character more is refused
    with the limit named."""
    from checkpoint_zoo.catalog import rules
    from checkpoint_zoo.catalog.schema import _text_problems

    names = [f"{i:04d}{'n' * 164}" for i in range(rules.MAX_FOLDER_FILES)]  # 512 paths of 168 characters
    cell = rules.format_files({n: "0" * 64 for n in names})
    assert rules.files_limit_problem(names) is None and len(cell) > rules.MAX_TEXT_CHARS
    found: dict = {}
    _text_problems([{"model": "m", "step": "1", "files": cell}], "t.csv", found)
    assert not found
    _text_problems([{"model": "m", "step": "1", "files": "x" * (rules.MAX_FILES_CHARS + 1)}], "t.csv", found)
    assert any(str(rules.MAX_FILES_CHARS) in v for v in found.values())


# ---- class 7: zoo add --from takes regular files under a size cap ----------------------------------------------


def test_add_from_a_fifo_is_refused_at_once(empty_zoo, tmp_path):
    fifo = tmp_path / "manifest.csv"
    os.mkfifo(fifo)
    try:
        r = run_zoo("add", "--from", str(fifo), cwd=empty_zoo, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("zoo add --from a FIFO waited for a writer")
    assert r.code != 0 and str(fifo) in r.err and "not a regular file" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1, r.err


def _read_manifest_limited(path: str) -> subprocess.CompletedProcess:
    """``read_manifest(path)`` in a child process held to 1 GiB of memory and 60 s."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))

    code = ("import sys\nfrom checkpoint_zoo.errors import ZooError\nfrom checkpoint_zoo.verbs.bulk import read_manifest\n"
            "try:\n    read_manifest(sys.argv[1])\nexcept ZooError as e:\n    print(e)\n    sys.exit(3)\n")
    return subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=60,
                          preexec_fn=limit)


def test_add_from_dev_zero_is_refused_without_reading_it():
    r = _read_manifest_limited("/dev/zero")
    assert r.returncode == 3 and "/dev/zero" in r.stdout and "not a regular file" in r.stdout, (r.stdout, r.stderr[-500:])


def test_add_from_a_manifest_over_the_size_cap_is_refused(tmp_path):
    big = tmp_path / "huge.csv"
    with open(big, "wb") as f:
        f.truncate(64 * 2**20 + 1)  # sparse: no disk used
    r = _read_manifest_limited(str(big))
    assert r.returncode == 3 and "larger than 64 MiB" in r.stdout, (r.stdout, r.stderr[-500:])


def test_the_batch_path_check_of_a_pull_refuses_what_one_path_check_refuses(empty_zoo, outside):
    """``Workspace.check_paths`` (a pull of many files) resolves each folder once: a linked file, a linked model
    folder and a linked checkpoints folder must still be refused, each as ``Workspace.path`` refuses it."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import UnsafePathError

    ckpts = empty_zoo / "zoo" / "checkpoints"
    (ckpts / "m").mkdir(parents=True)
    (ckpts / "m" / "step-00000001.safetensors").write_bytes(b"x")
    (ckpts / "m" / "step-00000002.safetensors").symlink_to(outside / "secret.txt")
    (ckpts / "linked").symlink_to(outside)
    fine = ["zoo/checkpoints/m/step-00000001.safetensors", "zoo/checkpoints/m/step-00000009.safetensors"]
    with Zoo(empty_zoo) as zoo:
        ws = zoo.workspace
        ws.check_paths(fine)  # a missing file inside is fine: the pull writes it
        for bad in ("zoo/checkpoints/m/step-00000002.safetensors", "zoo/checkpoints/linked/secret.txt",
                    "zoo/checkpoints/m/.."):
            with pytest.raises(UnsafePathError) as batch:
                ws.check_paths([*fine, bad])
            with pytest.raises(UnsafePathError) as one:
                ws.path(bad)
            assert str(batch.value) == str(one.value)
        os.rename(ckpts, empty_zoo / "zoo" / "real")
        (empty_zoo / "zoo" / "checkpoints").symlink_to(empty_zoo / "zoo" / "real")
        with pytest.raises(UnsafePathError, match="must be a real folder"):
            ws.check_paths(fine)
