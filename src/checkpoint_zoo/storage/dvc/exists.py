"""Which objects a remote holds, answered without opening DVC's repository where the answer is a file's path.

Opening DVC (``dvc.repo``, its config and its filesystems) costs a command about 0.3 s before it asks
anything; ``zoo release`` asks only "are these objects on the default remote". For a folder remote that is a
stat of ``<url>/files/md5/<2 hex>/<rest>`` per object, and the local cache is ``.dvc/cache/files/md5``: both
are read here from DVC's own config files (system, global, repo, local, the later winning, as DVC merges
them; a relative path is relative to the file that names it). Anything else (a cloud remote, a cache moved by
``cache.dir``, a config this reader cannot parse, a manifest not in the local cache) answers None, and the
caller takes DVC's own path, which also gives every refusal its usual message.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
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


def folder_remote(root: Path, remote: str | None) -> tuple[Path, Path] | None:
    """(the remote's object folder, the local cache's) when ``remote`` (None: the default) is a folder remote
    and the cache is in its default place; None when only DVC can answer."""
    conf = _merged(root)
    if conf is None or conf["cache_dir"]:
        return None
    name = remote or conf["remote"]
    url = (conf["remotes"].get(name) or {}).get("url") if name else None
    if not url or _URL.match(url):
        return None
    return Path(url) / "files" / "md5", root / ".dvc" / "cache" / "files" / "md5"


def held(objects: Path, oids: set[str]) -> set[str]:
    """The oids whose object is in the folder remote ``objects`` (a stat each, as DVC's ``exists``)."""
    return {oid for oid in oids if (objects / oid[:2] / oid[2:]).exists()}
