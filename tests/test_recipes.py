"""README's scripts end in one line, never a traceback, when the zoo refuses what they ask."""

from __future__ import annotations

import subprocess
import sys

from conftest import PROJECT, git


def test_finetune_script_into_an_existing_model_is_one_line_not_a_traceback(reference_clone, tmp_path):
    """README's Lineage command in a clone that holds the model already: the add it ends with is refused
    (stored as float32, so the bytes surely differ from the committed float16 step)."""
    clone = tmp_path / "clone"
    git("clone", "-q", str(reference_clone), str(clone), cwd=tmp_path)
    subprocess.run([sys.executable, "-m", "dvc", "pull", "-q", "zoo/checkpoints/mnist-mobilenetv3"], cwd=clone,
                   check=True, capture_output=True)
    proc = subprocess.run(
        [sys.executable, str(PROJECT / "scripts/finetune_reference.py"), "--from", "mnist-mobilenetv3@best",
         "--model", "mnist-parity-mobilenetv3", "--arch", "mobilenetv3-mnist-parity",
         "--dataset", "mnist-parity", "--steps", "20", "--dtype", "float32", "--batch", "8"],
        cwd=clone, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()
    assert len(last) == 1 and last[0].startswith("finetune_reference.py: zoo add: "), proc.stderr
    assert "mnist-parity-mobilenetv3@20 exists with other bytes" in last[0] and "--replace" in last[0]
    assert git("status", "--porcelain", "--untracked-files=no", cwd=clone) == ""


def test_ls_of_an_unknown_model_says_so_and_fails(small_zoo):
    from conftest import run_zoo

    r = run_zoo("ls", "alpah", cwd=small_zoo)
    assert r.code == 1 and r.out == ""
    assert r.err.strip() == "zoo ls: no model matches 'alpah' (did you mean alpha? `zoo ls` lists all 2 models)"
    r = run_zoo("ls", "alpha", "--where", "step > 1000", cwd=small_zoo)  # a query with no answer is not an error
    assert r.code == 0 and "no checkpoint of these models matches" in r.err
    r = run_zoo("ls", "--format=json", "nosuch", cwd=small_zoo)
    assert r.code == 1 and r.out.strip() == "[]" and "no model matches 'nosuch'" in r.err
    assert run_zoo("ls", "alp*", cwd=small_zoo).code == 0  # the control


def test_hf_export_keeps_the_stored_precision(reference_clone, tmp_path):
    """bbc-bert-tiny is stored in float16: its hf export was silently float32 (twice the bytes)."""
    import json
    import struct

    from conftest import run_zoo

    clone = tmp_path / "clone"
    git("clone", "-q", str(reference_clone), str(clone), cwd=tmp_path)
    assert run_zoo("pull", "bbc-bert-tiny@30", cwd=clone).code == 0
    r = run_zoo("export", "bbc-bert-tiny@30", str(tmp_path / "out"), "--format", "hf", cwd=clone)
    assert r.code == 0, r.err
    with open(tmp_path / "out" / "model.safetensors", "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    stored = json.loads(run_zoo("show", "bbc-bert-tiny@30", "--format", "json", cwd=clone).out)["dtype"].split(";")
    assert dtypes - {"I64"} == {"F16"} and "F16" in stored


def test_rm_of_a_models_last_checkpoint_takes_its_auto_written_arch_along(empty_zoo, tmp_path):
    from conftest import run_zoo, undeclare_input
    from test_folder_checkpoints import _tiny_bert

    _tiny_bert(tmp_path / "in" / "bert")
    undeclare_input(empty_zoo)
    r = run_zoo("add", str(tmp_path / "in" / "bert"), "--model=tiny-bert", "--step=3", "--task=tabular-classification",
                "--dataset=wine", "--license=Apache-2.0", cwd=empty_zoo)
    assert r.code == 0, r.err
    arch = "conf/arch/tiny-bert.yaml"
    assert (empty_zoo / arch).is_file() and arch in git("diff", "--cached", "--name-only", cwd=empty_zoo)
    r = run_zoo("rm", "tiny-bert@3", cwd=empty_zoo)
    assert r.code == 0, r.err
    assert not (empty_zoo / arch).exists()
    assert git("status", "--porcelain", "--", "conf/arch", "zoo", cwd=empty_zoo).strip() == ""  # nothing left behind
    assert (empty_zoo / "conf/arch/linear.yaml").is_file()  # hand-written ones stay


def test_a_conflicting_auto_written_arch_is_named_plainly_and_folder_files_have_sizes(empty_zoo, tmp_path):
    import json

    from conftest import run_zoo, undeclare_input
    from test_folder_checkpoints import _tiny_bert
    from test_serve import Server

    undeclare_input(empty_zoo)
    _tiny_bert(tmp_path / "a")
    args = ("--model=tiny-bert", "--task=tabular-classification", "--dataset=wine", "--license=Apache-2.0")
    assert run_zoo("add", str(tmp_path / "a"), "--step=1", *args, cwd=empty_zoo).code == 0
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    (tmp_path / "b").mkdir()
    for f in (tmp_path / "a").iterdir():
        (tmp_path / "b" / f.name).write_bytes(f.read_bytes())
    (tmp_path / "b" / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.3}))
    r = run_zoo("add", str(tmp_path / "b"), "--step=2", *args, cwd=empty_zoo)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1, r.err
    assert "exists with another configuration than this folder's config.json" in r.err and "#" not in r.err
    assert "--arch tiny-bert" in r.err and "another --model" in r.err

    server = Server(empty_zoo)
    try:
        files = server.json("/api/models/tiny-bert/checkpoints/1")["files"]
    finally:
        server.stop()
    local = empty_zoo / "zoo/checkpoints/tiny-bert/step-00000001"
    assert files and all(f["size_bytes"] == (local / f["name"]).stat().st_size for f in files)
