"""Reading and writing ``zoo/checkpoints.csv``.

Reads use the stdlib csv module (fast, no pandas import); the schema verdict is cached by the table's
sha256 so an unchanged table is validated once. Writes sort by (model, step), go to a temp file,
fsync and rename, under a file lock held by the caller.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
from pathlib import Path
from typing import Any

from .. import layout
from ..errors import NotAZooError, TableInvalidError, UnsafePathError
from ..utils import environ, files, heap
from . import rules

Row = dict[str, str]
# moved to utils.files (the one atomic write); kept here for the modules that import it from the table
atomic_write = files.atomic_write


def parse_csv(data: bytes, source: str = layout.TABLE_PATH, problems: list[str] | None = None) -> list[Row]:
    """Parse table bytes into rows of strings.

    A wrong header or a line with the wrong number of fields raises TableInvalidError, or, when a
    ``problems`` list is given, is appended to it and parsing goes on (missing columns read as empty)
    so that the schema can report every other problem too.
    """
    def problem(text: str) -> None:
        if problems is None:
            raise TableInvalidError(text)
        problems.append(text)

    text = _decode(data, source, problem)
    lines = _plain_lines(text)
    if lines is not None and not problems:
        plain = _plain_rows(lines)
        if plain is not None:
            return plain
    header, records = _read_records(text, source, lines)
    if header is None:
        raise TableInvalidError(f"{source}: empty file; it needs the header line {','.join(rules.COLUMNS)}")
    wrong = _header_problem(header)
    if wrong:
        problem(f"{source} line 1: {wrong}; the header must be {','.join(rules.COLUMNS)}")
    absent = {c: "" for c in rules.OPTIONAL_COLUMNS if c not in header}
    width = len(header)
    if not problems and all(len(v) == width for v in records):  # the common case, kept tight for speed
        if absent:
            return [{**dict(zip(header, v)), **absent} for v in records]
        return [dict(zip(header, v)) for v in records]
    rows: list[Row] = []
    for lineno, values in enumerate(records, start=2):
        if not values:
            continue
        if len(values) != width:
            problem(f"{source} line {lineno}: {len(values)} fields where the header has {width}; "
                    "quote values that contain commas")
            values = (values + [""] * width)[:width]  # keep the row so later line numbers stay right
        row = dict(zip(header, values))
        rows.append({c: row.get(c, "") for c in rules.COLUMNS} if problems else {**row, **absent})
    return rows


def _decode(data: bytes, source: str, problem) -> str:
    """The table's text: UTF-8 without a byte-order mark, each git conflict block reported and blanked out."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TableInvalidError(f"{source}: not UTF-8 at byte {e.start}; re-save it as UTF-8") from None
    if text.startswith("\ufeff"):
        raise TableInvalidError(f"{source}: starts with a UTF-8 byte-order mark (BOM), which would be read as part "
                                "of the first column's name; re-save it as UTF-8 without a BOM")
    if "\n<<<<<<< " in "\n" + text:
        text = _strip_conflicts(text, source, problem)
    return text


def _plain_lines(text: str) -> list[str] | None:
    """The lines of a text the csv module reads as lines split on commas, else None: no quote or CR (what
    ``dump_csv`` writes of plain values), a newline at the end, no blank line, no line as long as the csv module's
    field limit. Split so, it is read record for record as the csv module reads it, in a third of the time."""
    if '"' not in text and "\r" not in text and text.endswith("\n") and "\n\n" not in text and text[0] != "\n":
        lines = text[:-1].split("\n")
        if max(map(len, lines)) < csv.field_size_limit():
            return lines
    return None


def _plain_rows(lines: list[str]) -> list[Row] | None:
    """The rows of plain lines (``_plain_lines``) under a right header, each line with as many fields as it has;
    None otherwise (the caller then reads them one by one, reporting each problem)."""
    header = lines[0].split(",")
    commas = len(header) - 1
    if _header_problem(header) is not None or not all(line.count(",") == commas for line in lines[1:]):
        return None
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]  # one pass: no list of lists kept
    absent = {c: "" for c in rules.OPTIONAL_COLUMNS if c not in header}
    return [{**row, **absent} for row in rows] if absent else rows


