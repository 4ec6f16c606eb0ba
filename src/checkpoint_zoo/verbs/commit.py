"""``zoo commit``: the contributor recipe's bookkeeping in one step.

After ``zoo add``/``rm``, ``dvc repro`` and ``zoo push``, the files that changed are scattered: the
table and the model folders' pointers (staged by add/rm), ``dvc.lock`` and every pipeline output
(cards, curves, evaluations, index, leaderboard, summary), the pipeline's inputs in ``conf/``, and the
in-repo remote's new objects (staged by push). This refuses while the pipeline is stale (its outputs
would not match the table being committed) and while a checkpoint it commits is not on the default remote
(a teammate's pull would fail), unless ``push`` sends it there first; then it stages exactly those paths
and commits them.

Which checkpoints "it commits": the rows added or replaced since HEAD (their files and training state), and
the model folders whose tracking file changed since HEAD (``zoo rm`` writes a new folder manifest). Only
those are asked of the remote, so the check costs one existence check per new object, whatever the size
of the zoo, and a checkpoint someone else forgot to push long ago does not block this commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import layout
from ..catalog import rules
from ..entities import CommitResult
from ..errors import NotPushedError, UsageError, ZooError
from ..storage.base import Part
from ..utils import gitcmd
from ..workspace.tree import in_tree_remotes

if TYPE_CHECKING:
    from .facade import Facade

Row = dict[str, str]


def commit(zoo: Facade, message: str, check_pipeline: bool = True, *, push: bool = False,
           check_remote: bool = True, allow_in_repo: bool = False) -> CommitResult:
    """Stage the zoo's files and the pipeline's inputs and outputs, then ``git commit`` them. Refused while
    a checkpoint being committed is not on the default remote (``check_remote``), unless ``push``: then those
    are pushed first (``allow_in_repo`` as for ``zoo push``)."""
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
        if push or check_remote:
            ensure_pushed(zoo, push=push, allow_in_repo=allow_in_repo)
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


# ---- what the commit would hand to teammates that they could not pull ------------------------------------


def ensure_pushed(zoo: Facade, *, push: bool = False, allow_in_repo: bool = False) -> None:
    """Refuse, in one line naming them, when the default remote lacks a checkpoint (or folder manifest) this
    commit adds; with ``push``, push exactly those first and check again."""
    from .push import push_rows

    ws = zoo.workspace
    changed, folders = changed_since_head(zoo)
    if not changed and not folders:
        return
    parts = [part for row in changed for part in row_parts(row)]
    missing, lacking = ws.store.missing_on_remote(parts, folders=folders)
    if (missing or lacking) and push:
        refs = {p.ref for p in missing}
        push_rows(ws, [r for r in changed if f"{r['model']}@{r['step']}" in refs], allow_in_repo=allow_in_repo,
                  named=False, folders=lacking)
        missing, lacking = ws.store.missing_on_remote(parts, folders=folders)
    if not missing and not lacking:
        return
    names = _missing_names(missing, lacking)
    more = f" and {len(names) - 3} more ({len(names)} in all)" if len(names) > 3 else ""
    fix = ("they are not in this clone's cache either, so pushing cannot help; pull or add them again" if push
           else "run `zoo commit --push -m MESSAGE` to push them, then commit")
    raise NotPushedError(f"{', '.join(names[:3])}{more}: not on {ws.store.describe_remote(None)} (the default), "
                         f"so teammates could not pull what this commit adds; {fix}; nothing was committed")


def _missing_names(missing: list[Part], lacking: list[str]) -> list[str]:
    """How the refusal names what is missing: each checkpoint once, and a folder manifest only when no
    checkpoint of its folder is named already."""
    named = [p.ref for p in missing]
    for folder in lacking:
        if not any(p.path.startswith(folder + "/") for p in missing):
            named.append(f"{Path(folder).name} (folder manifest)")
    return list(dict.fromkeys(named))


def changed_since_head(zoo: Facade) -> tuple[list[Row], list[str]]:
    """The rows added or replaced since HEAD (new files, other bytes, a new training state), and the model
    folders (still holding checkpoints) whose tracking file changed since HEAD; with no HEAD yet, every row
    and folder."""
    from ..catalog.table import parse_csv

    ws = zoo.workspace
    rows = ws.rows()
    live = sorted({str(Path(r["path"]).parent) for r in rows})
    if gitcmd.run(zoo.root, "rev-parse", "--verify", "-q", "HEAD", check=False, timeout=None).returncode != 0:
        return rows, live
    head = gitcmd.run(zoo.root, "show", f"HEAD:{layout.TABLE_PATH}", check=False, timeout=None)
    old = parse_csv(head.stdout, problems=[]) if head.returncode == 0 and head.stdout.strip() else []
    before = {(r["model"], r["step"]): _identity(r) for r in old}
    changed = [r for r in rows if before.get((r["model"], r["step"])) != _identity(r)]
    diff = _git(zoo, "diff", "--name-only", "-z", "HEAD", operands=(layout.CHECKPOINTS_DIR,)).split("\0")
    new = _git(zoo, "ls-files", "-o", "-z", "--exclude-standard", operands=(layout.CHECKPOINTS_DIR,)).split("\0")
    touched = {p for p in diff + new if p}
    return changed, [f for f in live if ws.store.tracking_file(f) in touched]


def _identity(row: Row) -> tuple[str, str, str]:
    """What a teammate pulls of a checkpoint: a change to any of these is a new upload."""
    return row.get("sha256", ""), row.get("files", ""), row.get("state_sha256", "")


def row_parts(row: Row) -> list[Part]:
    """A checkpoint's files as store parts, with its training state when it has one."""
    out = [Part(path, sha, row["model"], row["step"]) for path, sha in rules.parts(row)]
    if row.get("state_sha256"):
        out.append(Part(rules.state_path(row["model"], int(row["step"])), row["state_sha256"], row["model"],
                        row["step"]))
    return out
