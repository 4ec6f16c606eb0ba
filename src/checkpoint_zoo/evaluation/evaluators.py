"""Evaluators: how a task runs a model over a split and feeds its metrics (named from conf/task)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..datasets import Split


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
