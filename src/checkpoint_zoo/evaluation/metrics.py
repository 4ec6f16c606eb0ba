"""Metrics that torchmetrics does not have, as ``torchmetrics.Metric`` subclasses (named from conf/task)."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.detection import MeanAveragePrecision


class NegativeLogLikelihood(Metric):
    """Mean negative log-likelihood of the true class under the softmax of the logits (float64 sums)."""

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    total: torch.Tensor
    count: torch.Tensor

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``logits`` ``[N, C]``, ``target`` class indices ``[N]``."""
        log_probs = torch.log_softmax(logits.double(), dim=1)
        self.total += -log_probs.gather(1, target.long().view(-1, 1)).sum()
        self.count += target.numel()

    def compute(self) -> torch.Tensor:
        """The mean over every example seen."""
        return self.total / self.count


class DetectionMAP(MeanAveragePrecision):
    """torchmetrics' COCO ``MeanAveragePrecision`` (pycocotools backend, boxes) reduced to one of its values:
    ``value`` ``map`` (mAP over IoU 0.50:0.95), ``map_50``, ``map_75``, ``mar_100`` …"""

    def __init__(self, value: str = "map", **kwargs: Any) -> None:
        kwargs.setdefault("backend", "pycocotools")
        super().__init__(iou_type="bbox", **kwargs)
        self.value = value

    def compute(self) -> torch.Tensor:  # type: ignore[override]
        """The chosen value of the COCO evaluation over every image seen (-1, no box anywhere, becomes 0)."""
        result = super().compute()[self.value]
        return torch.clamp(result.float(), min=0.0)
