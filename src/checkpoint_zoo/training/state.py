"""A training state without pickle: capture it from a PyTorch loop, store it, check it, restore it.

One safetensors file holds every tensor (``optimizer.state.<param index>.<key>``, ``rng.torch``,
``rng.numpy.keys`` …) and, in its metadata under ``zoo.training_state``, strict JSON for everything else
(param groups' hyperparameters and parameter names, scheduler and grad-scaler scalars, the python and
numpy RNG scalars, step, epoch, the optimizer and scheduler class names, a format version). Loading
never unpickles, and classes are resolved by name from torch.optim / torch.optim.lr_scheduler only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ArchitectureError, FormatError, InvalidValueError, UnsafeFormatError

META_KEY = "zoo.training_state"
FORMAT_VERSION = 1
_OPT_PREFIX = "optimizer.state."
_GROUP_PREFIX = "optimizer.param_groups."


@dataclass(frozen=True)
class TrainingState:
    """Everything needed to continue training besides the weights: ``tensors`` (flattened names) and
    ``meta`` (the JSON part). Build one with ``capture``; read one with ``load_state``."""

    tensors: Mapping[str, Any]
    meta: Mapping[str, Any]

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def epoch(self) -> float | None:
        return None if self.meta.get("epoch") is None else float(self.meta["epoch"])

    @property
    def optimizer_class(self) -> str | None:
        opt = self.meta.get("optimizer")
        return None if opt is None else str(opt["class"])

    @property
    def scheduler_class(self) -> str | None:
        sched = self.meta.get("scheduler")
        return None if sched is None else str(sched["class"])

    def param_names(self) -> list[str | int]:
        """The optimized parameters in the optimizer's index order (names, or indices when unknown)."""
        opt = self.meta.get("optimizer")
        return [] if opt is None else [p for g in opt["param_groups"] for p in g["params"]]


# ---- capture ----------------------------------------------------------------------------------

