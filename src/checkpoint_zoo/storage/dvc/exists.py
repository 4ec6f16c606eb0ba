"""Which objects a remote holds, answered without opening DVC's repository where that is plain.

Opening DVC (``dvc.repo``, its config and its filesystems) costs a command about 0.3 s before it asks
anything; ``zoo release`` asks only "are these objects on the default remote". For a folder remote that is a
stat of ``<url>/files/md5/<2 hex>/<rest>`` per object; for a plain S3 remote (``url``, ``endpointurl``,
``region``, credentials, ``profile``, ssl and timeouts: what dvc-s3 passes to its client) a HEAD each, or a
listing, by ``s3fast.stat``; the local cache is ``.dvc/cache/files/md5``. All of it is read here from DVC's
own config files (system, global, repo, local, the later winning, as DVC merges them; a relative path is
relative to the file that names it). Anything else (another remote, S3 options this reader does not map, a
profile with an ``s3`` section in the AWS config, a cache moved by ``cache.dir``, a config it cannot parse)
answers None, and the caller takes DVC's own path, which also gives every refusal its usual message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

_URL = re.compile(r"\w+://")


def config_files(root: Path) -> list[Path]:
    """DVC's config files of the repository at ``root``, lowest level first (``dvc.config.Config.files``)."""
    import platformdirs

    system = os.getenv("DVC_SYSTEM_CONFIG_DIR") or platformdirs.site_config_dir("dvc", "iterative")
    user = os.getenv("DVC_GLOBAL_CONFIG_DIR") or platformdirs.user_config_dir("dvc", "iterative")
    return [Path(system) / "config", Path(user) / "config", root / ".dvc" / "config", root / ".dvc" / "config.local"]


def _merged(root: Path) -> dict[str, Any] | None:
    """{"remote": name or None, "remotes": {name: {key: value}}, "cache_dir": bool}; None if a file cannot
    be read as DVC would."""
    from configobj import ConfigObj, ConfigObjError

    out: dict[str, Any] = {"remote": None, "remotes": {}, "cache_dir": False}
    for path in config_files(root):
        if not path.is_file():
            continue
        try:
            conf = ConfigObj(str(path), list_values=False, interpolation=False, encoding="utf-8")
        except (ConfigObjError, OSError, UnicodeDecodeError):
            return None
        for section, values in conf.items():
            if not isinstance(values, dict):
                return None
            if section == "core" and "remote" in values:
                out["remote"] = values["remote"]
            elif section == "cache" and "dir" in values:
                out["cache_dir"] = True
            m = re.fullmatch(r'remote\s+"(.+)"', section)
            if m:
                mine = out["remotes"].setdefault(m.group(1), {})
                mine.update(values)
                if "url" in values:
                    mine["url"] = _resolve(path.parent, str(values["url"]))
    return out


def _resolve(conf_dir: Path, url: str) -> str:
    """A remote's URL as DVC reads it: a URL as it is, a path absolute or relative to its config file."""
    if _URL.match(url):
        return url
    expanded = os.path.expanduser(url)
    return expanded if os.path.isabs(expanded) else os.path.abspath(os.path.join(conf_dir, url))


CACHE = (".dvc", "cache", "files", "md5")


def checker(root: Path, remote: str | None) -> Callable[[set[str]], set[str]] | None:
    """A function giving which of a set of oids ``remote`` (None: the default) holds, when the remote is a
    folder or a plain S3 remote and the local cache is in its default place (``CACHE``); None when only DVC
    can answer. It may raise on S3 (the caller then asks DVC, which words the failure)."""
    opts = _remote_options(root, remote)
    if opts is None:
        return None
    url = str(opts.get("url", ""))
    if url and not _URL.match(url):
        objects = Path(url) / "files" / "md5"
        return lambda oids: {oid for oid in oids if (objects / oid[:2] / oid[2:]).exists()}
    fast = _s3_remote(root, opts) if url.startswith("s3://") else None
    if fast is None:
        return None
    from . import s3fast

    return lambda oids: set(s3fast.stat(fast, oids))


