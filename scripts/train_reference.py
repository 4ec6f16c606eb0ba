"""Train the reference zoo's checkpoints and add them with the zoo API.

Every model is built from its architecture in ``conf/arch`` and trains on the ``train`` split of its
dataset in ``conf/dataset`` (data that ships inside installed packages: no download), with a fixed
seed and deterministic algorithms, and is saved with safetensors at several training stages. The
recipe is recorded in each row's ``source``.

The first reference models (tabular: wine, breast cancer; one CPU thread) report their accuracy on
everything held out from training (val and test together):

    python scripts/train_reference.py [--zoo PATH] [--out DIR] [--no-add] [--only MODEL]

The families of real architectures (``--family mnist``: torchvision and timm classifiers on real MNIST
digits; ``--family mnist-detection``: torchvision's FCOS on synthetic canvases of MNIST digits;
``--family text``: a small transformers BERT on BBC News articles, with a WordPiece tokenizer learned
from its train split) train on two CPU threads, store float16 weights and report their task's primary
metric on the test split, computed by the zoo's own evaluator from the stored file (a text model: from
the stored folder, weights and tokenizer):

    python scripts/train_reference.py --family {mnist,mnist-detection,text} [--zoo PATH] [--out DIR] [--no-add]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from checkpoint_zoo import Zoo
from checkpoint_zoo.registry import Registry, workspace_registry
from checkpoint_zoo.registry.archs import build
from checkpoint_zoo.registry.datasets import load_splits


@dataclass(frozen=True)
class Recipe:
    model: str
    arch: str
    task: str
    dataset: str
    steps: tuple[int, ...]
    lr: float
    batch: int = 64
    tags: tuple[str, ...] = ()
    description: str = ""
    license: str = "CC0-1.0"
    notes: str = ""          # what else the recipe did, for the rows' source


RECIPES = (
    Recipe("wine-linear", "linear", "tabular-classification", "wine", (5, 10, 20, 40, 80), 1e-2,
           batch=32, tags=("reference", "tabular"),
           description="Multinomial logistic regression on the 13 wine features."),
    Recipe("cancer-resmlp", "resmlp", "tabular-classification", "breast-cancer", (10, 20, 50, 100, 200), 1e-3,
           batch=32, tags=("reference", "tabular", "medical"),
           description="Residual MLP (2 pre-norm blocks) on the Wisconsin breast-cancer features."),
)


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((pred == y).mean())


def train(recipe: Recipe, out: Path, registry: Registry) -> list[tuple[int, Path, float]]:
    """Train one model; return (step, file, held-out accuracy) at each saved stage."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    splits = load_splits(registry.dataset(recipe.dataset), registry)
    tr = splits.train
    held_x, held_y = np.concatenate([splits.val.x, splits.test.x]), np.concatenate([splits.val.y, splits.test.y])
    torch.manual_seed(0)
    model = build(registry.arch(recipe.arch), registry)
    model.norm.mean.copy_(torch.from_numpy(tr.x.mean(axis=0)))
    std = tr.x.std(axis=0)
    # a constant training feature (std 0) would otherwise blow up at test time
    model.norm.std.copy_(torch.from_numpy(np.where(std < 1e-3, 1.0, std).astype(np.float32)))
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    x, y = torch.from_numpy(tr.x), torch.from_numpy(tr.y)
    saved = []
    for step in range(1, max(recipe.steps) + 1):
        idx = torch.from_numpy(rng.choice(len(y), size=min(recipe.batch, len(y)), replace=False))
        model.train()
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in recipe.steps:
            model.eval()
            path = out / f"{recipe.model}-{step}.safetensors"
            tensors = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
            save_file(tensors, str(path), metadata={"arch": recipe.arch, "step": str(step)})
            saved.append((step, path, accuracy(model, held_x, held_y)))
    return saved


# the MNIST digits' license is share-alike: the weights trained on them follow it
MNIST_LICENSE = "CC-BY-SA-3.0"
# BBC News' articles are for non-commercial research only: so are the weights and vocabulary learned from them
BBC_LICENSE = "LicenseRef-BBC-research-only"