def _json_value(value: Any, where: str) -> Any:
    """``value`` as strict JSON (tuples as lists); refuses what JSON cannot hold, naming the field."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValueError(f"training state: {where} is {value!r}; only finite numbers can be stored "
                                    "(check the training run: a NaN here means it diverged)")
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, f"{where}.{k}") for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return _json_value(value.item(), where)
    raise InvalidValueError(f"training state: {where} is a {type(value).__name__}, which cannot be stored as JSON; "
                            "use an optimizer/scheduler whose state is numbers and tensors (or pass a factory)")


def capture(model: Any = None, optimizer: Any = None, scheduler: Any = None, scaler: Any = None, *, step: int,
            epoch: float | None = None, rng: bool = True) -> TrainingState:
    """The training state of a running loop: ``optimizer``/``scheduler``/``scaler`` state dicts, the RNG states
    (torch CPU, numpy's global, python's ``random``) unless ``rng`` is False, ``step`` and ``epoch``.

    With ``model``, the optimizer's parameters are recorded by name (so the zoo can check them against
    the weights and rebuild the optimizer); without it, by index in ``model.parameters()`` order. The
    optimizer's tensors are shared, not copied (a copy would double the cost of storing): store the
    state (``Zoo.add`` or ``save_state``) before the next optimizer step."""
    import random

    import numpy as np
    import torch

    names = None
    if optimizer is not None and model is not None:
        by_id = {id(p): n for n, p in model.named_parameters()}
        names = [[by_id.get(id(p)) for p in g["params"]] for g in optimizer.param_groups]
        if any(n is None for g in names for n in g):
            raise InvalidValueError("training state: the optimizer holds a parameter that is not one of the "
                                    "model's; pass the model the optimizer was built on")
    rng_states = None
    if rng:
        rng_states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    return from_state_dicts(
        optimizer=None if optimizer is None else optimizer.state_dict(),
        optimizer_class=None if optimizer is None else type(optimizer).__name__,
        scheduler=None if scheduler is None else scheduler.state_dict(),
        scheduler_class=None if scheduler is None else type(scheduler).__name__,
        scaler=None if scaler is None else scaler.state_dict(), rng=rng_states, step=step, epoch=epoch,
        param_names=names)


def from_state_dicts(*, optimizer: Mapping[str, Any] | None = None, optimizer_class: str | None = None,
                     scheduler: Mapping[str, Any] | None = None, scheduler_class: str | None = None,
                     scaler: Mapping[str, Any] | None = None, rng: Mapping[str, Any] | None = None, step: int,
                     epoch: float | None = None, param_names: Sequence[Sequence[Any]] | None = None) -> TrainingState:
    """A training state from plain state dicts (``optimizer.state_dict()`` …, as a converted checkpoint holds
    them); ``rng``: {"torch": ByteTensor, "numpy": np.random.get_state(), "python": random.getstate()}. A class
    name of "" means unknown (resuming then needs a factory)."""
    import numpy as np
    import torch

    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"format_version": FORMAT_VERSION, "step": int(step),
                            "epoch": None if epoch is None else float(epoch),
                            "optimizer": None, "scheduler": None, "scaler": None, "rng": None}
    if optimizer is not None:
        meta["optimizer"] = _optimizer_meta(optimizer, optimizer_class, param_names, tensors)
    if scheduler is not None:
        state = {}
        for key, value in scheduler.items():
            if isinstance(value, torch.Tensor):
                tensors[f"scheduler.{key}"] = value.detach().cpu().contiguous()
            else:
                state[key] = _json_value(value, f"scheduler {key!r}")
        meta["scheduler"] = {"class": scheduler_class or "", "state": state}
    if scaler:
        meta["scaler"] = _json_value(dict(scaler), "grad scaler")
    if rng is not None:
        kind, keys, pos, has_gauss, cached = rng["numpy"]
        tensors["rng.torch"] = torch.as_tensor(rng["torch"]).to(torch.uint8).clone()
        tensors["rng.numpy.keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64).copy())
        version, internal, gauss_next = rng["python"]
        meta["rng"] = {"numpy": {"kind": str(kind), "pos": int(pos), "has_gauss": int(has_gauss),
                                 "cached_gaussian": float(cached)},
                       "python": {"version": int(version), "state": [int(x) for x in internal],
                                  "gauss_next": gauss_next}}
    return TrainingState(tensors, meta)


def _optimizer_meta(optimizer: Mapping[str, Any], optimizer_class: str | None,
                    param_names: Sequence[Sequence[Any]] | None, tensors: dict[str, Any]) -> dict[str, Any]:
    """The JSON part of an optimizer state dict (its tensors go to ``tensors``), parameters renumbered in order."""
    import torch

    groups = []
    for gi, saved in enumerate(optimizer["param_groups"]):
        params: list[Any] = [int(i) for i in saved["params"]]
        if param_names is not None:
            params = list(param_names[gi])
        hyper: dict[str, Any] = {}
        for key, value in saved.items():
            if key == "params":
                continue
            if isinstance(value, torch.Tensor):
                tensors[f"{_GROUP_PREFIX}{gi}.{key}"] = value.detach().cpu().contiguous()
            else:
                hyper[key] = _json_value(value, f"optimizer param group {gi} {key!r}")
        groups.append({"params": params, **hyper})
    # torch numbers parameters group after group; a converted state may use any ids: renumber them
    order = [int(i) for g in optimizer["param_groups"] for i in g["params"]]
    position = {pid: n for n, pid in enumerate(order)}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in optimizer["state"].items():
        if int(idx) not in position:
            raise InvalidValueError(f"training state: optimizer state for parameter {idx} that no param group holds")
        n = position[int(idx)]
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_OPT_PREFIX}{n}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(n), {})[key] = _json_value(value, f"optimizer state {idx} {key!r}")
    return {"class": optimizer_class or "", "param_groups": groups, "scalars": scalars}


def guess_optimizer_class(optimizer: Mapping[str, Any]) -> str:
    """The torch.optim class a state dict most likely came from (a Lightning checkpoint does not say), or ""."""
    keys = {k for entry in optimizer.get("state", {}).values() for k in entry}
    group = (optimizer.get("param_groups") or [{}])[0]
    if {"exp_avg", "exp_avg_sq"} <= keys or "betas" in group and "amsgrad" in group:
        return "AdamW" if group.get("decoupled_weight_decay") else "Adam"
    if "momentum_buffer" in keys or "nesterov" in group:
        return "SGD"
    return ""


def guess_scheduler_class(state: Mapping[str, Any]) -> str:
    """The torch.optim.lr_scheduler class a state dict most likely came from, or "" (then resume needs a factory)."""
    for cls, keys in (("LambdaLR", {"lr_lambdas"}), ("OneCycleLR", {"total_steps", "_schedule_phases"}),
                      ("StepLR", {"step_size", "gamma"}), ("MultiStepLR", {"milestones", "gamma"}),
                      ("CosineAnnealingLR", {"T_max", "eta_min"}), ("LinearLR", {"start_factor", "end_factor"}),
                      ("ExponentialLR", {"gamma"})):
        if keys <= set(state):
            return cls
    return ""


# ---- the file -----------------------------------------------------------------------------------

_DTYPES = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "int32": "I32",
           "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}


def save_state(state: TrainingState, path: str | os.PathLike[str]) -> Path:
    """Write ``state`` as one safetensors file (temp file, fsync, rename); returns the path.

    The file is written here rather than by ``safetensors.torch.save_file``, which copies every tensor into
    a bytes object first: writing straight from the tensors' memory keeps storing a state as fast as
    ``torch.save`` of it. ``load_state`` reads it back with the safetensors library."""
    import struct

    path = Path(path)
    meta = json.dumps(state.meta, allow_nan=False, separators=(",", ":"), sort_keys=True)
    header: dict[str, Any] = {"__metadata__": {META_KEY: meta, "format": "pt"}}
    views, offset = [], 0
    for name in sorted(state.tensors):
        t = state.tensors[name].detach().cpu().contiguous()
        dtype = _DTYPES.get(str(t.dtype).removeprefix("torch."))
        if dtype is None:
            raise InvalidValueError(f"training state: tensor {name!r} has dtype {t.dtype}, which the zoo does not store")
        raw = t.reshape(-1).view(torch_uint8()).numpy() if t.numel() else b""
        size = t.numel() * t.element_size()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        views.append(raw)
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned, as safetensors writes it
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(head)))
            f.write(head)
            for raw in views:
                f.write(memoryview(raw))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def torch_uint8() -> Any:
    import torch

    return torch.uint8


def load_state(path: str | os.PathLike[str], what: str | None = None) -> TrainingState:
    """Read a training-state file written by ``save_state`` (never unpickling); refuses a pickle, a truncated
    or corrupt file and a file without the zoo's training-state metadata, in one line naming ``what``."""
    from safetensors import SafetensorError, safe_open

    from ..formats import sniff

    path = Path(path)
    what = what or str(path)
    kind = sniff(path)
    if kind in ("pickle", "torch-zip", "torchscript"):
        raise UnsafeFormatError(f"{what}: the training state is a pickle (torch.save), which the zoo never loads; "
                                "save it with checkpoint_zoo.training.save_state, or add the original checkpoint "
                                "with `zoo add --convert`")
    if kind != "safetensors":
        raise FormatError(f"{what}: not a safetensors training state (empty, truncated or another format); "
                          "write it again with checkpoint_zoo.training.save_state")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FormatError(f"{what}: corrupt or truncated training state ({first}); write it again with "
                          "checkpoint_zoo.training.save_state (or pull it again)") from None
    if raw is None:
        raise FormatError(f"{what}: a safetensors file without the {META_KEY!r} metadata, so not a training state; "
                          "write it with checkpoint_zoo.training.save_state")
    problem = _json_bounds_problem(raw)
    if problem:
        raise FormatError(f"{what}: its {META_KEY!r} metadata {problem}; write it again with "
                          "checkpoint_zoo.training.save_state")
    try:
        meta = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as e:
        raise FormatError(f"{what}: its {META_KEY!r} metadata is not strict JSON ({e}); write it again") from None
    problem = _meta_problem(meta, tensors)
    if problem:
        raise FormatError(f"{what}: {problem}; write it again with checkpoint_zoo.training.save_state")
    return TrainingState(tensors, meta)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


