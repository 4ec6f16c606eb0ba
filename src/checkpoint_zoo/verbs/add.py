"""``zoo add``: the transaction that puts a checkpoint file into the zoo.

Arguments and registries are checked first; then, under the zoo's lock, the file is checked against its
architecture, copied (hashed as it goes), placed, tracked in its model folder's pointer (journaled, so a
killed add is undone by the next one), and only then is the table written atomically and staged.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import layout
from ..catalog import rules, table
from ..catalog.refs import parse_ref
from ..entities import AddResult, Checkpoint
from ..errors import (
    ArchitectureError,
    CheckpointNotFoundError,
    DiskFullError,
    DuplicateCheckpointError,
    FormatError,
    InvalidValueError,
    MissingFileError,
    RefError,
    StorageError,
    UsageError,
    ZooError,
)
from ..formats import (
    FileFacts,
    allow_global_problem,
    convert_to_safetensors,
    copy_hashed,
    folder_members,
    inspect_file,
    inspect_folder,
    read_header,
    sha256_file,
    sniff,
)
from ..registry.fit import check_add
from ..utils import environ
from ..utils.files import disk_full, disk_full_message

if TYPE_CHECKING:
    from ..catalog.index_cache import ForWrite
    from ..training.state import TrainingState
    from ..workspace.transaction import Transaction
    from ..workspace.tree import Workspace
    from .facade import Facade

Row = dict[str, str]


def add(
    zoo: Facade,
    file: str | os.PathLike[str],
    *,
    model: str,
    step: int,
    arch: str | None = None,
    task: str,
    dataset: str,
    license: str,
    epoch: float | None = None,
    description: str = "",
    tags: Sequence[str] = (),
    parent: str | None = None,
    source: str | None = None,
    reported: tuple[str, float] | None = None,
    move: bool = False,
    replace: bool = False,
    stage: bool = True,
    convert: bool = False,
    allow_globals: Sequence[str] = (),
    training_state: TrainingState | str | os.PathLike[str] | None = None,
    relicense: bool = False,
) -> AddResult:
    """Put a safetensors file at its canonical path, track it with DVC, append its row, stage in git.

    Pickle-based files (torch.save, .pt/.pth/.ckpt/.bin, detected by content) are refused unless
    ``convert``: then a separate, fresh interpreter loads them with ``torch.load(weights_only=True)``
    (the allowlist widened only by ``allow_globals``, e.g. ``argparse.Namespace``) and writes
    safetensors, which is what gets added; the conversion is recorded in the row's ``source``.
    TorchScript is always refused. ``training_state`` (a ``TrainingState`` or the path of a file written by
    ``training.save_state``) is checked against the weights and stored beside them, in the same transaction.
    A ``license`` other than the model's checkpoints carry is refused unless ``relicense`` (``rules.license_problems``).
    """
    zoo.writable("add")
    src = Path(file)
    if not arch:
        return _add_with_arch_from_config(zoo, src, model=model, step=step, task=task, dataset=dataset,
                                          license=license, epoch=epoch, description=description, tags=tags,
                                          parent=parent, source=source, reported=reported, move=move, replace=replace,
                                          stage=stage, convert=convert, allow_globals=allow_globals,
                                          training_state=training_state, relicense=relicense)
    folder = convert and src.is_dir()  # a transformers Trainer checkpoint folder
    _check_add_args(src, model, step, arch, task, dataset, license, epoch, description, tags, parent, source, reported,
                    move=move, folder=folder)
    if move:
        refuse_move_from_zoo(zoo.root, src)
    check_registered(zoo, arch, task, dataset, reported)
    if allow_globals and not convert:
        raise UsageError("--allow-global only applies to --convert")
    if convert and move:
        raise UsageError("--move cannot be combined with --convert (the converted file is a new file; "
                         "delete the original yourself once it is added)")
    for name in allow_globals:
        problem = allow_global_problem(name)
        if problem:
            raise InvalidValueError(problem)
    kwargs: dict[str, Any] = dict(
        model=model, step=step, arch=arch, task=task, dataset=dataset, license=license, epoch=epoch,
        description=description, tags=tags, parent=parent, reported=reported, replace=replace, stage=stage,
        state=training_state, relicense=relicense)
    default_source = f"zoo add {rules.CONTROL_CHARS_RE.sub('?', src.name)}"
    if not convert or (not folder and sniff(src) == "safetensors"):
        return add_file(zoo, src, source=source or default_source, move=move, **kwargs)
    _check_against_table(zoo.rows(), model, step, parent)  # refuse early, before the slow conversion
    incoming = zoo.workspace.incoming
    converted = incoming / f"{model}-{step}-{os.getpid()}.converted.safetensors"
    converted_state = converted.with_name(converted.name.replace(".converted.", ".convertedstate."))
    try:
        conversion = convert_to_safetensors(src, converted, allow_globals=tuple(allow_globals),
                                            timeout=environ.convert_timeout(), state_dst=converted_state)
        if conversion.state and training_state is None:
            kwargs["state"] = converted_state
        note = f"{source or default_source}; {conversion.describe()}"
        if len(note) > rules.MAX_TEXT_CHARS:
            raise InvalidValueError(f"--source with the conversion note would be {len(note)} characters; at most "
                                    f"{rules.MAX_TEXT_CHARS} fit the table, so shorten --source to "
                                    f"{max(0, rules.MAX_TEXT_CHARS - len(note) + len(source or default_source))}")
        result = add_file(zoo, converted, source=note, move=True, **kwargs)
    except (FormatError, ArchitectureError) as e:
        raise type(e)(str(e).replace(str(converted), f"{src} (converted)")) from None
    finally:
        converted.unlink(missing_ok=True)
        converted_state.unlink(missing_ok=True)
    return AddResult(result.checkpoint, result.status, result.staged, conversion)


def _add_with_arch_from_config(zoo: Facade, src: Path, *, model: str, stage: bool, **kwargs: Any) -> AddResult:
    """``add`` of a transformers folder without ``arch``: the architecture comes from its config.json, written to
    ``conf/arch/<model>.yaml`` (removed again if the add fails; staged with it)."""
    from ..registry.hf import arch_from_config_json, write_arch

    if not src.is_dir():
        raise UsageError("--arch is missing; it may be left out only for a folder whose config.json names its "
                         "transformers class (save_pretrained writes one)")
    problem = rules.slug_problem(model, "--model")
    if problem:
        raise InvalidValueError(problem)
    config = arch_from_config_json(src)
    with zoo.workspace.lock():
        path, new = write_arch(zoo.root, model, config,
                               f"{layout.AUTO_ARCH_NOTE} {rules.CONTROL_CHARS_RE.sub('?', src.name)} "
                               f"({config['_target_']}); built from this config alone, no download.")
    zoo.workspace.forget(registry=True)
    try:
        result = add(zoo, src, model=model, arch=model, stage=stage, **kwargs)
        staged = zoo.workspace.stage([path.relative_to(zoo.root).as_posix()]) if stage and new else ()
    except BaseException:
        if new:
            path.unlink(missing_ok=True)
            zoo.workspace.forget(registry=True)
        raise
    return AddResult(result.checkpoint, result.status, (*result.staged, *staged), result.conversion)


def check_registered(zoo: Facade, arch: str, task: str, dataset: str, reported: tuple[str, float] | None) -> None:
    """Refuse names conf/ does not register, and a reported value its metric cannot take."""
    reg = zoo.registry()
    problems = reg.row_problems(arch, task, dataset, reported[0] if reported else "")
    if problems:
        flag = {"architecture": "--arch", "task": "--task", "dataset": "--dataset", "reported": "--reported"}
        first = problems[0]
        prefix = next((f for word, f in flag.items() if first.startswith(word)), "--dataset")
        raise InvalidValueError(f"{prefix}: {first}")
    if reported is not None:
        problem = reg.task(task).metrics[reported[0]].value_problem(reported[1], "--reported")
        if problem:
            raise InvalidValueError(problem)


def add_file(zoo: Facade, src: Path, *, model: str, step: int, arch: str, task: str, dataset: str, license: str,
             epoch: float | None, description: str, tags: Sequence[str], parent: str | None, source: str,
             reported: tuple[str, float] | None, move: bool, replace: bool, stage: bool,
             state: TrainingState | str | os.PathLike[str] | None = None, relicense: bool = False) -> AddResult:
    """The add itself, on a file that ``add`` has checked the arguments of."""
    # pandas + pandera take ~1 s to import; warm them while the bytes are copied.
    warm = threading.Thread(target=_warm_schema, daemon=True)
    warm.start()
    ws = zoo.workspace
    with ws.lock(), ExitStack() as opened:
        ws.recover()
        if stage:
            ws.check_git_index()
        rows, copy = opened.enter_context(_table_before(ws))  # after the recovery, which may change the table
        _check_against_table(rows, model, step, parent, copy)
        mine = copy.of_model(model) if copy else rows
        mixed = rules.license_problems(mine, [{"model": model, "step": str(step), "license": license}], relicense)
        if mixed:
            raise InvalidValueError(mixed[0][1])
        existing = next((r for r in mine if r["model"] == model and int(r["step"]) == step), None)
        is_folder = src.is_dir()
        if existing is not None and (existing["format"] == "folder") != is_folder:
            raise DuplicateCheckpointError(
                f"{model}@{step} exists as {'a folder' if existing['format'] == 'folder' else 'one file'}; --replace "
                f"cannot change that: remove it first (`zoo rm {model}@{step}`) or pick a new --step")
        # refuse a bad file before copying a byte of it
        members = folder_members(src) if is_folder else []
        if not is_folder:
            read_header(src)
        check_add(zoo.registry(), arch, task, dataset, src, str(src))
        with ws.transaction(f"{model}-{step}") as txn:
            incoming = incoming_path(ws, model, step, folder=is_folder)
            txn.take([(src, incoming, move)])  # a killed --move is put back at its source by the next command
            facts, digests = _copy_checked(zoo, src, incoming, members, move, (arch, task, dataset))
            state_copy, state_digest = None, ""
            if state is not None:
                state_copy, state_digest, recorded = prepare_state(zoo, state, incoming, arch, model, step)
                txn.take([(state_copy, state_copy, False)])
                epoch = _epoch_of_state(recorded, epoch, f"{model}@{step}")
            if existing is not None and _unchanged(existing, facts.sha256, state_copy, state_digest, replace):
                txn.abandon()
                # an earlier add killed after its table write never staged: staging again is cheap and idempotent
                staged = stage_add(zoo, [str(Path(existing["path"]).parent)]) if stage else ()
                return AddResult(Checkpoint.from_row(existing), "unchanged", staged)
            row = make_row(facts, model=model, step=step, arch=arch, task=task, dataset=dataset, license=license,
                           epoch=epoch, description=description, tags=tags, parent=parent, source=source,
                           reported=reported, files=digests)
            row["state_sha256"] = state_digest
            warm.join()
            staged = commit(zoo, rows, [Incoming(src, incoming, move, row, existing, state_copy)], stage, txn,
                            copy=copy)
    return AddResult(Checkpoint.from_row(row), "replaced" if existing else "added", staged)


@contextmanager
def _table_before(ws: Workspace) -> Iterator[tuple[list[Row], ForWrite | None]]:
    """The table before a write: its indexed copy opened for the write (and no rows) when the copy is of the file
    as it is now and the file is what ``dump_csv`` writes, so the add reads and writes only the rows it changes;
    else every row, parsed and validated (and no copy)."""
    from ..catalog.index_cache import ForWrite

    table.table_file(ws.root)  # a symlinked or special table is refused, never read
    copy = ForWrite.open(ws.table_path)
    try:
        yield ([] if copy else ws.source.rows_to_rewrite()), copy
    finally:
        if copy is not None:
            copy.close()


def _copy_checked(zoo: Facade, src: Path, incoming: Path, members: list[str], move: bool,
                  names: tuple[str, str, str]) -> tuple[FileFacts, dict[str, str]]:
    """Copy (or move) into incoming, then take the facts from the copy: the bytes may have changed while copied."""
    digests: dict[str, str] = {}
    if members:
        digests = copy_folder_in(src, members, incoming)
    else:
        digest = copy_in(src, incoming, move)
    try:
        facts = inspect_folder(incoming, digests) if members else inspect_file(incoming, sha256=digest)
        check_add(zoo.registry(), *names, incoming, str(src))
    except (FormatError, ArchitectureError) as e:
        raise type(e)(str(e).replace(str(incoming), str(src))) from None
    return facts, digests


def _unchanged(existing: Row, sha256: str, state_copy: Path | None, state_digest: str, replace: bool) -> bool:
    """Whether re-adding ``existing`` changes nothing; raises when it would change it without ``replace``."""
    ref = f"{existing['model']}@{existing['step']}"
    same_state = state_copy is None or existing.get("state_sha256") == state_digest
    if existing["sha256"] != sha256 and not replace:
        raise DuplicateCheckpointError(f"{ref} exists with other bytes (sha256 {existing['sha256'][:12]}…); "
                                       "pick a new --step, or pass --replace to overwrite it")
    if not same_state and existing.get("state_sha256") and not replace:
        raise DuplicateCheckpointError(f"{ref} already has another training state (sha256 "
                                       f"{existing['state_sha256'][:12]}…); pass --replace to overwrite it")
    return existing["sha256"] == sha256 and same_state


@dataclass(frozen=True)
class Incoming:
    """A checked copy in the incoming area, waiting to be placed at its row's path."""

    src: Path
    copy: Path
    moved: bool
    row: Row
    existing: Row | None  # the row it replaces
    state: Path | None = None  # a checked training-state copy, placed beside the weights


