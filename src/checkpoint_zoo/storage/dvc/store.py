"""The DVC store: one zoo repository's DVC repo, opened lazily; tracking (a folder pointer per model folder)
and the folder manifests. Its transfers are ``transfer.py``, its remote configuration ``remotes.py``.

Each model folder ``zoo/checkpoints/<model>`` is one DVC-tracked directory with its pointer
``zoo/checkpoints/<model>.dvc``. Files inside it are added, removed, fetched and pushed one by one
(DVC's granular targets), so nothing else of the zoo is read or downloaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from ... import layout
from ...errors import IntegrityError, StorageError
from ...utils.stamps import Stamps
from .. import policy
from ..base import FreshStamps, Part, Placed, tracked_split
from . import checkout as _checkout
from . import exists, transfer
from . import remotes as _remotes
from .failures import _chain, first_line, raise_if_disk_full, remote_session

# dvc_objects.fs.utils.tmp_fname: "." + token_urlsafe(16) + ".tmp"
_DVC_TEMP = re.compile(r"^\.[A-Za-z0-9_-]{22}\.tmp$")

_CACHE_PATHS = 65_536  # cache paths remembered per Storage (bounded: see cache_path)

class Storage:
    """DVC operations on one zoo repository, opened lazily."""

    def __init__(self, root: Path, stamps: Stamps | None = None) -> None:
        self.root = Path(root)
        # the sha256 verdicts materialize trusts (the zoo's own, under .dvc/tmp/zoo, unless given)
        # plus the digests of what this store wrote in this process (see FreshStamps)
        self.fresh = FreshStamps(stamps if stamps is not None else Stamps(self.root / ".dvc" / "tmp" / "zoo" / "stamps"))
        self.stamps: Stamps = self.fresh
        self._repo = None
        self._opening = threading.Lock()  # held while the repo is opened (``open_soon``'s thread or a caller)
        self._opener: threading.Thread | None = None
        self._cache_root: Path | None = None
        # parsed once per process: pointer bytes -> .dir md5, and checked .dir md5 -> its entries
        self._pointer_md5: dict[tuple[str, bytes], str] = {}
        self._good_manifests: dict[str, dict[str, str]] = {}
        self._pointer_paths: dict[str, tuple[Path, str]] = {}  # folder -> (its pointer, relative)
        self._pointer_by_stat: dict[tuple[str, int, int, int, int], str] = {}  # pointer's lstat -> its .dir md5
        self._cache_paths: dict[str, Path] = {}  # md5 -> cache_path(md5): a pull of many files asks it ~16 times each

    @property
    def repo(self):
        if self._repo is None:
            with self._opening:
                if self._repo is None:
                    self._repo = self._open()
        return self._repo

    def open_soon(self) -> None:
        """Start opening DVC's repo in a thread, for a caller busy waiting on a remote meanwhile (a pull's
        transfer; its checkout needs the repo). Importing DVC and reading its config took 0.3-0.5 s of a
        pull of 2,000 small files on the critical path. A failure there is left for ``repo`` to raise again."""
        if self._repo is not None or self._opener is not None:
            return

        def opening() -> None:
            with contextlib.suppress(Exception):
                self.repo  # noqa: B018  (opening it is the point)

        self._opener = threading.Thread(target=opening, name="zoo-open-dvc", daemon=True)
        self._opener.start()

    def _open(self):
        """DVC's repo of this zoo (the pointers checked first)."""
        from dvc.exceptions import NotDvcRepoError
        from dvc.repo import Repo

        from ...utils.safe_yaml import check_dvc_files

        check_dvc_files(self.root)  # DVC parses every pointer: refuse alias bombs and symlinks first
        try:
            repo = Repo(str(self.root))
        except NotDvcRepoError:
            raise StorageError(f"{self.root}: not a DVC repository; run `dvc init` there") from None
        # zoo stages files itself; DVC's "To track the changes with git" hint would be noise
        repo.scm_context.quiet = True
        return repo

    def close(self) -> None:
        """Release DVC's handles (the next call opens the repo again)."""
        if self._opener is not None:
            self._opener.join()
            self._opener = None
        if self._repo is not None:
            self._repo.close()
            self._repo = None
        self._cache_root = None
        self._cache_paths.clear()

    # ---- remotes (remotes.py) -------------------------------------------------------------------

    def default_remote(self) -> str | None:
        """Name of the default remote, or None."""
        return _remotes.default_remote(self.repo.config)

    def describe_remote(self, remote: str | None) -> str:
        """``remote 'NAME' (URL at ENDPOINT)`` for messages."""
        return _remotes.describe_remote(self.repo.config, remote)

    def remotes(self) -> list[dict]:
        """Every configured remote (see ``remotes.remotes``)."""
        return _remotes.remotes(self.root)

    def add_remote(self, name: str, url: str, options: dict[str, str], level: str = "repo",
                   default: bool = False, force: bool = False) -> None:
        """Write a remote section (and optionally core.remote) to .dvc/config or .dvc/config.local."""
        _remotes.add_remote(self.root, name, url, options, level, default, force)
        self._forget_config()

    def modify_remote(self, name: str, key: str, value: str | None, level: str = "repo") -> None:
        """Set (or with value None, unset) one option of an existing remote at this level."""
        _remotes.modify_remote(self.root, name, key, value, level)
        self._forget_config()

    def remove_remote(self, name: str) -> list[str]:
        """Remove a remote from this clone's config files; returns the levels it was removed from."""
        levels = _remotes.remove_remote(self.root, name)
        self._forget_config()
        return levels

    def set_default_remote(self, name: str | None, level: str = "repo") -> None:
        """Make ``name`` the default remote (None: no default)."""
        _remotes.set_default_remote(self.root, name, level)
        self._forget_config()

    def _forget_config(self) -> None:
        """An open Repo holds the config it read; reopen it next time."""
        self.close()

    # ---- bytes (transfer.py, and the one verify-refetch-drop policy) ----------------------------

    def fetch(self, paths: list[str], remote: str | None = None, jobs: int | None = None) -> None:
        """Download the cache objects of exactly these files (see ``transfer.fetch``)."""
        transfer.fetch(self, paths, remote, jobs)

    def fetch_manifests(self, pointers: list[Path], remote: str | None = None) -> int:
        """Put the ``.dir`` manifests these pointer files name into the local cache; returns how many."""
        return transfer.fetch_manifests(self, pointers, remote)

    def checkout(self, paths: list[str]) -> None:
        """Put fetched files into the workspace (see ``checkout.checkout``)."""
        _checkout.checkout(self, paths)

    def push(self, paths: Iterable[str], remote: str | None = None, jobs: int | None = None,
             folders: Iterable[str] = ()) -> tuple[int, int]:
        """Upload these files' objects and ``folders``' manifests (see ``transfer.push``)."""
        return transfer.push(self, paths, remote, jobs, folders)

    def s3_remote(self, remote: str | None):
        """``transfer.s3_remote``: the client and keys of an S3 remote (for presigned URLs), or None."""
        return transfer.s3_remote(self, remote)

    def missing_on_remote(self, parts: Sequence[Part], *, remote: str | None = None,
                          folders: Iterable[str] = ()) -> tuple[list[Part], list[str]]:
        """What the remote lacks of these parts and folders (see ``transfer.missing_on_remote``)."""
        return transfer.missing_on_remote(self, parts, remote, folders)

    def materialize(self, parts: Sequence[Part], *, remote: str | None = None, jobs: int | None = None,
                    place: bool = True) -> list[Placed]:
        """Verified local copies of these parts (``policy.materialize``)."""
        return policy.materialize(self, parts, remote=remote, jobs=jobs, place=place)

    # ---- tracking ------------------------------------------------------------------------------

    def _abs(self, rel: str) -> str:
        # DVC resolves relative targets against the process's cwd, not the repo
        return str(self.root / rel)

    @staticmethod
    def tracking_file(folder: str) -> str:
        """The folder's DVC pointer, committed to git beside it."""
        return folder.rstrip("/") + ".dvc"

    @staticmethod
    def pointer(model_dir: str) -> str:
        """= tracking_file (the name the facade and verbs use)."""
        return model_dir.rstrip("/") + ".dvc"

    def track(self, files: list[str]) -> None:
        """Record new or changed files (and removed ones) in their model folder's DVC pointer.

        A folder with no pointer yet is added whole; so is one that gets several files and holds
        exactly its tracked files plus these (one hashing pass over the folder instead of one manifest
        rewrite per file). Otherwise the folder is updated file by file, which keeps the entries of
        files that are not pulled locally.
        """
        repo = self.repo
        by_folder: dict[str, list[str]] = {}
        for f in files:
            by_folder.setdefault(tracked_split(f)[0], []).append(f)
        whole, granular = [], []
        for folder, mine in by_folder.items():
            if not (self.root / self.pointer(folder)).exists() or (len(mine) > 1 and self._only_these_new(folder, mine)):
                whole.append(folder)
            else:
                granular.extend(mine)
        doing = f"dvc add of {', '.join(whole + granular)} (copying into the DVC cache)"
        from dvc.repo import lock_repo

        with remote_session() as log:  # DVC only logs a failed copy into its cache; catch what it logs
            try:
                with lock_repo(repo):  # DVC's own repo lock: no DVC command is writing these folders
                    self._sweep_dvc_temps(files)
                    if whole:  # one call: DVC collects and checks the stage graph once, not per folder
                        repo.add([self._abs(t) for t in whole])
                    for target in granular:
                        self._add_into(repo, target)
            except Exception as e:  # DVC raises many unrelated types; all mean the add failed
                self._drop_cache_temps(*log.errors, e)
                raise_if_disk_full(e, doing, *log.errors)
                raise StorageError(f"dvc add failed for {', '.join(whole + granular)}: {first_line(e)}") from None
        self._drop_cache_temps(*log.errors)
        raise_if_disk_full(None, doing, *log.errors)

    def _add_into(self, repo, target: str) -> None:
        """``dvc add`` of one file in a tracked folder, touching only that folder's pointer: what ``repo.add``
        does for it (``stage.add_outs`` of the path, then ``stage.dump``) without first collecting every
        pointer of the zoo to find the one stage that owns the path and checking the whole graph, which made
        one add cost time in proportion to the number of models. The pointer must track exactly its folder
        (the zoo's layout); anything else goes through ``repo.add`` and its checks."""
        folder = tracked_split(target)[0]
        try:
            stage = repo.stage.load_one(path=self._abs(self.pointer(folder)))
        except Exception:  # a pointer DVC cannot read: repo.add says why, in its words
            stage = None
        if stage is None or not stage.is_data_source or len(stage.outs) != 1 \
                or stage.outs[0].fs_path != self._abs(folder):
            repo.add(self._abs(target))
            return
        stage.add_outs(stage.outs[0].fs.abspath(self._abs(target)), no_commit=False, relink=True)
        stage.dump()

    def _only_these_new(self, folder: str, new: list[str]) -> bool:
        """Whether ``folder`` holds every file its manifest lists, and nothing else but ``new``."""
        tracked = self.manifest(folder)
        if tracked is None:
            return False
        base = self.root / folder
        present = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file() and not p.is_symlink()}
        names = {tracked_split(f)[1] for f in new}
        return set(tracked) <= present and present <= set(tracked) | names and names <= present

    def _sweep_dvc_temps(self, paths: Iterable[str]) -> None:
        """Remove the partial files (``.<22 chars>.tmp``) that a killed DVC checkout left in these files'
        model folders: DVC would count them as folder content (``dvc status`` says modified, a whole-folder
        add would track them). Call with DVC's repo lock held. Checkpoint names never look like that."""
        import os

        for folder in sorted({(self.root / p).parent for p in paths} | {self.root / tracked_split(p)[0] for p in paths}):
            try:
                with os.scandir(folder) as it:
                    stale = [e.path for e in it if _DVC_TEMP.match(e.name) and e.is_file(follow_symlinks=False)]
            except OSError:
                continue
            for path in stale:
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def _drop_cache_temps(self, *errors: BaseException | None) -> None:
        """Remove the partial temp files (in the DVC cache or the model folders) that a failed copy names
        (DVC leaves some of them behind)."""

        try:
            roots = (Path(self.repo.cache.local.path).resolve(), (self.root / layout.CHECKPOINTS_DIR).resolve())
        except Exception:
            return
        for err in errors:
            for e in _chain(err):
                for name in (getattr(e, "filename", None), getattr(e, "filename2", None)):
                    if not isinstance(name, str) or not name.endswith(".tmp"):
                        continue
                    p = Path(name)
                    if any(r in p.resolve().parents for r in roots):
                        p.unlink(missing_ok=True)

    def recover(self) -> bool:
        """Remove DVC's stage-lock file (``.dvc/tmp/rwlock``) when a DVC call killed while writing it left it
        cut short: every later DVC command would fail with "JSON structure is corrupted". Checked again
        under DVC's own guard of that file; True if it was removed."""
        tmp = self.root / ".dvc" / "tmp"
        path = tmp / "rwlock"

        def corrupt() -> bool:
            try:
                json.loads(path.read_text(encoding="utf-8"))
                return False
            except FileNotFoundError:
                return False
            except (ValueError, OSError):
                return True

        if not corrupt():
            return False
        from dvc.lock import LockError, make_lock

        try:
            with make_lock(str(tmp / "rwlock.lock"), tmp_dir=str(tmp)):
                if corrupt():
                    path.unlink(missing_ok=True)
                    return True
        except LockError:
            pass  # a live DVC process holds it: it is rewriting the file now
        return False

    def untrack(self, folder: str) -> None:
        """Stop tracking a model folder that no longer holds any checkpoint (its pointer and files go)."""
        pointer = self.root / self.pointer(folder)
        try:
            self.repo.remove(str(pointer), outs=True)
        except Exception as e:
            raise StorageError(f"dvc remove failed for {pointer.name}: {first_line(e)}") from None

    repair_after_kill = recover
    untrack_folder = untrack

    def manifest(self, folder: str) -> dict[str, str] | None:
        """relpath -> md5 for a tracked folder, from its ``.dir`` manifest in the local cache (None if absent)."""
        entries = self._entries(folder)
        return None if entries is None else dict(entries)

    def _entries(self, folder: str) -> dict[str, str] | None:
        """``manifest`` without the copy (callers must not change it): a pull asks it once per file."""
        import stat

        where = self._pointer_paths.get(folder)
        if where is None:
            pointer = self.root / self.pointer(folder)
            where = self._pointer_paths[folder] = (pointer, pointer.relative_to(self.root).as_posix())
        pointer, rel = where
        try:
            st = os.lstat(pointer)
        except OSError:
            return None
        from ...errors import UnsafeFileError

        if stat.S_ISLNK(st.st_mode):
            if not pointer.exists():
                return None
            raise UnsafeFileError(f"{rel}: is a symlink; restore the real pointer with `git checkout -- {rel}`")
        seen = (rel, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        md5 = self._pointer_by_stat.get(seen) or self._folder_md5(pointer, rel)
        self._pointer_by_stat[seen] = md5
        if md5 in self._good_manifests:  # named by its md5: what it says cannot change (a pull asks ~7 times a file)
            return self._good_manifests[md5]
        obj = self.cache_path(md5)
        if not obj.exists():
            return None
        raw = obj.read_bytes()
        import hashlib

        if hashlib.md5(raw).hexdigest() != md5.removesuffix(".dir"):
            # DVC names a manifest by the md5 of its bytes, and the zoo checks a downloaded one before it
            # enters the cache: this copy was damaged here (or fetched unchecked by plain `dvc fetch`)
            obj.unlink(missing_ok=True)
            raise IntegrityError(f"{folder}: its folder manifest in the local DVC cache ({obj}) does not match md5 "
                                 f"{md5} (damaged on this disk, not on the remote); the damaged copy was removed and "
                                 f"the workspace left as it was; run the command again (`zoo pull` downloads the "
                                 "manifest again)")
        entries = {e["relpath"]: e["md5"] for e in json.loads(raw)}
        self._good_manifests[md5] = entries
        return entries

    def _folder_md5(self, pointer: Path, rel: str) -> str:
        """The ``.dir`` md5 a folder pointer names (parsed once per process per pointer content)."""
        from ...errors import UnsafeFileError
        from ...utils.safe_yaml import load_yaml

        content = pointer.read_bytes()
        md5 = self._pointer_md5.get((rel, content))
        if md5 is None:
            data = load_yaml(content, rel)
            try:
                md5 = str(data["outs"][0]["md5"])
                path = data["outs"][0].get("path")
            except (TypeError, KeyError, IndexError, AttributeError):
                raise UnsafeFileError(f"{rel}: not a DVC pointer (no outs[0].md5); restore it with "
                                      f"`git checkout -- {rel}`") from None
            if len(data["outs"]) != 1 or path != Path(rel).stem:
                raise UnsafeFileError(f"{rel}: must track exactly the folder {Path(rel).stem!r} beside it (outs[0].path "
                                      f"is {str(path)[:80]!r}); restore it with `git checkout -- {rel}`")
            if not _is_folder_md5(md5):
                raise UnsafeFileError(f"{rel}: outs[0].md5 {md5[:80]!r} is not a folder hash; restore it with "
                                      f"`git checkout -- {rel}`")
            self._pointer_md5[(rel, content)] = md5
        return md5

    def cache_path(self, md5: str) -> Path:
        """Where DVC keeps an object with this md5 in the local cache (remembered: two pathlib joins cost more
        than the stat a caller then makes)."""
        path = self._cache_paths.get(md5)
        if path is None:
            if self._cache_root is None:  # read from DVC's config files where plain: no need to open DVC
                self._cache_root = exists.default_cache(self.root) or Path(self.repo.cache.local.path)
            if len(self._cache_paths) >= _CACHE_PATHS:  # a long-running zoo serve asks for ever more objects
                self._cache_paths.clear()
            path = self._cache_paths[md5] = self._cache_root / md5[:2] / md5[2:]
        return path

    def manifest_object(self, folder: str) -> Path | None:
        """The local cache object of a tracked folder's ``.dir`` manifest (None when the folder is not tracked)."""
        pointer = self.root / self.pointer(folder)
        if not pointer.is_file():
            return None
        return self.cache_path(self._folder_md5(pointer, pointer.relative_to(self.root).as_posix()))

    def cached(self, path: str) -> Path | None:
        """Local cache object of a file inside a tracked folder (None if not fetched)."""
        folder, rel = tracked_split(path)
        files = self._entries(folder)
        if not files or rel not in files:
            return None
        obj = self.cache_path(files[rel])
        return obj if obj.exists() else None

    cached_object = cached

    def missing_manifests(self, pointers: list[Path]) -> list[str]:
        """The ``.dir`` md5s these pointer files (in the zoo, or the merge driver's temp copies) name that the
        local cache lacks; an unreadable pointer is skipped here and refused where it is used."""
        from ...errors import UnsafeFileError
        from ...utils.safe_yaml import load_yaml

        wanted = set()
        for p in pointers:
            try:
                outs = (load_yaml(p.read_bytes(), str(p)) or {}).get("outs") or []
            except (OSError, UnsafeFileError, AttributeError):
                continue
            wanted |= {o["md5"] for o in outs if isinstance(o, dict) and _is_folder_md5(str(o.get("md5", "")))}
        return [m for m in sorted(wanted) if not self.cache_path(m).exists()]

    def store_manifest(self, md5: str, raw: bytes) -> None:
        """Put a folder manifest into the local cache, after checking it is the JSON its md5 names."""
        import hashlib

        # a manifest is JSON named by its md5; anything else must not enter the cache
        if hashlib.md5(raw).hexdigest() != md5.removesuffix(".dir"):
            raise ValueError(f"manifest {md5} has other bytes (md5 mismatch)")
        json.loads(raw)
        dest = self.cache_path(md5)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + f".{os.getpid()}.tmp")
        try:
            tmp.write_bytes(raw)
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)

def _is_folder_md5(md5: str) -> bool:
    """True for the hash DVC gives a tracked folder: 32 hex digits and ``.dir``."""
    return len(md5) == 36 and md5.endswith(".dir") and all(c in "0123456789abcdef" for c in md5[:32])

