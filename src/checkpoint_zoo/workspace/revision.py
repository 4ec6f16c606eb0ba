"""A zoo at a git revision, read without checking it out: from a local clone or straight from a git URL.

The table and metrics come from git objects (``git show REV:path``). Checkpoint bytes come from the
zoo's DVC remote through ``DVCFileSystem`` (the one place here that touches DVC), into a user-level
cache that is content-addressed by sha256, so two revisions sharing a checkpoint share one file.
Every file is sha256-checked before it is handed over; a cached file is re-checked whenever its
stat changes, and a tampered one is fetched again (or refused offline).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .. import layout
from ..errors import IntegrityError, MissingFileError, NotAZooError, RemoteUnreachableError, StorageError, ZooError
from ..storage.dvc import download_at_revision
from ..utils import environ, gitcmd
from ..utils.temps import pid_alive

if TYPE_CHECKING:
    from ..registry import Registry


def _is_path(url: str) -> bool:
    """Whether git would read ``url`` as a local path (not scheme://… nor scp-like host:path)."""
    return "://" not in url and "::" not in url and not (":" in url.split("/")[0] and not os.path.isabs(url))


def _is_local(url: str) -> bool:
    return _is_path(url) and os.path.isdir(url)


class RevisionSource:
    """The git side of a zoo at ``rev``: a local repo, or a mirror of a URL kept in the user cache."""

    def __init__(self, url: str, rev: str | None = None, remote: str | None = None) -> None:
        self.url = str(url)
        self._rows: list[dict[str, str]] | None = None
        self._registry: Registry | None = None
        self.remote = remote
        if _is_local(self.url):
            top = gitcmd.run(Path(self.url), "rev-parse", "--show-toplevel", check=False)
            if top.returncode != 0:
                raise NotAZooError(f"{self.url}: not a git repository; give a zoo clone or a git URL")
            self.git_dir = Path(top.stdout.decode().strip())
            self.local = True
        else:
            gitcmd.check_url(self.url)
            if _is_path(self.url):
                what = "not a directory" if os.path.exists(self.url) else "no such directory"
                raise NotAZooError(f"{self.url}: {what}; give a zoo clone or a git URL")
            self.git_dir = self._mirror()
            self.local = False
        self.rev = gitcmd.check_revision(rev or "HEAD", self.url)
        found = gitcmd.run(self.git_dir, "rev-parse", "--verify", "--quiet", operands=(f"{self.rev}^{{commit}}",),
                           end="--end-of-options", check=False)
        if found.returncode != 0:
            raise ZooError(f"unknown revision {self.rev!r} in {self.url}; `zoo versions` lists the branches and tags")
        self.commit = found.stdout.decode().strip()
        if self.read_bytes(layout.TABLE_PATH) is None:
            raise NotAZooError(f"revision {self.rev!r} of {self.url} holds no zoo (no {layout.TABLE_PATH})")

    @property
    def location(self) -> str:
        return self.url

    def rows(self) -> list[dict[str, str]]:
        """The table at this revision, validated once."""
        if self._rows is None:
            from ..catalog import table

            self._rows = table.load(self.read_bytes(layout.TABLE_PATH) or b"", f"{layout.TABLE_PATH}@{self.rev}")
        return self._rows

    def latest_rows(self) -> list[dict[str, str]]:
        from ..catalog.query import latest_per_model

        return latest_per_model(self.rows())

    def model_rows(self, model: str) -> list[dict[str, str]]:
        return [r for r in self.rows() if r["model"] == model]

    def model_names(self) -> list[str]:
        return sorted({r["model"] for r in self.rows()})

    def stored_records(self, models=None) -> dict[str, dict]:
        """The evaluation records committed at this revision (all models, or these)."""
        from ..catalog.records import parse_results

        names = (sorted(f"{m}.json" for m in set(models)) if models is not None
                 else self.list_dir(layout.EVALUATIONS_DIR))
        return parse_results((f"{layout.EVALUATIONS_DIR}/{n} at {self.rev}",
                              self.read_bytes(f"{layout.EVALUATIONS_DIR}/{n}")) for n in names)

    def records_of(self, wanted: dict[str, set[int]]) -> dict[str, dict]:
        """The stored records of these models (at least those of these steps): a revision's files are read whole."""
        return self.stored_records(wanted)

    def registry(self, *, strict: bool = True, code: bool = True, trusted: bool = False):
        """The registries at this revision; its code folder is made importable only when asked for (``code``),
        and runs only when ``trusted``."""
        from ..registry import load_registry

        if not strict:
            return load_registry(self.list_dir, self.read_bytes, strict=False)
        if self._registry is None:
            code_dir = (self.checkout() / layout.CODE_DIR) if code and self.list_dir(layout.CODE_DIR) else None
            self._registry = load_registry(self.list_dir, self.read_bytes, code_dir=code_dir, trusted=trusted)
        return self._registry

    def forget(self, registry: bool = False) -> None:
        """Nothing changes at a revision; kept for the Source protocol."""

    def _mirror(self) -> Path:
        key = hashlib.sha256(self.url.encode()).hexdigest()[:24]
        mirror = environ.cache_dir() / "repos" / f"{key}.git"
        if mirror.exists():
            if not environ.offline():
                try:
                    fetched = gitcmd.run_network(mirror, self.url, "fetch", "--progress", "--prune", "--tags",
                                                 operands=("origin",))
                except RemoteUnreachableError as e:
                    raise RemoteUnreachableError(f"{e}; or set ZOO_OFFLINE=1 to use the cached copy") from None
                if fetched.returncode != 0:
                    raise StorageError(f"cannot reach {self.url}: {gitcmd.last_line(fetched)}; "
                                       "set ZOO_OFFLINE=1 to use the cached copy")
            return mirror
        if environ.offline():
            raise MissingFileError(f"{self.url} has never been fetched and ZOO_OFFLINE=1 is set; go online once")
        mirror.parent.mkdir(parents=True, exist_ok=True)
        for stale in mirror.parent.glob(f"{mirror.name}.tmp-*"):  # left by a killed zoo
            pid = stale.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        tmp = mirror.with_name(mirror.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            proc = gitcmd.run_network(mirror.parent, self.url, "clone", "--mirror", "--progress",
                                      operands=(self.url, str(tmp)))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            cause = gitcmd.last_line(proc)
            if "does not appear to be a git repository" in cause:
                raise NotAZooError(f"{self.url}: not a git repository ({cause.removeprefix('fatal: ')}); "
                                   "give a zoo clone or a git URL")
            raise StorageError(f"cannot reach {self.url}: {cause}")
        try:
            os.replace(tmp, mirror)
        except OSError:
            if not mirror.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another zoo process mirrored it first
        return mirror

    def checkout(self) -> Path:
        """A worktree of the mirror at this commit (git files only; DVC reads the remote config there,
        which a bare clone cannot give it when the remote is a path relative to the repo)."""
        path = environ.cache_dir() / "checkouts" / self.commit
        if not (path / ".dvc").is_dir():
            shutil.rmtree(path, ignore_errors=True)
            gitcmd.run(self.git_dir, "worktree", "prune", check=False)
            gitcmd.run(self.git_dir, "worktree", "add", "--detach", "--force", operands=(str(path), self.commit))
        return path

    def read_bytes(self, rel: str) -> bytes | None:
        """A file's bytes at the revision, or None if it does not exist there."""
        proc = gitcmd.run(self.git_dir, "cat-file", "blob", operands=(f"{self.commit}:{rel}",), end="--end-of-options",
                          check=False)
        return proc.stdout if proc.returncode == 0 else None

    def list_dir(self, rel: str) -> list[str]:
        """File names directly inside a folder at the revision."""
        proc = gitcmd.run(self.git_dir, "ls-tree", "--name-only", operands=(f"{self.commit}:{rel}",),
                          end="--end-of-options", check=False)
        return proc.stdout.decode().split() if proc.returncode == 0 else []

    def fetch(self, rel: str, sha256: str, stamps, remote: str | None = None) -> Path:
        """A verified local copy of the checkpoint at ``rel`` whose sha256 must be ``sha256``, from ``remote``
        (default: the one this source was opened with, else the revision's default remote)."""
        target = environ.cache_dir() / "objects" / sha256[:2] / sha256
        if target.is_file():
            if stamps.sha256(target) == sha256:
                return target
            target.unlink()  # tampered or damaged: never handed over
        if environ.offline():
            raise MissingFileError(f"{rel} ({sha256[:12]}…) is not in the local cache and ZOO_OFFLINE=1 is set")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            repo = self.url if self.local else str(self.checkout())
            digest = download_at_revision(repo, self.commit, rel, tmp, remote=remote or self.remote, label=self.url,
                                          own_dvc_dir=self.git_dir / ".dvc" if self.local else None)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if digest != sha256:
            tmp.unlink(missing_ok=True)
            raise IntegrityError(f"{rel} at {self.rev} of {self.url}: downloaded bytes have sha256 "
                                 f"{digest[:12]}…, the table says {sha256[:12]}…; refused")
        os.replace(tmp, target)
        stamps.record(target, sha256)
        return target

    def fetch_folder(self, rel: str, files: dict[str, str], digest: str, stamps, remote: str | None = None) -> Path:
        """A verified local copy of the folder checkpoint at ``rel`` (``files``: name -> sha256; ``digest``: its
        manifest's sha256): each file fetched as above, then linked into one folder named by the digest."""
        import shutil

        objects = {name: self.fetch(f"{rel}/{name}", sha, stamps, remote=remote) for name, sha in files.items()}
        target = environ.cache_dir() / "folders" / digest[:2] / digest
        if target.is_dir() and sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == \
                sorted(files) and all(
                stamps.sha256(target / name) == sha for name, sha in files.items()):
            return target
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            for name, obj in objects.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(obj, tmp / name)  # the cache's verified object: no second copy of the bytes
                except OSError:
                    shutil.copyfile(obj, tmp / name)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