def _remote_options(root: Path, remote: str | None) -> dict[str, Any] | None:
    """The options of ``remote`` (None: the default; {} when there is none), or None when the config cannot be
    read as DVC would or moves the cache (``cache.dir``)."""
    conf = _merged(root)
    if conf is None or conf["cache_dir"]:
        return None
    name = remote or conf["remote"]
    return (conf["remotes"].get(name) or {}) if name else {}


def default_cache(root: Path) -> Path | None:
    """The local cache's objects folder (``CACHE``) when DVC's config leaves it in its default place; None
    when only DVC can say (a ``cache.dir``, a config this reader cannot parse)."""
    return root.joinpath(*CACHE) if _remote_options(root, None) is not None else None


def s3_remote(root: Path, remote: str | None, jobs: int | None = None) -> Any:
    """``remote`` (None: the default) as an ``s3fast.S3Remote`` when it is a plain S3 remote (see ``_s3_remote``)
    and the local cache is in its default place; None when only DVC can set it up (or name what is wrong)."""
    opts = _remote_options(root, remote)
    if opts is None or not str(opts.get("url", "")).startswith("s3://"):
        return None
    return _s3_remote(root, opts, jobs)


# dvc-s3's options that map onto a plain boto3 client (dvc_s3.S3FileSystem._prepare_credentials)
_S3_OPTIONS = {"url", "endpointurl", "region", "profile", "access_key_id", "secret_access_key", "session_token",
               "use_ssl", "ssl_verify", "read_timeout", "connect_timeout"}


def _flag(value: str | None, default: bool | str) -> bool | str | None:
    """A DVC boolean option as its schema reads it (None: not one, DVC decides)."""
    if value is None:
        return default
    return {"true": True, "false": False}.get(str(value).strip().lower())


def _aws_s3_section(profile: str | None) -> bool:
    """Whether the AWS config gives the profile an ``s3`` section (dvc-s3 then tunes its client by it)."""
    from botocore.configloader import load_config

    path = os.path.expanduser(os.environ.get("AWS_CONFIG_FILE", "~/.aws/config"))
    if not os.path.exists(path):
        return False
    return bool((load_config(path)["profiles"].get(profile or "default") or {}).get("s3"))


def _s3_remote(root: Path, opts: dict[str, Any], jobs: int | None = None) -> Any:
    """The remote of config ``opts`` as an ``s3fast.S3Remote`` (dvc-s3's client arguments, as
    ``s3fast.open_remote`` reads them from DVC's filesystem); None when dvc-s3 would set it up otherwise."""
    url = str(opts["url"])
    if not set(opts) <= _S3_OPTIONS or "?" in url:
        return None
    use_ssl = _flag(opts.get("use_ssl"), True)
    raw_verify = opts.get("ssl_verify")
    verify = _flag(raw_verify, True) if str(raw_verify).strip().lower() in ("true", "false") else raw_verify
    timeouts = {k: opts[k] for k in ("read_timeout", "connect_timeout") if k in opts}
    if use_ssl is None or not all(str(v).isdigit() for v in timeouts.values()):
        return None
    try:
        if _aws_s3_section(opts.get("profile")):
            return None
    except Exception:  # an AWS config botocore cannot read: DVC reports it
        return None
    from . import s3fast
    from .transfer import state_dir

    bucket, _, prefix = url[len("s3://"):].strip("/").partition("/")
    fs_args = {"key": opts.get("access_key_id"), "secret": opts.get("secret_access_key"),
               "token": opts.get("session_token"), "profile": opts.get("profile"), "use_ssl": use_ssl,
               "client_kwargs": {"region_name": opts.get("region"), "endpoint_url": opts.get("endpointurl"),
                                 "verify": verify},
               "config_kwargs": {k: int(v) for k, v in timeouts.items()}}
    odb = SimpleNamespace(fs=SimpleNamespace(protocol="s3", fs_args=fs_args, _transfer_config={}),
                          path="/".join(p for p in (bucket, prefix.strip("/"), "files/md5") if p))
    return s3fast.open_remote(odb, state_dir(root), jobs)
