"""``init``: an empty zoo (git + DVC, a header-only table), optionally with another zoo's registries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .. import layout
from ..catalog import table
from ..errors import ZooError
from ..utils import gitcmd


def create(path: str | os.PathLike[str], remote_url: str | None = None, remote_name: str = "local",
           registries_from: str | os.PathLike[str] | None = None) -> Path:
    """Make ``path`` an empty zoo: git + DVC repo, header-only table, and a default remote if given.

    ``registries_from``: another zoo whose architectures, tasks and datasets (``conf/arch``,
    ``conf/task``, ``conf/dataset``) and own code folder are copied in, to start from the same
    registries."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    if (root / layout.TABLE_PATH).exists():
        raise ZooError(f"{root / layout.TABLE_PATH}: a zoo is already here")

    def run(*cmd: str) -> None:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ZooError(f"{' '.join(cmd)} failed in {root}: {proc.stderr.strip()[-300:]}")

    if not (root / ".git").exists():
        proc = gitcmd.run(root, "init", "-q", text=True, check=False, timeout=None)
        if proc.returncode != 0:
            raise ZooError(f"git init failed in {root}: {proc.stderr.strip()[-300:]}")
    if not (root / ".dvc").exists():
        run(sys.executable, "-m", "dvc", "init", "-q")
    if remote_url:
        run(sys.executable, "-m", "dvc", "remote", "add", "-d", remote_name, remote_url)
    table.atomic_write(root / layout.TABLE_PATH, table.dump_csv([]))
    table.atomic_write(root / layout.CHECKPOINTS_DIR / ".gitignore", b"/*/\n")
    staged = [".dvc", layout.TABLE_PATH, f"{layout.CHECKPOINTS_DIR}/.gitignore", ".gitattributes"]
    if registries_from is not None:
        origin = Path(registries_from)
        folders = [f"{layout.CONF_DIR}/{g}" for g in layout.REGISTRY_GROUPS] + [layout.CODE_DIR]
        for rel in folders:
            if (origin / rel).is_dir():
                shutil.copytree(origin / rel, root / rel, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
                staged.append(rel)
    from ..workspace.merge import setup

    setup(root)
    proc = gitcmd.run(root, "add", "-A", operands=staged, text=True, check=False, timeout=None)
    if proc.returncode != 0:
        raise ZooError(f"git add failed in {root}: {proc.stderr.strip()[-300:]}")
    return root
