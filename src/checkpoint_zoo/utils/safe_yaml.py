"""Reading YAML and DVC files that someone else wrote: size-capped, no anchors or aliases, no symlinks, safe
loaders only; hostile files are refused before anything parses them further."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from .. import layout
from ..errors import UnsafeFileError

# DVC pointers and dvc.yaml are a few hundred bytes; anything this big is not one.
MAX_YAML_BYTES = 1024 * 1024


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def refuse_yaml_tricks(text: str, source: str) -> None:
    """Raise UnsafeFileError if the YAML text uses anchors, aliases or explicit tags (or is not YAML).

    Only the event stream is read (no objects are built), which is linear in the text; documents
    without ``&``, ``*`` or ``!`` cannot use any of those and are not even scanned."""
    if not any(c in text for c in "&*!"):
        return
    import yaml

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise UnsafeFileError(
                    f"{source}: uses YAML anchors/aliases (&/*), which the zoo refuses (an alias bomb "
                    "expands without limit); DVC never writes them: restore the file with `git checkout -- "
                    f"{source}` or rewrite it without them"
                )
            tag = getattr(event, "tag", None)
            if tag is not None:  # set only when the document spells a tag out
                raise UnsafeFileError(
                    f"{source}: uses an explicit YAML tag ({tag}), which the zoo refuses; restore the "
                    f"file with `git checkout -- {source}`"
                )
    except yaml.YAMLError as e:
        raise UnsafeFileError(f"{source}: not valid YAML ({_first_line(e)}); restore it with "
                              f"`git checkout -- {source}`") from None


def load_yaml(data: str | bytes, source: str):
    """``yaml.safe_load`` of a document that is small and free of anchors, aliases and tags."""
    import yaml

    if len(data) > MAX_YAML_BYTES:
        raise UnsafeFileError(f"{source}: {len(data)} bytes is far too big for this YAML file (limit "
                              f"{MAX_YAML_BYTES}); restore it with `git checkout -- {source}`")
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    refuse_yaml_tricks(text, source)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UnsafeFileError(f"{source}: not valid YAML ({_first_line(e)}); restore it with "
                              f"`git checkout -- {source}`") from None


def dvc_files(root: Path) -> Iterator[Path]:
    """The DVC files the zoo owns: ``dvc.yaml``, ``dvc.lock`` and every folder pointer."""
    for name in ("dvc.yaml", "dvc.lock"):
        yield root / name
    folder = root / layout.CHECKPOINTS_DIR
    try:
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it if e.name.endswith(".dvc"))
    except OSError:
        return
    for name in names:
        yield folder / name


def check_dvc_files(root: Path) -> None:
    """Refuse hostile DVC files before DVC parses them: symlinks, oversize files, YAML anchors/aliases/tags."""
    root = Path(root)
    for path in dvc_files(root):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise UnsafeFileError(
                f"{rel}: is a symlink (to {os.readlink(path)}); DVC would read and write through it, outside "
                f"the zoo; delete it and restore the real file with `git checkout -- {rel}`"
            )
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        if size > MAX_YAML_BYTES:
            raise UnsafeFileError(f"{rel}: {size} bytes is far too big for a DVC file (limit {MAX_YAML_BYTES}); "
                                  f"restore it with `git checkout -- {rel}`")
        data = path.read_bytes()
        if b"&" in data or b"*" in data or b"!" in data:
            refuse_yaml_tricks(data.decode("utf-8", errors="replace"), rel)