def _epoch_of_state(recorded: float | None, epoch: float | None, ref: str) -> float | None:
    """The row's epoch: the one given, else the one the training state records (``capture(..., epoch=3)``);
    the two must agree when both are there."""
    if recorded is not None and epoch is not None and not math.isclose(recorded, epoch, rel_tol=0, abs_tol=1e-9):
        raise InvalidValueError(f"{ref}: --epoch {epoch:g} but its training state records epoch {recorded:g}; "
                                "give the same epoch or leave --epoch out")
    return epoch if epoch is not None else recorded


def prepare_state(zoo: Facade, state: TrainingState | str | os.PathLike[str], weights: Path, arch: str, model: str,
                  step: int) -> tuple[Path, str, float | None]:
    """Write (or copy) a training state into the incoming area and check it against the weights' header and
    the architecture's parameters; (the copy, its sha256, the epoch it records). Refusals name the file and remove the copy."""
    from ..formats import weight_shapes
    from ..registry.archs import build
    from ..training.state import TrainingState, load_state, save_state, state_problem

    dest = zoo.workspace.incoming / f"{model}-{step}-{os.getpid()}.state.safetensors"
    dest.parent.mkdir(parents=True, exist_ok=True)
    what = "the training state" if isinstance(state, TrainingState) else str(state)
    try:
        if isinstance(state, TrainingState):
            save_state(state, dest)
            digest = sha256_file(dest)
        else:
            check_source(Path(state))
            digest = copy_in(Path(state), dest, move=False)
        loaded = load_state(dest, what)
        spec = zoo.registry().arch(arch)
        arch_params = [n for n, _ in build(spec, zoo.registry(), device="meta").named_parameters()]
        shapes = {k: v[0] for k, v in weight_shapes(weights).items()}
        problem = state_problem(loaded, shapes, arch_params)
        if problem:
            raise ArchitectureError(f"{what}: does not match the weights of {model}@{step}: {problem}")
    except BaseException as e:
        dest.unlink(missing_ok=True)
        if isinstance(e, FormatError):
            raise type(e)(str(e).replace(str(dest), what)) from None
        raise
    return dest, digest, loaded.epoch


