"""DVC storage: the only module that imports dvc.

Each model folder ``zoo/checkpoints/<model>`` is one DVC-tracked directory with its pointer
``zoo/checkpoints/<model>.dvc``. Files inside it are added, removed, fetched and pushed one by one
(DVC's granular targets), so nothing else of the zoo is read or downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .errors import StorageError


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class Storage:
    """DVC operations on one zoo repository, opened lazily."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._repo = None

    @property
    def repo(self):
        if self._repo is None:
            from dvc.exceptions import NotDvcRepoError
            from dvc.repo import Repo

            try:
                self._repo = Repo(str(self.root))
            except NotDvcRepoError:
                raise StorageError(f"{self.root}: not a DVC repository; run `dvc init` there") from None
            # zoo stages files itself; DVC's "To track the changes with git" hint would be noise
            self._repo.scm_context.quiet = True
        return self._repo

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def default_remote(self) -> str | None:
        """Name of the default remote, or None."""
        return self.repo.config["core"].get("remote")

    def _remote_name(self, remote: str | None) -> str:
        return remote or self.default_remote() or "(no default remote)"

    def _abs(self, rel: str) -> str:
        # DVC resolves relative targets against the process's cwd, not the repo
        return str(self.root / rel)

    @staticmethod
    def pointer(model_dir: str) -> str:
        return model_dir.rstrip("/") + ".dvc"

    def track(self, files: list[str]) -> None:
        """Record new or changed files (and removed ones) in their model folder's DVC pointer.

        A folder with no pointer yet is added whole; an existing one is updated file by file, which
        keeps entries of files that are not pulled locally.
        """
        repo = self.repo
        whole, granular = [], []
        for f in files:
            folder = str(Path(f).parent)
            if (self.root / self.pointer(folder)).exists():
                granular.append(f)
            elif folder not in whole:
                whole.append(folder)
        try:
            for target in whole + granular:
                repo.add(self._abs(target))
        except Exception as e:  # DVC raises many unrelated types; all mean the add failed
            raise StorageError(f"dvc add failed for {', '.join(whole + granular)}: {_first_line(e)}") from None

    def untrack_folder(self, folder: str) -> None:
        """Stop tracking a model folder that no longer holds any checkpoint."""
        pointer = self.root / self.pointer(folder)
        try:
            self.repo.remove(str(pointer), outs=True)
        except Exception as e:
            raise StorageError(f"dvc remove failed for {pointer.name}: {_first_line(e)}") from None

    def manifest(self, folder: str) -> dict[str, str] | None:
        """relpath -> md5 for a tracked folder, from its ``.dir`` manifest in the local cache (None if absent)."""
        pointer = self.root / self.pointer(folder)
        if not pointer.exists():
            return None
        import yaml

        data = yaml.safe_load(pointer.read_text())
        md5 = data["outs"][0]["md5"]
        obj = self.cache_path(md5)
        if not obj.exists():
            return None
        entries = json.loads(obj.read_text())
        return {e["relpath"]: e["md5"] for e in entries}

    def cache_path(self, md5: str) -> Path:
        """Where DVC keeps an object with this md5 in the local cache."""
        cache_root = Path(self.repo.cache.local.path)
        return cache_root / md5[:2] / md5[2:]

    def cached_object(self, path: str) -> Path | None:
        """Local cache object of a file inside a tracked folder (None if not fetched)."""
        p = Path(path)
        files = self.manifest(str(p.parent))
        if not files or p.name not in files:
            return None
        obj = self.cache_path(files[p.name])
        return obj if obj.exists() else None

    def fetch_manifests(self, pointers: list[Path], remote: str | None = None) -> int:
        """Put the ``.dir`` manifests named by these pointer files into the local cache (nothing else);
        returns how many were downloaded. DVC's merge driver needs all three sides' manifests."""
        import yaml

        wanted = set()
        for p in pointers:
            try:
                outs = (yaml.safe_load(p.read_text()) or {}).get("outs") or []
            except (OSError, yaml.YAMLError):
                continue
            wanted |= {o["md5"] for o in outs if str(o.get("md5", "")).endswith(".dir")}
        missing = [m for m in sorted(wanted) if not self.cache_path(m).exists()]
        if not missing:
            return 0
        try:
            odb = self.repo.cloud.get_remote_odb(remote, "fetch")
            for md5 in missing:
                dest = self.cache_path(md5)
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_name(dest.name + ".tmp")
                odb.fs.get_file(odb.oid_to_path(md5), str(tmp))
                json.loads(tmp.read_text())  # a manifest is JSON; anything else must not enter the cache
                tmp.replace(dest)
        except Exception as e:
            raise StorageError(f"remote {self._remote_name(remote)!r}: cannot fetch the folder manifests the "
                               f"merge needs: {_first_line(e)}; run `dvc fetch` and merge again") from None
        return len(missing)

    def fetch(self, paths: list[str], remote: str | None = None) -> None:
        """Download the cache objects of exactly these files (plus their folders' manifests)."""
        from dvc.exceptions import DownloadError

        try:
            self.repo.fetch(targets=[self._abs(p) for p in paths], remote=remote)
        except DownloadError as e:
            raise StorageError(
                f"remote {self._remote_name(remote)!r}: {e.amount} file(s) could not be downloaded "
                f"({', '.join(paths)}); have they been pushed? run `zoo push` where they were added"
            ) from None
        except Exception as e:
            raise StorageError(f"remote {self._remote_name(remote)!r}: fetch failed: {_first_line(e)}") from None

    def checkout(self, paths: list[str]) -> None:
        """Put fetched files into the workspace."""
        try:
            self.repo.checkout(targets=[self._abs(p) for p in paths], force=True)
        except Exception as e:
            raise StorageError(f"checkout failed for {', '.join(paths)}: {_first_line(e)}") from None

    def push(self, paths: Iterable[str], remote: str | None = None) -> int:
        """Upload these files' cache objects; returns how many objects were transferred."""
        from dvc.exceptions import UploadError

        paths = list(paths)
        try:
            return int(self.repo.push(targets=[self._abs(p) for p in paths], remote=remote) or 0)
        except UploadError as e:
            raise StorageError(f"remote {self._remote_name(remote)!r}: {e.amount} file(s) failed to upload") from None
        except Exception as e:
            raise StorageError(f"remote {self._remote_name(remote)!r}: push failed: {_first_line(e)}") from None


def download_at_revision(repo: str, rev: str, path: str, dest: Path, remote: str | None = None) -> str:
    """Stream one DVC-tracked file of ``repo`` (path or git URL) at ``rev`` into ``dest``; return its sha256.

    Only that file's object (and its folder's manifest) is read from the remote; nothing is checked out.
    """
    import hashlib
    import os

    from dvc.api import DVCFileSystem

    h = hashlib.sha256()
    try:
        fs = DVCFileSystem(repo, rev=rev, remote=remote)
        try:
            with fs.open(path, "rb") as src, open(dest, "wb") as dst:
                while chunk := src.read(8 * 1024 * 1024):
                    h.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
        finally:
            fs.close()
    except Exception as e:  # DVC and its remotes raise many unrelated types
        raise StorageError(f"{path} at {rev[:12]} of {repo}: download failed"
                           f"{' from remote ' + repr(remote) if remote else ''}: {_first_line(e)}") from None
    return h.hexdigest()
