"""The working tree's write surface: what every writing verb needs, and nothing private of ``Zoo``.

A verb takes the lock, reads rows, resolves table paths (refusing anything that leaves
``zoo/checkpoints``), validates the change it is about to make, and stages what it wrote; the bytes and
the DVC bookkeeping go through the ``CheckpointStore``, and the steps themselves through one
``Transaction`` (workspace/transaction.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import layout
from ..catalog import table
from ..errors import InvalidValueError, UnsafePathError, ZooError
from ..utils import gitcmd
from ..utils.stamps import Stamps
from .source import WorkTree

if TYPE_CHECKING:
    from ..storage.base import CheckpointStore

Row = dict[str, str]


class Workspace:
    """A clone's working tree, open for writing (``Zoo.workspace``)."""

    def __init__(self, source: WorkTree, store_factory: Callable[[], CheckpointStore] | None = None) -> None:
        self.source = source
        self.root = source.root
        self.work = self.root / ".dvc" / "tmp" / "zoo"
        self.incoming = self.work / "incoming"
        self.stamps = Stamps(self.work / "stamps")
        self._store_factory = store_factory
        self._store: CheckpointStore | None = None

    @property
    def store(self) -> CheckpointStore:
        """The zoo's store (the facade's, when it made this workspace; else opened on first use)."""
        if self._store_factory is not None:
            return self._store_factory()
        if self._store is None:
            from ..storage import open_store

            self._store = open_store(self.root, stamps=self.stamps)
        return self._store

    @property
    def table_path(self) -> Path:
        return self.root / layout.TABLE_PATH

    def rows(self) -> list[Row]:
        return self.source.rows()

    def forget(self, registry: bool = False) -> None:
        """After this process wrote the table (or, with ``registry``, a conf/ file): the next read parses it again."""
        self.source.forget(registry)

    def registry(self):
        return self.source.registry()

    def lock(self, wait: float = 600, refusal: str = ""):
        """The zoo's write lock: waits up to ``wait`` seconds, then raises (with ``refusal`` if given)."""
        from filelock import FileLock, Timeout

        self.work.mkdir(parents=True, exist_ok=True)
        path = self.work / layout.LOCK_NAME
        lock = FileLock(str(path), timeout=wait)

        class _Guard:
            def __enter__(inner):
                try:
                    lock.acquire()
                except Timeout:
                    raise ZooError(refusal or (
                        f"{path}: another zoo command has held the lock for "
                        "10 minutes; wait for it or remove the lock file if no zoo command is running"
                    )) from None
                return inner

            def __exit__(inner, *exc: object) -> None:
                lock.release()

        return _Guard()

    def _checkpoints(self) -> Path:
        """zoo/checkpoints resolved, refused unless it is a real folder of the zoo."""
        base = (self.root / layout.CHECKPOINTS_DIR).resolve()
        if base != self.root.resolve() / layout.CHECKPOINTS_DIR:
            raise UnsafePathError(f"{layout.CHECKPOINTS_DIR}: resolves to {base}, outside the zoo; it must be a "
                                  "real folder, not a symlink: remove the link and restore it with git")
        return base

    def path(self, rel: str) -> Path:
        """Absolute path of a table path, refusing anything that resolves outside zoo/checkpoints."""
        base = self._checkpoints()
        target = (self.root / rel).resolve()
        if base not in target.parents:
            raise UnsafePathError(f"{rel}: resolves to {target}, outside {layout.CHECKPOINTS_DIR}; remove that symlink")
        return self.root / rel

    def check_paths(self, rels: Iterable[str]) -> None:
        """``path`` of many table paths at once: the checkpoints folder and each distinct parent folder resolved
        once, then each file's own name checked not to be a link (a link, or a name such as ``..``, gets the full
        ``path`` check). Pulling thousands of files otherwise resolves every component of every path."""
        base = self._checkpoints()
        parents: dict[str, bool] = {}
        for rel in rels:
            folder, _, name = rel.rpartition("/")
            inside = parents.get(folder)
            if inside is None:
                resolved = (self.root / folder).resolve()
                inside = parents[folder] = resolved == base or base in resolved.parents
            if not inside or name in ("", ".", "..") or (self.root / rel).is_symlink():
                self.path(rel)

    def stage(self, paths: Iterable[str]) -> tuple[str, ...]:
        """``git add -A`` these paths (nothing outside a git work tree); returns what was staged. Loose objects
        are compressed at zlib level 1: the table of a big zoo is tens of MB, and git's default level
        takes twice as long to store it for a few percent of size that the next ``git gc`` packs anyway."""
        paths = tuple(dict.fromkeys(paths))
        if not (self.root / ".git").exists():
            return ()
        held = self.index_lock()
        if held:
            raise ZooError(f"git add refused: {held}")
        proc = gitcmd.run(self.root, "-c", "core.looseCompression=1", "add", "-A", operands=paths, text=True,
                          check=False, timeout=None)
        if proc.returncode != 0:
            raise ZooError(f"git add failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        return paths

    def index_lock(self) -> str:
        """What holds git's index lock, in words ('' when nothing does): the file, its owner and its age, so
        that a lock left by a killed command is recognisable as such."""
        lock = self.root / ".git" / "index.lock"
        try:
            st = lock.lstat()
        except OSError:
            return ""
        import pwd
        import time

        try:
            owner = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = f"uid {st.st_uid}"
        age = max(0, int(time.time() - st.st_mtime))
        return (f"{lock} exists (owned by {owner}, {age} s old): another git command is using this clone, or one "
                "was killed; if no git command is running, delete that file")

    def check_git_index(self) -> None:
        """Refuse to start a change that ends in ``git add`` while another git command holds the index lock."""
        held = self.index_lock()
        if held:
            raise ZooError(f"{held}; nothing was changed, run the command again once it is done")

    def validate_change(self, new_data: bytes, new_rows: list[Row], changed: list[Row]) -> None:
        """Validate a table that differs from the current (valid) one only in ``changed`` rows (and deletions).

        The unchanged rows passed already, so the schema runs on the changed rows plus the rows their
        cross-row rules refer to (parents), and the Python checks here cover uniqueness and parents
        over the whole table. A table not known to be valid is validated whole.
        """
        if not table.is_known_valid(table.read_table(self.root)):
            table.validate_rows(new_data, table.parse_csv(new_data))
            return
        from ..catalog.schema import validate_frame

        refs = {f"{r['model']}@{r['step']}": r for r in new_rows}
        if len(refs) != len(new_rows):
            raise InvalidValueError("(model, step) would appear twice in the table; keep one row")
        # the schema checks each row's parent within the rows it is given: give it each chain of ancestors
        referenced: list[Row] = []
        seen = {id(r) for r in changed}
        for r in changed:
            while r["parent"] in refs and id(refs[r["parent"]]) not in seen:
                r = refs[r["parent"]]
                seen.add(id(r))
                referenced.append(r)
        missing = [r["parent"] for r in new_rows if r["parent"] and r["parent"] not in refs]
        if missing:
            raise InvalidValueError(f"{missing[0]} is the parent of another checkpoint and must stay in the table")
        validate_frame(changed + [r for r in referenced if r not in changed], source="the new row(s)",
                       fix="nothing was changed; correct the values given and run the command again")
        table.mark_valid(new_data)

    def transaction(self, tag: str):
        """``with ws.transaction(tag) as txn:``: one undo log for the command's every step (transaction.py)."""
        from .transaction import transaction

        return transaction(self, tag)

    def recover(self) -> list[Path]:
        """Under the lock: finish or undo killed commands by their journals, sweep their temp files, and let
        the store repair what a killed storage call left. Returns the journals read."""
        from ..utils.temps import sweep_stale_temp_files
        from .transaction import journaled_paths, recover

        done = recover(self)
        sweep_stale_temp_files(self.root, self.work, keep=journaled_paths(self))
        self.store.repair_after_kill()
        return done


def in_tree_remotes(root: Path, remotes: list[dict]) -> dict[str, str]:
    """Remote name -> repo-relative folder, for the remotes (``storage.remotes()``) that are local folders
    inside the work tree ``root``: their objects reach teammates only through git."""
    root = root.resolve()
    out = {}
    for r in remotes:
        url = r["url"]
        if not url or "://" in url:
            continue
        try:
            rel = Path(url).resolve().relative_to(root)
        except ValueError:
            continue
        if rel.parts and rel.parts[0] != ".git":
            out[r["name"]] = rel.as_posix()
    return out
