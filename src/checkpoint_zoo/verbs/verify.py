"""``zoo verify``: re-hash local files against the table (no stamps trusted); one result per file.

A file that is not pulled is a ``missing`` result, not a failure: whether it matters is the caller's call
(the CLI counts it only with ``--all`` or for a checkpoint the user named), since a partial clone is the
normal way to work with a zoo."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..catalog import rules
from ..entities import FileCheck
from ..formats import sha256_file
from .resolve import part_rows, resolve_many

if TYPE_CHECKING:
    from ..workspace.tree import Workspace
    from .facade import Facade

Row = dict[str, str]


def verify(zoo: Facade, refs: Sequence[str] = (), present_only: bool = False) -> list[FileCheck]:
    """Re-hash local files against the table (no stamps); one result per checkpoint."""
    ws = zoo.writable("verify")
    rows = ws.rows()
    chosen = resolve_many(zoo, refs, rows) if refs else rows
    out = []
    for row in chosen:
        ref = f"{row['model']}@{row['step']}"
        out += _verify_files(ws, ref, row, present_only)
        rel = rules.state_path(row["model"], int(row["step"]))
        state = ws.path(rel)
        if row.get("state_sha256") and state.is_file():  # a state is checked when pulled, never required
            digest = sha256_file(state)
            ws.stamps.record(state, digest)
            if digest == row["state_sha256"]:
                out.append(FileCheck(ref, rel, "ok"))
            else:
                out.append(FileCheck(ref, rel, "mismatch", f"sha256 {digest[:12]}… != table state_sha256 "
                                     f"{row['state_sha256'][:12]}…; restore with zoo pull {ref} --with-state"))
    return out


def _verify_files(ws: Workspace, ref: str, row: Row, present_only: bool) -> list[FileCheck]:
    """Re-hash the checkpoint's file, or each file of its folder (and nothing more in the folder)."""
    out = []
    if row.get("files") and ws.path(row["path"]).is_dir():
        listed, base = set(rules.parse_files(row["files"])), ws.path(row["path"])
        extra = sorted(rel for p in base.rglob("*") if not p.is_dir()
                       and (rel := p.relative_to(base).as_posix()) not in listed)
        if extra:
            out.append(FileCheck(ref, row["path"], "mismatch", f"holds file(s) the table does not list "
                                 f"({', '.join(extra[:3])}); remove them, or add the folder as a new checkpoint"))
    for part in part_rows(row):
        path = ws.path(part["path"])
        if not path.is_file():
            if not present_only:
                out.append(FileCheck(ref, part["path"], "missing", f"not pulled: zoo pull {ref}"))
            continue
        digest = sha256_file(path)
        ws.stamps.record(path, digest)  # a mismatch too: pull sees the damage even if the stat did not change
        if digest == part["sha256"]:
            out.append(FileCheck(ref, part["path"], "ok"))
        else:
            out.append(FileCheck(ref, part["path"], "mismatch",
                                 f"sha256 {digest[:12]}… != table {part['sha256'][:12]}…; restore with zoo pull {ref}"))
    return out
