"""``Zoo.load_model`` and ``Zoo.pipeline``: a checkpoint as a ready module, or as a callable on raw inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..registry.fit import check_fit
from .ls import get
from .pull import fetch

if TYPE_CHECKING:
    from .facade import Facade


def load_model(zoo: Facade, ref: str, remote: str | None = None):
    """A ``torch.nn.Module`` of the row's architecture (``conf/arch``) with the checkpoint's weights, in
    eval mode. The file is checked against the architecture from its header before any tensor is read."""
    from ..formats import load_weights_file
    from ..registry.archs import build, load_weights

    ckpt = get(zoo, ref)
    registry = zoo.registry()
    spec = registry.arch(ckpt.arch)
    path = fetch(zoo, ckpt.ref, remote=remote)
    check_fit(registry, spec, path, ckpt.ref)
    return load_weights(build(spec, registry), load_weights_file(path), spec)


def pipeline(zoo: Facade, ref: str, remote: str | None = None):
    """A callable from raw inputs to predictions (``inference.Pipeline``): ``Zoo().pipeline("m@best")(x)``
    checks ``x`` against the checkpoint's input contract (its dataset's ``input``), runs the model and
    names the predicted classes with the dataset's labels (detectors: boxes with labels and scores)."""
    from ..inference import InputContract, Pipeline

    ckpt = get(zoo, ref)
    dataset = zoo.registry().dataset(ckpt.dataset)
    contract = InputContract.from_spec(ckpt.dataset, dataset.input)
    model = load_model(zoo, ckpt.ref, remote=remote)
    tokenizer = None
    if contract.kind == "text":  # the tokenizer the model was trained with is part of its folder
        from ..text import load_tokenizer

        path = fetch(zoo, ckpt.ref, remote=remote)
        if path.is_dir() and (path / "tokenizer.json").is_file():
            tokenizer = load_tokenizer(path)
    return Pipeline(ckpt.ref, model, contract, dataset.labels, tokenizer)