# The metadata's bounds: a real state's JSON is kilobytes (python's RNG state is the largest part) and a
# few levels deep; past these it is not a training state, and parsing it could exhaust the stack or memory.
MAX_META_BYTES = 16 << 20
MAX_META_DEPTH = 16
# numbers a param group or the grad scaler must hold as numbers (``lr: "fast"`` would load and break)
_NUMERIC_HYPER = ("lr", "initial_lr", "weight_decay", "momentum", "dampening", "eps", "alpha", "lr_decay",
                  "max_lr", "min_lr", "base_momentum", "max_momentum")
_MT_WORDS = 624  # numpy's and python's Mersenne Twister state, 32-bit words


def _json_bounds_problem(raw: str) -> str | None:
    """Why ``raw`` is too big or nests too deep to be parsed as a training state's metadata, or None (a
    scan that never recurses: a 100,000-deep array is refused here, not by a RecursionError)."""
    if len(raw) > MAX_META_BYTES:
        return f"is {len(raw)} characters, more than the {MAX_META_BYTES} a training state's metadata may hold"
    depth, in_string, escaped = 0, False, False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_META_DEPTH:
                return f"nests deeper than {MAX_META_DEPTH} levels, which no training state does"
        elif ch in "]}":
            depth -= 1
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, str)) or _is_number(value)


