"""One transaction for every write: a write-ahead undo log, rolled back in reverse on failure or after a kill.

Every step that changes the working tree is written to the journal (``incoming/<tag>-<pid>.journal``)
*before* it happens, with what undoing it needs, and every undo decides from what is on disk, so it is
right whether the step ran, half ran or never ran:

- ``take``: a source is copied (or, with ``--move``, moved) into the incoming area. Undo: the copy goes
  back to where it came from when it was moved and the source is gone, else it is deleted.
- ``place``: an incoming copy replaces the file at its table path (the old one kept as a backup). Undo:
  if the copy is still in incoming, it was never placed (it is given back as above); else the placed
  file is given back; then the backup, if any, returns.
- ``save``: a small file (a DVC pointer, ``.gitignore``, an architecture file) about to change; its old
  content is in the journal. Undo: the old content is written back (or the file removed).
- ``mkdir``: a model folder made for the first checkpoint placed in it. Undo: removed when empty.
- ``created``: a file this transaction created outside the working tree (a DVC cache object no row holds
  yet). Undo: removed.
- ``table``: the digest of the table about to be written. This is the commit point: after a kill,
  ``recover`` finds the table with that digest and finishes the transaction (only backups are removed)
  instead of undoing it; the sources a completed ``--move`` took are then rightly gone.

A moved file is never deleted: until the table names it, undo puts it back at its source.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog import table
from ..utils import environ
from ..utils.files import remove_path
from ..utils.temps import pid_alive

if TYPE_CHECKING:
    from .tree import Workspace

JOURNAL_SUFFIX = ".journal"


class Transaction:
    """The undo log of one writing command (``Workspace.transaction``)."""

    def __init__(self, ws: Workspace, tag: str) -> None:
        self.ws = ws
        ws.incoming.mkdir(parents=True, exist_ok=True)
        self.journal = ws.incoming / f"{tag}-{os.getpid()}{JOURNAL_SUFFIX}"
        self.entries: list[dict[str, Any]] = []
        self.old_table: bytes | None = None
        self._seq = 0

    # ---- logging ---------------------------------------------------------------------------------

    def log(self, *entries: dict[str, Any]) -> None:
        """Append entries and write the journal (atomically) before the caller acts on them.

        Not fsynced: a killed process loses nothing the kernel already has, and the steps it guards (renames in
        the working tree) are not flushed either; one fsync per step cost a tenth of a second per add."""
        self.entries.extend(entries)
        table.atomic_write(self.journal, json.dumps({"entries": self.entries}).encode(), fsync=False)
        _crash_point()

    def backup_path(self, dest: Path) -> Path:
        self._seq += 1
        return self.ws.incoming / f"{dest.name}.{self._seq}-{os.getpid()}.backup"

    # ---- steps -----------------------------------------------------------------------------------

    def take(self, items: list[tuple[Path, Path, bool]]) -> None:
        """Before copying (or moving) sources into incoming: ``(source, copy, moved)`` per item, one flush."""
        self.log(*({"op": "take", "copy": str(copy), "origin": str(src) if moved else None}
                   for src, copy, moved in items))

    def place(self, moves: list[tuple[Path, Path, Path | None]]) -> None:
        """Put incoming copies at their destinations, ``(copy, dest, origin)`` each (``origin``: where a moved
        file came from); what was at a destination is kept as a backup until the commit. One journal write
        for all of them: each undo checks the disk, so it does not matter how many had happened."""
        entries: list[dict[str, Any]] = []
        plan = []
        made: set[Path] = set()
        for copy, dest, origin in moves:
            backup = self.backup_path(dest) if os.path.lexists(dest) else None
            if dest.parent not in made and not dest.parent.is_dir():
                made.add(dest.parent)
                entries.append({"op": "mkdir", "path": str(dest.parent)})
            entries.append({"op": "place", "copy": str(copy), "dest": str(dest),
                            "backup": str(backup) if backup else None, "origin": str(origin) if origin else None})
            plan.append((copy, dest, backup))
        self.log(*entries)
        for copy, dest, backup in plan:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if backup is not None:
                os.replace(dest, backup)
            os.replace(copy, dest)

    def displace(self, dest: Path) -> None:
        """Move the file (or folder) at ``dest`` aside, to come back on undo and be removed on commit."""
        if not os.path.lexists(dest):
            return
        backup = self.backup_path(dest)
        self.log({"op": "place", "copy": None, "dest": str(dest), "backup": str(backup), "origin": None})
        os.replace(dest, backup)

    def save(self, *paths: Path) -> None:
        """Before these small files change: their current content, to be written back on undo."""
        entries = []
        for path in paths:
            content = path.read_bytes().decode("utf-8", "surrogateescape") if path.is_file() else None
            entries.append({"op": "save", "path": str(path), "content": content})
        self.log(*entries)

    def created(self, *paths: Path) -> None:
        """Files this transaction created outside the working tree, removed on undo."""
        if paths:
            self.log(*({"op": "created", "path": str(p)} for p in paths))

    def write_table(self, data: bytes) -> None:
        """The commit point: the new table, written atomically once the journal names its digest."""
        self.old_table = self.ws.table_path.read_bytes()
        self.log({"op": "table", "digest": hashlib.sha256(data).hexdigest()})
        table.atomic_write(self.ws.table_path, data)
        self.ws.forget()

    def abandon(self) -> None:
        """Undo every step so far and go on with an empty log (a re-add that changes nothing)."""
        undo(self.entries)
        self.entries = []
        self.log()

    # ---- ending ----------------------------------------------------------------------------------

    def commit(self) -> None:
        """Success: drop the backups, then the journal."""
        finish(self.entries)
        self.journal.unlink(missing_ok=True)

    def rollback(self) -> None:
        """Failure in this process: undo every step in reverse, the table too if it was written."""
        if self.old_table is not None and self.ws.table_path.read_bytes() != self.old_table:
            table.atomic_write(self.ws.table_path, self.old_table)
            self.ws.forget()
        if not undo(self.entries):  # else the journal stays for the next command's recover to finish
            self.journal.unlink(missing_ok=True)


@contextmanager
def transaction(ws: Workspace, tag: str) -> Iterator[Transaction]:
    """``with transaction(ws, tag) as txn:`` commits when the block ends, rolls back when it raises."""
    txn = Transaction(ws, tag)
    try:
        yield txn
    except BaseException:
        txn.rollback()
        raise
    txn.commit()


_WRITES = 0


def _crash_point() -> None:
    """Where ``ZOO_TEST_KILL_AT_STEP`` (utils/environ.py) stops a command: right after a journal write."""
    global _WRITES
    at = environ.kill_at_step()
    if at is None:
        return
    _WRITES += 1
    if _WRITES == at:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def give_back(path: Path, origin: str | None) -> None:
    """A copy leaves the zoo: a moved file returns to its source (when that is free), anything else is removed."""
    if not os.path.lexists(path):
        return
    if origin and not os.path.lexists(origin):
        Path(origin).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), origin)
    else:
        remove_path(path)


def undo(entries: list[dict[str, Any]]) -> list[OSError]:
    """Undo journal entries in reverse; each undo checks the disk, so a step that never ran is a no-op. One
    step that cannot be undone does not stop the others; the failures are returned."""
    failed = []
    for entry in reversed(entries):
        try:
            _undo_one(entry)
        except OSError as e:
            failed.append(e)
    return failed


def _undo_one(entry: dict[str, Any]) -> None:
    op = entry.get("op")
    if op == "take":
        give_back(Path(entry["copy"]), entry.get("origin"))
    elif op == "place":
        copy, dest, backup = entry.get("copy"), Path(entry["dest"]), entry.get("backup")
        if copy and os.path.lexists(copy):
            give_back(Path(copy), entry.get("origin"))  # never placed
        elif copy or not backup or os.path.lexists(backup):
            give_back(dest, entry.get("origin"))
        if backup and os.path.lexists(backup):
            remove_path(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)  # an rm may have removed the model folder
            os.replace(backup, dest)
    elif op == "save":
        path = Path(entry["path"])
        if entry.get("content") is None:
            path.unlink(missing_ok=True)
        elif not path.is_file() or path.read_bytes() != str(entry["content"]).encode("utf-8", "surrogateescape"):
            table.atomic_write(path, str(entry["content"]).encode("utf-8", "surrogateescape"))
    elif op == "created":
        Path(entry["path"]).unlink(missing_ok=True)
    elif op == "mkdir":
        path = Path(entry["path"])
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def finish(entries: list[dict[str, Any]]) -> None:
    """A transaction that reached its commit point: only the backups it kept are left to remove."""
    for entry in entries:
        if entry.get("op") == "place" and entry.get("backup"):
            remove_path(Path(entry["backup"]))


def recover(ws: Workspace) -> list[Path]:
    """Under the lock: finish or undo what killed commands left, by their journals. Returns the journals read.

    A journal whose table digest matches the table on disk reached its commit point and is finished;
    any other is undone step by step. A journal that cannot be read is left in place (with every file it
    names), so nothing a journal still names is ever swept.
    """
    done: list[Path] = []
    if not ws.incoming.is_dir():
        return done
    digest: str | None = None
    for journal in sorted(ws.incoming.glob(f"*{JOURNAL_SUFFIX}")):
        try:
            pid = int(journal.name[: -len(JOURNAL_SUFFIX)].rsplit("-", 1)[1])
        except (IndexError, ValueError):
            continue
        if pid_alive(pid):
            continue
        try:
            entries = json.loads(journal.read_text())["entries"]
            if not isinstance(entries, list):
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue
        marks = [e.get("digest") for e in entries if isinstance(e, dict) and e.get("op") == "table"]
        if marks and digest is None:
            digest = hashlib.sha256(ws.table_path.read_bytes()).hexdigest()
        entries = [e for e in entries if isinstance(e, dict)]
        if marks and marks[-1] == digest:
            finish(entries)
        elif undo(entries):
            continue  # kept, with every file it names, for the next command to try again
        journal.unlink(missing_ok=True)
        done.append(journal)
    if done:
        ws.forget()
    return done


def journaled_paths(ws: Workspace) -> set[Path]:
    """Every path a journal in the incoming area names (the sweep of killed commands' temp files keeps them)."""
    out: set[Path] = set()
    for journal in ws.incoming.glob(f"*{JOURNAL_SUFFIX}") if ws.incoming.is_dir() else ():
        try:
            entries = json.loads(journal.read_text())["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for e in entries if isinstance(entries, list) else ():
            if isinstance(e, dict):
                out.update(Path(v) for k, v in e.items() if k in ("copy", "dest", "backup", "origin", "path") and v)
    return out
