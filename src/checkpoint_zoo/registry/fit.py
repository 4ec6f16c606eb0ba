"""The fit check, composed once: a safetensors file (or folder) against an architecture, from headers only."""

from __future__ import annotations

from pathlib import Path

from ..errors import ArchitectureError


def check_fit(registry, spec, path: Path, what: str) -> None:
    """Refuse weights whose tensors do not load strictly into ``spec`` (names and shapes from the header,
    the architecture's expected shapes built on the meta device and cached)."""
    from ..formats import weight_shapes
    from .archs import expected_shapes, fit_problem, shape_cache_dir

    expected = expected_shapes(spec, registry, shape_cache_dir())
    problem = fit_problem(spec, weight_shapes(path), expected)
    if problem:
        raise ArchitectureError(f"{what}: {problem}")
