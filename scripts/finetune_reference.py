"""Fine-tune a zoo checkpoint on another dataset or task, and add each stage with its lineage (``--parent``).

The reference zoo's fine-tune, mnist-parity-mobilenetv3 (even or odd) from mnist-mobilenetv3@best (which
digit), is made by

    python scripts/finetune_reference.py --from mnist-mobilenetv3@best --model mnist-parity-mobilenetv3 \\
        --arch mobilenetv3-mnist-parity --dataset mnist-parity --steps 20 40 80 160

and the same command fine-tunes any checkpoint into any registered architecture that shares tensors with
its own: every tensor of the parent whose name and shape match is copied, the others (a new head) keep
their seeded initialisation. Training is seeded and deterministic, on the dataset's train split; each
stage is stored as float16 (``--dtype``) and added with ``--parent`` set to the parent's exact step, so
``zoo lineage``, the cards and the page show the tree.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from checkpoint_zoo import Zoo
from checkpoint_zoo.evaluation.run import evaluate_split
from checkpoint_zoo.registry.archs import build, load_weights
from checkpoint_zoo.registry.datasets import load_splits


def start_from(parent: dict[str, torch.Tensor], model: torch.nn.Module) -> tuple[list[str], list[str]]:
    """Copy the parent's tensors into ``model`` where name and shape match; (copied, kept) names."""
    own = model.state_dict()
    copied = [k for k, v in parent.items() if k in own and own[k].shape == v.shape]
    model.load_state_dict({**own, **{k: parent[k].to(own[k].dtype) for k in copied}})
    return copied, sorted(set(own) - set(copied))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="parent", required=True, metavar="MODEL@STEP", help="the checkpoint to start from")
    p.add_argument("--model", required=True, help="the new model's name")
    p.add_argument("--arch", required=True, help="its architecture (conf/arch)")
    p.add_argument("--dataset", required=True, help="the dataset to fine-tune on (conf/dataset); its task is the task")
    p.add_argument("--steps", type=int, nargs="+", required=True, help="steps at which a stage is saved and added")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="how the stages are stored")
    p.add_argument("--zoo", default=".", help="the zoo to read the parent from and add the stages to")
    p.add_argument("--replace", action="store_true",
                   help="overwrite steps the zoo already holds with other bytes (a retrain on another machine)")
    p.add_argument("--no-add", action="store_true", help="train and report only")
    args = p.parse_args(argv)

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    zoo = Zoo(args.zoo)
    registry = zoo.registry()
    parent = zoo.get(args.parent)
    dataset = registry.dataset(args.dataset)
    task = registry.task(dataset.task)
    splits = load_splits(dataset, registry)
    spec = registry.arch(args.arch)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build(spec, registry)
    copied, kept = start_from(zoo.load_state_dict(parent.ref), model)
    print(f"from {parent.ref}: {len(copied)} tensors copied, {len(kept)} new ({', '.join(kept[:4])}"
          f"{' …' if len(kept) > 4 else ''})", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    x, y = torch.from_numpy(splits.train.x), torch.from_numpy(splits.train.y)
    source = (f"scripts/finetune_reference.py --from {parent.ref} --arch {args.arch} --dataset {args.dataset}: "
              f"{len(copied)} tensors from the parent, train split (seed 0; Adam lr {args.lr}; batch {args.batch}; "
              f"2 threads; deterministic; {args.dtype} stored; train sha256 {splits.train.digest()[:16]})")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for step in range(1, max(args.steps) + 1):
            idx = torch.from_numpy(rng.choice(len(y), size=args.batch, replace=False))
            model.train()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step not in args.steps:
                continue
            path = Path(tmp) / f"{args.model}-{step}.safetensors"
            cast = torch.float16 if args.dtype == "float16" else torch.float32
            save_file({k: (v.detach().to(cast) if v.is_floating_point() else v.detach()).clone().contiguous()
                       for k, v in model.state_dict().items()}, str(path))
            stored = load_weights(build(spec, registry), load_file(str(path)), spec)
            value = evaluate_split(stored, task, splits.get(task.report_split), len(splits.labels), 256,
                                   "cpu")[task.primary_metric]
            print(f"{args.model}@{step}: loss {float(loss.detach()):.4f}, {task.report_split} {task.primary_metric} {value:.4f} "
                  f"({time.monotonic() - started:.1f} s)", flush=True)
            if not args.no_add:
                zoo.add(path, model=args.model, step=step, arch=args.arch, task=dataset.task, dataset=args.dataset,
                        license=parent.license, epoch=round(step * args.batch / len(y), 4), parent=parent.ref,
                        tags=("reference", "fine-tune", *[t for t in parent.tags if t != "reference"]),
                        description=f"{parent.model} fine-tuned on {args.dataset} ({', '.join(splits.labels)}).",
                        source=source, reported=(task.primary_metric, round(value, 4)), replace=args.replace)
    return 0


if __name__ == "__main__":
    from checkpoint_zoo.cli.errors import script_main

    sys.exit(script_main(main, "add"))