def incoming_path(ws: Workspace, model: str, step: int, folder: bool = False) -> Path:
    """Where ``add`` copies a file (or a folder) before placing it (its name says whose process made it, so a
    killed command's copies are swept)."""
    return ws.incoming / f"{model}-{step}-{os.getpid()}.{'folder' if folder else 'safetensors'}"


def copy_folder_in(src: Path, members: Sequence[str], incoming: Path) -> dict[str, str]:
    """Copy a checked checkpoint folder's files (paths inside it) into the incoming area (one fsync per file);
    path inside the folder -> sha256."""
    incoming.mkdir(parents=True, exist_ok=False)
    try:
        return {m: copy_in(src / m, incoming / m, move=False) for m in members}
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise


def copy_in(src: Path, incoming: Path, move: bool, fsync: bool = True) -> str:
    """Copy (or move) ``src`` into the incoming area; its sha256."""
    incoming.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _move_hashed(src, incoming) if move else copy_hashed(src, incoming, fsync=fsync)
    except OSError as e:
        full = disk_full(e)
        if full is None:
            raise
        raise DiskFullError(disk_full_message(full, f"copying {src} into the zoo")) from None


def make_row(facts: FileFacts, *, model: str, step: int, arch: str, task: str, dataset: str, license: str,
             epoch: float | None, description: str, tags: Sequence[str], parent: str | None, source: str,
             reported: tuple[str, float] | None, files: dict[str, str] | None = None) -> Row:
    """The table row of a checked file (or, with ``files``, of a checked folder: name -> sha256)."""
    fmt = "folder" if files else "safetensors"
    return {
        "model": model, "step": str(step), "epoch": "" if epoch is None else repr(float(epoch)),
        "path": rules.checkpoint_path(model, step, fmt), "format": fmt, "size_bytes": str(facts.size_bytes),
        "sha256": facts.sha256, "num_params": str(facts.num_params), "dtype": facts.dtype, "state_sha256": "",
        "files": rules.format_files(files or {}),
        "arch": arch, "task": task, "dataset": dataset, "license": license,
        "parent": parent or "", "tags": ";".join(tags), "description": description,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "source": source,
        "reported_metric": reported[0] if reported else "",
        "reported_value": repr(float(reported[1])) if reported else "",
    }


