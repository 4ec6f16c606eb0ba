"""``zoo push``: upload checkpoints after re-checking every local object against the table.

A remote inside the work tree reaches teammates through git, so whatever is pushed there is in every
clone's history for good: a checkpoint above ``storage.in_repo_max_mb`` (params.yaml, composed from
``conf/config.yaml``; default ``IN_REPO_MAX_MB``) is refused there without ``allow_in_repo``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..catalog import rules
from ..entities import PushResult
from ..errors import IntegrityError, MissingFileError, ZooError
from ..storage.base import Part
from ..workspace.tree import in_tree_remotes
from .resolve import part_rows, resolve_many

if TYPE_CHECKING:
    from ..workspace.tree import Workspace
    from .facade import Facade

Row = dict[str, str]

IN_REPO_MAX_MB = 5.0
PARAMS_FILE = "params.yaml"


def push(zoo: Facade, refs: Sequence[str] = (), remote: str | None = None, jobs: int | None = None,
         allow_in_repo: bool = False) -> PushResult:
    """Upload checkpoints (all by default) after re-checking each local object's sha256; objects of
    them that the remote already holds with other bytes are overwritten (``PushResult.replaced``).
    A checkpoint above the in-repo limit is refused for a remote inside the work tree unless
    ``allow_in_repo``."""
    ws = zoo.writable("push")
    rows = ws.rows()
    chosen = resolve_many(zoo, refs, rows) if refs else rows
    return push_rows(ws, chosen, remote=remote, jobs=jobs, allow_in_repo=allow_in_repo, named=bool(refs))


def push_rows(ws: Workspace, chosen: list[Row], *, remote: str | None = None, jobs: int | None = None,
              allow_in_repo: bool = False, named: bool = True, folders: Iterable[str] = ()) -> PushResult:
    """Push these rows' local objects and the manifests of their folders and of ``folders`` (what
    ``zoo commit --push`` sends: the checkpoints and folders the remote lacks)."""
    ready: list[str] = []
    skipped = []
    pushed_rows = []
    found = [(row, _objects(ws, row)) for row in chosen]
    digests = _sha256_all(ws, [obj for _, objects in found for _, _, obj, _ in objects or ()])
    for row, objects in found:
        if objects is None:
            skipped.append(f"{row['model']}@{row['step']}")
            continue
        ready += _checked(objects, digests)
        pushed_rows.append(row)
    if named and skipped and not ready:
        raise MissingFileError(
            f"{', '.join(skipped)}: not in the local cache, so there is nothing to push; pull or add it first"
        )
    store = ws.store
    name = remote or store.default_remote() or ""
    folder = in_tree_remotes(ws.root, store.remotes()).get(name)
    if folder and not allow_in_repo:
        refuse_large_in_repo(ws, pushed_rows, name, folder, remote)
    folders = sorted({str(Path(r["path"]).parent) for r in chosen} | set(folders))
    uploaded, replaced = store.push(ready, remote=remote, jobs=jobs, folders=folders) if folders else (0, 0)
    # a remote inside the work tree reaches teammates only through git: its objects are staged
    staged = ws.stage([folder]) if folder and (ws.root / folder).is_dir() else ()
    return PushResult(name, uploaded, tuple(skipped), staged, replaced)


def in_repo_limit(ws: Workspace) -> float:
    """The in-repo remote's per-checkpoint limit in MB (10^6 bytes): ``storage.in_repo_max_mb`` of
    params.yaml when set, else ``IN_REPO_MAX_MB``."""
    from ..utils.safe_yaml import load_yaml

    path = ws.root / PARAMS_FILE
    if not path.is_file():
        return IN_REPO_MAX_MB
    data = load_yaml(path.read_bytes(), PARAMS_FILE)
    section = data.get("storage") if isinstance(data, dict) else None
    value = section.get("in_repo_max_mb", IN_REPO_MAX_MB) if isinstance(section, dict) else IN_REPO_MAX_MB
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9:
        raise ZooError(f"{PARAMS_FILE} storage.in_repo_max_mb: {str(value)[:40]!r} is not a number of MB from 0; "
                         "fix it in conf/config.yaml and recompose (`python -m checkpoint_zoo.pipeline compose`)")
    return float(value)


def refuse_large_in_repo(ws: Workspace, rows: list[Row], name: str, folder: str, remote: str | None) -> None:
    """Refuse, before anything moves, to put a checkpoint above the limit into a remote inside the work
    tree: git would carry it into every clone for good. Only what the remote lacks counts, so a checkpoint
    stored there before (with ``--allow-in-repo``) does not block later pushes."""
    limit = in_repo_limit(ws)
    big = {f"{r['model']}@{r['step']}": _bytes(ws, r) for r in rows}
    big = {ref: size for ref, size in big.items() if size > limit * 1e6}
    if not big:
        return
    parts = [Part(p, sha, r["model"], r["step"]) for r in rows if f"{r['model']}@{r['step']}" in big
             for p, sha in _stored_parts(ws, r)]
    lacking = sorted({p.ref for p in ws.store.missing_on_remote(parts, remote=remote)[0]})
    if not lacking:
        return
    shown = ", ".join(f"{ref} ({big[ref] / 1e6:.1f} MB)" for ref in lacking[:3])
    more = f" and {len(lacking) - 3} more" if len(lacking) > 3 else ""
    raise ZooError(f"{shown}{more}: above the {limit:g} MB limit of remote {name!r}, which lives in the work tree "
                   f"({folder}/), so git would carry it into every clone; configure a real remote first "
                   "(`zoo remote add NAME URL --default`), or pass --allow-in-repo (limit: storage.in_repo_max_mb "
                   "in conf/config.yaml); nothing was pushed")


def _stored_parts(ws: Workspace, row: Row) -> list[tuple[str, str]]:
    """(path, sha256) of what a push stores of a checkpoint: its weights, and its state when this clone has it."""
    state = rules.state_path(row["model"], int(row["step"]))
    has_state = bool(row.get("state_sha256")) and ws.store.cached_object(state) is not None
    return rules.parts(row) + ([(state, row["state_sha256"])] if has_state else [])


def _bytes(ws: Workspace, row: Row) -> int:
    """The checkpoint's bytes a push would store: its weights, and its training state when this clone has it."""
    size = int(row.get("size_bytes") or 0)
    if row.get("state_sha256"):
        state = ws.store.cached_object(rules.state_path(row["model"], int(row["step"])))
        size += state.stat().st_size if state is not None else 0
    return size


