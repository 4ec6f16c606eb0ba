"""Merges that just work: git merge drivers for the table and for the DVC folder pointers.

* ``zoo/checkpoints.csv``: a three-way merge by (model, step). Rows added or removed on either side
  are kept or dropped; a row changed on both sides differently is a conflict, written as a git
  conflict block around the two rows so that ``zoo validate`` can explain it.
* ``*.dvc``: DVC's own merge driver, which needs the ``.dir`` manifests of all three versions in
  the local cache; a fresh clone lacks them, so this driver fetches exactly those manifests first.

``setup(root)`` writes the drivers into the repo's ``.git/config`` (a one-time step per clone;
``.gitattributes`` is committed).
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

from . import constants
from .catalog import rules, table
from .errors import ZooError

ATTRIBUTES = ("*.dvc merge=dvc", f"{constants.TABLE_PATH} merge=zoo-table")
MARK_OURS, MARK_SEP, MARK_THEIRS = "<<<<<<< ours", "=======", ">>>>>>> theirs"


def _rows(path: Path) -> dict[tuple[str, int], dict[str, str]]:
    data = path.read_bytes() if path.exists() else b""
    if not data.strip():
        return {}
    return {table.sort_key(r): r for r in table.parse_csv(data, str(path))}


def merge_tables(base: Path, ours: Path, theirs: Path) -> tuple[bytes, list[str]]:
    """The merged table and the refs in conflict (written as conflict blocks in the bytes)."""
    b, o, t = _rows(base), _rows(ours), _rows(theirs)
    merged: dict[tuple[str, int], dict[str, str]] = {}
    conflicts: dict[tuple[str, int], tuple[dict, dict]] = {}
    for key in set(b) | set(o) | set(t):
        rb, ro, rt = b.get(key), o.get(key), t.get(key)
        if ro == rt:
            pick = ro
        elif ro == rb:
            pick = rt
        elif rt == rb:
            pick = ro
        elif ro is not None and rt is not None:
            conflicts[key] = (ro, rt)
            continue
        else:  # deleted on one side, changed on the other: keep the change, a deletion is easy to redo
            pick = ro if ro is not None else rt
        if pick is not None:
            merged[key] = pick
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(rules.COLUMNS)
    for key in sorted(set(merged) | set(conflicts)):
        if key in merged:
            w.writerow([merged[key].get(c, "") for c in rules.COLUMNS])
        else:
            ro, rt = conflicts[key]
            buf.write(MARK_OURS + "\n")
            w.writerow([ro.get(c, "") for c in rules.COLUMNS])
            buf.write(MARK_SEP + "\n")
            w.writerow([rt.get(c, "") for c in rules.COLUMNS])
            buf.write(MARK_THEIRS + "\n")
    return buf.getvalue().encode(), [f"{m}@{s}" for m, s in sorted(conflicts)]


def table_driver(base: str, ours: str, theirs: str) -> int:
    """git merge driver: merged table into ``ours``; exit 1 on conflicts (git then marks the file conflicted)."""
    data, conflicts = merge_tables(Path(base), Path(ours), Path(theirs))
    table.atomic_write(Path(ours), data)
    if conflicts:
        print(f"zoo: {constants.TABLE_PATH}: {len(conflicts)} checkpoint(s) changed differently on both sides: "
              f"{', '.join(conflicts)}; `zoo validate` shows both versions", file=sys.stderr)
        return 1
    return 0


def dvc_driver(base: str, ours: str, theirs: str, root: Path) -> int:
    """git merge driver for ``*.dvc`` pointers: fetch the three ``.dir`` manifests, then run DVC's driver."""
    from .storage.dvc import Storage

    storage = Storage(root)
    try:
        storage.fetch_manifests([Path(p) for p in (base, ours, theirs)])
    finally:
        storage.close()
    proc = subprocess.run([sys.executable, "-m", "dvc", "git-hook", "merge-driver", "--ancestor", base,
                           "--our", ours, "--their", theirs], cwd=root)
    return proc.returncode


def setup(root: Path) -> list[str]:
    """Configure this clone's merge drivers and make sure ``.gitattributes`` routes files to them."""
    py = sys.executable
    settings = {
        "merge.zoo-table.name": "checkpoint zoo table merge (by model, step)",
        "merge.zoo-table.driver": f'"{py}" -m checkpoint_zoo.cli merge-driver table %O %A %B',
        "merge.dvc.name": "DVC merge driver (fetches the .dir manifests first)",
        "merge.dvc.driver": f'"{py}" -m checkpoint_zoo.cli merge-driver dvc %O %A %B',
    }
    for key, value in settings.items():
        proc = subprocess.run(["git", "config", "--local", key, value], cwd=root, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ZooError(f"git config {key} failed in {root}: {proc.stderr.strip()}")
    attrs = root / ".gitattributes"
    lines = attrs.read_text().splitlines() if attrs.exists() else []
    missing = [a for a in ATTRIBUTES if a not in lines]
    if missing:
        table.atomic_write(attrs, ("\n".join(lines + missing) + "\n").encode())
    return list(settings)
