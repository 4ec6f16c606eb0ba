"""An add that would give a confident wrong answer later is refused at add, in one line, with nothing changed:
a label map in another order than the dataset's labels (a folder's config.json, a declared architecture), an
architecture that does not take the dataset's input or gives another number of scores (run on the meta
device), a text checkpoint without its tokenizer. `zoo validate` and the pipeline's validate stage refuse a
hand-edited label map too; `Zoo.pipeline` and an exported folder name an output the same way."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import test_text_family
import yaml
from conftest import PROJECT, reference_rows, run_zoo, snapshot, write_safetensors

# the text family's fixtures: its untrained small BERT folder and the data it was built from (nothing is trained here)
bbc = test_text_family.bbc
tiny_text_checkpoint = test_text_family.tiny_text_checkpoint

BBC = ["business", "entertainment", "politics", "sports", "tech"]  # conf/dataset/bbc-news.yaml labels
ISSUE_ORDER = ["tech", "sports", "politics", "entertainment", "business"]
TEXT_ARGS = ("--task", "text-classification", "--dataset", "bbc-news", "--license", "MIT")
SENTENCES = ["Chelsea beat Arsenal in the cup final", "Shares in Vodafone rose after the results",
             "The election campaign opened today", "A new film tops the box office", "A faster phone chip"]


def _text_folder(src: Path, dest: Path, labels: list[str] | None) -> Path:
    """A copy of a text checkpoint folder whose config.json names its outputs ``labels`` (both maps)."""
    shutil.copytree(src, dest)
    if labels is not None:
        cfg = json.loads((dest / "config.json").read_text())
        cfg["id2label"] = {str(i): name for i, name in enumerate(labels)}
        cfg["label2id"] = {name: i for i, name in enumerate(labels)}
        (dest / "config.json").write_text(json.dumps(cfg, indent=2))
    return dest


def _arch_of(folder: Path, root: Path, name: str, labels: list[str]) -> str:
    """``conf/arch/<name>.yaml`` building the folder's model, declaring ``labels`` as its label map."""
    from checkpoint_zoo.registry.hf import arch_from_config_json

    config = arch_from_config_json(folder)
    config["config"]["id2label"] = dict(enumerate(labels))
    config["config"]["label2id"] = {n: i for i, n in enumerate(labels)}
    (root / "conf" / "arch" / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return name


def _refused(r, *words: str) -> None:
    assert r.code == 1 and r.err.count("\n") == 1, r.err
    for word in words:
        assert word in r.err, r.err


def test_label_map_in_another_order_is_refused_at_add_and_in_validate(empty_zoo, tmp_path, tiny_text_checkpoint):
    from checkpoint_zoo import pipeline

    _, src = tiny_text_checkpoint
    wrong = _text_folder(src, tmp_path / "wrong", ISSUE_ORDER)
    # the issue's case: the arch is read from config.json, whose id2label is in another order than bbc-news
    before = snapshot(empty_zoo)
    r = run_zoo("add", str(wrong), "--model=news", "--step=1", *TEXT_ARGS, cwd=empty_zoo)
    _refused(r, f"{wrong}/config.json", "index 0", "the checkpoint says 'tech', the dataset 'business'",
             "re-save the folder with id2label in the dataset's order", "pick another dataset")
    assert snapshot(empty_zoo) == before and not (empty_zoo / "conf/arch/news.yaml").exists()

    # with an existing --arch: the folder disagrees with it (it agrees with the dataset) ...
    _arch_of(src, empty_zoo, "tiny-text", BBC)
    _arch_of(src, empty_zoo, "tiny-text-topics", ISSUE_ORDER)
    before = snapshot(empty_zoo)
    r = run_zoo("add", str(wrong), "--model=news", "--step=1", "--arch=tiny-text", *TEXT_ARGS, cwd=empty_zoo)
    _refused(r, "config.json", "index 0", "'tech'", "'business'")
    # ... and a folder in the dataset's order with an --arch that declares another order
    right = _text_folder(src, tmp_path / "right", BBC)
    r = run_zoo("add", str(right), "--model=news", "--step=1", "--arch=tiny-text-topics", *TEXT_ARGS, cwd=empty_zoo)
    _refused(r, "conf/arch/tiny-text-topics.yaml", "config.id2label", "index 0", "'tech'", "'business'")
    assert snapshot(empty_zoo) == before

    # in the dataset's order it is accepted, and its arch written from config.json
    r = run_zoo("add", str(right), "--model=news", "--step=1", *TEXT_ARGS, cwd=empty_zoo)
    assert r.code == 0, r.err
    assert run_zoo("validate", cwd=empty_zoo).code == 0

    # a hand-edited label map cannot bypass it: the arch declaration, and the folder's config.json here
    arch_file = empty_zoo / "conf/arch/news.yaml"
    good = arch_file.read_text()
    edited = yaml.safe_load(good)
    edited["config"]["id2label"] = dict(enumerate(ISSUE_ORDER))
    edited["config"]["label2id"] = {n: i for i, n in enumerate(ISSUE_ORDER)}
    arch_file.write_text(yaml.safe_dump(edited, sort_keys=False))
    r = run_zoo("validate", cwd=empty_zoo)
    assert r.code != 0 and "conf/arch/news.yaml" in r.out + r.err and "index 0" in r.out + r.err, r.out + r.err
    code = pipeline.main(["validate", "-C", str(empty_zoo)])
    assert code == 1
    arch_file.write_text(good)
    placed = empty_zoo / "zoo/checkpoints/news/step-00000001/config.json"
    placed.unlink()  # DVC may have linked it to its cache: write a new file rather than into that one
    placed.write_text((wrong / "config.json").read_text())
    r = run_zoo("validate", cwd=empty_zoo)
    assert "zoo/checkpoints/news/step-00000001/config.json" in r.out + r.err and "'tech'" in r.out + r.err, r.out


def test_zoo_pipeline_and_an_hf_export_name_outputs_alike(empty_zoo, tmp_path, tiny_text_checkpoint):
    """The same input gets the same label from Zoo.pipeline and from transformers' own pipeline of the export."""
    from transformers import pipeline as hf_pipeline

    from checkpoint_zoo import Zoo

    _, src = tiny_text_checkpoint
    right = _text_folder(src, tmp_path / "right", BBC)
    zoo = Zoo(empty_zoo)
    zoo.add(right, model="news", step=1, task="text-classification", dataset="bbc-news", license="MIT")
    ours = [p.label for p in zoo.pipeline("news@1")(SENTENCES)]
    out = tmp_path / "exported"
    zoo.export("news@1", out)
    zoo.close()
    theirs = [p["label"] for p in hf_pipeline("text-classification", model=str(out), tokenizer=str(out))(SENTENCES)]
    assert ours == theirs and set(ours) <= set(BBC), (ours, theirs)


def test_text_checkpoint_without_its_tokenizer_is_refused(empty_zoo, tmp_path, tiny_text_checkpoint):
    _, src = tiny_text_checkpoint
    bare = _text_folder(src, tmp_path / "bare", BBC)
    (bare / "tokenizer.json").unlink()
    before = snapshot(empty_zoo)
    r = run_zoo("add", str(bare), "--model=news", "--step=1", *TEXT_ARGS, cwd=empty_zoo)
    _refused(r, str(bare), "has no tokenizer.json", "conf/task/text-classification.yaml required_files")
    assert snapshot(empty_zoo) == before and not (empty_zoo / "conf/arch/news.yaml").exists()
    # the weights alone, as one file, are no text checkpoint either
    _arch_of(src, empty_zoo, "tiny-text", BBC)
    before = snapshot(empty_zoo)
    r = run_zoo("add", str(src / "model.safetensors"), "--model=news", "--step=1", "--arch=tiny-text", *TEXT_ARGS,
                cwd=empty_zoo)
    _refused(r, "is a folder holding tokenizer.json")
    assert snapshot(empty_zoo) == before


def _weights_of(arch: dict, path: Path) -> Path:
    """A safetensors file with the shapes of ``arch`` (zeros, float16: only the header matters here)."""
    import torch
    from safetensors.numpy import save_file

    from checkpoint_zoo.registry.targets import instantiate

    with torch.device("meta"):
        model = instantiate(arch, "conf/arch/x.yaml", code_allowed=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.zeros(tuple(v.shape), np.float16) for k, v in model.state_dict().items()}, str(path))
    return path