def commit(zoo: Facade, rows: list[Row], items: Sequence[Incoming], stage: bool, txn: Transaction,
           overlap: bool = False, copy: ForWrite | None = None) -> tuple[str, ...]:
    """Under the lock, in ``txn``: place checked copies, track them in their folders' pointers, write the table, stage.

    One transaction for one file or a thousand: the new table is validated first; every step is in the
    undo log before it happens (a failure, or a kill followed by the next command's recovery, puts every
    file, pointer and replaced checkpoint back; a moved file returns to its source). With ``overlap`` (a
    batch, whose rows were all built from checked arguments), the schema check of the new rows runs while
    DVC hashes the files, and a refusal undoes the placing like any other failure.

    With ``copy`` (the table's indexed copy, ``_table_before``; ``rows`` then empty) the one new row is spliced
    into the table's bytes and checked against the rows it refers to, and the copy takes the same change after
    the write; the bytes are what the whole rewrite would give. Without it, the new table's copy is written.
    """
    ws = zoo.workspace
    new_data = _spliced(copy, items)
    if new_data is None:
        if copy is not None:  # a line not where it should be: the whole table, as without a copy
            copy, rows = None, ws.source.rows_to_rewrite()
        replaced = {(i.existing["model"], i.existing["step"]) for i in items if i.existing is not None}
        new_rows = [r for r in rows if (r["model"], r["step"]) not in replaced] + [i.row for i in items]
        new_data = table.dump_csv(new_rows)
    else:
        assert copy is not None
        new_rows = _with_ancestors(copy, items)
    refusal: list[BaseException] = []

    def check() -> None:
        try:
            ws.validate_change(new_data, new_rows, [i.row for i in items])
        except BaseException as e:
            refusal.append(e)

    checker = threading.Thread(target=check, daemon=True)
    if overlap and table.is_known_valid(ws.table_path.read_bytes()):
        checker.start()
    else:
        check()
        if refusal:
            raise refusal[0]
    folders = sorted({str(Path(i.row["path"]).parent) for i in items})
    store = ws.store
    txn.save(*(ws.root / store.pointer(f) for f in folders), ws.root / layout.CHECKPOINTS_DIR / ".gitignore")
    try:
        old_manifests = {folder: store.manifest_object(folder) for folder in folders}
        states = _place(ws, txn, items)
        ensure_gitignore(zoo)
        parts = {id(i): rules.parts(i.row) for i in items}
        # a replaced folder's files that the new one lacks are recorded as removed
        gone = [p for i in items if i.existing is not None for p, _ in rules.parts(i.existing)
                if p not in {q for q, _ in parts[id(i)]}]
        store.track([p for i in items for p, _ in parts[id(i)]] + gone + [rel for _, rel in states])
        txn.created(*_new_objects(ws, rows, items, states, old_manifests, copy))
    finally:
        if checker.ident is not None:  # started: the overlapped schema check
            checker.join()
    if refusal:
        raise refusal[0]
    try:
        txn.write_table(new_data)
    except OSError as e:
        full = disk_full(e)
        if full is None:
            raise
        raise DiskFullError(disk_full_message(full, f"writing {layout.TABLE_PATH}") + "; nothing was added") from None
    _update_copy(ws, copy, items, new_rows)
    staged = stage_add(zoo, folders) if stage else ()
    for rel, sha in [(rel, sha) for i in items for rel, sha in rules.parts(i.row)] + [
            (rel, i.row["state_sha256"]) for i, rel in states if i.state is not None]:
        ws.stamps.record(ws.root / rel, sha)  # checked by _new_objects, after DVC placed them
    return staged


