"""Reading one file of a zoo at another revision (a git ref of this clone, or of a URL) straight from its
remote, without a checkout; a cloud remote that only that revision names is refused before it gets any
credentials.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import RemoteConfigError, StorageError, ZooError
from ...utils.redact import redact_urls
from .failures import KIND_ERRORS, classify_remote_failure, first_line, remote_session


def _endpoint(conf: dict) -> tuple[str, str]:
    return str(conf.get("url") or "").rstrip("/"), str(conf.get("endpointurl") or "").rstrip("/")


def _describe(conf: dict) -> str:
    url, endpoint = _endpoint(conf)
    return f"{url}, endpoint {endpoint}" if endpoint else url


def _refuse_foreign_remote(config: dict, remote: str | None, own_dvc_dir: Path | None, where: str) -> None:
    """Raise RemoteConfigError unless the remote DVC would use at a revision is one the user configured.

    Credentials (the environment's, ``.dvc/config.local``'s) go to whatever remote DVC talks to, and at a
    revision DVC takes the remotes from that revision's committed ``.dvc/config``. So a cloud remote is
    used only when its url and endpoint are those of a remote of the user's own configuration (the
    working tree's ``.dvc/config`` and ``config.local`` at ``own_dvc_dir``, and the global and system
    DVC config), or when it is named explicitly with ``remote`` and the user has no remote of that name
    pointing elsewhere. Local folder remotes get no credentials and are always allowed."""
    from dvc.config import Config

    name = config["core"].get("remote")
    conf = config.get("remote", {}).get(name) if name else None
    if conf is None:
        return  # no remote: DVC reads its cache only, and says so if the object is not there
    url = str(conf.get("url") or "")
    if "://" not in url or url.startswith("file://"):
        return
    mine = Config(dvc_dir=str(own_dvc_dir) if own_dvc_dir else None).get("remote", {})
    if _endpoint(conf) in {_endpoint(r) for r in mine.values()}:
        return
    if name in mine:
        raise RemoteConfigError(
            f"{where}: remote {name!r} there points at {_describe(conf)}, but your {name!r} points at "
            f"{_describe(mine[name])} and your credentials for it go only there; read that revision with "
            "remote=NAME (CLI: --remote NAME) of a remote you configured for its bytes")
    if remote is not None:
        return  # named by the user: they chose to trust it
    how = ("add it to your clone with `zoo remote add`" if own_dvc_dir else
           f"pass remote={name!r} (CLI: --remote {name}) if you trust it, or configure it with `dvc remote add --global`")
    raise RemoteConfigError(
        f"{where}: its default remote {name!r} ({_describe(conf)}) comes from that revision, not from your "
        f"configuration, and gets none of your credentials; pass remote=NAME (CLI: --remote NAME) of a remote "
        f"you configured, or {how}")


def download_at_revision(repo: str, rev: str, path: str, dest: Path, remote: str | None = None,
                         own_dvc_dir: Path | None = None, label: str | None = None) -> str:
    """Stream one DVC-tracked file of ``repo`` (path or git URL) at ``rev`` into ``dest``; return its sha256.

    Only that file's object (and its folder's manifest) is read from the remote; nothing is checked out.
    A cloud remote that only the revision defines is refused before anything connects (see
    ``_refuse_foreign_remote``): ``own_dvc_dir`` is the ``.dvc`` folder of the user's working tree, None
    for a zoo read from a URL. ``label`` names the repository in messages (default ``repo``).
    """
    import hashlib

    from dvc.api import DVCFileSystem

    h = hashlib.sha256()
    where = f"{path} at {rev[:12]} of {label or repo}"
    with remote_session() as log:
        try:
            fs = DVCFileSystem(repo, rev=rev, remote=remote)
            try:
                _refuse_foreign_remote(fs.repo.config, remote, own_dvc_dir, where)
                with fs.open(path, "rb") as src, open(dest, "wb") as dst:
                    while chunk := src.read(8 * 1024 * 1024):
                        h.update(chunk)
                        dst.write(chunk)
                    dst.flush()
                    os.fsync(dst.fileno())
            finally:
                fs.close()
        except ZooError:
            raise
        except Exception as e:  # DVC and its remotes raise many unrelated types
            found = classify_remote_failure([*log.errors, e], log.warnings)
            kind = KIND_ERRORS.get(found[0], StorageError) if found else StorageError
            cause = f"{found[1]} ({first_line(e)})" if found else first_line(e)
            raise kind(redact_urls(f"{where}: download failed"
                                   f"{' from remote ' + repr(remote) if remote else ''}: {cause}")) from None
    return h.hexdigest()
