"""``_target_`` safety: what conf/ may instantiate, and instantiation itself (Hydra's ``instantiate``).

A config file is data a teammate can change in a pull request. Reading a registry checks names only
(no imports): the import roots (torch, torchvision, timm, transformers, torchmetrics, the package's
model, data and metric modules, the zoo's own code folder), names that read, write, download or run
code, and keyword arguments that fetch weights. A name proves little (``checkpoint_zoo.nets.torch.…``
reaches all of torch), so before anything is instantiated every ``_target_`` is resolved without being
called and judged by what it IS (``target_kind``): a ``torch.nn.Module``, ``torchmetrics.Metric``,
transformers model or config class, a registered torchvision model builder or ``timm.create_model``
(their weight-fetching arguments bound by signature and refused however given), a function defined in
the package's own evaluators, metrics, datasets or nets, or the zoo's own code when trusted. Anything
else (other functions, modules, loaders of dynamic code) is refused. A zoo opened from a URL or
revision without ``trust_code`` gets the classes only, never a function.

Configs cannot read the environment either: an interpolation is a plain ``${name}`` (the zoo fills
``CONTEXT_NAMES``), never a resolver such as ``${oc.env:…}`` (``resolver_problem``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import layout
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
    roots = LIBRARY_ROOTS + ((layout.CODE_DIR,) if code_allowed else ())
    in_package = any(target.startswith(m + ".") for m in PACKAGE_MODULES)
    if parts[0] not in roots and not in_package:
        extra = "" if code_allowed else f" (the zoo's own {layout.CODE_DIR}/ folder is not trusted here)"
        return (f"_target_ {target!r} is outside the allowed import roots {', '.join((*roots, *PACKAGE_MODULES))}"
                f"{extra}; put your own code in the zoo's {layout.CODE_DIR}/ folder and name it from there")
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
    return any(str(t).split(".")[0] == layout.CODE_DIR for _p, t, _n in _walk(cfg, ""))


# ---- identity: what a _target_ resolves to ------------------------------------------------------------

# The names the zoo itself fills in a config (``${num_classes}``: the dataset's number of labels).
CONTEXT_NAMES: tuple[str, ...] = ("num_classes",)
# Hydra's own keys of a node: everything else is a keyword argument of the target.
HYDRA_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")
# Arguments of the model factories that fetch weights, read files or reach a hub.
_TORCHVISION_FETCH = ("weights", "weights_backbone", "pretrained", "pretrained_backbone")
_TIMM_FETCH = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path", "cache_dir")
_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
_PLAIN_NAME = re.compile(r"\.*[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def resolve_target(target: str) -> object:
    """The object a dotted ``_target_`` names, found as Hydra finds it (import the first module, then
    attribute after attribute, importing a submodule where an attribute is missing), never called."""
    parts = target.split(".")
    obj: object = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            if not isinstance(obj, ModuleType):
                raise
            obj = importlib.import_module(".".join(parts[:i + 1]))
    return obj


def _subclass_of(obj: object, module: str, *names: str) -> bool:
    """Whether ``obj`` is a class deriving from one of ``module``'s ``names`` (not importing the library:
    a class of it has imported it already)."""
    lib = sys.modules.get(module)
    if not isinstance(obj, type) or lib is None:
        return False
    bases = [b for b in (getattr(lib, n, None) for n in names) if isinstance(b, type)]
    return any(issubclass(obj, b) for b in bases)


@functools.cache
def _torchvision_builders() -> frozenset[int]:
    import torchvision.models as tvm  # type: ignore[import-untyped]

    return frozenset(id(tvm.get_model_builder(name)) for name in tvm.list_models())


def _is_timm_factory(obj: object) -> bool:
    timm = sys.modules.get("timm")
    return timm is not None and obj is getattr(timm, "create_model", None)


def _is_torchvision_builder(obj: object) -> bool:
    return "torchvision" in sys.modules and inspect.isfunction(obj) and id(obj) in _torchvision_builders()


def target_kind(obj: object, code_allowed: bool, trusted: bool) -> str | None:
    """Which allowed kind ``obj`` is ("module", "metric", "transformers", "factory", "package", "zoo-code"),
    or None when it may not be instantiated. Untrusted configs get the classes only."""
    if isinstance(obj, type):
        if _subclass_of(obj, "torch.nn", "Module"):
            return "module"
        if _subclass_of(obj, "torchmetrics", "Metric"):
            return "metric"
        if _subclass_of(obj, "transformers", "PreTrainedModel", "PretrainedConfig"):
            return "transformers"
    if not trusted:
        return None
    if _is_timm_factory(obj) or _is_torchvision_builder(obj):
        return "factory"
    module = getattr(obj, "__module__", None)
    if (inspect.isfunction(obj) or isinstance(obj, type)) and module in PACKAGE_MODULES:
        return "package"
    if code_allowed and callable(obj) and not isinstance(obj, ModuleType) and isinstance(module, str) \
            and module.split(".")[0] == layout.CODE_DIR:
        return "zoo-code"
    return None


def _call_arguments(obj: object, node: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments ``node`` gives ``obj``, by parameter name (``**kwargs`` spread out), as the call binds
    them: a weight-fetching argument given by position is caught like one given by name."""
    args = node.get("_args_") or []
    kwargs = {str(k): v for k, v in node.items() if k not in HYDRA_KEYS}
    try:
        bound = inspect.signature(obj).bind_partial(*list(args), **kwargs)  # type: ignore[arg-type]
    except TypeError as e:
        raise ValueError(f"its arguments do not fit {getattr(obj, '__name__', obj)} ({e}), so it is refused; "
                         "give them by name as its signature says") from None
    out: dict[str, Any] = {}
    params = inspect.signature(obj).parameters  # type: ignore[arg-type]
    for name, value in bound.arguments.items():
        if params[name].kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        else:
            out[name] = value
    return out


