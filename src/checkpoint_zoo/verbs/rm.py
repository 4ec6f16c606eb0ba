"""``zoo rm``: drop checkpoints from the table, the working tree and their model folder's DVC pointer."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import layout
from ..catalog import rules, table
from ..entities import Checkpoint
from ..errors import InvalidValueError, MissingFileError, UsageError
from .resolve import resolve_many

if TYPE_CHECKING:
    from ..workspace.transaction import Transaction
    from ..workspace.tree import Workspace
    from .facade import Facade

Row = dict[str, str]


def remove(zoo: Facade, refs: Sequence[str], stage: bool = True) -> list[Checkpoint]:
    """Drop checkpoints from the table, the workspace and their folder's DVC pointer."""
    ws = zoo.writable("rm")
    if not refs:
        raise UsageError("name at least one checkpoint to remove (MODEL@STEP)")
    with ws.lock():
        ws.recover()
        if stage:
            ws.check_git_index()
        rows = ws.source.rows_to_rewrite()  # no copy of a table about to change
        doomed = {id(row): row for row in resolve_many(zoo, refs, rows)}
        doomed_refs = {f"{r['model']}@{r['step']}" for r in doomed.values()}
        for r in rows:
            if r["parent"] in doomed_refs and f"{r['model']}@{r['step']}" not in doomed_refs:
                raise InvalidValueError(
                    f"{r['parent']} is the parent of {r['model']}@{r['step']}; remove that one too or clear its parent"
                )
        keep = [r for r in rows if id(r) not in doomed]
        new_data = table.dump_csv(keep)
        ws.validate_change(new_data, keep, [])
        folders: dict[str, list[str]] = {}
        for r in doomed.values():
            folders.setdefault(str(Path(r["path"]).parent), []).extend(p for p, _ in rules.parts(r))
            if r.get("state_sha256"):
                folders[str(Path(r["path"]).parent)].append(rules.state_path(r["model"], int(r["step"])))
        _refuse_partial(ws, keep, folders)
        with ws.transaction("rm") as txn:
            touched = _drop(ws, txn, folders, list(doomed.values()), {str(Path(r["path"]).parent) for r in keep})
            archs = _drop_auto_archs(ws, txn, list(doomed.values()), keep, stage)
            txn.write_table(new_data)
            if stage:
                ws.stage([layout.TABLE_PATH, *touched, *archs])
        if archs:
            ws.forget(registry=True)
    return [Checkpoint.from_row(r) for r in doomed.values()]



def _refuse_partial(ws: Workspace, keep: list[Row], folders: dict[str, list[str]]) -> None:
    """DVC rewrites a folder's pointer from the files in it: the rest of the folder must be here."""
    absent = [f"{r['model']}@{r['step']}" for r in keep if str(Path(r["path"]).parent) in folders
              and not all(ws.path(p).is_file() for p, _ in rules.parts(r))]
    absent_states = [f"{r['model']}@{r['step']}" for r in keep if r.get("state_sha256")
                     and str(Path(r["path"]).parent) in folders
                     and not ws.path(rules.state_path(r["model"], int(r["step"]))).is_file()]
    if absent_states and not absent:
        shown = " ".join(absent_states[:8]) + (" …" if len(absent_states) > 8 else "")
        raise MissingFileError(f"{len(absent_states)} other checkpoint(s) of the same model have training "
                               "states not pulled here, and removing one rewrites its model's folder from the "
                               f"files present; run `zoo pull {shown} --with-state` first; nothing was removed")
    if absent:
        shown = " ".join(absent[:8]) + (" …" if len(absent) > 8 else "")
        raise MissingFileError(f"{len(absent)} other checkpoint(s) of the same model are not pulled here, and "
                               "removing one rewrites its model's folder from the files present; run "
                               f"`zoo pull {shown}` first; nothing was removed")


def _drop_auto_archs(ws: Workspace, txn: Transaction, doomed: list[Row], keep: list[Row], stage: bool) -> list[str]:
    """The architecture files `zoo add` wrote for models whose last checkpoint goes, and that nothing else uses:
    they go too (a hand-written one stays). Those git knows are returned, to stage their removal."""
    from ..utils import gitcmd

    models = {r["model"] for r in doomed} - {r["model"] for r in keep}
    used = {r["arch"] for r in keep}
    folder = ws.root / layout.CONF_DIR / "arch"
    if folder.resolve() != ws.root.resolve() / layout.CONF_DIR / "arch":
        return []
    gone = []
    for model in sorted(models - used):
        rel = f"{layout.CONF_DIR}/arch/{model}.yaml"
        path = folder / f"{model}.yaml"
        if path.is_symlink() or not path.is_file():
            continue
        with open(path, "rb") as f:
            first = f.readline(512).decode("utf-8", "replace")
        if not first.startswith(f"# {layout.AUTO_ARCH_NOTE} "):
            continue
        txn.displace(path)
        known = stage and gitcmd.run(ws.root, "ls-files", operands=[rel], text=True).stdout.strip()
        gone.extend([rel] if known else [])
    return gone


def _drop(ws: Workspace, txn: Transaction, folders: dict[str, list[str]], doomed: list[Row],
          remaining: set[str]) -> list[str]:
    """Move the doomed files aside (back on undo), then record each folder without them; the pointers touched."""
    store = ws.store
    txn.save(*(ws.root / store.pointer(f) for f in folders), ws.root / layout.CHECKPOINTS_DIR / ".gitignore")
    touched = []
    for folder, paths in folders.items():
        for p in paths:
            txn.displace(ws.path(p))
        for r in doomed:  # a folder checkpoint's own folder, now empty
            if r.get("files") and str(Path(r["path"]).parent) == folder:
                txn.displace(ws.path(r["path"]))
        if folder in remaining:
            store.track(paths)
        else:
            store.untrack_folder(folder)
            shutil.rmtree(ws.root / folder, ignore_errors=True)
        touched.append(store.pointer(folder))
    return touched
