"""Evaluators: how a task runs a model over a split and feeds its metrics (named from conf/task)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..datasets import Split
from ..errors import ZooError


def classify(model: torch.nn.Module, split: Split, metrics: Mapping[str, Any], batch_size: int,
             device: str = "cpu") -> None:
    """Logits ``[N, C]`` of each batch of inputs, with the integer labels, into every metric."""
    with torch.no_grad():
        for i in range(0, len(split), batch_size):
            x = torch.from_numpy(split.x[i:i + batch_size]).to(device)
            y = torch.from_numpy(split.y[i:i + batch_size])
            logits = model(x).float().cpu()
            for metric in metrics.values():
                metric.update(logits, y)


def detect(model: torch.nn.Module, split: Split, metrics: Mapping[str, Any], batch_size: int,
           device: str = "cpu") -> None:
    """A torchvision detector (eval mode: a list of images in, a list of ``boxes``/``scores``/``labels`` dicts
    out) over batches of images, with the split's box rows (label, x1, y1, x2, y2; -1 unused) as targets."""
    model.eval()
    with torch.no_grad():
        for i in range(0, len(split), batch_size):
            images = [torch.from_numpy(img).to(device) for img in split.x[i:i + batch_size]]
            preds = [{k: v.float().cpu() if k != "labels" else v.cpu() for k, v in p.items()} for p in model(images)]
            targets = []
            for rows in split.y[i:i + batch_size]:
                rows = rows[rows[:, 0] >= 0]
                targets.append({"boxes": torch.from_numpy(rows[:, 1:].astype("float32")),
                                "labels": torch.from_numpy(rows[:, 0])})
            for metric in metrics.values():
                metric.update(preds, targets)


def classify_text(model: torch.nn.Module, split: Split, metrics: Mapping[str, Any], batch_size: int,
                  device: str = "cpu", checkpoint: Path | None = None) -> None:
    """A transformers sequence classifier over batches of texts: each text is tokenized by the tokenizer
    saved in the ``checkpoint`` folder (cut and padded to its maximum length), and the ``logits`` ``[N, C]``,
    with the integer labels, go into every metric."""
    from ..text import encode, load_tokenizer, max_length

    if checkpoint is None:
        raise ZooError("classify_text needs the checkpoint folder (it holds the tokenizer the model was trained "
                       "with); pass checkpoint=FOLDER")
    folder = Path(checkpoint)
    tokenizer = load_tokenizer(folder.parent if folder.is_file() else folder)
    length = max_length(tokenizer, model)
    model.eval()
    with torch.no_grad():
        for i in range(0, len(split), batch_size):
            batch = {k: v.to(device) for k, v in encode(tokenizer, split.x[i:i + batch_size], length).items()}
            logits = model(**batch).logits.float().cpu()
            y = torch.from_numpy(split.y[i:i + batch_size])
            for metric in metrics.values():
                metric.update(logits, y)
