"""`storage/dvc/exists.py` reads DVC's config files itself (so `zoo release` need not import DVC); here it must
agree with DVC's own `Config` on every layout of those files, so the two readers cannot drift apart unseen."""

from __future__ import annotations

from pathlib import Path

import pytest

# (system, global, repo, local) config texts; None: the file does not exist
LAYOUTS = {
    "repo only, relative url": (None, None, "[core]\n    remote = a\n['remote \"a\"']\n    url = ../store\n", None),
    "local overrides repo's url, home-relative": (
        None, None, "[core]\n    remote = a\n['remote \"a\"']\n    url = ../store\n",
        "['remote \"a\"']\n    url = ~/elsewhere\n"),
    "global names the default, repo overrides it": (
        None, "[core]\n    remote = g\n['remote \"g\"']\n    url = s3://bucket/g\n    region = eu-west-1\n",
        "[core]\n    remote = r\n['remote \"r\"']\n    url = relative/dir\n", None),
    "system remote, s3 options merged across files": (
        "['remote \"s\"']\n    url = s3://bucket/prefix\n    endpointurl = http://127.0.0.1:9000\n",
        None, "[core]\n    remote = s\n", "['remote \"s\"']\n    use_ssl = false\n    read_timeout = 30\n"),
    "cache moved": (None, None, "[cache]\n    dir = ../cache\n['remote \"a\"']\n    url = /abs/store\n", None),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_exists_reads_dvc_config_as_dvc_does(layout, tmp_path, monkeypatch):
    from dvc.config import Config

    from checkpoint_zoo.storage.dvc import exists

    root = tmp_path / "zoo"
    dirs = [tmp_path / "system", tmp_path / "global", root / ".dvc", root / ".dvc"]
    names = ["config", "config", "config", "config.local"]
    for folder in dirs:
        folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(dirs[0]))
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(dirs[1]))
    for folder, name, text in zip(dirs, names, LAYOUTS[layout], strict=True):
        if text is not None:
            (folder / name).write_text(text)

    dvc = Config(dvc_dir=str(root / ".dvc"))
    ours = exists._merged(root)
    assert ours is not None
    assert ours["remote"] == dvc["core"].get("remote")
    assert ours["cache_dir"] == ("dir" in dvc["cache"])
    assert set(ours["remotes"]) == set(dvc["remote"])
    for name, opts in ours["remotes"].items():
        theirs = dvc["remote"][name]
        assert set(opts) <= set(theirs), (name, opts, dict(theirs))
        if "://" in str(theirs["url"]):
            assert opts["url"] == theirs["url"]
        else:
            assert Path(str(opts["url"])) == Path(str(theirs["url"])), (name, opts["url"], theirs["url"])
        for key in set(opts) - {"url"}:
            assert str(opts[key]).lower() == str(theirs[key]).lower(), (name, key, opts[key], theirs[key])