def _read_records(text: str, source: str, lines: list[str] | None = None) -> tuple[list[str] | None, list[list[str]]]:
    """The header and the records of the table's text (its ``_plain_lines``, when given, split on commas), a
    quoting error as one line naming where it is."""
    if lines is not None:
        return lines[0].split(","), [line.split(",") for line in lines[1:]]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        return header, list(reader)
    except csv.Error as e:
        detail = (f"a field longer than {csv.field_size_limit()} characters (at most {rules.MAX_TEXT_CHARS} fit "
                  f"the table, {rules.MAX_FILES_CHARS} in the files column); shorten it" if "field limit" in str(e)
                  else f"{e}; fix the quoting")
        raise TableInvalidError(f"{source} line {reader.line_num}: {detail}") from None


def _header_problem(header: list[str]) -> str | None:
    """What is wrong with the header line (unknown, missing or repeated columns), or None."""
    unknown = [c for c in header if c not in rules.COLUMNS]
    missing = [c for c in rules.COLUMNS if c not in header and c not in rules.OPTIONAL_COLUMNS]
    parts = []
    if unknown:
        parts.append(f"unknown column(s) {', '.join(unknown)}")
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if len(set(header)) != len(header):
        parts.append("a column appears twice")
    return "; ".join(parts) or None


def _conflict_brief(ours: list[str], theirs: list[str]) -> str:
    """What the two sides of a conflict block hold, and for one row each, the columns they differ in."""
    o, t = list(csv.reader(ours)), list(csv.reader(theirs))

    def brief(rows: list[list[str]]) -> str:
        return "; ".join(f"{r[0]}@{r[1]} sha256 {r[6][:12]}…" if len(r) > 6 else ",".join(r) for r in rows) or "nothing"

    text = f"ours has {brief(o)}, theirs has {brief(t)}"
    if len(o) == len(t) == 1 and len(o[0]) == len(t[0]) == len(rules.COLUMNS):
        diffs = [f"{c} {a[:60]!r} vs {b[:60]!r}" for c, a, b in zip(rules.COLUMNS, o[0], t[0]) if a != b]
        text += f", differing in {'; '.join(diffs[:4])}" if diffs else ""
    return text


def _strip_conflicts(text: str, source: str, problem) -> str:
    """Report each git conflict block (from a merge) and blank it out, keeping line numbers."""
    lines = text.split("\n")
    out: list[str] = []
    block: list[Any] | None = None  # [ours, theirs] lines, and a None marker once "=======" is seen
    start = 0
    for i, line in enumerate(lines, start=1):
        if line.startswith("<<<<<<< "):
            block, start = [[], []], i
            out.append("")
        elif block is not None and line.startswith("======="):
            block.append(None)
            out.append("")
        elif block is not None and line.startswith(">>>>>>> "):
            ours, theirs = block[0], block[1]
            problem(f"{source} lines {start}-{i}: unresolved merge conflict: {_conflict_brief(ours, theirs)}; keep "
                    f"one row, delete the marker lines, then `git add {source}` "
                    f"(and re-add the file you kept with `zoo add --replace` if its bytes differ)")
            block = None
            out.append("")
        elif block is not None:
            (block[1] if len(block) == 3 else block[0]).append(line)
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def sort_key(row: Row) -> tuple[str, int]:
    """(model, step) with the step compared as a number."""
    try:
        return (row["model"], int(row["step"]))
    except (TypeError, ValueError):
        return (row["model"], -1)


