"""Checkpoint Zoo: a git + DVC home for a team's pre-trained model checkpoints.

``from checkpoint_zoo import Zoo`` is the entry point; heavy modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .utils.version import __version__

__all__ = ["Zoo", "Checkpoint", "ZooError", "__version__"]

if TYPE_CHECKING:
    from .api import Zoo
    from .entities import Checkpoint
    from .errors import ZooError


def __getattr__(name: str):
    if name == "Zoo":
        from .api import Zoo

        return Zoo
    if name == "Checkpoint":
        from .entities import Checkpoint

        return Checkpoint
    if name == "ZooError":
        from .errors import ZooError

        return ZooError
    raise AttributeError(f"module 'checkpoint_zoo' has no attribute {name!r}")
