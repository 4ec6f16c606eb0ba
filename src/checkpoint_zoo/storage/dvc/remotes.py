"""Remote configuration of a DVC zoo (``.dvc/config``, ``.dvc/config.local``): list, add, modify, remove,
choose the default; each write renamed into place. Credentials (``SECRET_OPTIONS``) are never listed.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from ...errors import RemoteConfigError
from ...utils.redact import redact_url, redact_urls, url_credentials
from .failures import first_line

# Remote options that are credentials: never written to the committed .dvc/config (only config.local).
SECRET_OPTIONS = frozenset({
    "access_key_id", "secret_access_key", "session_token", "sse_customer_key",  # s3
    "password", "passphrase", "token", "custom_auth_header",                    # ssh, http, webdav
    "account_key", "sas_token", "connection_string", "client_secret",           # azure
    "gdrive_client_secret", "oss_key_id", "oss_key_secret",
})


def _save_config_atomically(cfg, level: str, conf: dict) -> None:
    """Write one level of DVC's config to a temp file and rename it over the old one.

    DVC's own ``Config._save_config`` truncates the file and writes it in place: a command reading it
    at that moment (another zoo or dvc process) sees an empty config, and if it then writes, drops
    every section it did not add (the default remote, ``[hydra]``)."""
    from configobj import ConfigObj
    from dvc.config import _pack_named

    path = Path(cfg.files[level])
    tmp_dir = Path(cfg.dvc_dir) / "tmp"  # git-ignored, on the same file system as the config
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f".{path.name}.zoo-{os.getpid()}-{os.urandom(4).hex()}.tmp"
    try:
        with open(tmp, "wb") as f:
            ConfigObj(_pack_named(conf)).write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def default_remote(config) -> str | None:
    """Name of the default remote, or None."""
    return config["core"].get("remote")


def remote_name(config, remote: str | None) -> str:
    """The remote a transfer uses: the one named, else the default."""
    return remote or default_remote(config) or "(no default remote)"


def describe_remote(config, remote: str | None) -> str:
    """``remote 'NAME' (URL at ENDPOINT)`` for messages."""
    name = remote_name(config, remote)
    try:
        conf = config["remote"].get(name) or {}
    except Exception:
        conf = {}
    url = str(conf.get("url", ""))
    if "://" not in url:
        return f"remote {name!r}"
    endpoint = conf.get("endpointurl")
    endpoint = redact_url(str(endpoint)) if endpoint else ""
    return f"remote {name!r} ({redact_url(url)}{' at ' + endpoint if endpoint else ''})"


def check_remote(config, remote: str | None) -> None:
    """A named remote must exist and a default must be set when none is named."""
    remotes = config["remote"]
    if remote is None and not default_remote(config):
        raise RemoteConfigError("no remote named and no default remote set; pass --remote NAME "
                                "or set one with `zoo remote add NAME URL --default`")
    if remote is not None and remote not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise RemoteConfigError(f"remote {remote!r} is not configured (configured: {known}); "
                                f"add it with `zoo remote add {remote} s3://BUCKET/PREFIX --endpoint URL`")


def dvc_config(root: Path):
    """DVC's config of the repository at ``root``, saved atomically (see _save_config_atomically)."""
    from dvc.config import Config

    cfg = Config(dvc_dir=str(root / ".dvc"))
    cfg._save_config = lambda level, conf: _save_config_atomically(cfg, level, conf)
    return cfg


def remotes(root: Path) -> list[dict]:
    """Every configured remote: name, url, options (secrets masked), level, default, secret keys
    found in the committed config."""
    cfg = dvc_config(root)
    repo_level, local_level = cfg.read("repo"), cfg.read("local")
    merged = cfg.read()
    default = merged["core"].get("remote")
    out = []
    for name, conf in merged["remote"].items():
        committed = repo_level["remote"].get(name) or {}
        local = local_level["remote"].get(name) or {}
        out.append({
            "name": name,
            "url": redact_url(str(conf.get("url", ""))),
            "options": {k: ("***" if k in SECRET_OPTIONS else redact_url(str(v)))
                        for k, v in conf.items() if k != "url"},
            "level": "repo" if name in repo_level["remote"] else ("local" if name in local_level["remote"] else "global"),
            "default": name == default,
            "local_secrets": tuple(sorted(k for k in local if k in SECRET_OPTIONS)),
            "committed_secrets": tuple(sorted(k for k, v in committed.items()
                                              if k in SECRET_OPTIONS or url_credentials(str(v)))),
        })
    return out


def _edit_config(root: Path, level: str):
    from dvc.config import ConfigError

    cfg = dvc_config(root)

    @contextmanager
    def editing():
        try:
            with cfg.edit(level) as conf:
                yield conf
        except ConfigError as e:
            raise RemoteConfigError(f"{redact_urls(first_line(e))}; nothing was written (see `dvc remote modify --help` "
                                    "for the options of each remote type)") from None
    return cfg, editing()


def add_remote(root: Path, name: str, url: str, options: dict[str, str], level: str = "repo",
               default: bool = False, force: bool = False) -> None:
    """Write a remote section (and optionally core.remote) to .dvc/config or .dvc/config.local."""
    cfg, editing = _edit_config(root, level)
    if name in cfg.read()["remote"] and not force:
        raise RemoteConfigError(f"remote {name!r} exists already; change it with `zoo remote modify {name} KEY "
                                f"VALUE` or remove it with `zoo remote remove {name}`")
    with editing as conf:
        conf["remote"][name] = {"url": url, **options}
        if default:
            conf["core"]["remote"] = name


def modify_remote(root: Path, name: str, key: str, value: str | None, level: str = "repo") -> None:
    """Set (or with value None, unset) one option of an existing remote at this level."""
    cfg, editing = _edit_config(root, level)
    if name not in cfg.read()["remote"]:
        raise RemoteConfigError(f"remote {name!r} is not configured; `zoo remote list` shows the remotes")
    with editing as conf:
        section = conf["remote"].setdefault(name, {})
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value


def remove_remote(root: Path, name: str) -> list[str]:
    """Remove a remote from every repo-level file that defines it (and core.remote pointing at it);
    returns the levels it was removed from."""
    cfg = dvc_config(root)
    levels = [lv for lv in ("local", "repo") if name in cfg.read(lv)["remote"]]
    if not levels:
        raise RemoteConfigError(f"remote {name!r} is not configured in this clone; `zoo remote list` shows the remotes")
    for level in ("local", "repo"):
        cfg_level, editing = _edit_config(root, level)
        data = cfg_level.read(level)
        if name in data["remote"] or data["core"].get("remote") == name:
            with editing as conf:
                conf["remote"].pop(name, None)
                if conf["core"].get("remote") == name:
                    del conf["core"]["remote"]
    return levels


def set_default_remote(root: Path, name: str | None, level: str = "repo") -> None:
    """Make ``name`` the default remote at this level (None: no default)."""
    cfg, editing = _edit_config(root, level)
    if name is not None and name not in cfg.read()["remote"]:
        raise RemoteConfigError(f"remote {name!r} is not configured; `zoo remote list` shows the remotes")
    with editing as conf:
        if name is None:
            conf["core"].pop("remote", None)
        else:
            conf["core"]["remote"] = name
