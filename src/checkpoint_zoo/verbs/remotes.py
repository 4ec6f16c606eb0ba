"""``zoo remote``: DVC remotes in zoo terms; credentials never go into the committed .dvc/config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..catalog import rules
from ..entities import RemoteInfo
from ..errors import InvalidValueError, SecretError
from ..utils import environ
from ..utils.redact import control_character, redact_url, url_credentials

if TYPE_CHECKING:
    from .facade import Facade


def remotes(zoo: Facade) -> list[RemoteInfo]:
    """The remotes this clone knows: the committed ``.dvc/config`` plus its own ``.dvc/config.local``."""
    zoo.writable("remote list")
    out = []
    for r in zoo.storage.remotes():
        options = dict(r["options"])
        creds = ""
        if r["url"].startswith("s3://"):
            creds = ("config.local" if r["local_secrets"] else
                     "environment" if environ.aws_credentials_in_env() else "AWS default chain")
        out.append(RemoteInfo(r["name"], r["url"], r["level"], r["default"], options.pop("endpointurl", None),
                              options, creds, r["committed_secrets"]))
    return out


def remote(zoo: Facade, name: str) -> RemoteInfo:
    """One configured remote by name."""
    return next(r for r in zoo.remotes() if r.name == name)


def remote_add(zoo: Facade, name: str, url: str, *, endpoint: str | None = None, region: str | None = None,
               options: dict[str, str] | None = None, default: bool = False, local: bool = False,
               force: bool = False) -> RemoteInfo:
    """Configure a remote (``s3://BUCKET/PREFIX`` with an S3-compatible ``endpoint``, or any DVC URL).

    Written to the committed ``.dvc/config`` (and staged in git), or with ``local`` to this clone's
    ``.dvc/config.local``. Credentials (access_key_id, secret_access_key, session_token …, or a
    ``user:password@`` in any URL) are refused unless ``local``: keep them in the environment or in
    config.local. Waits for the zoo's lock, so concurrent remote commands all land.
    """
    zoo.writable("remote add")
    problem = rules.slug_problem(name, "remote name")
    if problem:
        raise InvalidValueError(problem)
    opts = {str(k): str(v) for k, v in (options or {}).items()}
    _check_values(name, {"url": url, **opts, **({"endpointurl": endpoint} if endpoint is not None else {}),
                         **({"region": region} if region is not None else {})}, local,
                 labels={"endpointurl": "--endpoint", "region": "--region"} if endpoint or region else None)
    if url.startswith("s3://"):
        bucket = url[len("s3://"):].split("/", 1)[0]
        if not bucket:
            raise InvalidValueError(f"{url!r}: name the bucket, as in s3://BUCKET/PREFIX")
    elif "://" in url and (endpoint is not None or region is not None):
        raise InvalidValueError(f"--endpoint and --region are S3 options; {redact_url(url)!r} is not an s3:// URL")
    if endpoint is not None:
        opts["endpointurl"] = _check_endpoint(endpoint)
    if region is not None:
        opts["region"] = region
    with zoo.workspace.lock():
        zoo.storage.add_remote(name, url, opts, level="local" if local else "repo", default=default, force=force)
        if not local:
            zoo.workspace.stage([".dvc/config"])
    return remote(zoo, name)


def remote_modify(zoo: Facade, name: str, key: str, value: str | None, *, local: bool = False) -> RemoteInfo:
    """Set one option of a remote (``value`` None unsets it); secrets only with ``local``."""
    zoo.writable("remote modify")
    _check_values(name, {key: value or ""}, local)
    if key == "endpointurl" and value is not None:
        value = _check_endpoint(value)
    with zoo.workspace.lock():
        zoo.storage.modify_remote(name, key, value, level="local" if local else "repo")
        if not local:
            zoo.workspace.stage([".dvc/config"])
    return remote(zoo, name)


def remote_default(zoo: Facade, name: str | None, *, local: bool = False) -> None:
    """Make ``name`` the default remote (None: no default) in .dvc/config (or config.local)."""
    zoo.writable("remote default")
    with zoo.workspace.lock():
        zoo.storage.set_default_remote(name, level="local" if local else "repo")
        if not local:
            zoo.workspace.stage([".dvc/config"])


def remote_remove(zoo: Facade, name: str) -> list[str]:
    """Forget a remote (in .dvc/config and .dvc/config.local); returns the files it was removed from."""
    zoo.writable("remote remove")
    with zoo.workspace.lock():
        levels = zoo.storage.remove_remote(name)
        if "repo" in levels:
            zoo.workspace.stage([".dvc/config"])
    return [".dvc/config" if lv == "repo" else ".dvc/config.local" for lv in levels]


def _check_values(name: str, options: dict[str, str], local: bool, labels: dict[str, str] | None = None) -> None:
    """The one check of everything written to a remote's config (its URL, --endpoint, each -o option,
    remote modify): one line of printable text, a well-formed URL where it is one, and no credential
    (a secret option or a ``user:password@`` in a URL) in the committed .dvc/config. ``labels``: how the
    caller named some options (``--endpoint`` for endpointurl), for the messages."""
    from ..storage.dvc import SECRET_OPTIONS

    def label(key: str) -> str:
        return (labels or {}).get(key, key)

    for key, value in options.items():
        for what, text in (("option name", key), (label(key) if key in (labels or {}) else f"{key} value", value)):
            bad = control_character(text)
            if bad:
                raise InvalidValueError(
                    f"remote {name!r}: {what} {redact_url(text)!r} holds the control character {bad} (a line "
                    "break, escape or the like); config values are one line of printable text: remove it; "
                    "nothing was written")
        if "://" in value:
            _parse_url(value, f"remote {name!r}: {label(key)}")
    secrets = sorted(k for k, v in options.items() if k in SECRET_OPTIONS and v)
    if secrets and not local:
        raise SecretError(
            f"remote {name!r}: {', '.join(secrets)} is a credential and .dvc/config is committed to git; "
            f"store it for this clone only with --local (`zoo remote modify {name} {secrets[0]} VALUE --local`) "
            "or use the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); nothing was written"
        )
    for key, value in options.items():
        kind = url_credentials(value)
        if kind and not local:
            raise SecretError(
                f"remote {name!r}: the {label(key)} given carries credentials in the URL ({kind}) and "
                f".dvc/config is committed to git; write it without them here and keep the URL with them in this "
                f"clone only (`zoo remote modify {name} {key} URL --local`, .dvc/config.local) or give the "
                "credentials through the environment; nothing was written")


def _parse_url(value: str, what: str):
    """urlsplit, with its ValueError (an unclosed ``[`` of an IPv6 host, a port that is not a number)
    turned into a one-line InvalidValueError."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (parsed lazily: a bad port raises only here)
    except ValueError as e:
        raise InvalidValueError(f"{what} {redact_url(value)!r} is not a valid URL ({e}); write it as "
                                "SCHEME://HOST[:PORT]/PATH, an IPv6 host in brackets ([::1]); nothing was written") from None
    return parts


def _check_endpoint(endpoint: str) -> str:
    parts = _parse_url(endpoint, "--endpoint")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValueError(f"--endpoint {redact_url(endpoint)!r}: give a URL such as http://127.0.0.1:9000 "
                                "or https://s3.example.com")
    if parts.username or parts.password:
        raise SecretError(f"--endpoint {redact_url(endpoint)!r}: credentials do not belong in the endpoint URL "
                          "(S3 never reads them there); use the environment or `zoo remote modify NAME "
                          "access_key_id KEY --local`; nothing was written")
    return endpoint.rstrip("/")
