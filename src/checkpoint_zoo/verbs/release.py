"""``zoo release``, ``zoo stage`` and ``zoo history``: the model registry, in GTO's and DVC's own conventions.

A release is a commit whose ``dvc.yaml`` ``artifacts:`` entry for the model points at the checkpoint,
tagged ``MODEL@vX.Y.Z`` (annotated); a stage is an annotated ``MODEL#STAGE#N`` tag on a release's commit.
So ``gto show``, ``dvc artifacts get REPO MODEL --rev vX.Y.Z | --stage prod`` and DVC Studio read the
zoo's registry with no zoo code, and git alone keeps who did what and when (the tagger, the tag date).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import layout
from ..catalog import releases
from ..catalog.refs import parse_ref
from ..entities import RegistryChange
from ..errors import InvalidValueError, UsageError, ZooError
from ..utils import gitcmd
from ..workspace import tags as git_tags
from .resolve import registry_event, registry_row, resolve_row

if TYPE_CHECKING:
    from ..workspace.tree import Workspace
    from .facade import Facade

Row = dict[str, str]
STAGES_FILE = f"{layout.CONF_DIR}/stages.yaml"


def _version(text: str) -> str:
    version = text if text.startswith("v") else f"v{text}"
    problem = releases.version_problem(version)
    if problem:
        raise InvalidValueError(problem)
    return version


def _head(root: Path) -> str:
    proc = gitcmd.run(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
    if proc.returncode != 0:
        raise ZooError("the zoo has no commit yet; `zoo commit` first")
    return proc.stdout.decode().strip()


def _check_committed(ws: Workspace, row: Row, head: str) -> bool:
    """Refuse a checkpoint not committed at ``head`` and a ``dvc.yaml`` with uncommitted changes; whether
    ``dvc.yaml`` is new to git (absent or untracked), so that the release must ``git add`` it."""
    ref = f"{row['model']}@{row['step']}"
    committed = next((r for r in git_tags.table_at(ws.root, head)
                      if r["model"] == row["model"] and r["step"] == row["step"]), None)
    if committed is None or committed["sha256"] != row["sha256"]:
        raise ZooError(f"{ref} is not committed yet (a release names committed bytes); `zoo commit` first")
    status = gitcmd.run(ws.root, "status", "--porcelain", "--untracked-files=all", operands=["dvc.yaml"]).stdout
    if status and not status.startswith(b"??"):
        raise ZooError("dvc.yaml has changes that are not committed; commit or discard them first "
                       "(a release commits dvc.yaml alone)")
    return bool(status) or not (ws.root / "dvc.yaml").is_file()


def _check_pushed(zoo: Facade, row: Row) -> None:
    """A release is for teammates: its bytes and its model folder's manifest must be on the default remote
    (existence checks, never a download)."""
    from .commit import row_parts

    folder = str(Path(row["path"]).parent)
    missing, lacking = zoo.storage.missing_on_remote(row_parts(row), folders=[folder])
    if missing or lacking:
        ref = f"{row['model']}@{row['step']}"
        raise ZooError(f"{ref} is not on {zoo.storage.describe_remote(None)} (the default remote), so `dvc "
                       f"artifacts get` and teammates could not fetch the release; `zoo push {ref}` first")


def _artifact(row: Row) -> dict[str, Any]:
    labels = [t for t in row.get("tags", "").split(";") if t]
    meta = {"step": int(row["step"]), "sha256": row["sha256"], "arch": row["arch"], "task": row["task"],
            "dataset": row["dataset"], "license": row["license"]}
    entry: dict[str, Any] = {"path": row["path"], "type": "model"}
    if row.get("description"):
        entry["desc"] = row["description"]
    if labels:
        entry["labels"] = labels
    entry["meta"] = meta
    return entry


def _restore(root: Path, head: str, before: bytes | None) -> None:
    gitcmd.run(root, "update-ref", "HEAD", head, check=False)
    gitcmd.run(root, "reset", "-q", head, operands=["dvc.yaml"], check=False)
    if before is None:
        (root / "dvc.yaml").unlink(missing_ok=True)
    else:
        (root / "dvc.yaml").write_bytes(before)


def _tagged(ws: Workspace, row: Row, tag: str, message: str, head: str, last: datetime | None,
            new: bool) -> str:
    """Point ``dvc.yaml``'s artifact entry at ``row``, commit that file alone (``git commit -- dvc.yaml`` takes
    a tracked file as it is on disk; a ``new`` one is added first) and tag the commit; the commit. If git
    refuses either, the file, the index and HEAD are put back as they were."""
    from ..storage.dvc.pipeline import set_artifact

    dvc_yaml = ws.root / "dvc.yaml"
    before = dvc_yaml.read_bytes() if dvc_yaml.is_file() else None
    try:
        if before is None:
            dvc_yaml.write_text("stages: {}\n")
        set_artifact(ws.root, row["model"], _artifact(row))
        if new:
            gitcmd.run(ws.root, "add", operands=["dvc.yaml"])
        gitcmd.run(ws.root, "commit", "-q", "--allow-empty", "-m", message, operands=["dvc.yaml"])
        commit = _head(ws.root)
        git_tags.create_tag(ws.root, tag, commit, message, after=last)
    except BaseException:
        _restore(ws.root, head, before)
        raise
    return commit


def release(zoo: Facade, ref: str, version: str, message: str = "") -> RegistryChange:
    """Release checkpoint ``ref`` as ``version`` of its model (refused: an existing or non-semver version, a
    checkpoint not committed or not pushed, a model name GTO cannot write)."""
    ws = zoo.writable("release")
    version = _version(version)
    model = parse_ref(ref).model
    problem = releases.name_problem(model)
    if problem:
        raise InvalidValueError(problem)
    with ws.lock():
        ws.recover()
        ws.check_git_index()
        row = resolve_row(zoo, ref)
        tag = f"{model}@{version}"
        known = git_tags.read_tags(ws.root, model)
        if any(t.name == tag or t.name.startswith(f"{tag}!") for t in known):
            raise InvalidValueError(f"{tag} exists already; releases are immutable: pick a new version")
        head = _head(ws.root)
        new = _check_committed(ws, row, head)
        _check_pushed(zoo, row)
        evs = releases.events(known, model)
        text = message or f"Release {model}@{row['step']} as {version}"
        commit = _tagged(ws, row, tag, f"{text}\n\n{model}@{row['step']} sha256 {row['sha256']}", head,
                         evs[-1].tag.date if evs else None, new)
    return RegistryChange(tag, f"{model}@{row['step']}", commit, version=version)


def _protected(zoo: Facade) -> set[str]:
    from ..utils.safe_yaml import load_yaml

    path = zoo.root / STAGES_FILE
    if not path.is_file():
        return set()
    data = load_yaml(path.read_bytes(), STAGES_FILE) or {}
    listed = data.get("protected", []) if isinstance(data, dict) else None
    if not isinstance(listed, list) or not all(isinstance(s, str) for s in listed):
        raise InvalidValueError(f"{STAGES_FILE}: 'protected' must be a list of stage names")
    return set(listed)


def stage(zoo: Facade, ref: str, stage_name: str, message: str = "") -> RegistryChange:
    """Put a release (``MODEL@v1.2.0``) in ``stage_name``; the stage's previous holder leaves it. A bare step
    (``MODEL@300``) is released as no version first, unless ``conf/stages.yaml`` protects the stage."""
    ws = zoo.writable("stage")
    problem = releases.stage_problem(stage_name)
    if problem:
        raise InvalidValueError(problem)
    r = parse_ref(ref)
    if r.kind not in ("version", "step"):
        raise UsageError(f"{ref}: name a release (MODEL@v1.2.0) or a step (MODEL@300) to put in {stage_name!r}")
    problem = releases.name_problem(r.model)
    if problem:
        raise InvalidValueError(problem)
    if r.kind == "step" and stage_name in _protected(zoo):
        raise InvalidValueError(f"stage {stage_name!r} is protected ({STAGES_FILE}): only a release may hold it; "
                                f"`zoo release {ref} vX.Y.Z` first")
    with ws.lock():
        ws.recover()
        ws.check_git_index()
        known = git_tags.read_tags(ws.root, r.model)
        evs = releases.events(known, r.model)
        counter = releases.next_counter(evs)
        tag = f"{r.model}#{stage_name}#{counter}"
        last = evs[-1].tag.date if evs else None
        if r.kind == "version":  # the tags read above serve both lookups: no second or third for-each-ref
            event = registry_event(zoo, r, evs)
            mine = zoo.source.model_rows(r.model)
            row = registry_row(zoo, r, mine, event) if mine else resolve_row(zoo, ref)
            commit = event.tag.commit
            git_tags.create_tag(ws.root, tag, commit, message or f"Put {ref} in {stage_name}", after=last)
        else:
            row = resolve_row(zoo, ref)
            head = _head(ws.root)
            new = _check_committed(ws, row, head)
            _check_pushed(zoo, row)
            text = message or f"Put {r.model}@{row['step']} in {stage_name}"
            commit = _tagged(ws, row, tag, text, head, last, new)
    return RegistryChange(tag, f"{r.model}@{row['step']}", commit, version=str(r.selector) if r.kind == "version"
                          else "", stage=stage_name)


def unstage(zoo: Facade, model: str, stage_name: str, message: str = "") -> RegistryChange:
    """Empty ``stage_name`` of ``model`` (GTO's unassign tag on the holder's commit)."""
    ws = zoo.writable("stage")
    with ws.lock():
        known = git_tags.read_tags(ws.root, model)
        evs = releases.events(known, model)
        held = releases.holders(evs).get(stage_name)
        if held is None:
            raise InvalidValueError(f"{model} has nothing in stage {stage_name!r}; `zoo history {model}` shows "
                                    "its stages")
        tag = f"{model}#{stage_name}!#{releases.next_counter(evs)}"
        git_tags.create_tag(ws.root, tag, held.tag.commit, message or f"Take {model} out of {stage_name}",
                            after=evs[-1].tag.date)
    return RegistryChange(tag, model, held.tag.commit, version=held.version, stage=stage_name)


def _checkpoints(zoo: Facade) -> Callable[[str, str], str | None]:
    """``MODEL@STEP`` that a commit's ``dvc.yaml`` artifact entry names for a model, each read once."""
    @functools.cache
    def find(model: str, commit: str) -> str | None:
        entry = git_tags.artifact_at(zoo.source.git_dir, commit, model)
        step = git_tags.step_of_artifact(entry) if entry else None
        return None if step is None else f"{model}@{step}"
    return find