FAMILIES: dict[str, tuple[Recipe, ...]] = {
    "mnist": (
        Recipe("mnist-shufflenet", "shufflenet-mnist", "image-classification", "mnist-5k",
                     (25, 75, 150, 300), 3e-3, 64, ("reference", "mnist", "torchvision", "cnn"),
                     "torchvision ShuffleNetV2 x0.5 (random init, 1x1 gray-to-RGB adapter) on 28x28 MNIST digits.",
                     MNIST_LICENSE),
        Recipe("mnist-mobilenetv3", "mobilenetv3-mnist", "image-classification", "mnist-5k",
                     (25, 75, 150, 300), 3e-3, 64, ("reference", "mnist", "timm", "cnn"),
                     "timm MobileNetV3-Small 0.5x (random init, 1 input channel) on 28x28 MNIST digits.", MNIST_LICENSE),
    ),
    "mnist-detection": (
        Recipe("mnist-fcos", "fcos-tiny", "object-detection", "mnist-canvas",
                     (100, 300, 600, 1000), 1e-3, 16, ("reference", "mnist", "torchvision", "detection"),
                     "torchvision FCOS (small feature pyramid, random init) finding MNIST digits on 64x64 canvases.",
                     MNIST_LICENSE),
    ),
    "text": (
        Recipe("bbc-bert-tiny", "bert-tiny-bbc", "text-classification", "bbc-news",
               (30, 60, 120, 240, 480), 1e-3, 32, ("reference", "text", "transformers", "bbc-news"),
               "A BERT-Tiny-sized transformers encoder (2 layers, hidden 128; random init) classifying BBC News "
               "articles by topic, with a lower-case WordPiece tokenizer learned from the train split.",
               BBC_LICENSE, "WordPiece tokenizer (vocab_size and max length of the arch) trained on the train split; "
               "texts cut to the max length; a folder per stage (save_pretrained + tokenizer)"),
    ),
}


def _targets(y: np.ndarray) -> list[dict[str, torch.Tensor]]:
    """Box rows (label, x1, y1, x2, y2; -1 unused) as torchvision detection targets."""
    out = []
    for rows in y:
        rows = rows[rows[:, 0] >= 0]
        out.append({"boxes": torch.from_numpy(rows[:, 1:].astype(np.float32)), "labels": torch.from_numpy(rows[:, 0])})
    return out


