"""One-line use: ``Zoo.pipeline(REF)`` turns raw inputs into labels (or boxes) with scores.

The checkpoint's dataset (``conf/dataset``) declares the input contract (shape, dtype, value range,
normalisation) and the label names; the pipeline checks every input against that contract before the
model sees it, so a wrong shape or a wrong scale (0-255 pixels for a model trained on 0-1) is one clear
line naming what is expected, not a tensor-size traceback or a silently wrong answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidValueError

# a value this far outside the declared range is a scale mistake, not rounding
_RANGE_SLACK = 1e-3


@dataclass(frozen=True)
class Label:
    """A predicted class: its name, index and probability."""

    label: str
    index: int
    score: float


@dataclass(frozen=True)
class Box:
    """A detected object: its class name and index, score and box (x1, y1, x2, y2 in input pixels)."""

    label: str
    index: int
    score: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class InputContract:
    """What one example must look like (from ``conf/dataset/<name>.yaml``'s ``input``)."""

    dataset: str
    shape: tuple[int, ...]
    range: tuple[float | None, float | None]
    normalisation: str
    kind: str = "array"    # or "text": one str per example

    @classmethod
    def from_spec(cls, dataset: str, spec: Mapping[str, Any]) -> InputContract:
        """The contract a dataset declares."""
        if spec.get("kind") == "text":
            return cls(dataset, (), (None, None), str(spec.get("normalisation") or ""), "text")
        given = spec.get("range")
        bounds: tuple[float | None, float | None] = (None, None)
        notes = [str(spec.get("normalisation") or "")]
        if isinstance(given, list) and len(given) == 2 and all(v is None or isinstance(v, (int, float)) for v in given):
            bounds = (None if given[0] is None else float(given[0]), None if given[1] is None else float(given[1]))
        elif given:  # a range described in words (raw units): nothing to check, but say it
            notes.insert(0, str(given))
        return cls(dataset, tuple(int(d) for d in spec.get("shape") or ()), bounds, "; ".join(n for n in notes if n))

    def describe(self) -> str:
        """``1x28x28 float32 values in [0, 1] (pixel intensity / 255)``."""
        if self.kind == "text":
            note = f" ({self.normalisation})" if self.normalisation else ""
            return f"text (a str{note}), one example or a list of them, of dataset {self.dataset}"
        shape = "x".join(map(str, self.shape)) or "any shape"
        low, high = ("" if v is None else f"{v:g}" for v in self.range)
        span = f" in [{low or '-inf'}, {high or 'inf'}]" if self.range != (None, None) else ""
        note = f" ({self.normalisation})" if self.normalisation else ""
        return f"{shape} float32 values{span}{note}, one example or a batch of them, of dataset {self.dataset}"

    def check(self, inputs: Any) -> tuple[np.ndarray, bool]:
        """(a float32 batch ``[N, *shape]``, whether one example was given) or InvalidValueError; for text, an
        object array of ``str`` ``[N]``."""
        if self.kind == "text":
            return self._check_text(inputs)
        try:
            x = np.asarray(inputs)
        except (TypeError, ValueError) as e:
            raise InvalidValueError(f"input is not an array ({e}); expected {self.describe()}") from None
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise InvalidValueError(f"input of dtype {x.dtype} is not numeric; expected {self.describe()}")
        single = x.shape == self.shape
        if not single and (x.ndim != len(self.shape) + 1 or x.shape[1:] != self.shape or len(x) == 0):
            raise InvalidValueError(f"input of shape {tuple(x.shape)}: expected {self.describe()}")
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise InvalidValueError(f"input holds NaN or infinite values; expected {self.describe()}")
        low, high = self.range
        lo, hi = float(x.min()), float(x.max())
        if (low is not None and lo < low - _RANGE_SLACK) or (high is not None and hi > high + _RANGE_SLACK):
            raise InvalidValueError(f"input values span [{lo:g}, {hi:g}]: expected {self.describe()}; rescale it "
                                    "(e.g. divide 0-255 pixels by 255)" if high == 1 and hi > 1 else
                                    f"input values span [{lo:g}, {hi:g}]: expected {self.describe()}")
        return (x[None] if single else x), single

    def _check_text(self, inputs: Any) -> tuple[np.ndarray, bool]:
        single = isinstance(inputs, str)
        items = [inputs] if single else list(inputs) if isinstance(inputs, (list, tuple, np.ndarray)) else None
        if not items or not all(isinstance(t, str) for t in items):
            raise InvalidValueError(f"input of type {type(inputs).__name__}: expected {self.describe()}")
        blank = next((i for i, t in enumerate(items) if not t.strip()), None)
        if blank is not None:
            where = "the text" if single else f"text {blank} of {len(items)}"
            raise InvalidValueError(f"{where} is empty or only whitespace: a classifier would still answer with "
                                    f"confidence; give some words ({self.describe()})")
        x = np.empty(len(items), dtype=object)
        x[:] = items
        return x, single


class Pipeline:
    """A checkpoint ready for raw inputs: ``pipe(x)`` gives a ``Label`` (classifiers; ``top_k`` > 1: a list)
    or a list of ``Box`` (detectors) per example; a batch gives a list of those."""

    def __init__(self, ref: str, model: Any, contract: InputContract, labels: Sequence[str],
                 tokenizer: Any = None) -> None:
        self.ref = ref
        self.model = model
        self.contract = contract
        self.labels = tuple(labels)
        self.tokenizer = tokenizer  # text models: the tokenizer saved with the checkpoint

    def __repr__(self) -> str:
        return f"Pipeline({self.ref!r}: {self.contract.describe()} -> {len(self.labels)} labels)"

    def _name(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else str(index)

    def __call__(self, inputs: Any, *, top_k: int = 1, min_score: float = 0.5, batch_size: int = 256):
        """Predictions for one example or a batch (checked against the input contract first)."""
        import torch

        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InvalidValueError(f"top_k {top_k!r}: a whole number >= 1")
        if not isinstance(min_score, (int, float)) or not (0 <= min_score <= 1) or math.isnan(min_score):
            raise InvalidValueError(f"min_score {min_score!r}: a number from 0 to 1")
        x, single = self.contract.check(inputs)
        out: list[Any] = []
        self.model.eval()
        with torch.no_grad():
            if self.contract.kind == "text":
                from .text import encode, max_length

                if self.tokenizer is None:
                    raise InvalidValueError(f"{self.ref}: a text model needs the tokenizer saved in its checkpoint "
                                            "folder, and this checkpoint has none; add it as a folder with its tokenizer")
                length = max_length(self.tokenizer, self.model)
                for i in range(0, len(x), batch_size):
                    out.extend(self._top(self.model(**encode(self.tokenizer, x[i:i + batch_size], length)).logits,
                                         top_k))
                return out[0] if single else out
            for i in range(0, len(x), batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size]))
                result = self.model(list(chunk)) if self._detector() else self.model(chunk)
                out.extend(self._boxes(result, min_score) if isinstance(result, list) else self._top(result, top_k))
        return out[0] if single else out

    def _detector(self) -> bool:
        # torchvision's detectors (FCOS, RetinaNet, SSD, R-CNNs) take a list of images and return a list of dicts
        return hasattr(self.model, "transform") and (hasattr(self.model, "anchor_generator")
                                                     or hasattr(self.model, "rpn"))

    def _top(self, logits, top_k: int) -> list[Any]:
        import torch

        probs = torch.softmax(logits.float(), dim=1)
        scores, idx = probs.topk(min(top_k, probs.shape[1]), dim=1)
        rows = [[Label(self._name(int(i)), int(i), float(s)) for s, i in zip(srow, irow)]
                for srow, irow in zip(scores, idx)]
        return [r[0] if top_k == 1 else r for r in rows]

    def _boxes(self, results: list[dict], min_score: float) -> list[list[Box]]:
        return [[Box(self._name(int(label)), int(label), float(score), tuple(float(v) for v in box))  # type: ignore[arg-type]
                 for box, score, label in zip(r["boxes"], r["scores"], r["labels"]) if float(score) >= min_score]
                for r in results]