def _factory_problem(obj: object, node: Mapping[str, Any]) -> str | None:
    try:
        given = _call_arguments(obj, node)
    except ValueError as e:
        return str(e)
    fetch = _TIMM_FETCH if _is_timm_factory(obj) else _TORCHVISION_FETCH
    for name in fetch:
        if given.get(name) not in (None, False):
            return (f"{name}: fetching weights or reading files is refused (the checkpoint carries the weights); "
                    "set it to null or remove it")
    model_name = given.get("model_name")
    if _is_timm_factory(obj) and (not isinstance(model_name, str) or ":" in model_name):
        return (f"model_name {model_name!r}: a hub or folder source (hf-hub:, local-dir:) is refused; name a model "
                "of timm's registry (timm.list_models())")
    return None


def _judge(target: str, node: Mapping[str, Any], code_allowed: bool, trusted: bool) -> str | None:
    """Why the object ``target`` resolves to may not be built with ``node``'s arguments, or None."""
    try:
        obj = resolve_target(target)
    except Exception as e:  # noqa: BLE001  (a broken module of the zoo's code fails its import in any way)
        return f"_target_ {target!r} cannot be found ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    kind = target_kind(obj, code_allowed, trusted)
    if kind is None:
        what = "a module" if isinstance(obj, ModuleType) else (
            f"a class ({obj.__module__}.{obj.__qualname__})" if isinstance(obj, type)
            else f"{type(obj).__name__} {getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}")
        allowed = ("a torch.nn.Module, torchmetrics.Metric or transformers model/config class, a torchvision model "
                   "builder, timm.create_model, a function of the zoo's evaluators/metrics/datasets/nets, or "
                   f"the zoo's {layout.CODE_DIR}/")
        if not trusted:
            allowed = ("a torch.nn.Module, torchmetrics.Metric or transformers model/config class (this zoo comes "
                       "from a URL or revision: functions run only with trust_code=True / --trust-code)")
        return f"_target_ {target!r} resolves to {what}, which is not {allowed}; it is refused"
    if kind == "factory" and node.get("_partial_"):
        return ("_partial_: a model factory given as a partial would be called later with arguments no check "
                "has seen; it is refused: build the model here")
    if kind == "factory":
        return _factory_problem(obj, node)
    return None


def check_identities(cfg: Mapping[str, Any], where: str, code_allowed: bool, trusted: bool = True) -> None:
    """Refuse the first ``_target_`` anywhere in ``cfg`` whose resolved object is not of an allowed kind
    (``target_kind``), or a model factory given weight-fetching arguments, in one line naming the key."""
    check_targets(cfg, where, code_allowed)
    for path, target, node in _walk(cfg, ""):
        problem = _judge(str(target), node, code_allowed, trusted)
        if problem and not trusted and _judge(str(target), node, code_allowed, True) is None:
            raise UntrustedCodeError(f"{where}: key {path or '_target_'}: {problem}")
        if problem:
            raise UnsafeTargetError(f"{where}: key {path or '_target_'}: {problem}")


def _strings(node: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, Mapping):
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(k, str):
                yield sub, k
            yield from _strings(v, sub)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def resolver_problem(cfg: object) -> str | None:
    """"key PATH: ..." when some string of ``cfg`` calls an OmegaConf resolver (``${oc.env:…}``,
    ``${oc.decode:…}``, any ``${name:…}``) or nests interpolations; plain ``${name}`` interpolations pass."""
    for path, text in _strings(cfg, ""):
        if "${" not in text:
            continue
        rest = _INTERPOLATION.sub(lambda m: "" if _PLAIN_NAME.fullmatch(m.group(1).strip()) else m.group(0), text)
        if "${" in rest:
            bad = _INTERPOLATION.search(rest)
            shown = bad.group(0) if bad else rest[rest.index("${"):][:40]
            return (f"key {path or '(top)'}: {shown} calls a resolver; configs may not read the environment or "
                    f"decode values (only ${{name}} interpolations such as ${{{CONTEXT_NAMES[0]}}}); write the value itself")
    return None


def activate_code_folder(folder: Path | None, trusted: bool, where: str) -> None:
    """Make ``zoo_code`` importable from ``folder`` (this zoo's copy), replacing another zoo's copy."""
    name = layout.CODE_DIR
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
                context: Mapping[str, Any] | None = None, *, trusted: bool = True, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` of a config whose every ``_target_`` has been judged by what it resolves to
    (``check_identities``; ``trusted``: False for a zoo from a URL or revision without trust_code) and whose
    interpolations call no resolver; ``context`` values fill ``${name}`` interpolations. Any failure becomes
    one line naming ``where``."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    problem = resolver_problem(cfg)
    if problem:
        raise UnsafeTargetError(f"{where}: {problem}")
    check_identities(cfg, where, code_allowed, trusted)
    try:
        root = OmegaConf.create({**(context or {}), "_node_": dict(cfg)})
        return hydra_instantiate(root._node_, _convert_="all", **kwargs)
    except (InstantiationException, OmegaConfBaseException, TypeError, ValueError, ImportError, AttributeError,
            RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RegistryError(f"{where}: cannot build {cfg.get('_target_')}: {first}") from None