def _spliced(copy: ForWrite | None, items: Sequence[Incoming]) -> bytes | None:
    """The new table's bytes with the one new row spliced in (``table.splice_row``), or None (no copy, several rows,
    a line not found): then the whole table is written."""
    if copy is None or len(items) != 1:
        return None
    row = items[0].row
    step = int(row["step"])
    return table.splice_row(copy.data, row, copy.following(row["model"], step), items[0].existing is not None)


def _with_ancestors(copy: ForWrite, items: Sequence[Incoming]) -> list[Row]:
    """The new rows and the line of ancestors of each (from the copy): all that the schema's cross-row rules of
    the new rows look at (``Workspace.validate_change``)."""
    new = {(i.row["model"], i.row["step"]) for i in items}
    out = [i.row for i in items]
    for i in items:
        line = copy.ancestors(i.row["parent"]) if i.row["parent"] else []
        out += [r for r in line if (r["model"], r["step"]) not in new and r not in out]
    return out


def _update_copy(ws: Workspace, copy: ForWrite | None, items: Sequence[Incoming], new_rows: list[Row]) -> None:
    """After the table write: the same change in the table's indexed copy (or, without one, the new table's copy),
    so that the next command reads the copy; a failure after this leaves the copy stale, never wrong."""
    from ..catalog import index_cache

    if copy is not None:
        copy.apply([(i.existing["model"], int(i.existing["step"])) for i in items if i.existing is not None],
                   [i.row for i in items])
    else:
        index_cache.store(ws.table_path, new_rows, index_cache.stamp_of(ws.table_path), canonical=True)