def _flat_problem(values: Any, where: str) -> str | None:
    """Why a mapping of hyperparameters or scalars is not JSON scalars (or lists of them), or None."""
    if not isinstance(values, dict):
        return f"{where} must be a JSON object"
    for key, value in values.items():
        items = value if isinstance(value, list) else [value]
        if not all(_is_scalar(v) for v in items):
            return f"{where} {key!r} must be a number, true/false, a string, null or a list of them"
        if key in _NUMERIC_HYPER and not _is_number(value):
            return f"{where} {key!r} is {value!r}, not a finite number"
    return None


def _optimizer_problem(opt: Any) -> str | None:
    if not isinstance(opt, dict) or not isinstance(opt.get("class"), str) \
            or not isinstance(opt.get("param_groups"), list) or not isinstance(opt.get("scalars", {}), dict):
        return "optimizer must hold class, param_groups and scalars"
    for gi, g in enumerate(opt["param_groups"]):
        if not isinstance(g, dict) or not isinstance(g.get("params"), list) \
                or not all(isinstance(p, (str, int)) and not isinstance(p, bool) for p in g["params"]):
            return f"optimizer param group {gi} needs a params list of parameter names or indices"
        problem = _flat_problem({k: v for k, v in g.items() if k != "params"}, f"optimizer param group {gi}")
        if problem:
            return problem
    for idx, entry in opt.get("scalars", {}).items():
        if not str(idx).isdigit():
            return f"optimizer scalars key {idx!r} must be a parameter index"
        problem = _flat_problem(entry, f"optimizer state {idx}")
        if problem:
            return problem
    return None


