"""Closed lists and naming rules of the table, with no heavy imports.

The pandera schema (``schema.py``) and the quick checks done before any write both read these, so a
rule lives in exactly one place.
"""

from __future__ import annotations

import re

COLUMNS: tuple[str, ...] = (
    "model", "step", "epoch", "path", "format", "size_bytes", "sha256", "num_params", "dtype", "state_sha256",
    "files", "arch", "task", "dataset", "license", "parent", "tags", "description", "created", "source",
    "reported_metric", "reported_value",
)
# Computed from the file at add time; never taken from the user.
COMPUTED_COLUMNS: tuple[str, ...] = ("path", "format", "size_bytes", "sha256", "num_params", "dtype", "state_sha256",
                                     "files")
# Columns added after zoos existed: a table without them is read as if they were empty (and the next
# write adds them), so older zoos and hand-written tables keep working.
OPTIONAL_COLUMNS: tuple[str, ...] = ("state_sha256", "files")

SLUG_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"
SLUG_RE = re.compile(SLUG_PATTERN)
SHA256_PATTERN = r"[0-9a-f]{64}"
CREATED_PATTERN = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z"
PARENT_PATTERN = SLUG_PATTERN + r"@\d+"
TAGS_PATTERN = rf"{SLUG_PATTERN}(;{SLUG_PATTERN})*"
# Control characters (C0, DEL, C1) and a leading formula prefix are what make text unsafe in
# terminals and spreadsheets.
CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
FORMULA_PREFIXES = ("=", "+", "-", "@")

# Free text (description, source) is bounded where it is written, so that every reader, the csv
# module's 131,072-character field limit included, can read back whatever the zoo wrote.
MAX_TEXT_CHARS = 4096
# One spelling per whole number (step, size_bytes, num_params): ASCII digits, no sign, spaces, separators
# or leading zeros, within int64 (what pandas and the evaluation records hold).
COUNT_PATTERN = r"0|[1-9][0-9]*"
COUNT_RE = re.compile(COUNT_PATTERN)
MAX_COUNT = 2**63 - 1
COUNT_COLUMNS: tuple[str, ...] = ("step", "size_bytes", "num_params")

# safetensors: one file. folder: a checkpoint of several files as ``save_pretrained`` writes it (safetensors
# weights, possibly sharded, config.json, tokenizer files, a label map), each file's sha256 in ``files``.
FORMATS: tuple[str, ...] = ("safetensors", "folder")
# A file of a folder checkpoint, by its path inside the folder: at most 4 levels of plain names (a hub
# snapshot's `.gitattributes`, `1_Pooling/config.json`), never `.` or `..`; and its sha256.
_FOLDER_NAME = r"(?:[A-Za-z0-9_]|\.[A-Za-z0-9_])[A-Za-z0-9._-]{0,126}"
FOLDER_FILE_PATTERN = rf"(?:{_FOLDER_NAME}/){{0,3}}{_FOLDER_NAME}"
FOLDER_FILE_RE = re.compile(FOLDER_FILE_PATTERN)
FILES_PATTERN = rf"{FOLDER_FILE_PATTERN}:{SHA256_PATTERN}(;{FOLDER_FILE_PATTERN}:{SHA256_PATTERN})*"
# The most files one folder checkpoint may hold (a sharded model's shards, its index, config, tokenizer …).
MAX_FOLDER_FILES = 512
# The ``files`` cell lists them (``name:sha256;…``): its own bound, not MAX_TEXT_CHARS, so that 512 files whose
# paths inside the folder average up to 168 characters fit; below the csv module's 131,072-character field limit.
MAX_FILES_CHARS = 120_000

# A metric's name (declared by a task in conf/task/): usable as a --where / --sort column.
METRIC_NAME_PATTERN = r"[a-z][a-z0-9_]{0,39}"

# SPDX identifiers this zoo accepts; add one here (and to the YAML export) to allow it. Terms SPDX has no
# identifier for are SPDX ``LicenseRef-`` ids: BBC News' articles are for non-commercial research only.
LICENSES: tuple[str, ...] = (
    "Apache-2.0", "MIT", "BSD-2-Clause", "BSD-3-Clause", "CC0-1.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0",
    "CC-BY-NC-4.0", "MPL-2.0", "LGPL-3.0-only", "GPL-3.0-only", "Unlicense", "LicenseRef-BBC-research-only",
)

