"""``zoo serve --redirect-to-storage``: a Hub GET of a checkpoint's weights answered with a 302 to a short-lived
presigned URL of its object on the S3 remote, so the bytes flow from storage to the client and never through
the server.

DVC keeps a file at ``{remote url}/files/md5/{md5[:2]}/{md5[2:]}``; the md5 of a checkpoint's file is in its
model folder's ``.dir`` manifest (named by the folder pointer ``zoo/checkpoints/<model>.dvc``), read once per
manifest from the remote and checked against its own md5. The signing credentials come from the clone's DVC
remote config (``.dvc/config.local``'s ``access_key_id``/``secret_access_key``, else boto3's default chain);
only the signature leaves the server.

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
from dataclasses import dataclass
from typing import Any

from ...errors import UsageError, ZooError
from ...storage.base import tracked_split

MIN_SECONDS, MAX_SECONDS = 60, 3600
MAX_MANIFESTS = 4096


@dataclass(frozen=True)
class Remote:
    """One S3 remote of the clone's DVC config: its bucket, key prefix and client options."""

    name: str
    bucket: str
    prefix: str
    options: dict[str, Any]

    def key(self, md5: str) -> str:
        """The object key DVC 3 gives a file with this md5 (``files/md5/xx/rest``)."""
        return "/".join(p for p in (self.prefix, "files", "md5", md5[:2], md5[2:]) if p)


def s3_remote(name: str, conf: dict[str, Any]) -> Remote | None:
    """The S3 remote a DVC remote section describes, or None when its url is not ``s3://``."""
    url = str(conf.get("url") or "")
    if not url.startswith("s3://"):
        return None
    bucket, _, prefix = url[len("s3://"):].partition("/")
    options = {"endpoint_url": conf.get("endpointurl"), "region_name": conf.get("region"),
               "aws_access_key_id": conf.get("access_key_id"), "aws_secret_access_key": conf.get("secret_access_key"),
               "aws_session_token": conf.get("session_token"), "profile_name": conf.get("profile")}
    return Remote(name, bucket, prefix.strip("/"), {k: str(v) for k, v in options.items() if v})


def expiry_problem(seconds: int) -> str | None:
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        return (f"--presign-seconds {seconds}: how long a redirect's presigned URL stays valid, from {MIN_SECONDS} "
                f"to {MAX_SECONDS} seconds (default 600)")
    return None


class StorageRedirects:
    """Presigned URLs of checkpoint files on the clone's S3 remotes (one boto3 client per remote)."""

    def __init__(self, remotes: dict[str, Remote], default: str, seconds: int) -> None:
        self.remotes = remotes
        self.default = default
        self.seconds = seconds
        self._clients: dict[str, Any] = {}
        self._manifests: dict[str, dict[str, str] | None] = {}  # .dir md5 -> relpath -> md5 (None: unreadable)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, zoo, seconds: int) -> StorageRedirects:
        """The redirects of ``zoo`` (a clone's working tree), refused in one line unless its default remote is S3."""
        problem = expiry_problem(seconds)
        if problem is not None:
            raise UsageError(problem)
        if zoo.revision is not None:
            raise UsageError(f"--redirect-to-storage: {zoo.location} is not a local clone; serve a clone whose DVC "
                             "config names the S3 remote (and its credentials)")
        config = getattr(zoo.storage, "repo", None)
        config = getattr(config, "config", None)
        sections = dict(config["remote"]) if config is not None else {}
        default = str(config["core"].get("remote") or "") if config is not None else ""
        remotes = {name: r for name, conf in sections.items() if (r := s3_remote(name, dict(conf))) is not None}
        if default not in remotes:
            shown = f"remote {default!r} ({sections[default].get('url')})" if default in sections else "no default remote"
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
        client = self._client(remote)
        key = remote.key(md5)
        if size is None:  # a folder checkpoint's file: the table records no size, the object does
            try:
                size = int(client.head_object(Bucket=remote.bucket, Key=key)["ContentLength"])
            except Exception:  # noqa: BLE001 - not on the remote (or unreachable): served directly
                return None
        try:
            signed = client.generate_presigned_url("get_object", Params={"Bucket": remote.bucket, "Key": key},
                                                   ExpiresIn=self.seconds)
        except Exception:  # noqa: BLE001 - no credentials found to sign with: served directly
            return None
        return str(signed), size

    def _client(self, remote: Remote):
        with self._lock:
            client = self._clients.get(remote.name)
        if client is None:
            import boto3
            from botocore.config import Config

            options = dict(remote.options)
            session = boto3.session.Session(profile_name=options.pop("profile_name", None))
            client = session.client("s3", config=Config(signature_version="s3v4", retries={"max_attempts": 2}),
                                    **options)
            with self._lock:
                self._clients[remote.name] = client
        return client

    def _manifest(self, remote: Remote, dir_md5: str) -> dict[str, str] | None:
        """relpath -> md5 of a folder's ``.dir`` manifest on the remote, checked against its md5, read once."""
        cache_key = f"{remote.name}\0{dir_md5}"
        with self._lock:
            if cache_key in self._manifests:
                return self._manifests[cache_key]
        try:
            raw = self._client(remote).get_object(Bucket=remote.bucket, Key=remote.key(dir_md5))["Body"].read()
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


def _pointer(raw: bytes) -> tuple[str | None, str | None]:
    """(``.dir`` md5, remote name or None) of a model folder's pointer; (None, None) when it is not one."""
    from ...utils.safe_yaml import load_yaml

    try:
        out = load_yaml(raw, "pointer")["outs"][0]
        md5 = str(out["md5"])
    except (ZooError, TypeError, KeyError, IndexError):
        return None, None
    return (md5 if md5.endswith(".dir") else None), (str(out["remote"]) if out.get("remote") else None)
