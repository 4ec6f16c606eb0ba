"""``zoo validate``: every problem of the table (schema, registries) and of the files present here."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import layout
from ..catalog import rules, table
from ..errors import FormatError, TableInvalidError, ZooError
from ..formats import inspect_file
from ..registry.fit import check_fit
from ..registry.labels import folder_label_problem

if TYPE_CHECKING:
    from ..workspace.tree import Workspace
    from .facade import Facade

Row = dict[str, str]


def validate(zoo: Facade, evaluations: bool = True) -> list[str]:
    """Problems with the table (schema, every failure), with present files (size, sha256, header) and, with
    ``evaluations``, the checkpoints whose evaluation failed (``evaluation_problems``). The pipeline's validate
    stage leaves those out: it runs before the evaluate stage that retries them."""
    ws = zoo.writable("validate")
    data = ws.table_path.read_bytes()
    parse_problems: list[str] = []
    try:
        rows = table.parse_csv(data, problems=parse_problems)
        from ..catalog.schema import validate_frame

        validate_frame(rows)
    except TableInvalidError as e:
        return [*parse_problems, *e.problems] if e.problems else [*parse_problems, str(e)]
    if parse_problems:
        return parse_problems
    table.mark_valid(data)  # the schema verdict: no later read validates this table again
    ws.source.remember_rows(rows)
    problems = _registry_problems(ws, rows) + _file_problems(ws, rows)
    return problems + (evaluation_problems(zoo) if evaluations else [])


def evaluation_problems(zoo: Facade) -> list[str]:
    """One line per checkpoint whose evaluation failed, with its reason and the two ways to clear it."""
    from .ls import failures

    return [f"{layout.EVALUATIONS_DIR}/{ref.rsplit('@', 1)[0]}.json: {ref}: evaluation failed: {error}; fix it "
            f"(`zoo add --replace`, or its conf/) and run `dvc repro`, or remove it with `zoo rm {ref}`"
            for ref, error in failures(zoo).items()]


def _registry_problems(ws: Workspace, rows: list[Row]) -> list[str]:
    problems = []
    registry = ws.registry()
    checked: dict[tuple[str, str, str, str], list[str]] = {}
    for lineno, row in enumerate(rows, start=2):
        combo = (row["arch"], row["task"], row["dataset"], row["reported_metric"])
        if combo not in checked:
            label = registry.label_problem(row["arch"], row["dataset"])
            checked[combo] = [*registry.row_problems(*combo), *([label] if label else [])]
        where = f"{layout.TABLE_PATH} line {lineno} ({row['model']}@{row['step']})"
        for problem in checked[combo]:
            problems.append(f"{where}: {problem}")
        task = registry.tasks.get(row["task"])
        if task is not None and task.required_files:
            files = rules.parse_files(row["files"]) if row["format"] == "folder" else None
            problem = task.files_problem(None if files is None else set(files), row["path"])
            if problem:
                problems.append(f"{where}: {problem}")
        if task is not None and row["reported_metric"] in task.metrics and row["reported_value"]:
            problem = task.metrics[row["reported_metric"]].value_problem(float(row["reported_value"]), "reported")
            if problem:
                problems.append(f"{where}: column 'reported_value' value {row['reported_value']}: {problem}")
    return problems


def _file_problems(ws: Workspace, rows: list[Row]) -> list[str]:
    problems = []
    registry = ws.registry()
    listed: dict[str, frozenset[str]] = {}  # one listing per model folder, not a resolve() per row
    for lineno, row in enumerate(rows, start=2):
        folder, _, name = row["path"].rpartition("/")
        if folder not in listed:
            try:
                listed[folder] = frozenset(os.listdir(ws.root / folder))
            except (FileNotFoundError, NotADirectoryError):
                listed[folder] = frozenset()
        if name not in listed[folder]:
            continue
        path = ws.path(row["path"])
        where = f"{layout.TABLE_PATH} line {lineno} ({row['model']}@{row['step']})"
        if row["format"] == "folder" and row["dataset"] in registry.datasets:
            data = registry.dataset(row["dataset"])  # a folder's config.json, where its bytes are here
            problem = folder_label_problem(path, data.labels, data.name, shown=row["path"])
            if problem:
                problems.append(f"{where}: {problem}")
        if not path.is_file():
            continue
        try:
            facts = inspect_file(path, sha256=ws.stamps.sha256(path))
        except FormatError as e:
            problems.append(f"{where}: {e}")
            continue
        for col in ("size_bytes", "sha256", "num_params", "dtype"):
            if str(getattr(facts, col)) != row[col]:
                problems.append(
                    f"{where}: column {col!r} says {row[col]!r} but {row['path']} has {getattr(facts, col)!r}; "
                    f"re-add the file with `zoo add --replace` or restore it with `zoo pull {row['model']}@{row['step']}`"
                )
        if row["arch"] in registry.archs:
            try:
                check_fit(registry, registry.arch(row["arch"]), path, where)
            except ZooError as e:
                problems.append(str(e))
    return problems
