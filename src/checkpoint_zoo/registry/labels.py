"""Label maps: which name each output index of a checkpoint stands for, checked against its dataset's labels.

Evaluation scores output ``i`` against the dataset's label ``i``, and ``Zoo.pipeline`` names it with the
dataset's ``labels``; a transformers ``pipeline`` of an exported folder names it with the folder's
``config.json`` ``id2label``. A label map declared anywhere (a folder's ``config.json``, an architecture's
``id2label``, at any depth of its config) must therefore be the dataset's labels in the same order, or the
three would name one output three ways. A map is read as data: indices ``0..n-1``, names, and a
``label2id`` that must say the same.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# config.json of a transformers model is a few kB; a bigger one is not read for its labels
_MAX_CONFIG_BYTES = 4 << 20
CONFIG_FILE = "config.json"


def _maps(node: Any, path: str) -> Iterator[tuple[str, Mapping[Any, Any], Any]]:
    """(key path, id2label, label2id or None) of every mapping in ``node`` that declares an ``id2label``."""
    if isinstance(node, Mapping):
        if isinstance(node.get("id2label"), Mapping):
            yield (f"{path}.id2label" if path else "id2label"), node["id2label"], node.get("label2id")
        for k, v in node.items():
            if k not in ("id2label", "label2id"):
                yield from _maps(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _maps(v, f"{path}[{i}]")


def _ordered(id2label: Mapping[Any, Any], label2id: Any, key: str) -> tuple[list[str] | None, str | None]:
    """(the names by index, None) or (None, why the map is not one)."""
    by_index: dict[int, str] = {}
    for k, v in id2label.items():
        text = str(k)
        if isinstance(k, bool) or not (isinstance(k, int) or text.isdigit()) or not isinstance(v, (str, int)):
            return None, f"{key} maps {k!r} to {v!r}; it must map the indices 0, 1, … to label names"
        by_index[int(text)] = str(v)
    if sorted(by_index) != list(range(len(by_index))):
        return None, f"{key} has indices {sorted(by_index)}; it must number the labels 0 to {len(by_index) - 1}"
    names = [by_index[i] for i in range(len(by_index))]
    if label2id is not None:
        other = f"{key[: -len('id2label')]}label2id"
        if not isinstance(label2id, Mapping):
            return None, f"{other} is not a mapping of label names to indices; fix it or remove it"
        back = {str(k): str(v) for k, v in label2id.items()}
        for i, name in enumerate(names):
            if back.get(name) != str(i):
                return None, (f"{other} maps {name!r} to {label2id.get(name, 'nothing')!r}, but {key} maps {i} to "
                              f"{name!r}; make them one map (save_pretrained writes both from id2label)")
        if len(back) != len(names):
            return None, f"{other} has {len(back)} labels, {key} {len(names)}; make them one map"
    return names, None


def map_problem(where: str, id2label: Mapping[Any, Any], label2id: Any, key: str, labels: tuple[str, ...],
                dataset: str, fix: str) -> str | None:
    """Why one declared label map is not ``labels`` in order (the first difference and ``fix``), or None."""
    names, bad = _ordered(id2label, label2id, key)
    if bad:
        return f"{where}: {bad}"
    assert names is not None
    if names == list(labels):
        return None
    i = next((i for i, (a, b) in enumerate(zip(names, labels)) if a != b), min(len(names), len(labels)))
    mine = repr(names[i]) if i < len(names) else "nothing"
    theirs = repr(labels[i]) if i < len(labels) else "nothing"
    order = ", ".join(f"{n}: {name}" for n, name in enumerate(labels))
    return (f"{where}: {key} differs from the labels of dataset {dataset!r} at index {i}: the checkpoint says {mine}, "
            f"the dataset {theirs} ({len(names)} and {len(labels)} labels); {fix} ({{{order}}}), or pick another "
            "dataset")


def arch_label_problem(arch_file: str, config: Mapping[str, Any], labels: tuple[str, ...], dataset: str) -> str | None:
    """Why an architecture's declared label map (``id2label`` at any depth of its config) is not ``labels``."""
    if not labels:
        return None
    for key, id2label, label2id in _maps(config, ""):
        problem = map_problem(arch_file, id2label, label2id, key, labels, dataset,
                              f"declare {key} in {arch_file} in the dataset's order")
        if problem:
            return problem
    return None


def read_config_json(path: Path) -> Mapping[str, Any] | None:
    """A checkpoint folder's ``config.json`` as data (None: the folder has none, or ``path`` is one file);
    raises ValueError naming the file when it cannot be read as a JSON object."""
    file = Path(path) / CONFIG_FILE
    if not Path(path).is_dir():
        return None
    try:  # opened without following a link, and only as a regular file of bounded size
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ValueError(f"{file}: cannot be read as a plain file ({e.strerror}); make it one") from None
    with open(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{file}: not a regular file; make it one")
        if info.st_size > _MAX_CONFIG_BYTES:
            raise ValueError(f"{file}: larger than {_MAX_CONFIG_BYTES >> 20} MiB; a config.json is not that big")
        raw = f.read(_MAX_CONFIG_BYTES + 1)
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"{file}: not valid JSON ({e}); fix the file") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file}: must be a JSON object; fix the file")
    return data


def folder_label_problem(path: Path, labels: tuple[str, ...], dataset: str, shown: str | None = None) -> str | None:
    """Why a checkpoint folder's ``config.json`` label map (``id2label`` and ``label2id``) is not ``labels``;
    ``shown`` names the folder in the message (default: ``path``)."""
    if not labels:
        return None
    try:
        config = read_config_json(path)
    except ValueError as e:
        return str(e).replace(str(path), shown or str(path))
    if config is None or not isinstance(config.get("id2label"), Mapping):
        return None
    where = f"{shown or path}/{CONFIG_FILE}"
    return map_problem(where, config["id2label"], config.get("label2id"), "id2label", labels, dataset,
                       "re-save the folder with id2label in the dataset's order")
