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
import subprocess
from pathlib import Path

from . import constants
from .errors import IntegrityError, MissingFileError, NotAZooError, StorageError, ZooError
from .storage.dvc import download_at_revision

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=10"}


def git(repo: Path, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run git in ``repo`` without prompts; raises ZooError with git's own last line on failure."""
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, timeout=timeout,
                          env={**os.environ, **_GIT_ENV})
    if check and proc.returncode != 0:
        last = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ZooError(f"git {' '.join(args[:2])} failed in {repo}: {last[-1] if last else proc.returncode}")
    return proc


def _is_local(url: str) -> bool:
    return "://" not in url and not (":" in url.split("/")[0] and not os.path.isabs(url)) and os.path.isdir(url)


class RevisionSource:
    """The git side of a zoo at ``rev``: a local repo, or a mirror of a URL kept in the user cache."""

    def __init__(self, url: str, rev: str | None = None, remote: str | None = None) -> None:
        self.url = str(url)
        self.remote = remote
        if _is_local(self.url):
            top = git(Path(self.url), "rev-parse", "--show-toplevel", check=False)
            if top.returncode != 0:
                raise NotAZooError(f"{self.url}: not a git repository; give a zoo clone or a git URL")
            self.git_dir = Path(top.stdout.decode().strip())
            self.local = True
        else:
            self.git_dir = self._mirror()
            self.local = False
        self.rev = rev or "HEAD"
        found = git(self.git_dir, "rev-parse", "--verify", "--quiet", f"{self.rev}^{{commit}}", check=False)
        if found.returncode != 0:
            raise ZooError(f"unknown revision {self.rev!r} in {self.url}; `zoo versions` lists the branches and tags")
        self.commit = found.stdout.decode().strip()
        if self.read_bytes(constants.TABLE_PATH) is None:
            raise NotAZooError(f"revision {self.rev!r} of {self.url} holds no zoo (no {constants.TABLE_PATH})")

    def _mirror(self) -> Path:
        key = hashlib.sha256(self.url.encode()).hexdigest()[:24]
        mirror = constants.cache_dir() / "repos" / f"{key}.git"
        if mirror.exists():
            if not constants.offline():
                fetched = git(mirror, "fetch", "--quiet", "--prune", "--tags", "origin", check=False, timeout=60)
                if fetched.returncode != 0:
                    raise StorageError(f"cannot reach {self.url}: {_last_line(fetched)}; "
                                       "set ZOO_OFFLINE=1 to use the cached copy")
            return mirror
        if constants.offline():
            raise MissingFileError(f"{self.url} has never been fetched and ZOO_OFFLINE=1 is set; go online once")
        mirror.parent.mkdir(parents=True, exist_ok=True)
        tmp = mirror.with_name(mirror.name + f".tmp-{os.getpid()}")
        proc = subprocess.run(["git", "clone", "--mirror", "--quiet", self.url, str(tmp)], capture_output=True,
                              timeout=300, env={**os.environ, **_GIT_ENV})
        if proc.returncode != 0:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            raise StorageError(f"cannot reach {self.url}: {_last_line(proc)}")
        os.replace(tmp, mirror)
        return mirror

    def checkout(self) -> Path:
        """A worktree of the mirror at this commit (git files only; DVC reads the remote config there,
        which a bare clone cannot give it when the remote is a path relative to the repo)."""
        path = constants.cache_dir() / "checkouts" / self.commit
        if not (path / ".dvc").is_dir():
            import shutil

            shutil.rmtree(path, ignore_errors=True)
            git(self.git_dir, "worktree", "prune", check=False)
            git(self.git_dir, "worktree", "add", "--detach", "--force", str(path), self.commit)
        return path

    def read_bytes(self, rel: str) -> bytes | None:
        """A file's bytes at the revision, or None if it does not exist there."""
        proc = git(self.git_dir, "cat-file", "blob", f"{self.commit}:{rel}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def list_dir(self, rel: str) -> list[str]:
        """File names directly inside a folder at the revision."""
        proc = git(self.git_dir, "ls-tree", "--name-only", f"{self.commit}:{rel}", check=False)
        return proc.stdout.decode().split() if proc.returncode == 0 else []

    def fetch(self, rel: str, sha256: str, stamps) -> Path:
        """A verified local copy of the checkpoint at ``rel`` whose sha256 must be ``sha256``."""
        target = constants.cache_dir() / "objects" / sha256[:2] / sha256
        if target.is_file():
            if stamps.sha256(target) == sha256:
                return target
            target.unlink()  # tampered or damaged: never handed over
        if constants.offline():
            raise MissingFileError(f"{rel} ({sha256[:12]}…) is not in the local cache and ZOO_OFFLINE=1 is set")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            repo = self.url if self.local else str(self.checkout())
            digest = download_at_revision(repo, self.commit, rel, tmp, remote=self.remote)
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


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = (proc.stderr.decode(errors="replace") if isinstance(proc.stderr, bytes) else proc.stderr).strip().splitlines()
    return lines[-1] if lines else f"exit {proc.returncode}"
