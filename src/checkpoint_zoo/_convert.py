"""The converter child of ``zoo add --convert``: one pickle-based checkpoint in, one safetensors file out.

Started by ``formats.convert_to_safetensors`` as a fresh, isolated interpreter (``python -I``) with
``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1``; arguments ``SRC DST [--allow-global module.Name ...] [--state-out STATE]``.
With ``--state-out``, the training state a PyTorch Lightning checkpoint (``optimizer_states``,
``lr_schedulers``, ``global_step``, ``epoch``) or a transformers Trainer checkpoint folder (``optimizer.pt``,
``scheduler.pt``, ``rng_state.pth``, ``trainer_state.json``) holds is written there as a zoo training state. It does
exactly ``torch.load(SRC, map_location="cpu", weights_only=True)`` (inside ``safe_globals`` for the
allowed globals, never a fallback to ``weights_only=False``), picks the state dict, writes it with
``safetensors.torch.save_file`` and prints one JSON line: ``{"ok": true, ...}`` or ``{"ok": false,
"error": ...}`` (exit 1). The parent never unpickles; it reads only that line and the safetensors file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping

MIN_TORCH = (2, 10)
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]|\x1b\[[0-9;]*m")


class Refused(Exception):
    """The checkpoint cannot be converted; the message is the one-line reason."""


def _clean(text: str, limit: int = 300) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def _resolve_global(name: str):
    import importlib

    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    raise Refused(f"--allow-global {name}: cannot import it here; install the package that defines it")


def _explain_load_error(e: BaseException) -> str:
    from checkpoint_zoo.formats import allowed_global, canonical_global

    text = str(e)
    m = re.search(r"GLOBAL ([A-Za-z_][\w.]*)", text)
    if m:
        raw = m.group(1).rstrip(".")
        name = canonical_global(raw)
        spelled = f" (pickled as {raw})" if raw != name and "." in raw else ""
        if not allowed_global(raw) or "is blocked" in text:
            return (f"torch.load(weights_only=True) refused it: unpickling would call {name}{spelled}, which is "
                    "not a data type the zoo can allow (it may run code, or the checkpoint holds objects the zoo "
                    "can never accept); nothing was executed")
        return (f"torch.load(weights_only=True) refused global {raw}, a data type outside torch's own allowlist; "
                f"if you trust the file, rerun with --allow-global {raw} (it is recorded in the row)")
    first = next((l for l in text.splitlines() if l.strip()), type(e).__name__)
    return f"not a loadable torch checkpoint (torch.load with weights_only=True: {_clean(first)})"


def _flatten(mapping: Mapping, prefix: str = ""):
    import torch

    for key, value in mapping.items():
        if not isinstance(key, str):
            raise Refused(f"key {key!r}{' under ' + prefix if prefix else ''} is not a string")
        name = prefix + key
        if isinstance(value, torch.Tensor):
            yield name, value
        elif isinstance(value, Mapping):
            yield from _flatten(value, name + ".")
        else:
            raise Refused(f"entry {name!r} is a {type(value).__name__}, not a tensor")


def _pick_state_dict(obj) -> tuple[dict, str, list[str]]:
    """(name -> tensor, the key it came from or "", other top-level keys left out)."""
    if not isinstance(obj, Mapping):
        raise Refused(f"holds a {type(obj).__name__}, not a state dict (a mapping of names to tensors)")
    try:
        return dict(_flatten(obj)), "", []
    except Refused as whole:
        for key in STATE_DICT_KEYS:
            if isinstance(obj.get(key), Mapping):
                try:
                    tensors = dict(_flatten(obj[key]))
                except Refused:
                    continue
                return tensors, key, sorted(str(k) for k in obj if k != key)
        raise Refused(f"holds no state dict: {whole}; expected a mapping of names to tensors, or one under "
                      f"{', '.join(repr(k) for k in STATE_DICT_KEYS)}") from None


def _prepare(tensors: dict) -> dict:
    """Dense, contiguous CPU tensors that share no memory (what safetensors can store)."""
    import torch

    out, seen = {}, set()
    for name, t in tensors.items():
        if t.layout != torch.strided or t.is_quantized or t.is_meta:
            raise Refused(f"tensor {name!r} is {'quantized' if t.is_quantized else str(t.layout)}; "
                          "safetensors stores dense tensors only")
        t = t.detach().to("cpu").contiguous()
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key in seen or storage.nbytes() != t.nbytes:
            t = t.clone()
        seen.add((t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()))
        out[name] = t
    if not out:
        raise Refused("holds no tensors")
    return out


def _load(path: str, allowed: list) -> object:
    import torch

    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError, EOFError, ...: all mean "refused"
        raise Refused(f"{os.path.basename(path)}: {_explain_load_error(e)}") from None


def _numpy_globals() -> list:
    """The numpy data types of formats.ALLOWED_GLOBALS: what a pickled numpy RNG state needs and torch's own
    weights_only allowlist lacks."""
    from checkpoint_zoo.formats import ALLOWED_GLOBALS

    out = []
    for name in sorted(ALLOWED_GLOBALS):
        if name.startswith("numpy."):
            try:
                out.append(_resolve_global(name))
            except Refused:
                pass  # a spelling of another numpy version
    return out


def _lightning_state(obj: Mapping, state_out: str) -> bool:
    """Write the training state of a Lightning checkpoint; False when it holds none."""
    from checkpoint_zoo.training.state import from_state_dicts, guess_optimizer_class, guess_scheduler_class, save_state

    optimizers = obj.get("optimizer_states") or []
    if not optimizers:
        return False
    if len(optimizers) != 1:
        raise Refused(f"holds {len(optimizers)} optimizers; the zoo stores the state of one")
    opt = optimizers[0]
    scheds = [s.get("scheduler", s) if isinstance(s, Mapping) else s for s in obj.get("lr_schedulers") or []]
    if len(scheds) > 1:
        raise Refused(f"holds {len(scheds)} LR schedulers; the zoo stores the state of one")
    sched = scheds[0] if scheds else None
    save_state(from_state_dicts(optimizer=opt, optimizer_class=guess_optimizer_class(opt), scheduler=sched,
                                scheduler_class=guess_scheduler_class(sched) if sched else None,
                                step=int(obj.get("global_step") or 0), epoch=obj.get("epoch")), state_out)
    return True


def _trainer_folder(src: str, dst: str, allow: list, state_out: str | None) -> dict:
    """A transformers Trainer checkpoint folder: weights to ``dst``, the training state to ``state_out``."""
    import json as _json

    from safetensors.torch import load_file, save_file

    from checkpoint_zoo.training.state import from_state_dicts, guess_optimizer_class, guess_scheduler_class, save_state

    def has(name: str) -> bool:
        p = os.path.join(src, name)
        return os.path.isfile(p) and not os.path.islink(p)

    def path(name: str) -> str:
        return os.path.join(src, name)

    if has("model.safetensors"):
        tensors = load_file(path("model.safetensors"))
    elif has("pytorch_model.bin"):
        tensors, _, _ = _pick_state_dict(_load(path("pytorch_model.bin"), allow))
    else:
        raise Refused("a folder without model.safetensors or pytorch_model.bin, so not a Trainer checkpoint")
    tensors = _prepare(tensors)
    save_file(tensors, dst, metadata={"format": "pt"})
    kept = False
    if state_out and has("optimizer.pt"):
        opt = _load(path("optimizer.pt"), allow)
        sched = _load(path("scheduler.pt"), allow) if has("scheduler.pt") else None
        rng = None
        if has("rng_state.pth"):
            raw = _load(path("rng_state.pth"), allow + _numpy_globals())
            if isinstance(raw, Mapping) and {"python", "numpy", "cpu"} <= set(raw):
                rng = {"python": raw["python"], "numpy": raw["numpy"], "torch": raw["cpu"]}
        step, epoch = 0, None
        if has("trainer_state.json"):
            with open(path("trainer_state.json"), encoding="utf-8") as f:
                info = _json.load(f)
            step, epoch = int(info.get("global_step") or 0), info.get("epoch")
        if not isinstance(opt, Mapping) or not isinstance(sched, (Mapping, type(None))):
            raise Refused("optimizer.pt / scheduler.pt do not hold state dicts")
        save_state(from_state_dicts(optimizer=opt, optimizer_class=guess_optimizer_class(opt), scheduler=sched,
                                    scheduler_class=guess_scheduler_class(sched) if sched else None, rng=rng,
                                    step=step, epoch=epoch), state_out)
        kept = True
    return {"tensors": len(tensors), "taken_from": "", "dropped": [], "state": kept}


def _convert(src: str, dst: str, allow: list[str], state_out: str | None = None) -> dict:
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    import torch
    from safetensors.torch import save_file

    version = tuple(int(p) for p in re.findall(r"\d+", torch.__version__)[:2])
    if version < MIN_TORCH:
        raise Refused(f"torch {torch.__version__} is too old for a safe conversion; "
                      f"install torch >= {'.'.join(map(str, MIN_TORCH))}")
    from checkpoint_zoo.formats import allow_global_problem

    for g in allow:
        problem = allow_global_problem(g)
        if problem:
            raise Refused(problem)
    allowed = [_resolve_global(g) for g in allow]
    if os.path.isdir(src):
        return {**_trainer_folder(src, dst, allowed, state_out), "torch": torch.__version__}
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError, EOFError, ...: all mean "refused"
        raise Refused(_explain_load_error(e)) from None
    tensors, taken_from, dropped = _pick_state_dict(obj)
    kept = False
    if state_out and isinstance(obj, Mapping) and taken_from:
        kept = _lightning_state(obj, state_out)
        if kept:
            dropped = [d for d in dropped if d not in ("optimizer_states", "lr_schedulers", "global_step", "epoch")]
    tensors = _prepare(tensors)
    try:
        save_file(tensors, dst, metadata={"format": "pt"})
    except Exception as e:
        raise Refused(f"safetensors could not store it ({_clean(str(e))})") from None
    return {"tensors": len(tensors), "taken_from": taken_from, "dropped": dropped, "torch": torch.__version__,
            "state": kept}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    allow = []
    state_out = None
    if "--state-out" in args:
        i = args.index("--state-out")
        state_out = args[i + 1]
        del args[i:i + 2]
    while "--allow-global" in args:
        i = args.index("--allow-global")
        allow.append(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        print(json.dumps({"ok": False, "error": "usage: SRC DST [--allow-global module.Name ...]"}))
        return 2
    src, dst = args
    from checkpoint_zoo.errors import ZooError

    try:
        result = _convert(src, dst, allow, state_out)
    except (Refused, ZooError) as e:  # ZooError: a state the zoo cannot store (a NaN, an object)
        for path in (dst, state_out):
            try:
                if path:
                    os.unlink(path)
            except OSError:
                pass
        print(json.dumps({"ok": False, "error": str(e)}), flush=True)
        return 1
    print(json.dumps({"ok": True, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