def _summary(evs: list[releases.Event], model: str, find: Callable[[str, str], str | None],
             at: datetime | None = None) -> dict[str, Any]:
    """A model's releases (version -> checkpoint) and who held each stage (now, or at ``at``)."""
    released_at = {e.tag.commit: e.version for e in evs if e.kind == "release"}
    return {
        "releases": {v: find(model, e.tag.commit) for v, e in releases.releases(evs).items()},
        "stages": {s: {"version": released_at.get(e.tag.commit), "checkpoint": find(model, e.tag.commit),
                       "since": e.tag.date.isoformat()} for s, e in sorted(releases.holders(evs, at).items())},
    }


def history(zoo: Facade, model: str, at: datetime | None = None) -> dict[str, Any]:
    """Every release and stage change of ``model`` (tag, checkpoint, who, when, message), oldest first, and
    which release held each stage now, or at ``at``."""
    evs = releases.events(git_tags.read_tags(zoo.source.git_dir, model), model)
    find = _checkpoints(zoo)
    released_at = {e.tag.commit: e.version for e in evs if e.kind == "release"}
    events = [{"tag": e.tag.name, "action": e.kind, "version": e.version or released_at.get(e.tag.commit),
               "stage": e.stage or None, "checkpoint": find(model, e.tag.commit), "commit": e.tag.commit,
               "by": e.tag.tagger, "date": e.tag.date.isoformat(), "message": e.tag.message} for e in evs]
    return {"model": model, "events": events, **_summary(evs, model, find, at), "at": at.isoformat() if at else None}