def _objects(ws: Workspace, row: Row) -> list[tuple[str, str, Path, str]] | None:
    """(table path, expected sha256, cache object, its column) of each file of a checkpoint to push (its
    training state too when this clone has it); None when not all of its weights are cached."""
    store = ws.store
    objects = [(part["path"], part["sha256"], obj, "sha256") for part in part_rows(row)
               if (obj := store.cached_object(part["path"])) is not None]
    if len(objects) < len(rules.parts(row)):
        return None
    if row.get("state_sha256"):  # the training state goes with its weights when this clone has it
        state = rules.state_path(row["model"], int(row["step"]))
        obj = store.cached_object(state)
        if obj is not None:
            objects.append((state, row["state_sha256"], obj, "state_sha256"))
    return objects


def _checked(objects: list[tuple[str, str, Path, str]], digests: dict[Path, str]) -> list[str]:
    """The table paths of these objects, each one's sha256 (``digests``) checked against the table."""
    for path, expected, obj, column in objects:
        if digests[obj] == expected:
            continue
        if column == "sha256":
            raise IntegrityError(
                f"{path}: the local DVC cache copy no longer matches sha256 {expected[:12]}… "
                "(bit rot or tampering); nothing was pushed; run `zoo pull` to restore it"
            )
        raise IntegrityError(
            f"{path}: the local DVC cache copy no longer matches state_sha256 "
            f"{expected[:12]}…; nothing was pushed; run `zoo pull --with-state` to restore it")
    return [path for path, *_ in objects]


def _sha256_all(ws: Workspace, objects: list[Path]) -> dict[Path, str]:
    """Every object's sha256 (by its stamp when it has one, else hashed), a few at a time: hashlib lets go of the
    GIL while it hashes, so a push of thousands of small files does not wait on one core for reads and hashes."""
    from concurrent.futures import ThreadPoolExecutor

    unique = list(dict.fromkeys(objects))
    if len(unique) < 8:
        return {obj: ws.stamps.sha256(obj) for obj in unique}
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(unique, pool.map(ws.stamps.sha256, unique)))
