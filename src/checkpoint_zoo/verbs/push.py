"""``zoo push``: upload checkpoints after re-checking every local object against the table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..catalog import rules
from ..entities import PushResult
from ..errors import IntegrityError, MissingFileError
from ..workspace.tree import in_tree_remotes
from .resolve import part_rows, resolve_many

if TYPE_CHECKING:
    from ..workspace.tree import Workspace
    from .facade import Facade

Row = dict[str, str]


def push(zoo: Facade, refs: Sequence[str] = (), remote: str | None = None, jobs: int | None = None) -> PushResult:
    """Upload checkpoints (all by default) after re-checking each local object's sha256; objects of
    them that the remote already holds with other bytes are overwritten (``PushResult.replaced``)."""
    ws = zoo.writable("push")
    rows = ws.rows()
    chosen = resolve_many(zoo, refs, rows) if refs else rows
    ready: list[str] = []
    skipped = []
    for row in chosen:
        objects = _checked_objects(ws, row)
        if objects is None:
            skipped.append(f"{row['model']}@{row['step']}")
            continue
        ready += objects
    if refs and skipped and not ready:
        raise MissingFileError(
            f"{', '.join(skipped)}: not in the local cache, so there is nothing to push; pull or add it first"
        )
    store = ws.store
    folders = sorted({str(Path(r["path"]).parent) for r in chosen})
    uploaded, replaced = store.push(ready, remote=remote, jobs=jobs, folders=folders) if folders else (0, 0)
    name = remote or store.default_remote() or ""
    folder = in_tree_remotes(ws.root, store.remotes()).get(name)
    # a remote inside the work tree reaches teammates only through git: its objects are staged
    staged = ws.stage([folder]) if folder and (ws.root / folder).is_dir() else ()
    return PushResult(name, uploaded, tuple(skipped), staged, replaced)


def _checked_objects(ws: Workspace, row: Row) -> list[str] | None:
    """The table paths of a checkpoint to push, each cache object re-hashed; None when not all are cached."""
    store = ws.store
    objects = [(part, obj) for part in part_rows(row) if (obj := store.cached_object(part["path"])) is not None]
    if len(objects) < len(rules.parts(row)):
        return None
    ready = []
    for part, obj in objects:
        if ws.stamps.sha256(obj) != part["sha256"]:
            raise IntegrityError(
                f"{part['path']}: the local DVC cache copy no longer matches sha256 {part['sha256'][:12]}… "
                "(bit rot or tampering); nothing was pushed; run `zoo pull` to restore it"
            )
        ready.append(part["path"])
    if row.get("state_sha256"):  # the training state goes with its weights when this clone has it
        state = rules.state_path(row["model"], int(row["step"]))
        obj = store.cached_object(state)
        if obj is not None:
            if ws.stamps.sha256(obj) != row["state_sha256"]:
                raise IntegrityError(
                    f"{state}: the local DVC cache copy no longer matches state_sha256 "
                    f"{row['state_sha256'][:12]}…; nothing was pushed; run `zoo pull --with-state` to restore it")
            ready.append(state)
    return ready
