"""Checkpoints of more than one file: a folder (sharded safetensors weights with their index, config.json, a
label map, tokenizer files) tracked, pulled, verified, diffed, pushed and removed as one unit, through the
real entry points in real clones."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ADD_ARGS, git, run_zoo, snapshot, undeclare_input


def _folder(path: Path, seed: int = 0, extra: dict[str, bytes] | None = None) -> Path:
    """A linear wine model saved the way save_pretrained shards it: two safetensors shards and their index,
    a config.json with the label map, and a tokenizer-like JSON file."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    first = {"fc.weight": rng.standard_normal((3, 13)).astype(np.float32),
             "fc.bias": rng.standard_normal(3).astype(np.float32)}
    second = {"norm.mean": rng.standard_normal(13).astype(np.float32),
              "norm.std": (np.abs(rng.standard_normal(13)) + 1).astype(np.float32)}
    save_file(first, str(path / "model-00001-of-00002.safetensors"))
    save_file(second, str(path / "model-00002-of-00002.safetensors"))
    index = {"metadata": {"total_size": 4 * (39 + 3 + 13 + 13)},
             "weight_map": {**{k: "model-00001-of-00002.safetensors" for k in first},
                            **{k: "model-00002-of-00002.safetensors" for k in second}}}
    (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (path / "config.json").write_text(json.dumps({"id2label": {"0": "class_0", "1": "class_1", "2": "class_2"},
                                                  "seed": seed}))
    (path / "tokenizer.json").write_text(json.dumps({"vocab": ["a", "b"]}))
    # what a hub snapshot also holds: a dot-file and a sub-folder (sentence-transformers' pooling config)
    (path / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    for name, data in (extra or {}).items():
        (path / name).write_bytes(data)
    return path


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_folder_checkpoint_round_trip(empty_zoo, tmp_path):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.catalog import rules

    src = _folder(tmp_path / "in" / "ckpt")
    r = run_zoo("add", str(src), "--model=gamma", "--step=1", *ADD_ARGS, cwd=empty_zoo)
    assert r.code == 0, r.err
    zoo = Zoo(empty_zoo)
    ckpt = zoo.get("gamma@1")
    row = next(r for r in zoo.rows() if r["model"] == "gamma")
    names = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    files = rules.parse_files(row["files"])
    # every file's sha256 is in git (the table), and the checkpoint's sha256 is their manifest's
    assert sorted(files) == names and all(files[n] == _sha(src / n) for n in names)
    manifest = "".join(f"{_sha(src / n)}  {n}\n" for n in names)
    assert ckpt.format == "folder" and ckpt.path == "zoo/checkpoints/gamma/step-00000001"
    assert ckpt.sha256 == hashlib.sha256(manifest.encode()).hexdigest()
    assert ckpt.size_bytes == sum((src / n).stat().st_size for n in names)
    assert ckpt.num_params == 39 + 3 + 13 + 13
    placed = empty_zoo / ckpt.path
    assert sorted(p.relative_to(placed).as_posix() for p in placed.rglob("*") if p.is_file()) == names
    # loads strictly: the shards together are the architecture's state dict
    model = zoo.load_model("gamma@1")
    from safetensors.numpy import load_file

    assert np.array_equal(model.state_dict()["fc.weight"].numpy(),
                          load_file(str(src / "model-00001-of-00002.safetensors"))["fc.weight"])
    zoo.close()
    r = run_zoo("show", "gamma@1", cwd=empty_zoo)
    assert r.code == 0 and "config.json" in r.out and "model.safetensors.index.json" in r.out, r.out
    assert run_zoo("push", cwd=empty_zoo).code == 0
    git("commit", "-qm", "folder checkpoint", cwd=empty_zoo)

    # a fresh clone pulls just that folder, every file checked
    clone = tmp_path / "clone"
    git("clone", "-q", str(empty_zoo), str(clone), cwd=tmp_path)
    r = run_zoo("pull", "gamma@1", cwd=clone)
    assert r.code == 0, r.err
    assert {n: _sha(clone / ckpt.path / n) for n in names} == files
    r = run_zoo("verify", cwd=clone)
    assert r.code == 0 and r.out.startswith(f"{len(names)} ok, 0 mismatched"), r.out

    # damage one file: verify names it, pull restores it
    victim = clone / ckpt.path / "config.json"
    victim.write_text("{}")
    r = run_zoo("verify", cwd=clone)
    assert r.code != 0 and "config.json" in r.out + r.err and "mismatch" in r.out + r.err
    assert run_zoo("pull", "gamma@1", cwd=clone).code == 0
    assert _sha(victim) == files["config.json"]
    # a file the table does not list is reported, not ignored
    (clone / ckpt.path / "stray.txt").write_text("x")
    r = run_zoo("verify", cwd=clone)
    assert r.code != 0 and "stray.txt" in r.out + r.err
    (clone / ckpt.path / "stray.txt").unlink()

    # a new version of the folder at another step: diff shows it, both are one unit each
    src2 = _folder(tmp_path / "in" / "ckpt2", seed=1)
    r = run_zoo("add", str(src2), "--model=gamma", "--step=2", *ADD_ARGS, cwd=clone)
    assert r.code == 0, r.err
    r = run_zoo("diff", cwd=clone)
    assert r.code == 0 and "gamma@2" in r.out, r.out
    assert run_zoo("push", cwd=clone).code == 0
    git("commit", "-qm", "second folder", cwd=clone)
    # replaced with one file changed, one added: the diff names them
    (src2 / "tokenizer.json").write_text(json.dumps({"vocab": ["a", "b", "c"]}))
    (src2 / "labels.txt").write_text("class_0\nclass_1\nclass_2\n")
    (src2 / ".gitattributes").unlink()
    r = run_zoo("add", str(src2), "--model=gamma", "--step=2", "--replace", *ADD_ARGS, cwd=clone)
    assert r.code == 0 and r.out.startswith("replaced gamma@2"), r.out + r.err
    r = run_zoo("diff", cwd=clone)
    assert "gamma@2  .gitattributes removed, labels.txt added, tokenizer.json changed" in r.out, r.out
    # the model folder's DVC manifest lists exactly the new files (the removed one is gone from it too)
    import yaml

    md5 = yaml.safe_load((clone / "zoo/checkpoints/gamma.dvc").read_text())["outs"][0]["md5"]
    cache = clone / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    listed = sorted(e["relpath"] for e in json.loads(cache.read_text()) if e["relpath"].startswith("step-00000002/"))
    assert listed == sorted(f"step-00000002/{p.relative_to(src2).as_posix()}" for p in src2.rglob("*") if p.is_file())
    assert run_zoo("verify", "gamma@2", cwd=clone).code == 0
    git("commit", "-qam", "replaced", cwd=clone)

    # rm removes the whole folder and its entries
    r = run_zoo("rm", "gamma@1", cwd=clone)
    assert r.code == 0, r.err
    assert not (clone / ckpt.path).exists() and (clone / "zoo/checkpoints/gamma/step-00000002").is_dir()
    assert "gamma@1" not in run_zoo("ls", "--all", cwd=clone).out


def test_folder_at_a_revision_and_over_http(empty_zoo, tmp_path):
    from checkpoint_zoo import Zoo

    src = _folder(tmp_path / "in" / "ckpt")
    zoo = Zoo(empty_zoo)
    zoo.add(src, model="gamma", step=1, arch="linear", task="tabular-classification", dataset="wine", license="MIT")
    zoo.push()
    zoo.close()
    git("commit", "-qm", "folder", cwd=empty_zoo)
    at = Zoo(str(empty_zoo), rev="HEAD")
    path = at.fetch("gamma@1")
    def tree(root: Path) -> dict[str, str]:
        return {p.relative_to(root).as_posix(): _sha(p) for p in root.rglob("*") if p.is_file()}

    assert path.is_dir() and tree(path) == tree(src)
    assert at.load_model("gamma@1") is not None
    one = at.verified_file("gamma@1", name="config.json")
    assert one.read_bytes() == (src / "config.json").read_bytes()
    from checkpoint_zoo.errors import CheckpointNotFoundError

    with pytest.raises(CheckpointNotFoundError, match="config.json"):
        at.verified_file("gamma@1", name="nope.json")

    from test_serve import Server

    server = Server(empty_zoo)
    try:
        info = server.json("/api/models/gamma/checkpoints/1")
        assert [f["name"] for f in info["files"]] == sorted(tree(src))
        for f in info["files"]:
            code, headers, body = server.get(f["url"])
            assert code == 200 and hashlib.sha256(body).hexdigest() == f["sha256"] == _sha(src / f["name"]), f
            assert headers["etag"] == f'"{f["sha256"]}"'
        code, _, body = server.get("/files/gamma/1")
        assert code == 404 and b"name one of its files" in body and b"config.json" in body
        assert server.get("/files/gamma/1/nope.json")[0] == 404
        assert server.get("/files/gamma/1/..%2Fstep-00000001")[0] == 404
    finally:
        server.stop()


_BAD = {"pickle": "pytorch_model.bin", "hidden-folder": "hidden folder", "too-deep": "4 levels", "symlink": "symlink",
        "no-weights": "no .safetensors", "bad-name": "must match", "not-safetensors": "model-00002"}


def _spoil(src: Path, case: str) -> None:
    if case == "pickle":
        import pickle

        (src / "1_Pooling" / "pytorch_model.bin").write_bytes(pickle.dumps({"a": 1}))
    elif case == "hidden-folder":
        (src / ".git").mkdir()
        (src / ".git" / "HEAD").write_text("ref: x")
    elif case == "too-deep":
        (src / "a/b/c/d").mkdir(parents=True)
        (src / "a/b/c/d/e.json").write_text("{}")
    elif case == "symlink":
        (src / "link.json").symlink_to(src / "config.json")
    elif case == "no-weights":
        for p in src.glob("*.safetensors"):
            p.unlink()
    elif case == "bad-name":
        (src / "-rf").write_text("x")
    elif case == "not-safetensors":
        (src / "model-00002-of-00002.safetensors").write_bytes(b"\x80\x04K\x01.")


def test_bad_folders_refused_nothing_written(empty_zoo, tmp_path):
    before = snapshot(empty_zoo)
    for case, expect in _BAD.items():
        src = _folder(tmp_path / "in" / case)
        _spoil(src, case)
        r = run_zoo("add", str(src), "--model=gamma", "--step=1", *ADD_ARGS, cwd=empty_zoo)
        assert r.code != 0 and expect in r.err, (case, r.err)
        assert len(r.err.strip().splitlines()) == 1, (case, r.err)
        assert snapshot(empty_zoo) == before, case
    incoming = empty_zoo / ".dvc" / "tmp" / "zoo" / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())


def test_folder_of_other_shapes_refused(empty_zoo, tmp_path):
    src = _folder(tmp_path / "in" / "ckpt")
    from safetensors.numpy import save_file

    save_file({"norm.mean": np.zeros(7, np.float32), "norm.std": np.ones(13, np.float32)},
              str(src / "model-00002-of-00002.safetensors"))
    before = snapshot(empty_zoo)
    r = run_zoo("add", str(src), "--model=gamma", "--step=1", *ADD_ARGS, cwd=empty_zoo)
    assert r.code != 0 and "norm.mean" in r.err and "does not fit" in r.err, r.err
    assert snapshot(empty_zoo) == before
    # the same tensor in two shards is refused too
    save_file({"fc.bias": np.zeros(3, np.float32), "norm.mean": np.zeros(13, np.float32),
               "norm.std": np.ones(13, np.float32)}, str(src / "model-00002-of-00002.safetensors"))
    r = run_zoo("add", str(src), "--model=gamma", "--step=1", *ADD_ARGS, cwd=empty_zoo)
    assert r.code != 0 and "fc.bias" in r.err and "stored once" in r.err, r.err
    shutil.rmtree(src)


def test_hand_edited_files_column_refused(empty_zoo, tmp_path):
    from checkpoint_zoo import Zoo

    src = _folder(tmp_path / "in" / "ckpt")
    zoo = Zoo(empty_zoo)
    zoo.add(src, model="gamma", step=1, arch="linear", task="tabular-classification", dataset="wine", license="MIT")
    zoo.close()
    table = empty_zoo / "zoo/checkpoints.csv"
    text = table.read_text()
    sha = _sha(src / "config.json")
    table.write_text(text.replace(f"config.json:{sha}", f"config.json:{'0' * 64}"))
    r = run_zoo("validate", cwd=empty_zoo)
    assert r.code != 0 and "files" in r.out + r.err, r.out + r.err


def _tiny_bert(folder: Path):
    """A real transformers classifier (random weights, nothing downloaded) with a real fast tokenizer, written
    by save_pretrained: what a team's Hugging Face folder looks like."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    torch.manual_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=3,
                        id2label={0: "class_0", 1: "class_1", 2: "class_2"},
                        label2id={"class_0": 0, "class_1": 1, "class_2": 2})
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(str(folder))
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "match", "shares", "rose"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(str(folder))
    return model, fast


def test_hugging_face_folder_in_and_out(empty_zoo, tmp_path):
    """`zoo add` of a save_pretrained folder takes arch and config from config.json; `zoo export --format hf`
    gives a folder transformers loads with no zoo code, with the same predictions and tokenizer."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    src = tmp_path / "in" / "bert"
    model, tok = _tiny_bert(src)
    undeclare_input(empty_zoo)  # a tiny BERT stands in for a wine model: its input is not wine's 13 floats
    r = run_zoo("add", str(src), "--model=tiny-bert", "--step=3", "--task=tabular-classification", "--dataset=wine",
                "--license=Apache-2.0", cwd=empty_zoo)
    assert r.code == 0, r.err
    arch_file = empty_zoo / "conf/arch/tiny-bert.yaml"
    assert "conf/arch/tiny-bert.yaml" in r.out  # staged with the checkpoint
    import yaml

    arch = yaml.safe_load(arch_file.read_text())
    assert arch["_target_"] == "transformers.BertForSequenceClassification"
    assert arch["config"]["_target_"] == "transformers.BertConfig" and arch["config"]["hidden_size"] == 16
    assert "conf/arch/tiny-bert.yaml" in git("diff", "--cached", "--name-only", cwd=empty_zoo)

    from checkpoint_zoo import Zoo

    zoo = Zoo(empty_zoo)
    batch = tok(["the match", "shares rose"], return_tensors="pt", padding=True)
    with torch.no_grad():
        want = model(**batch).logits
        got = zoo.load_model("tiny-bert@3")(**batch).logits
    assert torch.equal(got, want)

    out = tmp_path / "exported"
    r = run_zoo("export", "tiny-bert@3", str(out), cwd=empty_zoo)
    assert r.code == 0 and "(hf)" in r.out, r.err
    # a fresh interpreter without the zoo on its path: only transformers reads the folder
    script = ("import sys, torch\nsys.path = [p for p in sys.path if 'checkpoint_zoo' not in p]\n"
              "from transformers import AutoModelForSequenceClassification as M, AutoTokenizer as T\n"
              f"m = M.from_pretrained({str(out)!r}).eval(); t = T.from_pretrained({str(out)!r})\n"
              "b = t(['the match', 'shares rose'], return_tensors='pt', padding=True)\n"
              "print(m(**b).logits.argmax(-1).tolist(), m.config.id2label[0], 'checkpoint_zoo' in sys.modules)\n")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [*str(want.argmax(-1).tolist()).split(), "class_0", "False"], proc.stdout
    reloaded = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(**batch).logits, want, atol=1e-6)
    assert AutoTokenizer.from_pretrained(str(out))("the match")["input_ids"] == tok("the match")["input_ids"]

    # export copies exactly the files the table lists: a stray file in the clone's folder stays behind
    stray = empty_zoo / "zoo/checkpoints/tiny-bert/step-00000003/stray.txt"
    stray.write_text("not in the table")
    again = tmp_path / "exported-again"
    r = run_zoo("export", "tiny-bert@3", str(again), cwd=empty_zoo)
    assert r.code == 0 and not (again / "stray.txt").exists(), r.err
    assert sorted(p.name for p in again.iterdir()) == sorted(p.name for p in out.iterdir())
    stray.unlink()

    # refusals: an existing folder, hf for a non-transformers model, config.json naming remote code
    assert "not an empty folder" in run_zoo("export", "tiny-bert@3", str(out), cwd=empty_zoo).err
    bad = tmp_path / "in" / "remote-code"
    shutil.copytree(src, bad)
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "auto_map": {"AutoModel": "evil.Model"}}))
    before = snapshot(empty_zoo)
    r = run_zoo("add", str(bad), "--model=evil", "--step=1", "--task=tabular-classification", "--dataset=wine",
                "--license=MIT", cwd=empty_zoo)
    assert r.code != 0 and "auto_map" in r.err and "--arch" in r.err, r.err
    assert snapshot(empty_zoo) == before


def test_export_safetensors_loads_without_the_zoo(small_zoo, tmp_path):
    out = tmp_path / "exported"
    r = run_zoo("export", "alpha@10", str(out), cwd=small_zoo)
    assert r.code == 0 and "(safetensors)" in r.out, r.err
    config = json.loads((out / "config.json").read_text())["zoo"]
    assert config["arch_config"]["_target_"] == "checkpoint_zoo.nets.LinearNet" and config["ref"] == "alpha@10"
    assert config["labels"] and config["input"]
    from safetensors.torch import load_file

    from checkpoint_zoo import Zoo

    zoo = Zoo(small_zoo)
    assert {k: v.tolist() for k, v in load_file(str(out / "model.safetensors")).items()} == \
        {k: v.tolist() for k, v in zoo.load_state_dict("alpha@10").items()}
    r = run_zoo("export", "alpha@10", str(tmp_path / "other"), "--format", "hf", cwd=small_zoo)
    assert r.code != 0 and "not a transformers model" in r.err and not (tmp_path / "other").exists()