def _scheduler_problem(sched: Any) -> str | None:
    if not isinstance(sched, dict) or not isinstance(sched.get("class"), str) \
            or not isinstance(sched.get("state"), dict):
        return "scheduler must hold class and state"
    if "optimizer" in sched["state"]:
        return ("scheduler state 'optimizer' is not a scheduler's state (torch never stores the optimizer there; "
                "loading it would replace the scheduler's optimizer)")
    return _flat_problem(sched["state"], "scheduler state")


def _rng_problem(rng: Any, tensors: Mapping[str, Any]) -> str | None:
    """Why the RNG part cannot be put back into torch, numpy and python's generators, or None."""
    import torch

    try:
        n, p = rng["numpy"], rng["python"]
        fields_ok = (n["kind"] == "MT19937" and isinstance(n["pos"], int) and 0 <= n["pos"] <= _MT_WORDS
                     and n["has_gauss"] in (0, 1) and _is_number(n["cached_gaussian"]))
        python_ok = (isinstance(p["version"], int) and isinstance(p["state"], list) and len(p["state"]) == _MT_WORDS + 1
                     and all(isinstance(x, int) and 0 <= x < 2 ** 32 for x in p["state"])
                     and p["state"][-1] <= _MT_WORDS and (p["gauss_next"] is None or _is_number(p["gauss_next"])))
    except (TypeError, KeyError):
        return "rng must hold numpy (kind, pos, has_gauss, cached_gaussian) and python (version, state, gauss_next)"
    if not fields_ok:
        return "rng.numpy must be an MT19937 state (pos 0 to 624, has_gauss 0 or 1, a finite cached_gaussian)"
    if not python_ok:
        return "rng.python must be random.getstate()'s: a version, 625 words of state and gauss_next"
    if "rng.torch" not in tensors or "rng.numpy.keys" not in tensors:
        return "rng states are named but the tensors rng.torch / rng.numpy.keys are missing"
    expected = torch.get_rng_state()
    got = tensors["rng.torch"]
    if got.dtype != expected.dtype or tuple(got.shape) != tuple(expected.shape):
        return (f"rng.torch is a {got.dtype} tensor of shape {list(got.shape)}, not torch's CPU generator state "
                f"({expected.dtype}, {list(expected.shape)})")
    keys = tensors["rng.numpy.keys"]
    if tuple(keys.shape) != (_MT_WORDS,) or keys.dtype != torch.int64 or bool((keys < 0).any() | (keys >= 2 ** 32).any()):
        return f"rng.numpy.keys must be {_MT_WORDS} 32-bit words (int64), as numpy's MT19937 state holds"
    return None


def _meta_problem(meta: Any, tensors: Mapping[str, Any]) -> str | None:
    """Why the metadata is not a training state, field by field, or None."""
    if not isinstance(meta, dict):
        return f"{META_KEY} is not a JSON object"
    if meta.get("format_version") != FORMAT_VERSION:
        return f"format_version {meta.get('format_version')!r} is not {FORMAT_VERSION} (written by another zoo version?)"
    if not isinstance(meta.get("step"), int) or isinstance(meta.get("step"), bool) or meta["step"] < 0:
        return "step must be a whole number >= 0"
    if meta.get("epoch") is not None and not _is_number(meta["epoch"]):
        return "epoch must be a finite number or null"
    checks = (("optimizer", _optimizer_problem), ("scheduler", _scheduler_problem),
              ("scaler", lambda v: _flat_problem(v, "grad scaler")), ("rng", lambda v: _rng_problem(v, tensors)))
    for field, check in checks:
        if meta.get(field) is not None:
            problem = check(meta[field])
            if problem:
                return problem
    return None


# ---- checks against the weights -------------------------------------------------------------------

