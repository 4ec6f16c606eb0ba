"""``_target_`` safety: what conf/ may instantiate, and instantiation itself (Hydra's ``instantiate``).

A config file is data a teammate can change in a pull request, so instantiation is limited to an
allowlist of import roots (torch, torchvision, timm, transformers, torchmetrics, the package's model,
data and metric modules, and the zoo's own code folder). Inside those roots, names that read, write or
download files or compile and run code (``torch.load``, ``torch.hub.*``, ``from_pretrained`` …) are
refused too, and so are keyword arguments that fetch weights (``pretrained``, ``weights``) or run
remote code (``trust_remote_code``). The zoo's code folder runs only when the zoo is trusted: always for a working
tree you cloned, and for a zoo opened from a URL or revision only with ``trust_code``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .. import constants
from ..errors import RegistryError, UnsafeTargetError, UntrustedCodeError

LIBRARY_ROOTS: tuple[str, ...] = ("torch", "torchvision", "timm", "transformers", "torchmetrics")
# Of the package itself only what builds models, data and metrics (not the verbs that write files).
PACKAGE_MODULES: tuple[str, ...] = ("checkpoint_zoo.nets", "checkpoint_zoo.datasets", "checkpoint_zoo.evaluation.metrics",
                                    "checkpoint_zoo.evaluation.evaluators")
# Modules that load, save, download, export or compile: nothing an architecture or metric needs.
_FORBIDDEN_MODULES = frozenset({"hub", "jit", "package", "cpp_extension", "serialization", "onnx", "export",
                                "multiprocessing", "distributed", "testing", "datasets", "tensorboard"})
_FORBIDDEN_NAME = re.compile(r"load|save|download|pretrained|compile|exec|eval|system|popen|spawn|subprocess|"
                             r"import|open|write|remove|unlink|rmtree|pipeline", re.IGNORECASE)
# Keyword arguments that fetch weights or run remote code: the checkpoint carries the weights.
_FORBIDDEN_KWARGS = ("pretrained", "weights", "weights_backbone", "pretrained_backbone", "download",
                     "trust_remote_code", "checkpoint_path", "pretrained_cfg_overlay")
_TARGET_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def target_problem(target: object, code_allowed: bool) -> str | None:
    """Why ``target`` may not be instantiated, or None when it may."""
    if not isinstance(target, str) or not _TARGET_RE.fullmatch(target):
        return f"_target_ {target!r} is not a dotted Python name such as torchvision.models.resnet18"
    parts = target.split(".")
    roots = LIBRARY_ROOTS + ((constants.CODE_DIR,) if code_allowed else ())
    in_package = any(target.startswith(m + ".") for m in PACKAGE_MODULES)
    if parts[0] not in roots and not in_package:
        extra = "" if code_allowed else f" (the zoo's own {constants.CODE_DIR}/ folder is not trusted here)"
        return (f"_target_ {target!r} is outside the allowed import roots {', '.join((*roots, *PACKAGE_MODULES))}"
                f"{extra}; put your own code in the zoo's {constants.CODE_DIR}/ folder and name it from there")
    for part in parts[1:]:
        if part.startswith("_"):
            return f"_target_ {target!r} names a private member ({part}); name a public class or function"
        if part in _FORBIDDEN_MODULES and not in_package:
            return f"_target_ {target!r} reaches {part}, which loads, saves or compiles code; it is refused"
    if len(parts) > 1 and _FORBIDDEN_NAME.search(parts[-1]):
        return (f"_target_ {target!r}: {parts[-1]} reads, writes or runs files or code, which a config may "
                "not do; build the module from its constructor (weights come from the checkpoint)")
    return None


def _walk(node: object, path: str) -> Iterator[tuple[str, object, Mapping]]:
    if isinstance(node, Mapping):
        if "_target_" in node:
            yield path, node["_target_"], node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def check_targets(cfg: Mapping[str, Any], where: str, code_allowed: bool) -> None:
    """Refuse the first unsafe ``_target_`` (or weight-fetching keyword argument) anywhere in ``cfg``."""
    for path, target, node in _walk(cfg, ""):
        problem = target_problem(target, code_allowed)
        if problem:
            raise UnsafeTargetError(f"{where}: key {path or '_target_'}: {problem}")
        for kwarg in _FORBIDDEN_KWARGS:
            if node.get(kwarg) not in (None, False, "", 0):
                raise UnsafeTargetError(
                    f"{where}: key {path + '.' if path else ''}{kwarg}: fetching weights or remote code is refused "
                    f"(the checkpoint carries the weights); set it to null or remove it")


def uses_code_folder(cfg: Mapping[str, Any]) -> bool:
    """True when some ``_target_`` in ``cfg`` lives in the zoo's own code folder."""
    return any(str(t).split(".")[0] == constants.CODE_DIR for _p, t, _n in _walk(cfg, ""))


def activate_code_folder(folder: Path | None, trusted: bool, where: str) -> None:
    """Make ``zoo_code`` importable from ``folder`` (this zoo's copy), replacing another zoo's copy."""
    name = constants.CODE_DIR
    if folder is None or not (folder / "__init__.py").is_file():
        raise RegistryError(f"{where}: names {name}.…, but the zoo has no {name}/__init__.py; add the folder "
                            "with an __init__.py (it is the zoo's own code, versioned with it)")
    if not trusted:
        raise UntrustedCodeError(
            f"{where}: runs the zoo's own code ({name}/), and this zoo comes from a URL or revision; read the code, "
            "then pass trust_code=True (Python) or --trust-code (CLI) to run it"
        )
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").parent == folder:
        return
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py", submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:
        raise RegistryError(f"{where}: cannot import {folder / '__init__.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


def instantiate(cfg: Mapping[str, Any], where: str, code_allowed: bool,
                context: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` of a checked config; ``context`` values fill ``${name}`` interpolations.
    Any failure becomes one line naming ``where``."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    check_targets(cfg, where, code_allowed)
    try:
        root = OmegaConf.create({**(context or {}), "_node_": dict(cfg)})
        return hydra_instantiate(root._node_, _convert_="all", **kwargs)
    except (InstantiationException, OmegaConfBaseException, TypeError, ValueError, ImportError, AttributeError,
            RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RegistryError(f"{where}: cannot build {cfg.get('_target_')}: {first}") from None
