"""``zoo add --from MANIFEST``: many checkpoints in one transaction.

Every line is checked (arguments, registries, the file's header and fit, duplicates within the batch and
against the table) before anything in the zoo changes, and every bad line is reported at once. The good
batch is copied into the incoming area (hashed as it goes, one flush for all), then placed, tracked with
one ``dvc add`` per model folder, and written to the table once, through the same commit as a single add.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog import rules
from ..entities import BulkAddResult, Checkpoint
from ..errors import ArchitectureError, FormatError, InvalidValueError, UsageError, ZooError
from ..formats import inspect_file, sniff_safetensors, weight_shapes
from ..registry.fit import check_add
from ..utils.progress import byte_progress
from ..workspace.transaction import give_back
from .add import (
    Incoming,
    _check_add_args,
    _warm_schema,
    check_registered,
    check_source,
    commit,
    copy_in,
    incoming_path,
    make_row,
    refuse_move_from_zoo,
)

if TYPE_CHECKING:
    from ..workspace.transaction import Transaction
    from .facade import Facade

Row = dict[str, str]

# the columns a manifest line may give; the other table columns are computed from the file
FIELDS = ("file", "model", "step", "epoch", "arch", "task", "dataset", "license", "description", "tags",
          "parent", "source", "reported", "reported_metric", "reported_value", "sha256")
REQUIRED = ("file", "model", "step", "arch", "task", "dataset", "license")
MAX_LINES = 100_000


def read_manifest(path: str | os.PathLike[str]) -> list[tuple[str, dict[str, Any]]]:
    """(label, fields) per line of a CSV (with a header) or JSON Lines manifest; relative files are taken
    from the manifest's folder. Raises on a manifest that cannot be read at all."""
    import stat

    # what MAX_LINES lines of about 650 bytes take; a bigger --from (or /dev/zero) is refused after that many bytes
    max_bytes = 64 * 2**20
    path = Path(path)
    try:
        # O_NONBLOCK: a FIFO opens at once (and is refused below) instead of waiting for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise UsageError(f"--from {path}: no such file; give a CSV or JSON Lines manifest") from None
    except IsADirectoryError:
        raise UsageError(f"--from {path}: is a folder; give a CSV or JSON Lines manifest listing its files "
                         "(README: importing a training run)") from None
    except OSError as e:
        raise UsageError(f"--from {path}: cannot read it ({e.strerror}); give a CSV or JSON Lines manifest") from None
    with open(fd, "rb") as manifest:
        mode = os.fstat(manifest.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise UsageError(f"--from {path}: is a folder; give a CSV or JSON Lines manifest listing its files "
                             "(README: importing a training run)")
        if not stat.S_ISREG(mode):
            raise UsageError(f"--from {path}: not a regular file (a pipe, device or socket); save the manifest to a "
                             "file and give that")
        data = manifest.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UsageError(f"--from {path}: larger than {max_bytes // 2**20} MiB; split it into smaller "
                         "manifests")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"--from {path}: not UTF-8 text; save the manifest as UTF-8") from None
    stripped = text.lstrip()
    as_json = path.suffix.lower() in (".jsonl", ".ndjson", ".json") or stripped.startswith("{")
    lines = _json_lines(path, text) if as_json else _csv_lines(path, text)
    if not lines:
        raise UsageError(f"--from {path}: no checkpoint lines; write one line per checkpoint "
                         f"(columns: {', '.join(REQUIRED)}, …)")
    if len(lines) > MAX_LINES:
        raise UsageError(f"--from {path}: {len(lines):,} lines; split it into manifests of at most {MAX_LINES:,}")
    base = path.parent
    for _, fields in lines:
        f = fields.get("file")
        if isinstance(f, str) and f and not Path(f).is_absolute():
            fields["file"] = str(base / f)
    return lines


