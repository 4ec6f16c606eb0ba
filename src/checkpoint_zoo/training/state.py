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
        meta["optimizer"] = {"class": optimizer_class or "", "param_groups": groups, "scalars": scalars}
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
    try:
        meta = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as e:
        raise FormatError(f"{what}: its {META_KEY!r} metadata is not strict JSON ({e}); write it again") from None
    problem = _meta_problem(meta, tensors)
    if problem:
        raise FormatError(f"{what}: {problem}; write it again with checkpoint_zoo.training.save_state")
    return TrainingState(tensors, meta)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _meta_problem(meta: Any, tensors: Mapping[str, Any]) -> str | None:
    if not isinstance(meta, dict):
        return f"{META_KEY} is not a JSON object"
    if meta.get("format_version") != FORMAT_VERSION:
        return f"format_version {meta.get('format_version')!r} is not {FORMAT_VERSION} (written by another zoo version?)"
    if not isinstance(meta.get("step"), int) or isinstance(meta.get("step"), bool) or meta["step"] < 0:
        return "step must be a whole number >= 0"
    if meta.get("epoch") is not None and not isinstance(meta["epoch"], (int, float)):
        return "epoch must be a number or null"
    opt = meta.get("optimizer")
    if opt is not None:
        if not isinstance(opt, dict) or not isinstance(opt.get("class"), str) \
                or not isinstance(opt.get("param_groups"), list) or not isinstance(opt.get("scalars", {}), dict):
            return "optimizer must hold class, param_groups and scalars"
        for g in opt["param_groups"]:
            if not isinstance(g, dict) or not isinstance(g.get("params"), list):
                return "each optimizer param group needs a params list"
    sched = meta.get("scheduler")
    if sched is not None and (not isinstance(sched, dict) or not isinstance(sched.get("class"), str)
                              or not isinstance(sched.get("state"), dict)):
        return "scheduler must hold class and state"
    rng = meta.get("rng")
    if rng is not None:
        try:
            int(rng["numpy"]["pos"])
            list(rng["python"]["state"])
        except (TypeError, KeyError, ValueError):
            return "rng must hold numpy and python states"
        if "rng.torch" not in tensors or "rng.numpy.keys" not in tensors:
            return "rng states are named but the tensors rng.torch / rng.numpy.keys are missing"
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


def build_scheduler(state: TrainingState, optimizer: Any, factory: Callable[[Any], Any] | None = None) -> Any:
    """The scheduler (the recorded class built from its own stored arguments, or ``factory(optimizer)``) with
    its state loaded; None when the state has none."""
    import inspect

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
        cls = scheduler_class(sched["class"])
        kwargs, missing = {}, []
        for p in list(inspect.signature(cls).parameters.values())[1:]:
            if p.name in ("last_epoch", "verbose") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name in stored:
                kwargs[p.name] = stored[p.name]
            elif p.default is p.empty:
                missing.append(p.name)
        if missing:
            raise InvalidValueError(f"training state: scheduler {sched['class']} needs {', '.join(missing)}, which "
                                    "its state does not hold; pass scheduler_factory=lambda optimizer: ...")
        # the constructor sets the optimizer's lr for step 0; the stored optimizer state is loaded after it
        saved_groups = [dict(g) for g in optimizer.state_dict()["param_groups"]]
        scheduler = cls(optimizer, **kwargs)
        for g, saved in zip(optimizer.param_groups, saved_groups):
            g.update({k: v for k, v in saved.items() if k != "params"})
    scheduler.load_state_dict(stored)
    return scheduler


def restore_rng(state: TrainingState) -> None:
    """Put the torch CPU, numpy global and python ``random`` generators back where they were."""
    import random

    import numpy as np
    import torch

    rng = state.meta.get("rng")
    if rng is None:
        return
    torch.set_rng_state(state.tensors["rng.torch"].to(torch.uint8))
    n = rng["numpy"]
    np.random.set_state((n["kind"], state.tensors["rng.numpy.keys"].numpy().astype(np.uint32), int(n["pos"]),
                         int(n["has_gauss"]), float(n["cached_gaussian"])))
    p = rng["python"]
    random.setstate((int(p["version"]), tuple(int(x) for x in p["state"]), p["gauss_next"]))