def _place(ws: Workspace, txn: Transaction, items: Sequence[Incoming]) -> list[tuple[Incoming, str]]:
    """Put every checked copy (and training state) at its table path; (item, state path) whose state changed."""
    states: list[tuple[Incoming, str]] = []
    moves: list[tuple[Path, Path, Path | None]] = []
    ws.check_paths(i.row["path"] for i in items)  # each model folder resolved once, not each file's every component
    for i in items:
        moves.append((i.copy, ws.root / i.row["path"], i.src if i.moved else None))
        if i.state is not None or (i.existing or {}).get("state_sha256"):
            # a replaced checkpoint's old state goes too: a state never outlives the weights it belongs to
            state_rel = _state_rel(i.row)
            if i.state is not None:
                moves.append((i.state, ws.path(state_rel), None))
            else:
                txn.displace(ws.path(state_rel))
            states.append((i, state_rel))
    txn.place(moves)
    return states


def _new_objects(ws: Workspace, rows: list[Row], items: Sequence[Incoming], states: list[tuple[Incoming, str]],
                 old_manifests: dict[str, Path | None], copy: ForWrite | None = None) -> list[Path]:
    """What only this add put in the DVC cache (bytes no row of the table before it holds, ``rows`` or ``copy``;
    the folders' new manifests), checking that DVC stored every file."""
    store = ws.store
    known = {r["sha256"] for r in rows} | {r.get("state_sha256") for r in rows} | {
        sha for r in rows if r.get("files") for _, sha in rules.parts(r)}
    if copy is not None:
        known |= {sha for i in items for _, sha in rules.parts(i.row) if copy.knows(sha)}
        known |= {i.row["state_sha256"] for i, _ in states if i.state is not None and copy.knows(i.row["state_sha256"])}
    new = [m for f, old in old_manifests.items() if (m := store.manifest_object(f)) not in (None, old)]
    wanted = [(rel, sha) for i in items for rel, sha in rules.parts(i.row)]
    wanted += [(rel, i.row["state_sha256"]) for i, rel in states if i.state is not None]
    ws.check_paths(rel for rel, _ in wanted)
    for rel, sha in wanted:
        obj = store.cached_object(rel)
        if obj is None or obj.stat().st_size != (ws.root / rel).stat().st_size:
            raise StorageError(f"dvc add did not store {rel} in the DVC cache; nothing was added; "
                               "run `dvc doctor` and the command again")
        if sha not in known:
            new.append(obj)
    return new


