"""Where checkpoint bytes live, behind one interface in zoo terms (``base.CheckpointStore``).

``open_store`` picks the implementation by the scheme of a store URL (as mlflow picks a tracking store
by URI scheme): ``dvc`` (the default, ``dvc/``: the only package that imports DVC) or ``memory://``
(``memory.py``, for tests). Implementations are imported only when opened, so commands that never touch
bytes never pay for importing DVC. A new store is ``storage/<name>/``, one entry in ``STORES`` and a
parameter of the conformance suite (``tests/test_store_conformance.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StorageError

if TYPE_CHECKING:
    from ..utils.stamps import Stamps
    from .base import CheckpointStore


def _dvc(root: Path, url: str, stamps: Stamps | None) -> CheckpointStore:
    from .dvc import Storage

    return Storage(root, stamps=stamps)


def _memory(root: Path, url: str, stamps: Stamps | None) -> CheckpointStore:
    from .memory import MemoryStore

    return MemoryStore(root, stamps=stamps)


# scheme -> builder(root, url, stamps)
STORES: dict[str, Callable[[Path, str, Stamps | None], CheckpointStore]] = {"dvc": _dvc, "memory": _memory}


def open_store(root: str | Path, url: str | None = None, *, stamps: Stamps | None = None) -> CheckpointStore:
    """The store of the zoo at ``root``: DVC unless ``url`` names another scheme (``memory://``).
    ``stamps``: the sha256 verdicts it trusts (default: the zoo's own, under ``.dvc/tmp/zoo/stamps``)."""
    scheme = (url or "dvc").split("://", 1)[0].lower()
    builder = STORES.get(scheme)
    if builder is None:
        raise StorageError(f"store URL {url!r}: unknown scheme {scheme!r}; use one of "
                           f"{', '.join(s + '://' for s in sorted(STORES))}")
    return builder(Path(root), url or "dvc://", stamps)
