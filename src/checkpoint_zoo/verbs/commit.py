"""``zoo commit``: the contributor recipe's bookkeeping in one step.

After ``zoo add``/``rm``, ``dvc repro`` and ``zoo push``, the files that changed are scattered: the
table and the model folders' pointers (staged by add/rm), ``dvc.lock`` and every pipeline output
(cards, curves, evaluations, index, leaderboard, summary), the pipeline's inputs in ``conf/``, and the
in-repo remote's new objects (staged by push). This refuses while the pipeline is stale (its outputs
would not match the table being committed), stages exactly those paths and commits them.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from .. import constants
from ..errors import UsageError, ZooError
from ..model import CommitResult

if TYPE_CHECKING:
    from ..api import Zoo


def commit(zoo: Zoo, message: str, check_pipeline: bool = True) -> CommitResult:
    """Stage the zoo's files and the pipeline's inputs and outputs, then ``git commit`` them."""
    from .. import merge
    from ..storage.dvc import pipeline_paths, stale_stages

    zoo._workspace_only("commit")
    if not message.strip():
        raise UsageError("-m MESSAGE is required and must not be blank")
    if not (zoo.root / ".git").is_dir():
        raise ZooError(f"{zoo.root}: not a git work tree; nothing to commit into")
    with zoo._lock():
        merge.ensure(zoo.root)
        if check_pipeline:
            stale = stale_stages(zoo.root)
            if stale:
                raise ZooError(f"the pipeline is not up to date ({', '.join(stale)} changed), so its outputs do not "
                               "match the table; run `dvc repro`, then `zoo commit` again")
        candidates = [constants.TABLE_PATH, constants.CHECKPOINTS_DIR, ".gitattributes", *pipeline_paths(zoo.root),
                      *_in_tree_remotes(zoo)]
        paths = [p for p in dict.fromkeys(candidates) if _tracked_or_present(zoo, p) and not _ignored(zoo, p)]
        zoo._git_add(paths)
        staged = _git(zoo, "diff", "--cached", "--name-only", "-z").split("\0")
        staged = [p for p in staged if p]
        if not staged:
            return CommitResult("", ())
        proc = subprocess.run(["git", "commit", "-q", "--file=-"], cwd=zoo.root, input=message, text=True,
                              capture_output=True)
        if proc.returncode != 0:
            raise ZooError(f"git commit failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        head = _git(zoo, "rev-parse", "--short", "HEAD").strip()
    return CommitResult(head, tuple(staged))


def _git(zoo: Zoo, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=zoo.root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ZooError(f"git {args[0]} failed: {proc.stderr.strip()}")
    return proc.stdout


def _tracked_or_present(zoo: Zoo, rel: str) -> bool:
    return (zoo.root / rel).exists() or bool(_git(zoo, "ls-files", "--", rel).strip())


def _ignored(zoo: Zoo, rel: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", "--no-index", "--", rel], cwd=zoo.root).returncode == 0


def _in_tree_remotes(zoo: Zoo) -> list[str]:
    """Repo-relative folders of the remotes that live inside the work tree (their objects travel in git)."""
    root = zoo.root.resolve()
    out = []
    for r in zoo.storage.remotes():
        path = in_tree(root, r["url"])
        if path is not None:
            out.append(path)
    return out


def in_tree(root, url: str) -> str | None:
    """``url`` relative to the work tree ``root`` when it is a local folder inside it, else None."""
    from pathlib import Path

    if not url or "://" in url:
        return None
    try:
        rel = Path(url).resolve().relative_to(root)
    except ValueError:
        return None
    return rel.as_posix() if rel.parts and rel.parts[0] != ".git" else None