def _state_rel(row: Row) -> str:
    return rules.state_path(row["model"], int(row["step"]))


def stage_add(zoo: Facade, folders: Iterable[str]) -> tuple[str, ...]:
    """``git add`` the table, the pointers of ``folders`` and the checkpoints' .gitignore; a refusal (another
    git command holds the index lock) raises ZooError naming the lock file."""
    ws = zoo.workspace
    try:
        return ws.stage([layout.TABLE_PATH, *(ws.store.pointer(f) for f in folders),
                         f"{layout.CHECKPOINTS_DIR}/.gitignore"])
    except ZooError as e:
        raise ZooError(f"{e}; nothing was added (run the command again once that git command is done)") from None


def ensure_gitignore(zoo: Facade) -> None:
    """One wildcard line instead of DVC's line per folder (docs/architecture.md: one tracked folder per model)."""
    path = zoo.root / layout.CHECKPOINTS_DIR / ".gitignore"
    lines = path.read_text().splitlines() if path.exists() else []
    if "/*/" not in lines:
        table.atomic_write(path, ("\n".join(["/*/", *lines]) + "\n").encode())


def _warm_schema() -> None:
    try:
        import checkpoint_zoo.catalog.schema  # noqa: F401
    except Exception:  # the real import, on the main thread, reports any problem
        pass


def _move_hashed(src: Path, dst: Path) -> str:
    try:
        os.replace(src, dst)
    except OSError:
        digest = copy_hashed(src, dst)
        src.unlink()
        return digest
    return sha256_file(dst)


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO or pipe"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_source(src: Path, move: bool = False) -> None:
    """Refuse a source that is not a regular file (a pipe such as /dev/stdin, a device, a directory), and for
    ``move`` one that is not a regular file of its own (a symlink) or that this user may not delete."""
    try:
        mode = os.stat(src).st_mode
    except FileNotFoundError:
        raise MissingFileError(f"{src}: no such file; give the path of a .safetensors checkpoint") from None
    except OSError as e:
        raise MissingFileError(f"{src}: cannot read it ({e.strerror}); give the path of a checkpoint file") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
        raise InvalidValueError(f"{src}: is {kind}, not a regular file; save the checkpoint to a file and add that")
    if move:
        if stat.S_ISLNK(os.lstat(src).st_mode):
            raise InvalidValueError(f"{src}: is a symlink; --move moves only regular files (drop --move to copy "
                                    "the file it points to)")
        if not os.access(src.parent, os.W_OK | os.X_OK):
            raise InvalidValueError(f"{src}: you may not delete it (its folder is not writable); drop --move to copy it")


def refuse_move_from_zoo(root: Path, src: Path) -> None:
    """``--move`` takes files from outside the zoo: moving a tracked checkpoint (or a DVC cache object) out of
    its place would take it from its model. Decided by where the path resolves, not by how it is spelled."""
    where = src.resolve()
    for inside in (layout.CHECKPOINTS_DIR, ".dvc"):
        base = (root / inside).resolve()
        if where == base or base in where.parents:
            raise InvalidValueError(f"{src}: is inside the zoo ({inside}/); --move takes files from outside it, so "
                                    "drop --move to copy it")


