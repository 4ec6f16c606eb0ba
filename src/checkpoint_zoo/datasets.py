"""Datasets that ship inside scikit-learn (no download), with one fixed train/test split.

Training (``scripts/train_reference.py``) and evaluation use the same split, so reproduced metrics
are measured on data the checkpoint never saw.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .errors import ZooError

_LOADERS = {
    "digits": "load_digits",
    "wine": "load_wine",
    "breast-cancer": "load_breast_cancer",
}
TEST_FRACTION = 0.25
SPLIT_SEED = 0


@dataclass(frozen=True)
class Split:
    """Features as float32 ``[N, F]``, labels as int64 ``[N]``."""

    x: np.ndarray
    y: np.ndarray
    n_classes: int

    def digest(self) -> str:
        """sha256 of the exact bytes (features then labels), for provenance."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.x).tobytes())
        h.update(np.ascontiguousarray(self.y).tobytes())
        return h.hexdigest()


def names() -> list[str]:
    """Datasets available without a download."""
    return sorted(_LOADERS)


def load_split(name: str, split: str) -> Split:
    """The ``train`` or ``test`` split of a packaged dataset, stratified, seed 0."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name not in _LOADERS:
        raise ZooError(f"dataset {name!r} is not packaged; use one of {', '.join(names())}")
    if split not in {"train", "test"}:
        raise ZooError(f"split {split!r} is unknown; use 'train' or 'test'")
    bunch = getattr(datasets, _LOADERS[name])()
    x = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    n_classes = int(y.max()) + 1
    return Split(x_tr, y_tr, n_classes) if split == "train" else Split(x_te, y_te, n_classes)