DTYPES: tuple[str, ...] = (
    "BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64",
    "F8_E4M3", "F8_E5M2",
)


def checkpoint_path(model: str, step: int, fmt: str = "safetensors") -> str:
    """The one canonical place of a checkpoint: ``zoo/checkpoints/<model>/step-<8 digits>.safetensors``, or the
    folder ``zoo/checkpoints/<model>/step-<8 digits>`` for a checkpoint of several files."""
    if fmt == "folder":
        return f"zoo/checkpoints/{model}/step-{int(step):08d}"
    return f"zoo/checkpoints/{model}/step-{int(step):08d}.safetensors"


def parse_files(cell: str | None) -> dict[str, str]:
    """The ``files`` column of a folder checkpoint: file name -> sha256 (empty for a one-file checkpoint)."""
    if not cell:
        return {}
    return dict(part.split(":", 1) for part in cell.split(";"))


def format_files(files: dict[str, str]) -> str:
    """The ``files`` cell for these file names and sha256s (sorted by name, so diffs stay small)."""
    return ";".join(f"{name}:{files[name]}" for name in sorted(files))


def max_chars(column: str) -> int:
    """The most characters a cell of ``column`` may hold (what every reader of the table can read back)."""
    return MAX_FILES_CHARS if column == "files" else MAX_TEXT_CHARS


def files_limit_problem(names: list[str]) -> str | None:
    """Why a folder of files with these paths does not fit the table (too many files, or a ``files`` cell longer
    than MAX_FILES_CHARS), or None. Each file takes its path, ':', its 64-hex sha256 and a ';'."""
    if len(names) > MAX_FOLDER_FILES:
        return (f"{len(names)} files; a checkpoint folder holds at most {MAX_FOLDER_FILES} files (save larger "
                "shards)")
    chars = sum(len(n) + 66 for n in names) - 1
    if chars > MAX_FILES_CHARS:
        return (f"its {len(names)} file names take {chars:,} characters in the table's files column, more than the "
                f"{MAX_FILES_CHARS:,} that fit ({MAX_FOLDER_FILES} files whose paths average at most "
                f"{MAX_FILES_CHARS // MAX_FOLDER_FILES - 66} characters); shorten the names or save larger shards")
    return None


def folder_digest(files: dict[str, str]) -> str:
    """A folder checkpoint's one sha256 (its ``sha256`` column): of its manifest in ``sha256sum`` form, one
    ``<sha256>  <name>`` line per file sorted by name, so ``sha256sum -c`` checks the folder against it."""
    import hashlib

    return hashlib.sha256(manifest_text(files).encode()).hexdigest()


def manifest_text(files: dict[str, str]) -> str:
    """``<sha256>  <name>`` per file, sorted by name (what ``sha256sum -c`` reads)."""
    return "".join(f"{files[name]}  {name}\n" for name in sorted(files))


def parts(row: dict[str, str]) -> list[tuple[str, str]]:
    """(path, sha256) of every file of a checkpoint's weights: its one file, or each file of its folder."""
    files = parse_files(row.get("files"))
    if not files:
        return [(row["path"], row["sha256"])]
    return [(f"{row['path']}/{name}", files[name]) for name in sorted(files)]


def step_of_path(path: str) -> int | None:
    """The step in a canonical checkpoint path (``…/step-00000300[.safetensors]``), None for any other path."""
    m = re.fullmatch(r"zoo/checkpoints/[^/]+/step-(\d{8})(?:\.safetensors)?", path)
    return int(m.group(1)) if m else None


def state_path(model: str, step: int) -> str:
    """Where a checkpoint's training state lives, beside its weights (same DVC-tracked model folder)."""
    return f"zoo/checkpoints/{model}/step-{int(step):08d}.state.safetensors"