def state_problem(state: TrainingState, weight_shapes: Mapping[str, Sequence[int]],
                  arch_params: Sequence[str]) -> str | None:
    """Why ``state`` cannot belong to weights of these shapes (``arch_params``: the architecture's parameter
    names in ``model.parameters()`` order), or None."""
    opt = state.meta.get("optimizer")
    if opt is None:
        return None
    names = resolve_param_names(state, arch_params)
    if isinstance(names, str):
        return names
    indices = set(range(len(names)))
    for key in state.tensors:
        if key.startswith(_OPT_PREFIX):
            idx_text, _, sub = key[len(_OPT_PREFIX):].partition(".")
            if not idx_text.isdigit() or int(idx_text) not in indices:
                return (f"optimizer state entry {key!r} names parameter index {idx_text}, but its param groups hold "
                        f"{len(names)} parameters")
            name = names[int(idx_text)]
            shape = tuple(state.tensors[key].shape)
            if shape and shape != tuple(weight_shapes[name]):
                return (f"optimizer state {key!r} has shape {list(shape)} but parameter {name!r} of the weights has "
                        f"{list(weight_shapes[name])}; the state belongs to other weights (add it with the "
                        "weights it was saved with)")
    return None


def resolve_param_names(state: TrainingState, arch_params: Sequence[str]) -> list[str] | str:
    """The optimizer's parameters by name: as recorded, or (for a state captured without the model, e.g. a
    converted Lightning or Trainer checkpoint) the architecture's parameters in order; or the problem."""
    params = state.param_names()
    if all(isinstance(p, str) for p in params):
        unknown = [p for p in params if p not in arch_params]
        if unknown:
            return (f"the optimizer state covers parameter(s) {', '.join(map(repr, unknown[:3]))} that the "
                    f"architecture does not have; the state belongs to another model")
        return [str(p) for p in params]
    if len(params) != len(arch_params):
        return (f"the optimizer state covers {len(params)} parameters but the architecture has "
                f"{len(arch_params)}; the state belongs to another model (or to a partly frozen one: save it "
                "with checkpoint_zoo.training.capture(model, optimizer, ...), which records the names)")
    return list(arch_params)


# ---- restore ------------------------------------------------------------------------------------------

def optimizer_class(name: str) -> type:
    """An optimizer class of torch.optim by its name (never importing anything else)."""
    import torch

    cls = getattr(torch.optim, name, None) if name.isidentifier() and not name.startswith("_") else None
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)) or cls is torch.optim.Optimizer:
        raise InvalidValueError(f"training state: optimizer class {name or '(not recorded)'!r} is not one of "
                                "torch.optim's; pass "
                                "optimizer_factory=lambda model: YourOptimizer(model.parameters(), ...)")
    return cls


_NO_REBUILD = {"LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler"}


def scheduler_class(name: str) -> type:
    """An LR scheduler class of torch.optim.lr_scheduler by its name (callable-free ones only)."""
    import torch

    sched = torch.optim.lr_scheduler
    cls = getattr(sched, name, None) if name.isidentifier() and not name.startswith("_") else None
    if not isinstance(cls, type) or not issubclass(cls, sched.LRScheduler) or cls is sched.LRScheduler \
            or name in _NO_REBUILD:
        raise InvalidValueError(f"training state: scheduler class {name or '(not recorded)'!r} cannot be rebuilt "
                                "from its state (only "
                                "torch.optim.lr_scheduler classes without functions or nested schedulers); pass "
                                "scheduler_factory=lambda optimizer: ...")
    return cls


def optimizer_state_dict(state: TrainingState) -> dict[str, Any]:
    """The ``optimizer.state_dict()`` the state was captured from (indices as torch numbers them)."""
    opt = state.meta["optimizer"]
    per: dict[int, dict[str, Any]] = {}
    for key, value in state.tensors.items():
        if key.startswith(_OPT_PREFIX):
            idx, _, sub = key[len(_OPT_PREFIX):].partition(".")
            per.setdefault(int(idx), {})[sub] = value
    for idx, entry in opt.get("scalars", {}).items():
        per.setdefault(int(idx), {}).update(entry)
    groups, index = [], 0
    for gi, g in enumerate(opt["param_groups"]):
        group = {k: (tuple(v) if isinstance(v, list) else v) for k, v in g.items() if k != "params"}
        for key, value in state.tensors.items():
            if key.startswith(f"{_GROUP_PREFIX}{gi}."):
                group[key[len(f"{_GROUP_PREFIX}{gi}."):]] = value
        group["params"] = list(range(index, index + len(g["params"])))
        index += len(g["params"])
        groups.append(group)
    return {"state": dict(sorted(per.items())), "param_groups": groups}


