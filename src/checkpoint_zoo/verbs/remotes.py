"""``zoo remote``: DVC remotes in zoo terms; credentials never go into the committed .dvc/config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import constants
from ..catalog import rules
from ..errors import InvalidValueError, SecretError
from ..model import RemoteInfo

if TYPE_CHECKING:
    from ..api import Zoo


def remotes(zoo: Zoo) -> list[RemoteInfo]:
    """The remotes this clone knows: the committed ``.dvc/config`` plus its own ``.dvc/config.local``."""
    zoo._workspace_only("remote list")
    out = []
    for r in zoo.storage.remotes():
        options = dict(r["options"])
        creds = ""
        if r["url"].startswith("s3://"):
            creds = ("config.local" if r["local_secrets"] else
                     "environment" if constants.aws_credentials_in_env() else "AWS default chain")
        out.append(RemoteInfo(r["name"], r["url"], r["level"], r["default"], options.pop("endpointurl", None),
                              options, creds, r["committed_secrets"]))
    return out


def remote(zoo: Zoo, name: str) -> RemoteInfo:
    """One configured remote by name."""
    return next(r for r in zoo.remotes() if r.name == name)


def remote_add(zoo: Zoo, name: str, url: str, *, endpoint: str | None = None, region: str | None = None,
               options: dict[str, str] | None = None, default: bool = False, local: bool = False,
               force: bool = False) -> RemoteInfo:
    """Configure a remote (``s3://BUCKET/PREFIX`` with an S3-compatible ``endpoint``, or any DVC URL).

    Written to the committed ``.dvc/config`` (and staged in git), or with ``local`` to this clone's
    ``.dvc/config.local``. Credentials (access_key_id, secret_access_key, session_token …) are refused
    unless ``local``: keep them in the environment or in config.local.
    """
    zoo._workspace_only("remote add")
    problem = rules.slug_problem(name, "remote name")
    if problem:
        raise InvalidValueError(problem)
    opts = {str(k): str(v) for k, v in (options or {}).items()}
    if url.startswith("s3://"):
        bucket = url[len("s3://"):].split("/", 1)[0]
        if not bucket:
            raise InvalidValueError(f"{url!r}: name the bucket, as in s3://BUCKET/PREFIX")
    elif "://" in url and (endpoint is not None or region is not None):
        raise InvalidValueError(f"--endpoint and --region are S3 options; {url!r} is not an s3:// URL")
    if endpoint is not None:
        opts["endpointurl"] = _check_endpoint(endpoint)
    if region is not None:
        opts["region"] = region
    _refuse_secrets(name, opts, local)
    zoo.storage.add_remote(name, url, opts, level="local" if local else "repo", default=default, force=force)
    if not local:
        zoo._git_add([".dvc/config"])
    return remote(zoo, name)


def remote_modify(zoo: Zoo, name: str, key: str, value: str | None, *, local: bool = False) -> RemoteInfo:
    """Set one option of a remote (``value`` None unsets it); secrets only with ``local``."""
    zoo._workspace_only("remote modify")
    if key == "endpointurl" and value is not None:
        value = _check_endpoint(value)
    if value is not None:
        _refuse_secrets(name, {key: value}, local)
    zoo.storage.modify_remote(name, key, value, level="local" if local else "repo")
    if not local:
        zoo._git_add([".dvc/config"])
    return remote(zoo, name)


def remote_default(zoo: Zoo, name: str | None, *, local: bool = False) -> None:
    """Make ``name`` the default remote (None: no default) in .dvc/config (or config.local)."""
    zoo._workspace_only("remote default")
    zoo.storage.set_default_remote(name, level="local" if local else "repo")
    if not local:
        zoo._git_add([".dvc/config"])


def remote_remove(zoo: Zoo, name: str) -> list[str]:
    """Forget a remote (in .dvc/config and .dvc/config.local); returns the files it was removed from."""
    zoo._workspace_only("remote remove")
    levels = zoo.storage.remove_remote(name)
    if "repo" in levels:
        zoo._git_add([".dvc/config"])
    return [".dvc/config" if lv == "repo" else ".dvc/config.local" for lv in levels]


def _refuse_secrets(name: str, options: dict[str, str], local: bool) -> None:
    """Credentials never go into the committed .dvc/config."""
    from ..storage.dvc import SECRET_OPTIONS

    secrets = sorted(k for k in options if k in SECRET_OPTIONS)
    if secrets and not local:
        raise SecretError(
            f"remote {name!r}: {', '.join(secrets)} is a credential and .dvc/config is committed to git; "
            f"store it for this clone only with --local (`zoo remote modify {name} {secrets[0]} VALUE --local`) "
            "or use the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); nothing was written"
        )


def _check_endpoint(endpoint: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValueError(f"--endpoint {endpoint!r}: give a URL such as http://127.0.0.1:9000 or https://s3.example.com")
    if parts.username or parts.password:
        raise SecretError(f"--endpoint {endpoint!r}: credentials do not belong in the endpoint URL; use the "
                          "environment or `zoo remote modify NAME access_key_id KEY --local`")
    return endpoint.rstrip("/")