def _csv_lines(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = reader.fieldnames or []
        unknown = [h for h in header if h not in FIELDS]
        if unknown:
            raise UsageError(_unknown_columns(path, unknown))
        if len(set(header)) != len(header):
            raise UsageError(f"{path}:1: a column appears twice in the header; keep one")
        out = []
        for fields in reader:
            if None in fields:
                raise UsageError(f"{path}:{reader.line_num}: more values than header columns; quote values with commas")
            out.append((f"{path}:{reader.line_num}", {k: v for k, v in fields.items() if v not in ("", None)}))
        return out
    except csv.Error as e:
        raise UsageError(f"{path}: not a readable CSV ({e}); fix the quoting or write JSON Lines") from None


def _json_lines(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except ValueError as e:
            raise UsageError(f"{path}:{n}: not JSON ({e.args[0].split(':')[0]}); write one JSON object per line") from None
        if not isinstance(fields, dict):
            raise UsageError(f"{path}:{n}: a JSON {type(fields).__name__}; write one JSON object per line")
        unknown = [k for k in fields if k not in FIELDS]
        if unknown:
            raise UsageError(_unknown_columns(Path(f"{path}:{n}"), unknown))
        out.append((f"{path}:{n}", {k: v for k, v in fields.items() if v not in ("", None)}))
    return out


def _unknown_columns(where: Path, unknown: list[str]) -> str:
    computed = [c for c in unknown if c in rules.COLUMNS]
    if computed:
        return f"{where}: column {computed[0]!r} is computed from the file; leave it out"
    return f"{where}: unknown column {unknown[0]!r}; use {', '.join(FIELDS)}"


def add_many(zoo: Facade, lines: Sequence[tuple[str, Mapping[str, Any]]], common: Mapping[str, Any], *,
             move: bool = False, replace: bool = False, stage: bool = True, where: str = "",
             relicense: bool = False) -> BulkAddResult:
    """Add every line, or none: see the module docstring. ``common`` fills what a line leaves out; a line whose
    license its model's other checkpoints do not carry is refused unless ``relicense``."""
    zoo.writable("add")
    started = time.monotonic()
    warm = threading.Thread(target=_warm_schema, daemon=True)
    warm.start()
    order = {label: n for n, (label, _) in enumerate(lines)}
    problems: list[tuple[str, str]] = []  # (label, message), reported in line order
    specs: list[tuple[str, dict[str, Any]]] = []
    for label, fields in lines:
        try:
            spec = _spec(fields, common)
            spec["moved"] = move
            if move:
                check_source(spec["file"], move=True)
                refuse_move_from_zoo(zoo.root, spec["file"])
            check_registered(zoo, spec["arch"], spec["task"], spec["dataset"], spec["reported"])
            specs.append((label, spec))
        except ZooError as e:
            problems.append((label, _column_words(str(e))))
    seen: dict[tuple[str, int], str] = {}
    sources: dict[Path, str] = {}
    unique = []
    for label, spec in specs:
        key = (spec["model"], spec["step"])
        if key in seen:
            problems.append((label, f"{key[0]}@{key[1]} is also on {seen[key]}; keep one"))
            continue
        if move:  # only a move takes a file from its place: a copy may list one file twice
            source = spec["file"].resolve()
            if source in sources:
                problems.append((label, f"--move of {spec['file']}, which {sources[source]} moves too; "
                                        "list each file once"))
                continue
            sources[source] = label
        seen[key] = label
        unique.append((label, spec))
    batch_refs = {f"{m}@{s}" for m, s in seen}
    ws = zoo.workspace
    with ws.lock():
        ws.recover()
        if stage:
            ws.check_git_index()
        rows = ws.source.rows_to_rewrite()  # no copy of a table about to change: commit writes the new one's
        by_ref = {f"{r['model']}@{r['step']}": r for r in rows}
        folded = {r["model"].casefold(): r["model"] for r in rows}
        checked: list[tuple[str, dict[str, Any]]] = []
        parents = {ref: r["parent"] for ref, r in by_ref.items() if r["parent"]}
        parents.update({f"{spec['model']}@{spec['step']}": spec["parent"] for _, spec in unique if spec["parent"]})
        for label, spec in unique:
            other = folded.setdefault(spec["model"].casefold(), spec["model"])
            if other != spec["model"]:
                problems.append((label, f"model {spec['model']!r} differs from {other!r} only by case; use {other!r}"))
                continue
            if spec["parent"] and spec["parent"] not in by_ref and spec["parent"] not in batch_refs:
                problems.append((label, f"parent {spec['parent']}: not in the table or this manifest; add it first"))
                continue
            loop = rules.parent_cycle(parents, f"{spec['model']}@{spec['step']}") if spec["parent"] else None
            if loop:
                problems.append((label, f"parent {spec['parent']}: makes a loop of parents ({' -> '.join(loop)}); "
                                        "a checkpoint cannot descend from itself"))
                continue
            try:
                sniff_safetensors(spec["file"])  # the header and fit are checked on the copy
            except (FormatError, OSError) as e:
                problems.append((label, str(e)))
                continue
            checked.append((label, spec))
        labels = {f"{spec['model']}@{spec['step']}": label for label, spec in checked}
        problems += [(labels[ref], why) for ref, why in rules.license_problems(
            rows, [{"model": sp["model"], "step": str(sp["step"]), "license": sp["license"]} for _, sp in checked],
            relicense)]
        with ws.transaction("batch") as txn:
            items, unchanged = _copy_in_all(zoo, txn, checked, by_ref, replace, move, problems)
            warm.join()
            if problems:
                problems.sort(key=lambda p: order[p[0]])
                head = f"{where}: " if where else ""
                raise InvalidValueError(
                    f"{head}{len(problems)} of {len(lines)} line(s) refused; nothing was added; fix them and run the "
                    "same command again:\n  " + "\n  ".join(f"{label}: {text}" for label, text in problems))
            staged = commit(zoo, rows, items, stage, txn, overlap=True) if items else ()
    added = tuple(Checkpoint.from_row(i.row) for i in items if i.existing is None)
    replaced = tuple(Checkpoint.from_row(i.row) for i in items if i.existing is not None)
    return BulkAddResult(added, replaced, unchanged, staged,
                         sum(int(i.row["size_bytes"]) for i in items), time.monotonic() - started)


def _copy_in_all(zoo: Facade, txn: Transaction, checked: list[tuple[str, dict[str, Any]]], by_ref: dict[str, Row],
                 replace: bool, move: bool, problems: list[tuple[str, str]]) -> tuple[list[Incoming], tuple[Checkpoint, ...]]:
    """Copy (or move) every checked file into incoming, journaled first in one write so a kill gives every
    moved file back; then the rows, from the copies."""
    planned = [(label, spec, incoming_path(zoo.workspace, spec["model"], spec["step"])) for label, spec in checked]
    txn.take([(spec["file"], copy, move) for _, spec, copy in planned])
    copies: list[tuple[str, dict[str, Any], Path, str]] = []
    total = sum(spec["file"].stat().st_size for _, spec in checked)
    with byte_progress(total, "copying and hashing", len(checked)) as advance:
        for label, spec, copy in planned:
            digest = copy_in(spec["file"], copy, move, fsync=False)
            copies.append((label, spec, copy, digest))
            advance(copy.stat().st_size)
    # one flush of everything written, not one per file: 1,000 fsyncs cost more than all the copies
    os.sync()
    return _rows(zoo, copies, by_ref, replace, problems)


def _rows(zoo: Facade, copies, by_ref: dict[str, Row], replace: bool,
          problems: list[tuple[str, str]]) -> tuple[list[Incoming], tuple[Checkpoint, ...]]:
    items: list[Incoming] = []
    unchanged: list[Checkpoint] = []
    fits: set[tuple[Any, ...]] = set()
    for label, spec, copy, digest in copies:
        try:
            facts = inspect_file(copy, sha256=digest)  # the bytes may have changed while copied
            _check_fit(zoo, spec, copy, fits)
        except (FormatError, ArchitectureError) as e:
            problems.append((label, str(e).replace(str(copy), str(spec["file"]))))
            continue
        if spec["sha256"] and spec["sha256"] != facts.sha256:
            problems.append((label, f"{spec['file']} has sha256 {facts.sha256[:12]}…, not the manifest's "
                                    f"{spec['sha256'][:12]}…; the file changed or the line names the wrong one"))
            continue
        ref = f"{spec['model']}@{spec['step']}"
        existing = by_ref.get(ref)
        if existing is not None and existing["sha256"] == facts.sha256:
            unchanged.append(Checkpoint.from_row(existing))
            give_back(copy, str(spec["file"]) if spec["moved"] else None)
            continue
        if existing is not None and not replace:
            problems.append((label, f"{ref} exists with other bytes (sha256 {existing['sha256'][:12]}…); "
                                    "pick a new step, or pass --replace to overwrite it"))
            continue
        row = make_row(facts, **{k: spec[k] for k in ("model", "step", "arch", "task", "dataset", "license", "epoch",
                                                        "description", "tags", "parent", "source", "reported")})
        items.append(Incoming(spec["file"], copy, spec["moved"], row, existing))
    return items, tuple(unchanged)


def _check_fit(zoo: Facade, spec: Mapping[str, Any], copy: Path, fits: set[tuple[Any, ...]]) -> None:
    """``check_add`` of one copied file, run once per (arch, task, dataset, tensor names, shapes and dtypes).

    For one file (never a folder: ``_spec`` refuses those) its verdict depends on nothing else: the fit is the
    header's shapes against the architecture's, and the task's files, the label maps and the input probe
    belong to the names. A batch of one architecture's checkpoints shares one header, so the check runs
    once, not once per line; ``fits`` holds the keys that passed. A header that cannot be read, or one not
    seen to pass, gets the full check, so every refusal is the single add's, word for word."""
    names = (spec["arch"], spec["task"], spec["dataset"])
    try:
        key = (*names, tuple(sorted(weight_shapes(copy).items())))
    except FormatError:
        key = None
    if key is not None and key in fits:
        return
    check_add(zoo.registry(), *names, copy, str(spec["file"]))
    if key is not None:
        fits.add(key)


def _spec(fields: Mapping[str, Any], common: Mapping[str, Any]) -> dict[str, Any]:
    """One line's add arguments: its own values, the command line's where it gives none."""
    merged: dict[str, Any] = {}
    for name in FIELDS:
        mine, theirs = fields.get(name), common.get(name)
        if mine not in (None, "") and theirs not in (None, "", ()) and _norm(name, mine) != _norm(name, theirs):
            raise InvalidValueError(f"{name} is {mine!r} here but {theirs!r} for the whole batch (on the command line); "
                                    "give it in one place")
        merged[name] = mine if mine not in (None, "") else theirs
    missing = [n for n in REQUIRED if merged.get(n) in (None, "", ())]
    if missing:
        raise InvalidValueError(f"no {', '.join(missing)}; give {'it' if len(missing) == 1 else 'them'} "
                                "as a column or for the whole batch (on the command line)")
    file = Path(str(merged["file"]))
    if file.is_dir():
        raise InvalidValueError(f"{file}: is a folder; a checkpoint is one .safetensors file")
    step = _integer(merged["step"], "step")
    epoch = None if merged.get("epoch") in (None, "") else _number(merged["epoch"], "epoch")
    tags = _norm("tags", merged.get("tags") or ())
    reported = _reported(merged)
    description = str(merged.get("description") or "")
    source = str(merged.get("source") or f"zoo add --from {rules.CONTROL_CHARS_RE.sub('?', file.name)}")
    parent = str(merged["parent"]) if merged.get("parent") else None
    spec = dict(file=file, model=str(merged["model"]), step=step, arch=str(merged["arch"]), task=str(merged["task"]),
                dataset=str(merged["dataset"]), license=str(merged["license"]), epoch=epoch, description=description,
                tags=tags, parent=parent, source=source, reported=reported, moved=False,
                sha256=str(merged.get("sha256") or "").lower())
    _check_add_args(file, spec["model"], step, spec["arch"], spec["task"], spec["dataset"], spec["license"], epoch,
                    description, tags, parent, source, reported)
    if spec["sha256"] and not re.fullmatch(r"[0-9a-f]{64}", spec["sha256"]):
        raise InvalidValueError(f"sha256 {spec['sha256'][:80]!r}: 64 hex digits (the file's expected hash), or leave it empty")
    return spec


def _column_words(message: str) -> str:
    """A single add's message names its flag (``--license``); a manifest line names the column."""
    return re.sub(r"(^|: )--([a-z]+)", r"\1\2", message)


def _norm(name: str, value: Any) -> Any:
    if name == "tags":
        items = value if isinstance(value, (list, tuple)) else str(value).replace(";", ",").split(",")
        return tuple(str(t).strip() for t in items if str(t).strip())
    return str(value)


def _integer(value: Any, name: str) -> int:
    problem = rules.count_problem(value, name)
    if problem:
        raise InvalidValueError(problem)
    return int(value)


def _number(value: Any, name: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise InvalidValueError(f"{name} {value!r}: must be a number") from None


def _reported(merged: Mapping[str, Any]) -> tuple[str, float] | None:
    both = merged.get("reported_metric"), merged.get("reported_value")
    text = merged.get("reported")
    if text and any(both):
        raise InvalidValueError("give reported as METRIC=VALUE or as reported_metric + reported_value, not both")
    if any(both):
        if not all(both):
            raise InvalidValueError("reported_metric and reported_value go together; give both or neither")
        return str(both[0]), _number(both[1], "reported_value")
    if not text:
        return None
    if isinstance(text, (tuple, list)) and len(text) == 2:  # from Python, as Zoo.add takes it
        return str(text[0]), _number(text[1], "reported")
    metric, sep, value = str(text).partition("=")
    if not sep:
        raise InvalidValueError(f"reported {text!r}: write METRIC=VALUE, e.g. accuracy=0.97")
    return metric.strip(), _number(value, "reported")


def add_items(zoo: Facade, items: Iterable[Mapping[str, Any]], *, move: bool = False, replace: bool = False,
              stage: bool = True, relicense: bool = False, **common: Any) -> BulkAddResult:
    """Add many safetensors checkpoints in one transaction: all of them, or none.

    Each item is a mapping with ``file``, ``model``, ``step`` and any of ``add``'s metadata
    (``arch``, ``task``, ``dataset``, ``license``, ``epoch``, ``description``, ``tags``, ``parent``,
    ``source``, ``reported`` as ``"METRIC=VALUE"``, or an expected ``sha256``); ``common`` gives
    values for every item that leaves them out (an item that gives another value is refused).
    Every bad item is named in one ``InvalidValueError``, and nothing changes.
    """
    lines = [(f"item {n}", dict(item)) for n, item in enumerate(items, 1)]
    return add_many(zoo, lines, common, move=move, replace=replace, stage=stage, relicense=relicense)


def add_from(zoo: Facade, manifest: str | os.PathLike[str], *, move: bool = False, replace: bool = False,
             stage: bool = True, relicense: bool = False, **common: Any) -> BulkAddResult:
    """``add_many`` of a manifest file: CSV with a header row, or JSON Lines, one checkpoint per line
    (the same fields; a relative ``file`` is taken from the manifest's folder)."""
    return add_many(zoo, read_manifest(manifest), common, move=move, replace=replace, stage=stage, where=str(manifest),
                    relicense=relicense)
