"""``zoo export``: a checkpoint as a folder that loads without the zoo installed.

``hf``: what ``transformers``' ``AutoModel*.from_pretrained(DIR)`` loads (``save_pretrained`` of the model
built from its architecture with the checkpoint's weights), plus the checkpoint's own other files (tokenizer,
label map). ``safetensors``: the weights as stored and a ``config.json`` describing the architecture (its
Hydra config), task, dataset, input contract and labels. Written to a temp folder beside ``DIR`` and renamed,
so a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..entities import ExportResult
from ..errors import InvalidValueError, UsageError

if TYPE_CHECKING:
    from .facade import Facade

FORMATS = ("hf", "safetensors")


def export(zoo: Facade, ref: str, dest: str | os.PathLike[str], fmt: str | None = None) -> ExportResult:
    """Write checkpoint ``ref`` to the new (or empty) folder ``dest`` in format ``fmt`` (default: ``hf`` for a
    transformers architecture, else ``safetensors``)."""
    from ..registry.hf import is_transformers

    ckpt = zoo.get(ref)
    spec = zoo.registry().arch(ckpt.arch)
    hf = is_transformers(dict(spec.config))
    fmt = fmt or ("hf" if hf else "safetensors")
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use {' or '.join(FORMATS)}")
    if fmt == "hf" and not hf:
        raise InvalidValueError(f"{ckpt.ref}: architecture {ckpt.arch!r} ({spec.target}) is not a transformers model, "
                                "so from_pretrained cannot load it; use --format safetensors")
    target = Path(dest)
    check_target(target)
    source = zoo.fetch(ckpt.ref)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.export-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        if fmt == "hf":
            _write_hf(zoo, ckpt.ref, source, tmp)
            how = (f"transformers.{spec.target.rsplit('.', 1)[1]}.from_pretrained({str(target)!r}) (or the matching "
                   "AutoModel class)")
        else:
            _write_safetensors(zoo, ckpt, spec, source, tmp)
            how = (f"safetensors.torch.load_file({str(target / 'model.safetensors')!r}) into the model config.json "
                   "describes under zoo.arch (a Hydra config: hydra.utils.instantiate builds it)")
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = tuple(sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()))
    return ExportResult(ckpt.ref, target, fmt, files, how)


def check_target(target: Path) -> None:
    """Refuse a destination that is not a new path or an empty real folder: a symlink (dangling or not) would
    be written through, and a path under a file cannot be created; one line, before anything is written."""
    if target.is_symlink():
        where = os.readlink(target)
        raise InvalidValueError(f"{target}: is a symlink (to {where}{', which does not exist' if not target.exists() else ''}"
                                "); export writes only to a real folder: give a new path")
    for parent in target.parents:
        if parent.is_symlink() and not parent.exists():
            raise InvalidValueError(f"{target}: its folder {parent} is a dangling symlink (to {os.readlink(parent)}); "
                                    "give a path whose folders exist or can be created")
        if parent.exists():
            if not parent.is_dir():
                raise InvalidValueError(f"{target}: {parent} is a file, not a folder; give a path inside a folder")
            break
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidValueError(f"{target}: exists and is not an empty folder; give a new folder")


def _copy_files(source: Path, out: Path, listed: dict[str, str], skip: set[str]) -> None:
    """Copy exactly the files the table lists for a folder checkpoint (``listed``: name -> sha256) but ``skip``,
    sub-folders kept: a stray file in the clone's folder is never exported, and each copy is checked against
    its sha256 as it is made (a file swapped since the pull is refused)."""
    from ..errors import IntegrityError
    from ..formats import copy_hashed

    if not source.is_dir():
        return
    for rel, sha in sorted(listed.items()):
        if rel in skip:
            continue
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        if copy_hashed(source / rel, out / rel) != sha:
            raise IntegrityError(f"{source / rel}: does not match its sha256 in the table; restore it with zoo pull")


def _stored_float_dtype(dtypes: str):
    """The one floating dtype a checkpoint's tensors are stored in (``F16;I64`` gives float16), else None."""
    import torch

    names = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}
    floats = {names[d] for d in dtypes.split(";") if d in names}
    return floats.pop() if len(floats) == 1 else None


def _write_hf(zoo: Facade, ref: str, source: Path, out: Path) -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the command prints what it wrote, once
    model = zoo.load_model(ref)
    stored = _stored_float_dtype(zoo.get(ref).dtype)
    if stored is not None:
        model = model.to(stored)  # load_model computes in float32; the export keeps the bytes' own precision
    model.save_pretrained(str(out), safe_serialization=True)
    # the rest of the folder (tokenizer, label map, README …); weights and config are what save_pretrained wrote
    weights = {p.name for p in source.glob("*.safetensors")} if source.is_dir() else set()
    _copy_files(source, out, zoo.get(ref).files, weights | {"config.json", "model.safetensors.index.json"})


def _write_safetensors(zoo: Facade, ckpt, spec, source: Path, out: Path) -> None:
    from ..formats import load_weights_file
    from ..inference import InputContract

    if source.is_dir():
        _copy_files(source, out, ckpt.files, {"config.json"})
    else:
        from safetensors.torch import save_file

        save_file(load_weights_file(source), str(out / "model.safetensors"), metadata={"zoo_ref": ckpt.ref})
    dataset = zoo.registry().dataset(ckpt.dataset)
    own = json.loads((source / "config.json").read_text()) if source.is_dir() and (source / "config.json").is_file() \
        else {}
    config = {**own, "zoo": {
        "ref": ckpt.ref, "sha256": ckpt.sha256, "arch": ckpt.arch, "arch_config": dict(spec.config),
        "task": ckpt.task, "dataset": ckpt.dataset, "labels": list(dataset.labels),
        "input": InputContract.from_spec(ckpt.dataset, dataset.input).describe(), "license": ckpt.license,
        "parent": ckpt.parent,
    }}
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