def test_architecture_that_does_not_take_the_input_is_refused_with_both_shapes(empty_zoo, tmp_path):
    """README's resnet18 on mnist-5k (1x28x28), features of another width, another number of labels."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.registry.probe import contract_problem

    resnet = {"_target_": "torchvision.models.resnet18", "num_classes": 10}
    (empty_zoo / "conf/arch/resnet18.yaml").write_text(yaml.safe_dump(resnet))
    weights = _weights_of(resnet, tmp_path / "in" / "resnet18.safetensors")
    before = snapshot(empty_zoo)
    r = run_zoo("add", str(weights), "--model=digits", "--step=1", "--arch=resnet18", "--task=image-classification",
                "--dataset=mnist-5k", "--license=MIT", cwd=empty_zoo)
    _refused(r, "conv1 (Conv2d) expects 3 input channels, the dataset gives 1x28x28", "conf/dataset/mnist-5k.yaml",
             "--arch")
    assert snapshot(empty_zoo) == before

    # the verdict is remembered: an add after the first pays a dictionary look-up, not a model
    zoo = Zoo(empty_zoo)
    registry = zoo.registry()
    spec, data = registry.arch("resnet18"), registry.dataset("mnist-5k")
    assert "expects 3 input channels" in (contract_problem(spec, registry, data) or "")
    started = time.perf_counter()
    contract_problem(spec, registry, data)
    assert time.perf_counter() - started < 0.05

    # linear (wine's 13 features) on breast-cancer's 30; shufflenet-mnist's 10 classes on mnist-parity's 2
    r = run_zoo("add", str(write_safetensors(tmp_path / "in" / "w.safetensors")), "--model=cancer", "--step=1",
                "--arch=linear", "--task=tabular-classification", "--dataset=breast-cancer", "--license=MIT",
                cwd=empty_zoo)
    _refused(r, "conf/dataset/breast-cancer.yaml", "the dataset gives 30")
    shuffle = yaml.safe_load((PROJECT / "conf/arch/shufflenet-mnist.yaml").read_text())
    manifest = tmp_path / "in" / "batch.csv"
    manifest.write_text("file,model,step,arch,dataset\n"
                        f"{_weights_of(shuffle, tmp_path / 'in' / 's.safetensors')},parity,1,shufflenet-mnist,mnist-parity\n"
                        f"{weights},digits,1,resnet18,mnist-5k\n")
    r = run_zoo("add", "--from", str(manifest), "--task=image-classification", "--license=MIT", cwd=empty_zoo)
    assert r.code == 1 and "2 of 2 line(s) refused" in r.err, r.err
    assert "gives 10 scores per example, and the dataset has 2 labels" in r.err
    assert "expects 3 input channels, the dataset gives 1x28x28" in r.err
    assert snapshot(empty_zoo) == before
    zoo.close()


def test_task_declares_required_files(tmp_path):
    from checkpoint_zoo.errors import RegistryError
    from checkpoint_zoo.registry.tasks import parse_task

    base = yaml.safe_load((PROJECT / "conf/task/text-classification.yaml").read_text())
    task = parse_task("t", "conf/task/t.yaml", base)
    assert task.required_files == (("tokenizer.json",),)
    assert task.files_problem({"tokenizer.json", "config.json"}, "x") is None
    assert "has no tokenizer.json" in (task.files_problem({"config.json"}, "x") or "")
    either = parse_task("t", "conf/task/t.yaml", {**base, "required_files": [["tokenizer.json", "vocab.txt"]]})
    assert either.files_problem({"vocab.txt"}, "x") is None
    assert "tokenizer.json or vocab.txt" in (either.files_problem(set(), "x") or "")
    # what a checkpoint must hold does not change results: the memo keys stay
    assert task.digest == parse_task("t", "conf/task/t.yaml", {**base, "required_files": ["other"]}).digest
    for bad in ("tokenizer.json", [""], ["../x"], [[]], [1]):
        with pytest.raises(RegistryError, match="required_files must be a list"):
            parse_task("t", "conf/task/t.yaml", {**base, "required_files": bad})


def test_reference_checkpoints_pass_the_add_checks():
    """Every row of the repository's table passes the label, file and input checks against its conf/."""
    from checkpoint_zoo.catalog import rules
    from checkpoint_zoo.registry import workspace_registry
    from checkpoint_zoo.registry.probe import contract_problem

    registry = workspace_registry(PROJECT)
    rows = reference_rows()
    assert rows
    for arch, dataset in sorted({(r["arch"], r["dataset"]) for r in rows}):
        assert registry.label_problem(arch, dataset) is None
        assert contract_problem(registry.arch(arch), registry, registry.dataset(dataset)) is None, (arch, dataset)
    for row in rows:
        files = set(rules.parse_files(row["files"])) if row["format"] == "folder" else None
        assert registry.task(row["task"]).files_problem(files, row["path"]) is None
