"""Architectures: ``conf/arch/<name>.yaml`` is a ``_target_`` returning a ``torch.nn.Module`` plus its kwargs.

Sizes come from the config, never from a checkpoint's shapes, so a hostile or mistaken file cannot
make the zoo allocate what it declares. Whether a checkpoint fits is decided from its safetensors
header against the model built on the meta device (no weight memory), and the expected shapes are
cached per architecture config, library versions and zoo code, per user, so that importing torch and
building the model is paid once per architecture, not per add or per clone.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArchitectureError, RegistryError
from .digest import digest_of
from .targets import check_targets, instantiate, uses_code_folder

if TYPE_CHECKING:
    from . import Registry

Shapes = Mapping[str, tuple[tuple[int, ...], str]]


@dataclass(frozen=True)
class ArchSpec:
    """One registered architecture."""

    name: str
    file: str                   # conf/arch/<name>.yaml
    config: Mapping[str, Any]   # what Hydra instantiates: _target_ and its keyword arguments
    digest: str                 # identity of the config (memo keys, shape cache)

    @property
    def target(self) -> str:
        """The dotted name of the callable."""
        return str(self.config["_target_"])

    @property
    def uses_zoo_code(self) -> bool:
        """True when the architecture comes from the zoo's own code folder."""
        return uses_code_folder(self.config)


def parse_arch(name: str, rel: str, cfg: Mapping[str, Any]) -> ArchSpec:
    """Check one arch file (a ``_target_``, allowed) and describe it."""
    if "_target_" not in cfg:
        raise RegistryError(f"{rel}: needs a _target_ naming a callable that returns a torch.nn.Module, "
                            "e.g. `_target_: torchvision.models.resnet18` with `num_classes: 10`")
    check_targets(cfg, rel, code_allowed=True)
    return ArchSpec(name, rel, dict(cfg), digest_of(cfg))


def build(spec: ArchSpec, registry: Registry, device: str | None = None) -> Any:
    """A fresh ``torch.nn.Module`` of this architecture (on ``device``, e.g. "meta"; default CPU)."""
    import torch

    if spec.uses_zoo_code:
        registry.activate_code(spec.file)
    if device is None:
        model = instantiate(spec.config, spec.file, code_allowed=True, trusted=registry.trusted)
    else:
        with torch.device(device):
            model = instantiate(spec.config, spec.file, code_allowed=True, trusted=registry.trusted)
    if not isinstance(model, torch.nn.Module):
        raise ArchitectureError(f"{spec.file}: {spec.target} returned {type(model).__name__}, not a torch.nn.Module")
    return model


@functools.cache
def _library_versions() -> tuple[tuple[str, str], ...]:
    from importlib import metadata

    versions = []
    for dist in ("torch", "torchvision", "timm", "transformers"):
        try:
            versions.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            versions.append((dist, ""))
    return tuple(versions)


def versions_key(spec: ArchSpec, registry: Registry) -> str:
    """What the expected shapes depend on besides the config: library versions, the zoo's code."""
    parts = dict(_library_versions())  # installed once per process: read once
    if spec.uses_zoo_code and registry.code_dir is not None:
        for p in sorted(registry.code_dir.rglob("*.py")):
            parts[str(p.relative_to(registry.code_dir))] = str(p.stat().st_mtime_ns) + ":" + str(p.stat().st_size)
    return digest_of({"arch": spec.digest, **parts})


# expected shapes by versions_key, for this process: validate and evaluate look an architecture up per row
_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {}


def expected_shapes(spec: ArchSpec, registry: Registry, cache_dir: Path | None = None) -> dict[str, tuple[int, ...]]:
    """The state dict's tensor shapes this architecture expects, from a model built on the meta device
    (remembered in this process, and on disk in ``cache_dir``)."""
    key = versions_key(spec, registry)
    if key in _SHAPES:
        return _SHAPES[key]
    cached = cache_dir / f"{key}.json" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            _SHAPES[key] = {k: tuple(v) for k, v in json.loads(cached.read_text()).items()}
            return _SHAPES[key]
        except (OSError, ValueError):
            pass
    try:
        model = build(spec, registry, device="meta")
    except RegistryError:  # a constructor that cannot run on meta tensors is built for real (or fails again)
        model = build(spec, registry)
    shapes = {k: tuple(int(d) for d in v.shape) for k, v in model.state_dict().items()}
    if cached is not None:
        from ..catalog.table import atomic_write

        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, json.dumps(shapes, sort_keys=True).encode())
    _SHAPES[key] = shapes
    return shapes


def fit_problem(spec: ArchSpec, file_shapes: Shapes, expected: Mapping[str, tuple[int, ...]]) -> str | None:
    """Why tensors with ``file_shapes`` do not load into the architecture (strictly), or None."""
    missing = sorted(set(expected) - set(file_shapes))
    unexpected = sorted(set(file_shapes) - set(expected))
    wrong = sorted(k for k in set(expected) & set(file_shapes) if tuple(file_shapes[k][0]) != tuple(expected[k]))
    if not (missing or unexpected or wrong):
        return None

    def few(names: list[str]) -> str:
        return ", ".join(names[:3]) + (f", … ({len(names) - 3} more)" if len(names) > 3 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({few(unexpected)})")
    if wrong:
        shown = [f"{k}: file {list(file_shapes[k][0])}, architecture {list(expected[k])}" for k in wrong]
        parts.append(f"{len(wrong)} of other shape ({few(shown)})")
    return (f"does not fit architecture {spec.name!r} ({spec.file}): {'; '.join(parts)}; give the --arch it was "
            f"trained as, or register one that matches in conf/arch/")


def load_weights(model: Any, tensors: Mapping[str, Any], spec: ArchSpec) -> Any:
    """Load ``tensors`` strictly into ``model``; eval mode."""
    try:
        model.load_state_dict(dict(tensors), strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ArchitectureError(f"weights do not fit architecture {spec.name!r} ({spec.file}): {first}") from None
    return model.eval()


def shape_cache_dir() -> Path:
    """Where expected shapes are cached: per user, shared by every clone (the key is the architecture's
    config, the library versions and the state of the zoo's own code, so a hit is the same model)."""
    from ..utils import environ

    return environ.arch_cache_dir()
