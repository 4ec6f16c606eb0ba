"""The architecture registry: names in ``rules.ARCHS`` -> builders of ``torch.nn.Module``.

Every model takes a flat float feature vector ``[N, F]`` and returns logits ``[N, C]``; the input
standardisation lives inside the model as buffers, so a checkpoint is self-contained. Builders read
the sizes from the state dict's shapes, so a checkpoint needs no side config to be loaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import nn

from .errors import ArchitectureError

Shapes = Mapping[str, tuple[int, ...]]


class Standardize(nn.Module):
    """(x - mean) / std with the training set's statistics stored as buffers."""

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


class MLP(nn.Module):
    """Fully connected layers with ReLU between them."""

    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        self.norm = Standardize(sizes[0])
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class ResBlock(nn.Module):
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


class ConvNet(nn.Module):
    """Two 3x3 convolutions over a square single-channel image given flat, pooled into a linear head."""

    def __init__(self, n_in: int, c1: int, c2: int, n_out: int) -> None:
        super().__init__()
        side = math.isqrt(n_in)
        if side * side != n_in:
            raise ArchitectureError(f"convnet needs a square image; {n_in} inputs is not a square")
        self.side = side
        self.norm = Standardize(n_in)
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.head = nn.Linear(c2, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x).view(-1, 1, self.side, self.side)
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = x.mean(dim=(2, 3))
        return self.head(x)


def _need(shapes: Shapes, key: str, arch: str) -> tuple[int, ...]:
    if key not in shapes:
        raise ArchitectureError(f"state dict has no tensor {key!r}, so it is not a {arch!r} checkpoint")
    return tuple(shapes[key])


def _build_linear(shapes: Shapes) -> nn.Module:
    n_out, n_in = _need(shapes, "fc.weight", "linear")
    return LinearNet(n_in, n_out)


def _build_mlp(shapes: Shapes) -> nn.Module:
    n_layers = sum(1 for k in shapes if k.startswith("layers.") and k.endswith(".weight"))
    if n_layers == 0:
        raise ArchitectureError("state dict has no layers.N.weight tensors, so it is not an 'mlp' checkpoint")
    first = _need(shapes, "layers.0.weight", "mlp")
    sizes = [first[1]] + [_need(shapes, f"layers.{i}.weight", "mlp")[0] for i in range(n_layers)]
    return MLP(sizes)


def _build_resmlp(shapes: Shapes) -> nn.Module:
    width, n_in = _need(shapes, "stem.weight", "resmlp")
    n_out = _need(shapes, "head.weight", "resmlp")[0]
    depth = sum(1 for k in shapes if k.startswith("blocks.") and k.endswith(".fc.weight"))
    return ResMLP(n_in, width, depth, n_out)


def _build_convnet(shapes: Shapes) -> nn.Module:
    c1 = _need(shapes, "conv1.weight", "convnet")[0]
    c2 = _need(shapes, "conv2.weight", "convnet")[0]
    n_out = _need(shapes, "head.weight", "convnet")[0]
    n_in = _need(shapes, "norm.mean", "convnet")[0]
    return ConvNet(n_in, c1, c2, n_out)


REGISTRY: dict[str, Callable[[Shapes], nn.Module]] = {
    "linear": _build_linear,
    "mlp": _build_mlp,
    "resmlp": _build_resmlp,
    "convnet": _build_convnet,
}


def build_model(arch: str, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Build ``arch`` sized from ``state_dict`` and load the weights strictly; eval mode."""
    if arch not in REGISTRY:
        raise ArchitectureError(f"architecture {arch!r} is not registered; known: {', '.join(sorted(REGISTRY))}")
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    model = REGISTRY[arch](shapes)
    try:
        model.load_state_dict(dict(state_dict), strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ArchitectureError(f"weights do not fit architecture {arch!r}: {first}") from None
    return model.eval()