def _check_add_args(src, model, step, arch, task, dataset, license, epoch, description, tags, parent, source, reported,
                    move: bool = False, folder: bool = False) -> None:
    if src.is_dir() and not src.is_symlink() and not folder:
        if move:
            raise UsageError(f"{src}: --move takes a file; a checkpoint folder is copied (drop --move)")
    elif not folder:
        check_source(src, move)
    problem = rules.slug_problem(model, "--model")
    if problem:
        raise InvalidValueError(problem)
    problem = rules.count_problem(step, "--step")
    if problem or not isinstance(step, int):
        raise InvalidValueError(problem or f"--step {step!r}: must be a whole number >= 0")
    if epoch is not None and (not math.isfinite(epoch) or epoch < 0):
        raise InvalidValueError(f"--epoch {epoch!r}: must be a finite number >= 0")
    _check_names(arch, task, dataset, license, tags)
    for flag, text in (("--description", description), ("--source", source or "")):
        problem = rules.text_problem(text, flag)
        if problem:
            raise InvalidValueError(problem)
    if parent is not None:
        _check_parent(parent, model, step)
    if reported is not None:
        metric, value = reported
        if not metric or not re.fullmatch(rules.METRIC_NAME_PATTERN, metric):
            raise InvalidValueError(f"--reported {metric}={value}: name one of the task's metrics before '=', "
                                    "as in accuracy=0.97 (`zoo tasks` lists them)")
        if not math.isfinite(value):
            raise InvalidValueError(f"--reported {metric}={value}: the value must be a finite number")


def _check_names(arch, task, dataset, license, tags) -> None:
    for flag, value in (("--arch", arch), ("--task", task), ("--dataset", dataset)):
        if not value:
            raise InvalidValueError(f"{flag} is required: a name registered in conf/ (`zoo {flag[2:]}s` lists them)")
    if not license:
        raise InvalidValueError(f"--license is required; one of {', '.join(rules.LICENSES)}")
    if license not in rules.LICENSES:
        raise InvalidValueError(f"--license {license!r} is not allowed; use one of {', '.join(rules.LICENSES)}")
    for tag in tags:
        problem = rules.slug_problem(tag, "tag")
        if problem:
            raise InvalidValueError(f"--tags: {problem}")
    if len(";".join(tags)) > rules.MAX_TEXT_CHARS:
        raise InvalidValueError(f"--tags: {len(tags)} tags are more than the {rules.MAX_TEXT_CHARS} characters "
                                "that fit the table; keep fewer")


def _check_parent(parent: str, model: str, step: int) -> None:
    try:
        p = parse_ref(parent)
    except RefError as e:
        raise InvalidValueError(f"--parent: {e}") from None
    if not isinstance(p.selector, int):
        raise InvalidValueError(f"--parent {parent!r}: name an exact MODEL@STEP, not an alias")
    if p.model == model and p.selector == step:
        raise InvalidValueError(f"--parent {parent}: a checkpoint cannot be its own parent; name the one it "
                                "was trained or fine-tuned from")


def _check_against_table(rows: list[Row], model: str, step: int, parent: str | None,
                         copy: ForWrite | None = None) -> None:
    """The new row against the table's rows (or, with ``copy``, against the rows of its indexed copy it concerns):
    one spelling per model name, a parent that exists, no loop of parents."""
    for other in copy.models() if copy else {r["model"] for r in rows}:
        if other != model and other.casefold() == model.casefold():
            raise InvalidValueError(f"--model {model!r} differs from existing model {other!r} only by case; use {other!r}")
    if parent is not None:
        p = parse_ref(parent)
        line = copy.ancestors(f"{p.model}@{p.selector}") if copy else rows
        if not any(r["model"] == p.model and int(r["step"]) == p.selector for r in line):
            raise CheckpointNotFoundError(f"--parent {parent}: no such checkpoint in {layout.TABLE_PATH}; add it first")
        parents = {f"{r['model']}@{r['step']}": r["parent"] for r in line if r["parent"]}
        parents[f"{model}@{step}"] = f"{p.model}@{p.selector}"
        loop = rules.parent_cycle(parents, f"{model}@{step}")
        if loop:
            raise InvalidValueError(f"--parent {parent}: would make a loop of parents ({' -> '.join(loop)}); "
                                    "a checkpoint cannot descend from itself")
