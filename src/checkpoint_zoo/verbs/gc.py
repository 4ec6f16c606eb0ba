"""``zoo gc``: what no branch, tag, release or stage references leaves the remote (``--dry-run``: only listed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..storage.dvc.gc import GcReport
    from .facade import Facade


def gc(zoo: Facade, *, dry_run: bool = False, grace_days: float = 7.0, remote: str | None = None) -> GcReport:
    """Collect the remote's garbage under the zoo's lock (an add or push running meanwhile would race it)."""
    from ..storage.dvc.gc import collect

    ws = zoo.writable("gc")
    with ws.lock():
        return collect(ws.root, remote, dry_run, grace_days)
