"""``zoo commit``: the contributor recipe's bookkeeping in one step.

After ``zoo add``/``rm``, ``dvc repro`` and ``zoo push``, the files that changed are scattered: the
table and the model folders' pointers (staged by add/rm), ``dvc.lock`` and every pipeline output
(cards, curves, evaluations, index, leaderboard, summary), the pipeline's inputs in ``conf/``, and the
in-repo remote's new objects (staged by push). This refuses while the pipeline is stale (its outputs
would not match the table being committed), stages exactly those paths and commits them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import layout
from ..entities import CommitResult
from ..errors import UsageError, ZooError
from ..utils import gitcmd
from ..workspace.tree import in_tree_remotes

if TYPE_CHECKING:
    from .facade import Facade


def commit(zoo: Facade, message: str, check_pipeline: bool = True) -> CommitResult:
    """Stage the zoo's files and the pipeline's inputs and outputs, then ``git commit`` them."""
    from ..storage.dvc import pipeline_paths, stale_stages
    from ..workspace import merge

    zoo.writable("commit")
    if not message.strip():
        raise UsageError("-m MESSAGE is required and must not be blank")
    if not (zoo.root / ".git").is_dir():
        raise ZooError(f"{zoo.root}: not a git work tree; nothing to commit into")
    with zoo.workspace.lock():
        zoo.workspace.check_git_index()
        merge.ensure(zoo.root)
        if check_pipeline:
            stale = stale_stages(zoo.root)
            if stale:
                raise ZooError(f"the pipeline is not up to date ({', '.join(stale)} changed), so its outputs do not "
                               "match the table; run `dvc repro`, then `zoo commit` again")
            refuse_failed_evaluations(zoo)
        candidates = [layout.TABLE_PATH, layout.CHECKPOINTS_DIR, ".gitattributes", *pipeline_paths(zoo.root),
                      *in_tree_remotes(zoo.root, zoo.storage.remotes()).values()]
        zoo.workspace.stage(_stageable(zoo, list(dict.fromkeys(candidates))))
        staged = _git(zoo, "diff", "--cached", "--name-only", "-z").split("\0")
        staged = [p for p in staged if p]
        if not staged:
            return CommitResult("", ())
        proc = gitcmd.run(zoo.root, "commit", "-q", "--file=-", input=message, text=True, check=False, timeout=None)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise ZooError(f"git commit failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
        head = _git(zoo, "rev-parse", "--short", "HEAD").strip()
    return CommitResult(head, tuple(staged))


def refuse_failed_evaluations(zoo: Facade) -> None:
    """Refuse to commit while a checkpoint's evaluation failed: the index would publish it as failed."""
    from .validate import evaluation_problems

    problems = evaluation_problems(zoo)
    if problems:
        raise ZooError(f"{len(problems)} checkpoint(s) failed their evaluation, nothing was committed: "
                       + " | ".join(problems))


def _git(zoo: Facade, *args: str, operands: tuple[str, ...] = ()) -> str:
    proc = gitcmd.run(zoo.root, *args, operands=operands, text=True, check=False, timeout=None)
    if proc.returncode != 0:
        raise ZooError(f"git {args[0]} failed: {proc.stderr.strip()}")
    return proc.stdout


def _stageable(zoo: Facade, paths: list[str]) -> list[str]:
    """The paths that exist or git tracks, minus the ignored ones (one git call for each question)."""
    tracked = set(_git(zoo, "ls-files", "-z", operands=tuple(paths)).split("\0")) if paths else set()
    kept = [p for p in paths if (zoo.root / p).exists() or p in tracked
            or any(t.startswith(p.rstrip("/") + "/") for t in tracked)]
    proc = gitcmd.run(zoo.root, "check-ignore", "--no-index", "--stdin", "-z", input="\0".join(kept), text=True,
                      check=False, timeout=None)
    ignored = set(proc.stdout.split("\0"))
    return [p for p in kept if p not in ignored]
