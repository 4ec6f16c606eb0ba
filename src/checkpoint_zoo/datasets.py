"""Dataset splits, and loaders for data that ships inside installed packages (no download).

A loader (named by a ``conf/dataset/*.yaml`` file) returns ``Splits``: fixed train / val / test splits.
Training uses train; ``MODEL@best`` is chosen on val; leaderboards report test.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .errors import ZooError


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (float32, first axis = examples) and integer labels ``y`` (int64 ``[N]``)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(len(self.y))

    def head(self, n: int | None) -> Split:
        """The first ``n`` examples (all when None)."""
        return self if not n else Split(self.x[:n], self.y[:n])

    def digest(self) -> str:
        """sha256 of the exact bytes (inputs, then labels), for provenance and memo keys."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.x).tobytes())
        h.update(np.ascontiguousarray(self.y).tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class Splits:
    """A dataset's fixed splits and its label names."""

    train: Split
    val: Split
    test: Split
    labels: tuple[str, ...] = ()

    def get(self, name: str) -> Split:
        """A split by name: train, val or test."""
        if name not in ("train", "val", "test"):
            raise ZooError(f"split {name!r} is unknown; use train, val or test")
        split: Split = getattr(self, name)
        return split


def sklearn_splits(name: str, holdout: float = 0.25, val_share: float = 0.5, seed: int = 0) -> Splits:
    """A scikit-learn bundled dataset (``load_digits``, ``load_wine``, ``load_iris`` …), stratified:
    ``holdout`` of it is never trained on, and ``val_share`` of that holdout is val, the rest test."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if not name.startswith("load_") or not hasattr(datasets, name):
        raise ZooError(f"scikit-learn has no bundled dataset {name!r}; use load_digits, load_wine, load_iris …")
    bunch = getattr(datasets, name)()
    x = np.asarray(bunch.data, dtype=np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_ho, y_tr, y_ho = train_test_split(x, y, test_size=holdout, random_state=seed, stratify=y)
    x_va, x_te, y_va, y_te = train_test_split(x_ho, y_ho, train_size=val_share, random_state=seed, stratify=y_ho)
    labels = tuple(str(t) for t in getattr(bunch, "target_names", range(int(y.max()) + 1)))
    return Splits(Split(x_tr, y_tr), Split(x_va, y_va), Split(x_te, y_te), labels)
