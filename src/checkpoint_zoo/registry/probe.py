"""The input contract, checked at add: the architecture run on the meta device with its dataset's input.

Header shapes say a checkpoint loads into its architecture; they do not say the architecture takes the
dataset's examples (``torchvision.models.resnet18`` wants 3 channels, ``mnist-5k`` gives 1x28x28) or gives
one score per label. The model is built on the meta device (no weight memory) and called once with a batch
of 2 zeros of the dataset's declared ``input`` (shape, dtype), as the classify and detect evaluators call
it: shapes propagate, nothing is computed, and a mismatch raises within milliseconds. Where the meta device
cannot follow the model (data-dependent steps such as a detector's box selection, ``.item()`` in a
transformers mask), nothing is concluded and the check passes. Text (``input.kind: text``, no shape of
numbers) is not probed: a text model's input is its tokenizer's output, and the tokenizer is a file of the
checkpoint (``required_files`` of the task). The verdict is remembered per architecture (config, library
versions, zoo code) and input contract, in this process and on disk beside the expected shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RegistryError
from .archs import build, versions_key
from .digest import digest_of

if TYPE_CHECKING:
    from . import Registry
    from .archs import ArchSpec
    from .datasets import DatasetSpec

# bump when what the probe concludes changes, so verdicts cached on disk by an older version are not reused
_VERSION = 1
_VERDICTS: dict[str, str] = {}
# raised by a model that does not take the input (a shape, a dtype, a signature); others are not the input's fault
_REFUSED = (RuntimeError, ValueError, TypeError, IndexError, AssertionError)


def input_shape(dataset: DatasetSpec) -> tuple[int, ...] | None:
    """The declared shape of one example, or None when there is none to probe with (text, no ``shape``)."""
    contract = dataset.input
    shape = contract.get("shape")
    if contract.get("kind", "array") != "array" or not isinstance(shape, list):
        return None
    if not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1 << 16 for d in shape):
        return None
    return tuple(shape)


def _shown(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalars"


@contextmanager
def _entered(model: Any) -> Iterator[list[tuple[str, Any, tuple[int, ...] | None]]]:
    """The stack of (name, module, first input's shape) entered and not yet left while the model runs."""
    stack: list[tuple[str, Any, tuple[int, ...] | None]] = []
    handles = []

    def pre(name: str) -> Any:
        def hook(module: Any, args: tuple[Any, ...]) -> None:
            shape = getattr(args[0], "shape", None) if args else None
            stack.append((name, module, tuple(shape) if shape is not None else None))
        return hook

    def post(module: Any, args: Any, out: Any) -> None:
        if stack and stack[-1][1] is module:
            stack.pop()

    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(pre(name or type(model).__name__)))
        handles.append(module.register_forward_hook(post))
    try:
        yield stack
    finally:
        for h in handles:
            h.remove()


def _why(error: BaseException, stack: list[tuple[str, Any, tuple[int, ...] | None]], shape: tuple[int, ...]) -> str:
    """The refusal, naming what the innermost failing layer expects and what the dataset gives."""
    gives = f"the dataset gives {_shown(shape)}"
    if stack:
        name, module, got = stack[-1]
        kind = type(module).__name__
        got_text = f"gets {list(got)}" if got is not None else "gets its input"
        if hasattr(module, "in_channels") and kind.startswith(("Conv", "LazyConv")):
            at_input = got is not None and got[1:] == shape
            return (f"{name} ({kind}) expects {module.in_channels} input channels, {gives}"
                    + ("" if at_input else f" ({name} {got_text})"))
        if hasattr(module, "in_features"):
            return f"{name} ({kind}) expects {module.in_features} input features, {gives} ({name} {got_text})"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"{name} ({kind}) {got_text} and fails ({first}); {gives}"
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"the model fails on a batch of 2 ({first}); {gives}"


def _run(model: Any, shape: tuple[int, ...], dtype: str, labels: int) -> str | None:
    """Call ``model`` with a meta batch of 2; why it does not take it (or give one score per label), or None."""
    import torch

    torch_dtype = getattr(torch, dtype, None) if dtype else torch.float32
    if not isinstance(torch_dtype, torch.dtype):
        return None
    x = torch.zeros((2, *shape), dtype=torch_dtype, device="meta")
    with _entered(model) as stack, torch.no_grad():
        try:
            out = model(x)
        except NotImplementedError:
            return None  # a step the meta device cannot follow (data-dependent): no conclusion
        except _REFUSED as e:
            if "meta" in str(e).lower():
                return None
            return _why(e, stack, shape)
    out = getattr(out, "logits", out)
    if labels and isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[0] == 2 and out.shape[1] != labels:
        return f"gives {out.shape[1]} scores per example, and the dataset has {labels} labels"
    return None


def contract_problem(spec: ArchSpec, registry: Registry, dataset: DatasetSpec,
                     cache_dir: Path | None = None) -> str | None:
    """Why ``spec`` does not take ``dataset``'s declared input (a batch of 2 on the meta device), or None."""
    shape = input_shape(dataset)
    if shape is None:
        return None
    dtype = str(dataset.input.get("dtype") or "float32")
    key = digest_of({"probe": _VERSION, "arch": versions_key(spec, registry), "shape": list(shape), "dtype": dtype,
                     "labels": len(dataset.labels)})
    if key in _VERDICTS:
        return _VERDICTS[key] or None
    cached = cache_dir / f"{key}.probe.json" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            _VERDICTS[key] = str(json.loads(cached.read_text())["problem"])
            return _VERDICTS[key] or None
        except (OSError, ValueError, KeyError, TypeError):
            pass
    try:
        model = build(spec, registry, device="meta").eval()
    except RegistryError:
        return None  # a constructor that cannot run on meta tensors: the header check is what there is
    problem = _run(model, shape, dtype, len(dataset.labels))
    verdict = "" if problem is None else (
        f"does not take the input of dataset {dataset.name!r} ({dataset.file}: input {_shown(shape)} {dtype}): "
        f"{problem}; give an --arch built for this dataset's input"
        f"{f' and {len(dataset.labels)} labels' if dataset.labels else ''}, or pick another dataset")
    if cached is not None:
        from ..utils.files import atomic_write

        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, json.dumps({"problem": verdict}).encode())
    _VERDICTS[key] = verdict
    return verdict or None
