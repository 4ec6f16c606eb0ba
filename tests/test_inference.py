"""One-line use: ``Zoo.pipeline(REF)`` on raw inputs, in a clone of the reference zoo, for each task family."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_zoo

from checkpoint_zoo.errors import InvalidValueError


@pytest.fixture(scope="module")
def zoo(reference_clone):
    from checkpoint_zoo import Zoo

    with Zoo(reference_clone) as z:
        yield z


def _splits(zoo, dataset: str):
    from checkpoint_zoo.registry.datasets import load_splits

    return load_splits(zoo.registry().dataset(dataset), zoo.registry())


def test_classifier_from_raw_pixels_to_labels(zoo):
    pipe = zoo.pipeline("mnist-mobilenetv3@best")
    test = _splits(zoo, "mnist-5k").test
    one = pipe(test.x[0])
    assert one.label == str(one.index) and 0 < one.score <= 1
    top = pipe(test.x[0], top_k=3)
    assert [t.index for t in top][0] == one.index and top[0].score >= top[1].score >= top[2].score
    preds = pipe(test.x)
    accuracy = float(np.mean([p.index == y for p, y in zip(preds, test.y)]))
    stored = zoo.records(["mnist-mobilenetv3"])[zoo.get("mnist-mobilenetv3@best").ref]["metrics"]["accuracy"]
    assert abs(accuracy - stored) < 1e-6  # accuracy is an "exact" metric: the pipeline is the evaluated model


@pytest.mark.parametrize("case,make,names", [
    ("no-channel", lambda x: x[0], ("shape (28, 28)", "1x28x28")),
    ("0-255", lambda x: (x * 255).astype(np.uint8), ("[0, 255]", "in [0, 1]", "divide 0-255 pixels by 255")),
    ("nan", lambda x: np.full_like(x, np.nan), ("NaN",)),
    ("text", lambda x: "a digit", ("not numeric",)),
    ("empty-batch", lambda x: x[None][:0], ("shape (0, 1, 28, 28)",)),
])
def test_wrong_inputs_name_the_contract(zoo, case, make, names):
    pipe = zoo.pipeline("mnist-shufflenet@best")
    x = _splits(zoo, "mnist-5k").test.x[0]
    with pytest.raises(InvalidValueError) as caught:
        pipe(make(x))
    text = str(caught.value)
    assert all(n in text for n in names) and "mnist-5k" in text and "\n" not in text, text


def test_detector_from_raw_canvas_to_boxes(zoo):
    pipe = zoo.pipeline("mnist-fcos@best")
    test = _splits(zoo, "mnist-canvas").test
    found, total = 0, 0
    for image, rows in zip(test.x[:20], test.y[:20]):
        boxes = pipe(image)
        for label, *box in rows[rows[:, 0] >= 0]:
            total += 1
            found += any(b.index == label and _iou(b.box, box) >= 0.5 for b in boxes)
    assert found / total >= 0.7, (found, total)  # mAP@50 is 0.95 on test


def _iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_tabular_labels_and_show_snippet(zoo, reference_clone):
    pipe = zoo.pipeline("wine-linear@best")
    test = _splits(zoo, "wine").test
    assert {p.label for p in pipe(test.x)} <= {"class_0", "class_1", "class_2"}
    r = run_zoo("show", "mnist-mobilenetv3@best", cwd=reference_clone)
    assert r.code == 0 and 'pipeline("mnist-mobilenetv3@' in r.out and "1x28x28 float32 values in [0, 1]" in r.out


def test_empty_text_is_refused_by_the_text_contract():
    """``""`` used to pass and come back as a confident label (business, 0.797)."""
    from checkpoint_zoo.errors import InvalidValueError
    from checkpoint_zoo.inference import InputContract

    contract = InputContract.from_spec("bbc-news", {"kind": "text"})
    assert contract.check(["a match report", "rates rise"])[0].tolist() == ["a match report", "rates rise"]
    for bad, where in (("", "the text"), (" \n\t", "the text"), (["fine", ""], "text 1 of 2")):
        with pytest.raises(InvalidValueError, match=f"^{where} is empty or only whitespace"):
            contract.check(bad)
