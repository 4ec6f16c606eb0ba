"""The fit check, composed once: a safetensors file (or folder) against an architecture, from headers only;
and at add, against its task and dataset too (the files the task requires, the label map, the input)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ArchitectureError, FormatError

if TYPE_CHECKING:
    from . import Registry


def check_fit(registry, spec, path: Path, what: str) -> None:
    """Refuse weights whose tensors do not load strictly into ``spec`` (names and shapes from the header,
    the architecture's expected shapes built on the meta device and cached)."""
    from ..formats import weight_shapes
    from .archs import expected_shapes, fit_problem, shape_cache_dir

    expected = expected_shapes(spec, registry, shape_cache_dir())
    problem = fit_problem(spec, weight_shapes(path), expected)
    if problem:
        raise ArchitectureError(f"{what}: {problem}")


def check_add(registry: Registry, arch: str, task: str, dataset: str, path: Path, what: str) -> None:
    """Everything a checkpoint at ``path`` must be to be added as ``arch`` for ``task`` on ``dataset``: it fits
    the architecture (``check_fit``); a folder holds the files the task requires (FormatError); its
    ``config.json`` label map and the architecture's are the dataset's labels in order; the architecture takes
    the dataset's declared input on the meta device and gives one score per label (ArchitectureError).
    Each refusal is one line starting with ``what``."""
    from .archs import shape_cache_dir
    from .labels import arch_label_problem, folder_label_problem
    from .probe import contract_problem

    spec, task_spec, data = registry.arch(arch), registry.task(task), registry.dataset(dataset)
    check_fit(registry, spec, path, what)
    path = Path(path)
    missing = task_spec.files_problem(_members(path) if path.is_dir() else None, what)
    if missing:
        raise FormatError(missing)
    problem = (folder_label_problem(path, data.labels, data.name, shown=what)
               or arch_label_problem(spec.file, spec.config, data.labels, data.name))
    if problem:
        raise ArchitectureError(problem if problem.startswith(what) else f"{what}: {problem}")
    problem = contract_problem(spec, registry, data, shape_cache_dir())
    if problem:
        raise ArchitectureError(f"{what}: {problem}")


def _members(folder: Path) -> set[str]:
    """The regular files' paths inside ``folder`` (posix, relative)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}
