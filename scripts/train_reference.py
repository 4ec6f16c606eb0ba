"""Train the reference zoo's checkpoints and add them with the zoo API.

Every model is built from its architecture in ``conf/arch`` and trains on the ``train`` split of its
dataset in ``conf/dataset`` (data that ships inside scikit-learn: no download), with a fixed seed,
one CPU thread and deterministic algorithms, and is saved with safetensors at several training
stages. The recipe is recorded in each row's ``source``; the reported accuracy is on everything
held out from training (val and test together).

    python scripts/train_reference.py [--zoo PATH] [--out DIR] [--no-add]
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


RECIPES = (
    Recipe("digits-mlp", "mlp", "image-classification", "digits", (25, 50, 100, 200, 400), 3e-3,
           tags=("reference", "digits"),
           description="Two-layer MLP on the 8x8 handwritten digits, flattened."),
    Recipe("digits-convnet", "convnet", "image-classification", "digits", (25, 50, 100, 200, 400), 5e-3,
           tags=("reference", "digits", "cnn"),
           description="Two 3x3 conv layers and global average pooling on the 8x8 digits."),
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
    # constant training features (digit corners are always 0) would otherwise blow up at test time
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default=".", help="the zoo to add the checkpoints to")
    p.add_argument("--out", help="keep the trained files here (default: a temp folder)")
    p.add_argument("--only", action="append", help="train only these models")
    p.add_argument("--no-add", action="store_true", help="train and save only")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        zoo = None if args.no_add else Zoo(args.zoo)
        registry = zoo.registry() if zoo is not None else workspace_registry(Path(args.zoo))
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
                        dataset=recipe.dataset, license="CC0-1.0", epoch=round(step * recipe.batch / n_train, 4),
                        description=recipe.description, tags=recipe.tags, source=source,
                        reported=("accuracy", round(acc, 4)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
