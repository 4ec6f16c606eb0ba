"""Small networks for flat feature vectors, used by the reference zoo's architectures in ``conf/arch/``, and a
small backbone for torchvision's detectors.

Every model takes a flat float feature vector ``[N, F]`` and returns logits ``[N, C]``; the input
standardisation lives inside the model as buffers, so a checkpoint is self-contained. Sizes are the
constructor's arguments, given by the architecture's config, never read from a checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn


class Standardize(nn.Module):
    """(x - mean) / std with the training set's statistics stored as buffers."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class LinearNet(nn.Module):
    """Multinomial logistic regression."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.norm = Standardize(n_in)
        self.fc = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x))


class ResBlock(nn.Module):
    """Pre-norm residual block: x + relu(fc(layernorm(x)))."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.fc(self.ln(x)))


class ResMLP(nn.Module):
    """A stem, pre-norm residual blocks and a linear head."""

    def __init__(self, n_in: int, width: int, depth: int, n_out: int) -> None:
        super().__init__()
        self.norm = Standardize(n_in)
        self.stem = nn.Linear(n_in, width)
        self.blocks = nn.ModuleList(ResBlock(width) for _ in range(depth))
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.norm(x))
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class DetectionBackbone(nn.Module):
    """A small convolutional feature pyramid for torchvision's detectors (``FCOS``, ``RetinaNet``).

    ``[N, in_channels, H, W]`` images in; out an ordered ``{"0": stride 8, "1": stride 16, ...}`` of
    ``out_channels`` feature maps (``levels`` of them), through torchvision's ``FeaturePyramidNetwork``.
    """

    def __init__(self, in_channels: int = 1, width: int = 32, out_channels: int = 48, levels: int = 2) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork  # type: ignore[import-untyped]

        def block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                                 nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))

        self.out_channels = out_channels  # what torchvision's detection heads read
        self.stem = nn.Sequential(block(in_channels, width, 2), block(width, 2 * width, 2),
                                  block(2 * width, 2 * width, 1), block(2 * width, 3 * width, 2))
        widths = [3 * width * (i + 1) for i in range(levels)]
        self.stages = nn.ModuleList(block(widths[i - 1], widths[i], 2) for i in range(1, levels))
        self.fpn = FeaturePyramidNetwork(widths, out_channels)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        from collections import OrderedDict

        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        out: dict[str, torch.Tensor] = self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))
        return out