def dump_csv(rows: list[Row]) -> bytes:
    """Serialise rows sorted by (model, step) with the canonical column order and LF endings."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(rules.COLUMNS)
    writer.writerows([row.get(c, "") for c in rules.COLUMNS] for row in sorted(rows, key=sort_key))
    return buf.getvalue().encode("utf-8")


def row_line(row: Row) -> bytes:
    """One row as ``dump_csv`` writes it: its line, LF included."""
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerow([row.get(c, "") for c in rules.COLUMNS])
    return buf.getvalue().encode("utf-8")


def is_canonical(data: bytes, rows: list[Row]) -> bool:
    """Whether ``data`` is exactly what ``dump_csv`` writes of ``rows`` (parsed from it): its header, its order,
    one line per row, LF endings. Without a quote or a CR in it, every line is its fields joined by commas,
    which is how the writer writes them, so only the order and the line count need a look."""
    if not data.startswith(row_line(dict(zip(rules.COLUMNS, rules.COLUMNS)))) or not data.endswith(b"\n"):
        return False
    if b'"' in data or b"\r" in data:
        return dump_csv(rows) == data
    keys = [sort_key(r) for r in rows]
    return data.count(b"\n") == len(rows) + 1 and all(a < b for a, b in zip(keys, keys[1:]))


def splice_row(data: bytes, row: Row, following: tuple[str, str] | None, replaces: bool) -> bytes | None:
    """What ``dump_csv`` would write of the rows of ``data`` (bytes it wrote itself) with ``row`` added, without
    parsing or writing the others: the row's line over the line of the same (model, step) when it ``replaces``
    one, else right before the line of ``following`` (the next (model, step) in the table's order; None: the end).

    No field of a valid table holds a newline and a line starts with its model and step, unquoted, so
    ``\nMODEL,STEP,`` is found only at the start of that row's line. None when a line is not where ``dump_csv``
    puts it (the caller then writes the whole table).
    """
    def start(model: str, step: str) -> int:
        at = data.find(f"\n{model},{step},".encode())
        return at + 1 if at >= 0 else -1

    line, view = row_line(row), memoryview(data)  # slices of a view are not copies: one copy of the table in all
    if replaces:
        at = start(row["model"], row["step"])
        end = data.find(b"\n", at) + 1 if at > 0 else 0
        return b"".join((view[:at], line, view[end:])) if end > 0 else None
    if following is None:
        return data + line if data.endswith(b"\n") else None
    at = start(*following)
    return b"".join((view[:at], line, view[at:])) if at > 0 else None


def table_file(root: Path) -> Path:
    """The zoo's table, resolved like any other path of the zoo: refused (one line naming it) when it is a
    symlink, resolves outside the zoo, or is not a regular file, so that no other file is ever read as the table
    (and no line of it shown in an error)."""
    path = Path(root) / layout.TABLE_PATH
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise NotAZooError(f"{path}: missing; restore it with `git checkout {layout.TABLE_PATH}`") from None
    except OSError as e:
        raise NotAZooError(f"{path}: cannot read it ({e.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{path}: is a symlink; the table must be a regular file of the zoo (restore it with "
                              f"`git checkout {layout.TABLE_PATH}`)")
    if not path.resolve().is_relative_to(Path(root).resolve()):
        raise UnsafePathError(f"{path}: resolves outside the zoo (through a symlinked folder); the table must be a "
                              "regular file of the zoo")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{path}: is not a regular file; restore it with `git checkout {layout.TABLE_PATH}`")
    return path


def read_table(root: Path) -> bytes:
    """The bytes of the zoo's table (``table_file``), opened without following a link and never waiting on a FIFO."""
    path = table_file(root)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise UnsafePathError(f"{path}: cannot open it as a regular file of the zoo ({e.strerror})") from None
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise UnsafePathError(f"{path}: is not a regular file; restore it with `git checkout {layout.TABLE_PATH}`")
        return f.read()


def _schema_fingerprint() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("rules.py", "schema.py", "table.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def validate_rows(data: bytes, rows: list[Row], source: str = layout.TABLE_PATH,
                  problems: list[str] | None = None) -> None:
    """Validate against the pandera schema unless this exact table already passed; raises TableInvalidError
    listing ``problems`` (from parsing) and every schema failure."""
    if not problems and is_known_valid(data):
        return
    from .schema import validate_frame

    try:
        validate_frame(rows, source=source)
    except TableInvalidError as e:
        problems = [*(problems or []), *e.problems]
    if problems:
        raise TableInvalidError(
            f"{source}: {len(problems)} problem(s); fix them (or `git checkout {source}`) and rerun", problems)
    mark_valid(data)


def _verdict(data: bytes) -> Path:
    key = hashlib.sha256(data).hexdigest() + "-" + _schema_fingerprint()
    return environ.cache_dir() / "verdicts" / key


def is_known_valid(data: bytes) -> bool:
    """True when these exact table bytes passed this exact schema before."""
    return _verdict(data).exists()


def mark_valid(data: bytes) -> None:
    """Remember that these table bytes passed the schema."""
    try:
        marker = _verdict(data)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # a read-only cache only costs speed


def load(data: bytes, source: str = layout.TABLE_PATH, validate: bool = True) -> list[Row]:
    """Parse and (by default) validate table bytes (with the cyclic collector paused: ``utils.heap``)."""
    problems: list[str] = []
    with heap.paused_gc():
        rows = parse_csv(data, source, problems if validate else None)
        if validate:
            validate_rows(data, rows, source, problems)
    return rows
