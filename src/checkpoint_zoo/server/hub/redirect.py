"""``zoo serve --redirect-to-storage``: a Hub GET of a checkpoint's weights answered with a 302 to a short-lived
presigned URL of its object on the S3 remote, so the bytes flow from storage to the client and never through
the server.

DVC keeps a file at ``{remote url}/files/md5/{md5[:2]}/{md5[2:]}``; the md5 of a checkpoint's file is in its
model folder's ``.dir`` manifest (named by the folder pointer ``zoo/checkpoints/<model>.dvc``), read once per
manifest from the remote and checked against its own md5. Each remote's client is the one the zoo's own S3
transfers use, built from DVC's settings of the remote (``.dvc/config.local``'s keys, else boto3's default
chain); only the signature leaves the server.

The option is refused at start unless the clone's default remote is S3: a flag that can never redirect is a
mistake worth one line. Any single file that cannot be redirected (its pointer names another remote, or its
manifest is not on the remote yet) is served directly instead: slower, never wrong. A manifest on the remote
means its files are there too (a push uploads a folder's files before its manifest), so a GET costs no
storage call once its manifest has been read.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import TYPE_CHECKING

from ...errors import UsageError, ZooError
from ...storage.base import tracked_split

if TYPE_CHECKING:
    from ...storage.dvc.s3fast import S3Remote

MIN_SECONDS, MAX_SECONDS = 60, 3600
MAX_MANIFESTS = 4096


def expiry_problem(seconds: int) -> str | None:
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        return (f"--presign-seconds {seconds}: how long a redirect's presigned URL stays valid, from {MIN_SECONDS} "
                f"to {MAX_SECONDS} seconds (default 600)")
    return None


class StorageRedirects:
    """Presigned URLs of checkpoint files on the clone's S3 remotes (one boto3 client per remote)."""

    def __init__(self, remotes: dict[str, S3Remote], default: str, seconds: int) -> None:
        self.remotes = remotes
        self.default = default
        self.seconds = seconds
        self._manifests: dict[str, dict[str, str] | None] = {}  # .dir md5 -> relpath -> md5 (None: unreadable)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, zoo, seconds: int) -> StorageRedirects:
        """The redirects of ``zoo`` (a clone's working tree), refused in one line unless its default remote is S3.
        Each remote's client is the one ``zoo push``/``zoo pull`` use (``storage/dvc/s3fast.open_remote``, from
        DVC's own settings of the remote)."""
        problem = expiry_problem(seconds)
        if problem is not None:
            raise UsageError(problem)
        if zoo.revision is not None:
            raise UsageError(f"--redirect-to-storage: {zoo.location} is not a local clone; serve a clone whose DVC "
                             "config names the S3 remote (and its credentials)")
        store = zoo.storage
        configured = {r["name"]: r for r in store.remotes()} if hasattr(store, "s3_remote") else {}
        default = next((name for name, r in configured.items() if r.get("default")), "")
        remotes = {name: r for name, conf in configured.items()
                   if str(conf.get("url") or "").startswith("s3://") and (r := _opened(store, name)) is not None}
        if default not in remotes:
            shown = f"remote {default!r} ({configured[default]['url']})" if default in configured else "no default remote"
            raise UsageError(f"--redirect-to-storage: the clone's default DVC remote must be S3, and it has {shown}; "
                             "set one with `zoo remote add NAME s3://BUCKET/PREFIX --endpoint URL --default`, or drop "
                             "the option")
        return cls(remotes, default, seconds)

    def url(self, zoo, path: str, size: int | None = None) -> tuple[str, int] | None:
        """(presigned URL, size) of the checkpoint file at table path ``path`` in ``zoo`` (read at the served
        revision), or None when it cannot be redirected (then it is served directly)."""
        folder, rel = tracked_split(path)
        pointer = zoo.source.read_bytes(folder.rstrip("/") + ".dvc")
        if pointer is None:
            return None
        dir_md5, remote_name = _pointer(pointer)
        remote = self.remotes.get(remote_name or self.default)
        if dir_md5 is None or remote is None:
            return None
        manifest = self._manifest(remote, dir_md5)
        md5 = (manifest or {}).get(rel)
        if md5 is None:
            return None
        client = remote.client
        key = remote.key(md5)
        if size is None:  # a folder checkpoint's file: the table records no size, the object does
            try:
                size = int(client.head_object(Bucket=remote.bucket, Key=key)["ContentLength"])
            except Exception:  # noqa: BLE001 - not on the remote (or unreachable): served directly
                return None
        try:
            signed = client.generate_presigned_url("get_object", ExpiresIn=self.seconds,
                                                   Params={"Bucket": remote.bucket, "Key": key, **remote.get_args})
        except Exception:  # noqa: BLE001 - no credentials found to sign with: served directly
            return None
        return str(signed), size

    def _manifest(self, remote: S3Remote, dir_md5: str) -> dict[str, str] | None:
        """relpath -> md5 of a folder's ``.dir`` manifest on the remote, checked against its md5, read once."""
        cache_key = f"{remote.bucket}/{remote.base}\0{dir_md5}"
        with self._lock:
            if cache_key in self._manifests:
                return self._manifests[cache_key]
        try:
            raw = remote.client.get_object(Bucket=remote.bucket, Key=remote.key(dir_md5),
                                           **remote.get_args)["Body"].read()
        except Exception:  # noqa: BLE001 - not pushed yet, or unreachable: try again next time
            return None
        found = None
        if hashlib.md5(raw, usedforsecurity=False).hexdigest() == dir_md5.removesuffix(".dir"):
            try:
                found = {str(e["relpath"]): str(e["md5"]) for e in json.loads(raw)}
            except (ValueError, TypeError, KeyError):
                found = None
        with self._lock:
            if len(self._manifests) >= MAX_MANIFESTS:
                self._manifests.clear()
            self._manifests[cache_key] = found
        return found


def _opened(store, name: str) -> S3Remote | None:
    """The store's S3 remote ``name``, or None when it is not a plain S3 remote or DVC cannot open it."""
    try:
        return store.s3_remote(name)
    except Exception:  # noqa: BLE001 - DVC raises many types for a remote it cannot open: not redirected
        return None


def _pointer(raw: bytes) -> tuple[str | None, str | None]:
    """(``.dir`` md5, remote name or None) of a model folder's pointer; (None, None) when it is not one."""
    from ...utils.safe_yaml import load_yaml

    try:
        out = load_yaml(raw, "pointer")["outs"][0]
        md5 = str(out["md5"])
    except (ZooError, TypeError, KeyError, IndexError):
        return None, None
    return (md5 if md5.endswith(".dir") else None), (str(out["remote"]) if out.get("remote") else None)
