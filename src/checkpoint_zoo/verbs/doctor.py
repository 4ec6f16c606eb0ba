"""``zoo doctor``: what in this clone needs a one-time command, each finding with the command that fixes it.

Everything an older zoo holds is read by a newer package (missing table columns and older evaluation
records are migrated on read), so nothing here is required for reading; these are the things that make
writes, merges, pushes and the pipeline behave as README says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import layout
from ..catalog import rules, table

if TYPE_CHECKING:
    from .facade import Facade


def diagnose(zoo: Facade) -> list[str]:
    """One line per finding (what, and the command that fixes it); [] when the clone needs nothing."""
    from ..workspace.merge import configured

    ws = zoo.writable("doctor")
    found = []
    header = table.read_table(ws.root).split(b"\n", 1)[0].decode("utf-8", "replace").strip().split(",")
    missing = [c for c in rules.OPTIONAL_COLUMNS if c not in header]
    if missing:
        found.append(f"{layout.TABLE_PATH} was written by an older version (no {', '.join(missing)} column): it is "
                     "read as is; the next `zoo add` or `zoo rm` rewrites it with every column")
    if (ws.root / ".git").is_dir() and not configured(ws.root):
        found.append("this clone lacks the zoo's git merge drivers (git never takes them from a repository): "
                     "run `zoo merge-setup`")
    if zoo.storage.default_remote() is None:
        found.append("no default DVC remote: checkpoints cannot be pushed for teammates; run "
                     "`zoo remote add NAME URL --default` (s3://bucket/prefix or a shared folder)")
    failed = _failed(zoo)
    if failed:
        found.append(f"{len(failed)} checkpoint(s) whose evaluation failed ({', '.join(failed[:3])}"
                     f"{' …' if len(failed) > 3 else ''}): fix them and run `dvc repro`, or `zoo rm` them")
    return found


def _failed(zoo: Facade) -> list[str]:
    from .ls import failures

    return sorted(failures(zoo))
