"""``init``: an empty zoo (git + DVC, a header-only table), optionally with another zoo's registries; and
``new_zoo``, what ``zoo init`` makes: that, plus the pipeline, conf/, schemas/ and a README, from the files the
installed package carries (``checkpoint_zoo/defaults``), so a team's zoo needs no checkout of this project."""

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


DEFAULTS = Path(__file__).resolve().parent.parent / "defaults"


def enclosing_zoo(path: Path) -> Path | None:
    """The zoo ``path`` is in or under (a folder holding zoo/checkpoints.csv), if any."""
    for folder in (path.resolve(), *path.resolve().parents):
        if (folder / layout.TABLE_PATH).is_file():
            return folder
    return None


def new_zoo(path: str | os.PathLike[str], remote_url: str | None = None, reference: bool = False) -> Path:
    """A new zoo at ``path`` (an empty folder or an existing git repository) with the package's pipeline and
    default conf/; ``reference`` adds the reference zoo's architectures and datasets. Refused inside a zoo."""
    from ..catalog.schema import to_yaml

    root = Path(path)
    inside = enclosing_zoo(root)
    if inside is not None:
        raise ZooError(f"{root}: inside the zoo {inside}; give a folder outside it")
    if root.exists() and not root.is_dir():
        raise ZooError(f"{root}: is a file; give a folder")
    create(root, remote_url, "storage" if remote_url else "local")
    shutil.copytree(DEFAULTS / "conf", root / layout.CONF_DIR, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("reference", "__pycache__"))
    for group in ("arch", "dataset"):
        (root / layout.CONF_DIR / group).mkdir(parents=True, exist_ok=True)
        if reference:
            shutil.copytree(DEFAULTS / "conf" / "reference" / group, root / layout.CONF_DIR / group,
                            dirs_exist_ok=True)
    (root / layout.CODE_DIR).mkdir(exist_ok=True)
    init_py = root / layout.CODE_DIR / "__init__.py"
    if not init_py.exists():
        init_py.write_text('"""This zoo\'s own code: architectures, loaders and metrics its conf/ may name."""\n')
    for name, dest in (("pipeline.yaml", "dvc.yaml"), ("README.md", "README.md")):
        if not (root / dest).exists():
            shutil.copyfile(DEFAULTS / name, root / dest)
    ignore = root / ".gitignore"
    have = ignore.read_text().splitlines() if ignore.exists() else []
    wanted = [line for line in (DEFAULTS / "gitignore").read_text().splitlines() if line not in have]
    if wanted:
        ignore.write_text("\n".join([*have, *wanted]) + "\n")
    (root / "schemas").mkdir(exist_ok=True)
    (root / "schemas" / "checkpoints.schema.yaml").write_text(
        "# The table's pandera schema, as the installed checkpoint-zoo validates it.\n" + to_yaml())
    return root


ZOO_FILES = (".dvc", ".dvcignore", ".gitignore", ".gitattributes", layout.TABLE_PATH, f"{layout.CHECKPOINTS_DIR}/.gitignore",
             layout.CONF_DIR, layout.CODE_DIR, "dvc.yaml", "params.yaml", "README.md", "schemas")


def first_commit(root: Path, message: str) -> str:
    """Stage and commit the zoo's own files (and nothing else of an existing repository); the commit."""
    present = [p for p in ZOO_FILES if (root / p).exists()]
    gitcmd.run(root, "add", "-A", operands=present)
    gitcmd.run(root, "commit", "-q", "-m", message, operands=present)
    return gitcmd.run(root, "rev-parse", "HEAD").stdout.decode().strip()
