"""The converter child of ``zoo add --convert``: one pickle-based checkpoint in, one safetensors file out.

Started by ``formats.convert_to_safetensors`` as a fresh, isolated interpreter (``python -I``) with
``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1``; arguments ``SRC DST [--allow-global module.Name ...]``. It does
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


def _convert(src: str, dst: str, allow: list[str]) -> dict:
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
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError, EOFError, ...: all mean "refused"
        raise Refused(_explain_load_error(e)) from None
    tensors, taken_from, dropped = _pick_state_dict(obj)
    tensors = _prepare(tensors)
    try:
        save_file(tensors, dst, metadata={"format": "pt"})
    except Exception as e:
        raise Refused(f"safetensors could not store it ({_clean(str(e))})") from None
    return {"tensors": len(tensors), "taken_from": taken_from, "dropped": dropped, "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    allow = []
    while "--allow-global" in args:
        i = args.index("--allow-global")
        allow.append(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        print(json.dumps({"ok": False, "error": "usage: SRC DST [--allow-global module.Name ...]"}))
        return 2
    src, dst = args
    try:
        result = _convert(src, dst, allow)
    except Refused as e:
        try:
            os.unlink(dst)
        except OSError:
            pass
        print(json.dumps({"ok": False, "error": str(e)}), flush=True)
        return 1
    print(json.dumps({"ok": True, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
