"""Datasets: ``conf/dataset/<name>.yaml`` names the task it serves, a loader and the input contract.

```yaml
description: scikit-learn's wine recognition data
task: tabular-classification
loader: {_target_: checkpoint_zoo.datasets.sklearn_splits, name: load_wine}   # returns datasets.Splits
input: {shape: [13], dtype: float32, range: raw measurements, normalisation: none}
labels: [class_0, class_1, class_2]
license: CC-BY-4.0
```
A dataset of text says ``input: {kind: text, shape: [], dtype: str, ...}``: each example is one ``str``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import RegistryError
from .digest import digest_of
from .targets import check_targets, instantiate, uses_code_folder

if TYPE_CHECKING:
    from ..datasets import Splits
    from . import Registry

_KEYS = {"description", "task", "loader", "input", "labels", "license", "source"}
# array: numbers of the declared shape and dtype (the default); text: one str per example
INPUT_KINDS = ("array", "text")


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset."""

    name: str
    file: str
    description: str
    task: str
    loader: Mapping[str, Any]
    input: Mapping[str, Any]     # the input contract: kind, shape, dtype, range, normalisation
    labels: tuple[str, ...]
    license: str
    source: str
    digest: str


def parse_dataset(name: str, rel: str, cfg: Mapping[str, Any]) -> DatasetSpec:
    """Check one dataset file and describe it."""
    extra = sorted(set(cfg) - _KEYS)
    if extra:
        raise RegistryError(f"{rel}: unknown key {extra[0]!r}; a dataset file has {', '.join(sorted(_KEYS))}")
    if not isinstance(cfg.get("task"), str):
        raise RegistryError(f"{rel}: needs `task:` naming the registered task it serves")
    loader = cfg.get("loader")
    if not isinstance(loader, Mapping) or "_target_" not in loader:
        raise RegistryError(f"{rel}: needs `loader: {{_target_: ...}}` returning train/val/test splits")
    check_targets(loader, f"{rel}: loader", code_allowed=True)
    contract = cfg.get("input") or {}
    if not isinstance(contract, Mapping):
        raise RegistryError(f"{rel}: input must be a mapping (shape, dtype, range, normalisation)")
    if contract.get("kind", "array") not in INPUT_KINDS:
        raise RegistryError(f"{rel}: input kind {contract.get('kind')!r} is unknown; use {' or '.join(INPUT_KINDS)}")
    labels = cfg.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, (str, int)) for x in labels):
        raise RegistryError(f"{rel}: labels must be a list of names")
    return DatasetSpec(name, rel, str(cfg.get("description") or ""), cfg["task"], dict(loader), dict(contract),
                       tuple(str(x) for x in labels), str(cfg.get("license") or ""), str(cfg.get("source") or ""),
                       digest_of({k: v for k, v in cfg.items() if k not in ("description", "source")}))


def load_splits(spec: DatasetSpec, registry: Registry) -> Splits:
    """Instantiate the loader: the dataset's train / val / test splits."""
    from ..datasets import Splits

    if uses_code_folder(spec.loader):
        registry.activate_code(spec.file)
    splits = instantiate(spec.loader, f"{spec.file}: loader", code_allowed=True, trusted=registry.trusted)
    if not isinstance(splits, Splits):
        raise RegistryError(f"{spec.file}: loader {spec.loader['_target_']} returned {type(splits).__name__}; it "
                            "must return checkpoint_zoo.datasets.Splits(train=..., val=..., test=...)")
    if spec.labels and splits.labels and tuple(splits.labels) != spec.labels:
        raise RegistryError(f"{spec.file}: labels {list(spec.labels)} differ from what the loader gives "
                            f"{list(splits.labels)}; make them agree")
    return splits