def train_family_model(recipe: Recipe, out: Path, registry: Registry) -> list[tuple[int, Path, float]]:
    """Train one model of a family; return (step, file, test value of the task's primary metric) per stage."""
    from safetensors.torch import load_file

    from checkpoint_zoo.evaluation.run import evaluate_split
    from checkpoint_zoo.registry.archs import load_weights

    task = registry.task(recipe.task)
    splits = load_splits(registry.dataset(recipe.dataset), registry)
    n_classes = len(splits.labels)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build(registry.arch(recipe.arch), registry)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    x, y = torch.from_numpy(splits.train.x), splits.train.y
    detect = y.ndim == 3
    saved = []
    for step in range(1, max(recipe.steps) + 1):
        idx = rng.choice(len(y), size=recipe.batch, replace=False)
        model.train()
        if detect:
            loss = sum(model(list(x[idx]), _targets(y[idx])).values())
        else:
            loss = torch.nn.functional.cross_entropy(model(x[idx]), torch.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in recipe.steps:
            path = out / f"{recipe.model}-{step}.safetensors"
            # float16 on disk halves the zoo's bytes; the counter of BatchNorm stays an integer
            tensors = {k: (v.detach().half() if v.is_floating_point() else v.detach()).clone().contiguous()
                       for k, v in model.state_dict().items()}
            save_file(tensors, str(path), metadata={"arch": recipe.arch, "step": str(step)})
            spec = registry.arch(recipe.arch)
            stored = load_weights(build(spec, registry), load_file(str(path)), spec)
            value = evaluate_split(stored, task, splits.get(task.report_split), n_classes, 256, "cpu")[task.primary_metric]
            saved.append((step, path, value))
            print(f"  {recipe.model}@{step}: loss {float(loss.detach()):.4f}, test {task.primary_metric} {value:.4f}", flush=True)
    return saved


def train_text_model(recipe: Recipe, out: Path, registry: Registry) -> list[tuple[int, Path, float]]:
    """Train one transformers text classifier; return (step, folder, test value of the task's primary metric)
    per stage. Each stage is a folder: ``save_pretrained`` in float16 and the tokenizer, the same files in
    every stage."""
    import copy

    from safetensors.torch import load_file
    from transformers.utils import logging as transformers_logging

    from checkpoint_zoo.evaluation.run import evaluate_split
    from checkpoint_zoo.registry.archs import load_weights
    from checkpoint_zoo.text import encode, train_wordpiece

    transformers_logging.disable_progress_bar()  # a bar per saved stage buries the figures
    task = registry.task(recipe.task)
    spec = registry.arch(recipe.arch)
    splits = load_splits(registry.dataset(recipe.dataset), registry)
    vocab_size, length = int(spec.config["config"]["vocab_size"]), int(spec.config["config"]["max_position_embeddings"])
    tokenizer = train_wordpiece(splits.train.x, vocab_size, length)
    if len(tokenizer) > vocab_size:
        raise SystemExit(f"{recipe.model}: the tokenizer has {len(tokenizer)} tokens, the arch embeds {vocab_size}")
    enc = encode(tokenizer, splits.train.x, length)
    ids, mask, y = enc["input_ids"], enc["attention_mask"], torch.from_numpy(splits.train.y)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build(spec, registry)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    saved = []
    for step in range(1, max(recipe.steps) + 1):
        idx = torch.from_numpy(rng.choice(len(y), size=recipe.batch, replace=False))
        model.train()
        loss = model(input_ids=ids[idx], attention_mask=mask[idx], labels=y[idx]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in recipe.steps:
            folder = out / f"{recipe.model}-{step}"
            copy.deepcopy(model).half().save_pretrained(folder, safe_serialization=True)
            tokenizer.save_pretrained(folder)
            stored = load_weights(build(spec, registry), load_file(str(folder / "model.safetensors")), spec)
            value = evaluate_split(stored, task, splits.get(task.report_split), len(splits.labels), 64, "cpu",
                                   checkpoint=folder)[task.primary_metric]
            saved.append((step, folder, value))
            print(f"  {recipe.model}@{step}: loss {float(loss.detach()):.4f}, test {task.primary_metric} {value:.4f}", flush=True)
    return saved


def run_family(name: str, zoo: Zoo | None, registry: Registry, out: Path, replace: bool = False) -> None:
    """Train (and add, unless ``zoo`` is None) every model of one family."""
    import time

    torch.set_num_threads(2)
    # deterministic mode also fills every new tensor with NaN, which costs these convnets a third of their
    # speed; results do not depend on it (every kernel writes what it allocates)
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    for recipe in FAMILIES[name]:
        splits = load_splits(registry.dataset(recipe.dataset), registry)
        started = time.monotonic()
        trainer = train_text_model if recipe.task == "text-classification" else train_family_model
        stages = trainer(recipe, out, registry)
        print(f"{recipe.model}: trained in {time.monotonic() - started:.1f} s", flush=True)
        data = "; ".join(f"{s} sha256 {splits.get(s).digest()[:16]}" for s in ("train", "val", "test"))
        source = (f"scripts/train_reference.py --family {name}: {recipe.arch} on {recipe.dataset} train split "
                  f"(seed 0; Adam lr {recipe.lr}; batch {recipe.batch}; 2 threads; deterministic; float16 stored; "
                  f"{data}{'; ' + recipe.notes if recipe.notes else ''})")
        if zoo is None:
            continue
        task = registry.task(recipe.task)
        for step, path, value in stages:
            zoo.add(path, model=recipe.model, step=step, arch=recipe.arch, task=recipe.task, dataset=recipe.dataset,
                    license=recipe.license, epoch=round(step * recipe.batch / len(splits.train), 4),
                    description=recipe.description, tags=recipe.tags, source=source,
                    reported=(task.primary_metric, round(value, 4)), replace=replace)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default=".", help="the zoo to add the checkpoints to")
    p.add_argument("--out", help="keep the trained files here (default: a temp folder)")
    p.add_argument("--only", action="append", help="train only these models")
    p.add_argument("--replace", action="store_true",
                   help="overwrite steps the zoo already holds with other bytes (a retrain on another machine)")
    p.add_argument("--no-add", action="store_true", help="train and save only")
    p.add_argument("--family", choices=sorted(FAMILIES), help="train one family of real architectures instead")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        zoo = None if args.no_add else Zoo(args.zoo)
        registry = zoo.registry() if zoo is not None else workspace_registry(Path(args.zoo))
        if args.family:
            run_family(args.family, zoo, registry, out, args.replace)
            return 0
        for recipe in RECIPES:
            if args.only and recipe.model not in args.only:
                continue
            source = (f"scripts/train_reference.py --only {recipe.model}: {recipe.arch} on {recipe.dataset} train split "
                      f"(seed 0; Adam lr {recipe.lr}; batch {recipe.batch}; 1 thread; deterministic)")
            n_train = len(load_splits(registry.dataset(recipe.dataset), registry).train)
            for step, path, acc in train(recipe, out, registry):
                print(f"{recipe.model}@{step}: held-out accuracy {acc:.4f}")
                if zoo is None:
                    continue
                zoo.add(path, model=recipe.model, step=step, arch=recipe.arch, task=recipe.task,
                        dataset=recipe.dataset, license=recipe.license, epoch=round(step * recipe.batch / n_train, 4),
                        description=recipe.description, tags=recipe.tags, source=source,
                        reported=("accuracy", round(acc, 4)), replace=args.replace)
    return 0


if __name__ == "__main__":
    from checkpoint_zoo.cli.errors import script_main

    sys.exit(script_main(main, "add"))