def build_optimizer(state: TrainingState, model: Any, names: Sequence[str],
                    factory: Callable[[Any], Any] | None = None, what: str = "training state") -> Any:
    """The optimizer over ``model``'s parameters (the recorded class and groups, or ``factory(model)``) with the
    stored state loaded; a mismatch (other groups, other parameters) raises ArchitectureError naming it."""
    opt = state.meta["optimizer"]
    params = dict(model.named_parameters())
    if factory is not None:
        optimizer = factory(model)
    else:
        cls = optimizer_class(opt["class"])
        groups, i = [], 0
        for g in opt["param_groups"]:
            chosen = names[i:i + len(g["params"])]
            i += len(g["params"])
            groups.append({"params": [params[n] for n in chosen], "lr": g.get("lr", 1e-3)})
        optimizer = cls(groups)
    for gi, g in enumerate(opt["param_groups"]):
        problem = _kinds_problem(optimizer.defaults, {k: v for k, v in g.items() if k != "params"},
                                 f"optimizer param group {gi}", type(optimizer).__name__)
        if problem:
            raise InvalidValueError(f"{what}: {problem}")
    live = [len(g["params"]) for g in optimizer.param_groups]
    saved = [len(g["params"]) for g in opt["param_groups"]]
    if live != saved:
        raise ArchitectureError(f"{what}: the stored optimizer has {len(saved)} param group(s) of {saved} parameters "
                                f"but the optimizer built here has {len(live)} of {live}; build it with the same "
                                "groups as when the state was saved")
    try:
        optimizer.load_state_dict(optimizer_state_dict(state))
    except (ValueError, KeyError, RuntimeError) as e:
        raise ArchitectureError(f"{what}: the optimizer state does not load into {type(optimizer).__name__} "
                                f"({str(e).splitlines()[0]}); build it as when the state was saved") from None
    return optimizer


def _same_kind(fresh: Any, stored: Any) -> bool:
    """Whether ``stored`` can stand where the live object holds ``fresh`` (a number for a number …)."""
    if fresh is None or stored is None:
        return True
    if isinstance(fresh, bool):
        return isinstance(stored, bool)
    if isinstance(fresh, (int, float)):
        return _is_number(stored) or hasattr(stored, "shape")
    if isinstance(fresh, (list, tuple)):
        return isinstance(stored, (list, tuple))
    if isinstance(fresh, str):
        return isinstance(stored, str)
    return True


def _kinds_problem(fresh: Mapping[str, Any], stored: Mapping[str, Any], where: str, owner: str) -> str | None:
    """Why ``stored`` values cannot replace a freshly built ``owner``'s values of the same keys, or None."""
    for key, value in stored.items():
        if key in fresh and not _same_kind(fresh[key], value):
            return (f"{where} {key!r} is {value!r}, but {owner} holds a {type(fresh[key]).__name__} there; the state "
                    "is broken or from another class")
    return None


