"""Hugging Face interop: an architecture declared from a ``save_pretrained`` folder's ``config.json``.

A transformers folder names its model class (``architectures``) and its config class (by ``model_type``);
the zoo writes them as an ordinary ``conf/arch`` file, so the model is built from the config alone (no hub,
no remote code) like every other architecture, and its weights are checked against it strictly.

``config.json`` is data: its values become keyword arguments of the config class's own constructor and
nothing else. A key starting with ``_`` at any depth (``_target_``, ``_args_``, ``_recursive_`` … are
Hydra's) is refused, so nothing in the file can name a callable for the written arch file to run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InvalidValueError

# config.json keys that describe the file rather than the model (the config class sets them itself)
_NOT_ARGUMENTS = ("architectures", "model_type", "transformers_version", "_name_or_path", "auto_map")
# the one key starting with "_" that save_pretrained writes (transformers 4.x): where the model came from
_FILE_KEYS = ("_name_or_path",)


def _private_key(node: Any, path: str) -> str | None:
    """The path of the first key starting with ``_`` in ``node`` (at any depth), or None."""
    if isinstance(node, dict):
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            if str(k).startswith("_") and not (not path and k in _FILE_KEYS):
                return sub
            found = _private_key(v, sub)
            if found:
                return found
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found = _private_key(v, f"{path}[{i}]")
            if found:
                return found
    return None


def is_transformers(config: dict[str, Any]) -> bool:
    """Whether an architecture config builds a transformers model."""
    return str(config.get("_target_", "")).startswith("transformers.")


def arch_from_config_json(folder: Path) -> dict[str, Any]:
    """The ``conf/arch`` config (``_target_`` model class, nested ``config`` of its config class) of a transformers
    folder, or an InvalidValueError saying what ``config.json`` lacks and that ``--arch`` is the way out."""
    path = Path(folder) / "config.json"
    where = f"{path}"
    if not path.is_file():
        raise InvalidValueError(f"{folder}: no config.json, so the architecture cannot be read from it; pass --arch "
                                "naming a registered architecture (zoo archs)")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InvalidValueError(f"{where}: not valid JSON ({e}); pass --arch, or fix the file") from None
    if not isinstance(cfg, dict):
        raise InvalidValueError(f"{where}: must be a JSON object; pass --arch, or fix the file")
    private = _private_key(cfg, "")
    if private:
        raise InvalidValueError(f"{where}: key {private}: a key starting with '_' is not configuration (Hydra reads "
                                "_target_, _args_ … as code to run); remove it, or pass --arch naming a registered "
                                "architecture")
    classes, model_type = cfg.get("architectures"), cfg.get("model_type")
    if not (isinstance(classes, list) and len(classes) == 1 and isinstance(classes[0], str)) or not isinstance(
            model_type, str):
        raise InvalidValueError(f"{where}: needs `architectures` (one model class) and `model_type`, as "
                                "save_pretrained writes them; pass --arch naming a registered architecture instead")
    if "auto_map" in cfg:
        raise InvalidValueError(f"{where}: names remote code (auto_map); the zoo builds only classes transformers "
                                "ships; register the architecture yourself in conf/arch and pass --arch")
    import transformers

    model_class = classes[0]
    try:
        config_class = transformers.CONFIG_MAPPING[model_type].__name__
    except KeyError:
        raise InvalidValueError(f"{where}: model_type {model_type!r} is unknown to transformers "
                                f"{transformers.__version__}; pass --arch") from None
    found = getattr(transformers, model_class, None) if model_class.isidentifier() else None
    if not (isinstance(found, type) and issubclass(found, transformers.PreTrainedModel)):
        raise InvalidValueError(f"{where}: transformers {transformers.__version__} has no model class "
                                f"{model_class!r}; pass --arch")
    arguments = {k: v for k, v in cfg.items() if k not in _NOT_ARGUMENTS}
    if "${" in json.dumps(arguments):  # the zoo's configs interpolate ${...}: a value must stay a value
        raise InvalidValueError(f"{where}: a value contains '${{'; pass --arch, or fix the file")
    return {"_target_": f"transformers.{model_class}",
            "config": {"_target_": f"transformers.{config_class}", **arguments}}


def write_arch(root: Path, name: str, config: dict[str, Any], note: str) -> tuple[Path, bool]:
    """Write ``conf/arch/<name>.yaml`` (atomically); (its path, whether it is new). An existing file with the
    same config is kept; one with another config is refused, naming both ways out."""
    import yaml

    from ..catalog.table import atomic_write
    from ..utils.safe_yaml import load_yaml

    path = Path(root) / "conf" / "arch" / f"{name}.yaml"
    if path.exists():
        if load_yaml(path.read_bytes(), str(path)) == config:
            return path, False
        raise InvalidValueError(f"conf/arch/{name}.yaml exists with another configuration than this folder's "
                                f"config.json; pass --arch {name} to check the folder against that file, or add it "
                                "under another --model (`zoo add` names the architecture it writes after the model)")
    body = f"# {note}\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, body.encode())
    return path, True