def slug_problem(name: str, what: str = "model name") -> str | None:
    """Why ``name`` is not a valid slug, or None when it is."""
    import unicodedata

    if not isinstance(name, str) or not name:
        return f"{what} is empty"
    if unicodedata.normalize("NFC", name) != name:
        return f"{what} {name!r} is not NFC-normalised Unicode"
    if not SLUG_RE.fullmatch(name):
        return (f"{what} {name!r} must match {SLUG_PATTERN} (lower-case letters, digits, '.', '_', "
                "'-'; at most 64 characters; starting with a letter or digit)")
    return None


def count_problem(value: object, what: str) -> str | None:
    """Why ``value`` is not a whole number in its one canonical spelling (``10``, never ``010``, ``+10``,
    `` 10``, ``1_0`` or full-width digits), or None. An int must be within 0 .. 2**63-1."""
    if isinstance(value, bool):
        return f"{what} {value!r}: must be a whole number >= 0"
    if isinstance(value, int):
        ok = 0 <= value <= MAX_COUNT
    else:
        ok = isinstance(value, str) and COUNT_RE.fullmatch(value) is not None and int(value) <= MAX_COUNT
    if ok:
        return None
    return (f"{what} {value!r}: must be a whole number from 0 to {MAX_COUNT}, written in plain ASCII digits "
            "(no sign, spaces, separators or leading zeros), e.g. 10")


def parent_cycle(parents: dict[str, str], start: str) -> list[str] | None:
    """The loop of MODEL@STEP refs reached by following ``parents`` from ``start``, or None."""
    seen: list[str] = []
    ref: str | None = start
    while ref is not None:
        if ref in seen:
            return seen[seen.index(ref):] + [ref]
        seen.append(ref)
        ref = parents.get(ref)
    return None


def text_problem(value: str, what: str) -> str | None:
    """Why free text is unsafe to store (too long, control characters, formula prefix), or None."""
    if len(value) > MAX_TEXT_CHARS:
        return f"{what} is {len(value)} characters; at most {MAX_TEXT_CHARS} fit the table, shorten it"
    if CONTROL_CHARS_RE.search(value):
        return f"{what} contains a control character; remove it"
    if value.startswith(FORMULA_PREFIXES):
        return f"{what} starts with {value[0]!r}, which spreadsheets run as a formula; reword it"
    return None



def license_problems(rows: list[dict[str, str]], new_rows: list[dict[str, str]],
                     relicense: bool = False) -> list[tuple[str, str]]:
    """(MODEL@STEP, why) for each model that adding ``new_rows`` (each a model, step and license) to a table of
    ``rows`` would give a license its other checkpoints do not carry; empty when none would. A model's license is
    what its checkpoints carry, and one checkpoint under other terms changes what users may do with the model, so
    it takes ``--relicense`` to say it is meant (the model then shows every license with its counts). A row being
    replaced does not count as the model's."""
    if relicense:
        return []
    replaced = {(r["model"], int(r["step"])) for r in new_rows}
    have: dict[str, set[str]] = {}
    for r in rows:
        if (r["model"], int(r["step"])) not in replaced:
            have.setdefault(r["model"], set()).add(r["license"])
    adding: dict[str, dict[str, str]] = {}  # model -> license -> the first ref that brings it
    for r in new_rows:
        adding.setdefault(r["model"], {}).setdefault(r["license"], f"{r['model']}@{r['step']}")
    problems = []
    for model, licenses in adding.items():
        old = sorted(have.get(model) or ())
        new = [(ref, lic) for lic, ref in licenses.items() if lic not in old]
        if old and new:
            ref, lic = new[0]
            problems.append((ref, f"model {model!r}: its checkpoints are licensed {', '.join(old)}, but {ref} would be "
                                  f"{lic}; add it with --license {old[0]}, or pass --relicense to let the model carry "
                                  "both licenses"))
        elif not old and len(licenses) > 1:
            problems.append((new[1][0], f"model {model!r}: its new checkpoints carry {len(licenses)} licenses "
                                        f"({', '.join(sorted(licenses))}); give them one --license, or pass "
                                        "--relicense to let the model carry several"))
    return problems