def _scheduler_from_state(cls: type, optimizer: Any, stored: Mapping[str, Any], name: str) -> Any:
    """``cls`` built from the arguments its stored state holds, the optimizer's group values kept."""
    import inspect

    kwargs, missing = {}, []
    for p in list(inspect.signature(cls).parameters.values())[1:]:
        if p.name in ("last_epoch", "verbose") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in stored:
            if p.default is not p.empty and not _same_kind(p.default, stored[p.name]):
                raise InvalidValueError(f"training state: scheduler state {p.name!r} is {stored[p.name]!r}, but "
                                        f"{name} takes a {type(p.default).__name__} there; the state is broken")
            kwargs[p.name] = stored[p.name]
        elif p.default is p.empty:
            missing.append(p.name)
    if missing:
        raise InvalidValueError(f"training state: scheduler {name} needs {', '.join(missing)}, which "
                                "its state does not hold; pass scheduler_factory=lambda optimizer: ...")
    # the constructor sets the optimizer's lr for step 0; the stored optimizer state is loaded after it
    saved_groups = [dict(g) for g in optimizer.state_dict()["param_groups"]]
    try:
        scheduler = cls(optimizer, **kwargs)
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError, OverflowError) as e:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise InvalidValueError(f"training state: scheduler {name} cannot be rebuilt from its stored arguments "
                                f"({given}): {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    for g, saved in zip(optimizer.param_groups, saved_groups):
        g.update({k: v for k, v in saved.items() if k != "params"})
    return scheduler


def build_scheduler(state: TrainingState, optimizer: Any, factory: Callable[[Any], Any] | None = None) -> Any:
    """The scheduler (the recorded class built from its own stored arguments, or ``factory(optimizer)``) with
    its state loaded; None when the state has none. A stored value of another kind than the built scheduler
    holds (a string for a number) is one InvalidValueError naming the field; a key it does not hold is
    left out (load_state_dict would set any attribute, its optimizer included)."""
    sched = state.meta.get("scheduler")
    if sched is None:
        return None
    stored = dict(sched["state"])
    for key, value in state.tensors.items():
        if key.startswith("scheduler."):
            stored[key[len("scheduler."):]] = value
    if factory is not None:
        scheduler = factory(optimizer)
    else:
        scheduler = _scheduler_from_state(scheduler_class(sched["class"]), optimizer, stored, sched["class"])
    fresh = scheduler.state_dict()
    if "optimizer" in stored:  # load_state_dict would make it the scheduler's optimizer
        raise InvalidValueError("training state: scheduler state 'optimizer' is not a scheduler's state; the state "
                                "is broken: write it again with checkpoint_zoo.training.save_state")
    # what this scheduler does not hold (another torch version's fields) is left out, never set on it
    stored = {k: v for k, v in stored.items() if k in fresh}
    problem = _kinds_problem(fresh, stored, "scheduler state", type(scheduler).__name__)
    if problem:
        raise InvalidValueError(f"training state: {problem}")
    try:
        scheduler.load_state_dict(stored)
    except (ValueError, TypeError, KeyError, RuntimeError) as e:
        raise InvalidValueError(f"training state: the scheduler state does not load into {type(scheduler).__name__} "
                                f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return scheduler


def restore_rng(state: TrainingState) -> None:
    """Put the torch CPU, numpy global and python ``random`` generators back where they were."""
    import random

    import numpy as np
    import torch

    rng = state.meta.get("rng")
    if rng is None:
        return
    problem = _rng_problem(rng, state.tensors)  # load_state checked it; a state built in memory may not be
    if problem:
        raise InvalidValueError(f"training state: {problem}")
    n, p = rng["numpy"], rng["python"]
    try:
        torch.set_rng_state(state.tensors["rng.torch"].to(torch.uint8))
        np.random.set_state((n["kind"], state.tensors["rng.numpy.keys"].numpy().astype(np.uint32), int(n["pos"]),
                             int(n["has_gauss"]), float(n["cached_gaussian"])))
        random.setstate((int(p["version"]), tuple(int(x) for x in p["state"]), p["gauss_next"]))
    except (ValueError, TypeError, RuntimeError) as e:
        raise InvalidValueError(f"training state: the RNG states cannot be restored ({str(e).splitlines()[0]}); "
                                "the state is broken: write it again with checkpoint_zoo.training.save_state") from None