def overview(zoo: Facade, model: str | None = None) -> dict[str, dict[str, Any]]:
    """Every model's (or one model's) releases and current stages, from one read of the tags: what the served
    page and API show beside each model (a stage move changes no file, so only a live answer can show it)."""
    evs = releases.events(git_tags.read_tags(zoo.source.git_dir, model), model)
    find = _checkpoints(zoo)
    by_model: dict[str, list[releases.Event]] = {}
    for e in evs:
        by_model.setdefault(e.model, []).append(e)
    return {m: _summary(mine, m, find) for m, mine in sorted(by_model.items())}


def registry_document(git_dir: Path, tags: list[releases.TagRecord] | None = None) -> dict[str, Any]:
    """Every model's releases and current stage holders, read from the tags as ``zoo history`` and the API read
    them: what the pipeline's ``registry`` stage writes, so the index, cards and page can show them (a stage
    move changes no file, so a file is the only way a DVC stage can see it). Every ``dvc.yaml`` at a tagged
    commit is read by one git process. ``tags``: those already read (``zoo serve`` keys its cards by them)."""
    evs = releases.events(git_tags.read_tags(git_dir) if tags is None else tags)
    wanted = list(dict.fromkeys((e.tag.commit, e.model) for e in evs if e.kind in ("release", "assign")))
    entries = git_tags.artifacts_at(git_dir, wanted)
    return releases.registry_document(evs, lambda commit, model: entries.get((commit, model)),
                                      git_tags.step_of_artifact)
