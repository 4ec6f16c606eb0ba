"""Bad input through the real `zoo` entry point, against real git + DVC zoos in temp folders.

Every refusal must be clean: exit 1 (2 for a usage error), exactly ONE line on stderr that names the
offending thing (file, ref, flag, line/column), no traceback and no "unexpected" catch-all, nothing on
stdout, and nothing changed on disk: the workspace (``snapshot``), ``git status``, the DVC cache and
zoo's incoming area are the same before and after. Table-invalid reports are the one exception to
"one line": they list every problem, one per line. argparse usage errors print their usage block
first; after it comes exactly one ``error:`` line.

Catalogue
---------
References (``show`` in a full zoo; ``pull`` in a fresh clone, nothing fetched)
  ref-unknown-model     gamma, Alpha (case hint), ../etc@1
  ref-unknown-step      alpha@15 -> message lists the existing steps 10, 20
  ref-malformed         '', '   ', 'alpha@', 'alpha@x', 'a@b@c', '@10', 'alpha@1.5', 'alpha@-1'
  ref-mixed             pull of a good ref together with a bad one fetches nothing
  ref-write-verbs       rm / verify of an unknown or malformed ref change nothing
Files given to ``zoo add``
  file-*                random bytes, empty file, pickle (protocols 0-5, written with pickle.dumps and
                        never loaded), torch.save zip, torch.save legacy (non-zip), TorchScript,
                        truncated safetensors (cut 1 byte / half / all but the length), header not
                        JSON, header JSON but not an object, absurd header length, data offsets past
                        the end, no tensors, a missing file
  file-move             a refused ``--move`` leaves the source file where it was
Names and metadata given to ``zoo add``
  name-*                --model Bad, ../x, a/b, -x, 65 characters, trailing newline, non-NFC unicode,
                        empty, Alpha (only differs by case from alpha), café; --dataset Wine
  value-*               unknown --arch / --task / --license (message lists every allowed value),
                        bad --tags, --description/--source with a formula prefix or control
                        characters, --parent pointing nowhere / an alias / malformed, --reported
                        with an unknown metric or a non-finite value, --step -1, --epoch -1/nan/inf
  usage-*  (exit 2)     missing --arch / --model / file, unknown flag, --step ten / 1.5, --epoch x,
                        --reported without METRIC=NUMBER syntax, bad --where / --sort / --format,
                        ``zoo --bogus``, ``zoo --bogus ls``, unknown verb, show/pull with no ref
Duplicates
  dup-other-bytes       same (model, step), other bytes: refused, message mentions --replace
  dup-same-bytes        same (model, step), same bytes: exit 0, "nothing to do", nothing changed
Hand-edited invalid table (bad license on line 2, bad sha256 on line 3, unknown column, duplicate
row on line 5, each alone and all together)
  table-*               ls, show, pull, add, verify, rm and validate exit 1 and name the problem;
                        ``validate`` lists every problem with its line number and column
  table-stale-sha       a well-formed but wrong sha256 for a present file: validate names line+column
Integrity
  verify-mismatch       one flipped byte in a pulled file (mtime changed / mtime kept): verify exits 1
                        naming the file and changes nothing; ``zoo pull`` restores it; verify passes
  pull-corrupt-remote   the remote object is overwritten: pull exits 1 naming the file, the
                        workspace file is not created, no corrupt object stays in the local cache
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import pickle
import random
import shutil
import struct
import subprocess
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ADD_ARGS, PROJECT, add_args, git, isolate, run_zoo, snapshot, write_safetensors

from checkpoint_zoo.catalog.rules import LICENSES

TABLE = "zoo/checkpoints.csv"
A10 = "zoo/checkpoints/alpha/step-00000010.safetensors"


# ---- fixtures: one pristine small zoo (+ a fresh clone) per module, copied per test -----------------


@dataclass(frozen=True)
class Templates:
    zoo: Path    # alpha@10, alpha@20, beta@5: committed, pushed, all files present
    clone: Path  # a git clone of it with no checkpoint bytes and no DVC cache


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Templates:
    """Built once (as conftest's ``small_zoo``/``fresh_clone`` do) under an isolated HOME and git identity."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.api import init

    base = tmp_path_factory.mktemp("bad-input")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = base / "zoo"
        init(root, remote_url=str(base / "remote"), registries_from=PROJECT)
        git("commit", "-qm", "empty zoo", cwd=root)
        with Zoo(root) as zoo:
            for model, step, seed in (("alpha", 10, 1), ("alpha", 20, 2), ("beta", 5, 3)):
                f = write_safetensors(base / "in" / f"{model}-{step}.safetensors", seed=seed)
                zoo.add(f, model=model, step=step, arch="linear", task="tabular-classification",
                        dataset="wine", license="MIT", tags=("test",) if model == "alpha" else (),
                        description=f"{model} test")
            zoo.push()
        git("commit", "-qm", "add checkpoints", cwd=root)
        clone = base / "clone"
        subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
        shutil.rmtree(clone / ".dvc" / "cache", ignore_errors=True)
    return Templates(root, clone)


@pytest.fixture
def zoo(templates, tmp_path) -> Path:
    """A private copy of the full small zoo (its remote is the shared, read-only template remote)."""
    dst = tmp_path / "z"
    shutil.copytree(templates.zoo, dst, symlinks=True)
    return dst


@pytest.fixture
def clone(templates, tmp_path) -> Path:
    """A private copy of the fresh clone: table and pointers, no checkpoint bytes."""
    dst = tmp_path / "c"
    shutil.copytree(templates.clone, dst, symlinks=True)
    return dst


# ---- helpers ------------------------------------------------------------------------------------------


def disk_state(root: Path) -> dict[str, object]:
    """Everything a refused command must leave alone."""
    cache = root / ".dvc" / "cache"
    incoming = root / ".dvc" / "tmp" / "zoo" / "incoming"

    def listing(folder: Path) -> list[str]:
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []

    return {
        "files": snapshot(root),
        "git status": git("status", "--porcelain", "--untracked-files=all", cwd=root),
        "dvc cache": listing(cache),
        "incoming": listing(incoming),
    }


def describe_change(before: dict[str, object], after: dict[str, object]) -> str:
    out = []
    for key in before:
        if before[key] == after[key]:
            continue
        if key == "files":
            b, a = before[key], after[key]
            out.append(f"files added {sorted(set(a) - set(b))}, removed {sorted(set(b) - set(a))}, "
                       f"changed {sorted(k for k in set(a) & set(b) if a[k] != b[k])}")
        else:
            out.append(f"{key}: {before[key]!r} -> {after[key]!r}")
    return "; ".join(out)


def error_lines(stderr: str) -> list[str]:
    """stderr lines without argparse's usage block (``usage: ...`` plus its indented continuation)."""
    lines, in_usage = [], False
    for line in stderr.splitlines():
        if line.startswith("usage:"):
            in_usage = True
            continue
        if in_usage and (line.startswith(" ") or not line.strip()):
            continue
        in_usage = False
        lines.append(line)
    return lines


def refused(root: Path, *args: str, code: int = 1, names: tuple[str, ...] = (), report: bool = False,
            check_cache: bool = True) -> list[str]:
    """Run ``zoo *args`` in ``root`` and check the refusal contract; returns the stderr error lines.

    ``names`` must all appear in the one error line (or anywhere in the report when ``report``).
    """
    before = disk_state(root)
    r = run_zoo(*args, cwd=root)
    after = disk_state(root)
    shown = f"zoo {' '.join(map(repr, args))}\nexit {r.code}\nstdout: {r.out!r}\nstderr: {r.err!r}"
    assert r.code == code, f"expected exit {code}\n{shown}"
    assert "Traceback" not in r.err and "unexpected" not in r.err, shown
    lines = error_lines(r.err)
    if report:
        assert lines, shown
    else:
        assert len(lines) == 1, f"expected exactly one error line\n{shown}"
    text = "\n".join(lines)
    missing = [n for n in names if n not in text]
    assert not missing, f"error does not name {missing}\n{shown}"
    assert r.out == "", f"nothing should go to stdout on error\n{shown}"
    if not check_cache:
        before.pop("dvc cache"), after.pop("dvc cache")
    assert after == before, f"disk changed: {describe_change(before, after)}\n{shown}"
    return lines


def without(flag: str, args: tuple[str, ...] = ADD_ARGS) -> tuple[str, ...]:
    i = args.index(flag)
    return args[:i] + args[i + 2:]


def edit_table(root: Path, edit) -> None:
    """Rewrite zoo/checkpoints.csv by hand (as a person with an editor would): edit(rows) on lists of cells."""
    path = root / TABLE
    rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
    edit(rows)
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue())


def cell(rows: list[list[str]], line: int, column: str) -> tuple[int, int]:
    """(row index, column index) of a table cell by its 1-based file line and column name."""
    return line - 1, rows[0].index(column)


def st_bytes(header: bytes, data: bytes = b"") -> bytes:
    """A file laid out like safetensors: 8-byte little-endian header length, header, data."""
    return struct.pack("<Q", len(header)) + header + data


# ---- references ---------------------------------------------------------------------------------------

UNKNOWN_MODELS = {"gamma": ("'gamma'",), "Alpha": ("'Alpha'", "alpha"), "../etc@1": ("'../etc'",)}
MALFORMED_REFS = {"": ("empty",), "   ": ("empty",), "alpha@": ("'alpha@'",), "alpha@x": ("'alpha@x'", "'x'"),
                  "a@b@c": ("'a@b@c'",), "@10": ("'@10'",), "alpha@1.5": ("'alpha@1.5'",),
                  "alpha@-1": ("'alpha@-1'",)}
REF_CASES = [
    *[pytest.param(ref, names, id=f"unknown-model-{ref}") for ref, names in UNKNOWN_MODELS.items()],
    pytest.param("alpha@15", ("alpha", "15", "10, 20"), id="unknown-step"),
    *[pytest.param(ref, names, id=f"malformed-{ref!r}") for ref, names in MALFORMED_REFS.items()],
]


@pytest.mark.parametrize("ref, names", REF_CASES)
def test_show_bad_ref(zoo, ref, names):
    refused(zoo, "show", ref, names=names)


@pytest.mark.parametrize("ref, names", REF_CASES)
def test_pull_bad_ref_in_fresh_clone(clone, ref, names):
    refused(clone, "pull", ref, names=names)


def test_pull_good_and_bad_ref_fetches_nothing(clone):
    refused(clone, "pull", "alpha@10", "gamma", names=("'gamma'",))
    assert not (clone / A10).exists()


@pytest.mark.parametrize("verb", ["rm", "verify"])
@pytest.mark.parametrize("ref, names", [("gamma", ("'gamma'",)), ("alpha@15", ("15", "10, 20")),
                                        ("a@b@c", ("'a@b@c'",))])
def test_rm_and_verify_bad_ref_change_nothing(zoo, verb, ref, names):
    refused(zoo, verb, ref, names=names)


# ---- files given to add -----------------------------------------------------------------------------


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(4096))


def _torch_save(path: Path, **kw) -> None:
    import torch

    torch.save({"fc.weight": torch.zeros(3, 4), "fc.bias": torch.zeros(3)}, path, **kw)


def _torchscript(path: Path) -> None:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(torch.nn.Linear(4, 3)).save(str(path))


def _truncated(keep: Callable[[int], int]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        good = write_safetensors(path.with_suffix(".good"), seed=5).read_bytes()
        path.write_bytes(good[: keep(len(good))])
    return make


BAD_FILES = {
    "random-bytes": (_random_bytes, ()),
    "empty": (lambda p: p.write_bytes(b""), ()),
    **{f"pickle-protocol-{n}": (lambda p, n=n: p.write_bytes(pickle.dumps({"fc.weight": [[0.0] * 4] * 3}, protocol=n)),
                                ("pickle",) if n >= 2 else ())
       for n in range(pickle.HIGHEST_PROTOCOL + 1)},
    "torch-save-zip": (_torch_save, ("pickle",)),
    "torch-save-legacy": (lambda p: _torch_save(p, _use_new_zipfile_serialization=False), ("pickle",)),
    "torchscript": (_torchscript, ("TorchScript",)),
    "truncated-1-byte": (_truncated(lambda n: n - 1), ()),
    "truncated-half": (_truncated(lambda n: n // 2), ()),
    "truncated-to-length": (_truncated(lambda n: 8), ()),
    "header-not-json": (lambda p: p.write_bytes(st_bytes(b"{this is not json}   ", bytes(64))), ()),
    "header-not-object": (lambda p: p.write_bytes(st_bytes(b"[1, 2, 3]", bytes(64))), ()),
    "header-length-absurd": (lambda p: p.write_bytes(struct.pack("<Q", 2**62) + b"{}" + bytes(64)), ()),
    "offsets-past-end": (lambda p: p.write_bytes(st_bytes(
        b'{"w":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}}', bytes(16))), ()),
    "no-tensors": (lambda p: p.write_bytes(st_bytes(b'{"__metadata__":{"a":"b"}}')), ("no tensors",)),
}


@pytest.mark.parametrize("make, names", [pytest.param(*v, id=k) for k, v in BAD_FILES.items()])
def test_add_refuses_bad_file(zoo, tmp_path, make, names):
    src = tmp_path / "in" / "candidate.safetensors"  # the extension lies on purpose: content decides
    src.parent.mkdir()
    make(src)
    data = src.read_bytes()
    refused(zoo, *add_args(src), names=(str(src), *names))
    assert src.read_bytes() == data


def test_add_refuses_missing_file(zoo, tmp_path):
    missing = tmp_path / "nowhere" / "w.safetensors"
    refused(zoo, *add_args(missing), names=(str(missing),))


def test_refused_move_leaves_source_in_place(zoo, tmp_path):
    src = tmp_path / "model.pt"
    src.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    data = src.read_bytes()
    refused(zoo, *add_args(src, "gamma", "1", "--move"), names=(str(src), "pickle"))
    assert src.read_bytes() == data


def test_refused_move_of_other_bytes_leaves_source_in_place(zoo, tmp_path):
    src = write_safetensors(tmp_path / "other.safetensors", seed=42)
    data = src.read_bytes()
    refused(zoo, *add_args(src, "alpha", "10", "--move"), names=("alpha@10", "--replace"))
    assert src.read_bytes() == data


# ---- names and metadata given to add -----------------------------------------------------------------

NFD_NAME = unicodedata.normalize("NFD", "café")
BAD_NAMES = {
    "upper-case": "Bad", "dot-dot-slash": "../x", "slash": "a/b", "leading-dash": "-x",
    "65-chars": "a" * 65, "trailing-newline": "x\n", "non-NFC": NFD_NAME, "non-ascii": "café",
    "differs-by-case": "Alpha", "space": "a b",
}


@pytest.mark.parametrize("name", [pytest.param(v, id=k) for k, v in BAD_NAMES.items()])
def test_add_refuses_bad_model_name(zoo, tmp_path, name):
    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    refused(zoo, *add_args(src, name), names=("--model", repr(name)))


def test_add_refuses_empty_model_name(zoo, tmp_path):
    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    refused(zoo, *add_args(src, ""), names=("--model", "empty"))


BAD_VALUES = {
    "arch-unknown": (("--arch", "transformer"), ("--arch", "'transformer'", "conf/arch/transformer.yaml", "linear")),
    "task-unknown": (("--task", "translation"), ("--task", "'translation'", "conf/task/translation.yaml")),
    "license-unknown": (("--license", "WTFPL"), ("--license", "'WTFPL'", *LICENSES)),
    "dataset-not-slug": (("--dataset", "Wine"), ("--dataset", "'Wine'")),
    "tags-upper": (("--tags", "ok,Bad"), ("--tags", "'Bad'")),
    "tags-space": (("--tags", "has space"), ("--tags", "'has space'")),
    "tags-semicolon": (("--tags", "a;b"), ("--tags", "'a;b'")),
    "tags-dash": (("--tags=-x",), ("--tags", "'-x'")),
    **{f"description-{p}": ((f"--description={p}1+1",), ("--description", repr(p)))
       for p in ("=", "+", "-", "@")},
    "description-newline": (("--description", "one\ntwo"), ("--description", "control")),
    "description-ansi": (("--description", "\x1b[2Jgone"), ("--description", "control")),
    "source-formula": (("--source", "=HYPERLINK(1)"), ("--source", "'='")),
    "parent-unknown-step": (("--parent", "alpha@15"), ("--parent", "alpha@15")),
    "parent-unknown-model": (("--parent", "gamma@1"), ("--parent", "gamma@1")),
    "parent-alias": (("--parent", "alpha@best"), ("--parent", "alpha@best")),
    "parent-bare-model": (("--parent", "alpha"), ("--parent", "'alpha'")),
    "parent-malformed": (("--parent", "a@b@c"), ("--parent", "'a@b@c'")),
    "reported-unknown-metric": (("--reported", "f1=0.5"), ("--reported", "f1", "accuracy")),
    "reported-no-metric": (("--reported", "=0.5"), ("--reported",)),
    "reported-nan": (("--reported", "accuracy=nan"), ("--reported", "accuracy=nan")),
    "reported-inf": (("--reported", "accuracy=inf"), ("--reported", "accuracy=inf")),
    "step-negative": (("--step=-1",), ("--step", "-1")),
    "epoch-negative": (("--epoch=-1",), ("--epoch", "-1")),
    "epoch-nan": (("--epoch", "nan"), ("--epoch", "nan")),
    "epoch-inf": (("--epoch", "inf"), ("--epoch", "inf")),
}


@pytest.mark.parametrize("extra, names", [pytest.param(*v, id=k) for k, v in BAD_VALUES.items()])
def test_add_refuses_bad_value(zoo, tmp_path, extra, names):
    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    flag = extra[0].split("=")[0]
    base = without(flag) if flag in ADD_ARGS else ADD_ARGS
    args = ("add", str(src), "--model=gamma", *(("--step=1",) if flag != "--step" else ()), *base, *extra)
    refused(zoo, *args, names=names)


# ---- usage errors (exit 2) ---------------------------------------------------------------------------

USAGE = {
    "add-missing-arch": (lambda f: ("add", f, "--model=g", "--step=1", *without("--arch")), ("--arch",)),
    "add-missing-model": (lambda f: ("add", f, "--step=1", *ADD_ARGS), ("--model",)),
    "add-missing-file": (lambda f: ("add", "--model=g", "--step=1", *ADD_ARGS), ("file",)),
    "add-unknown-flag": (lambda f: (*add_args(f), "--bogus"), ("--bogus",)),
    "add-step-word": (lambda f: add_args(f, "g", "ten"), ("--step", "'ten'")),
    "add-step-float": (lambda f: add_args(f, "g", "1.5"), ("--step", "'1.5'")),
    "add-epoch-word": (lambda f: (*add_args(f), "--epoch", "x"), ("--epoch", "'x'")),
    "add-reported-no-equals": (lambda f: (*add_args(f), "--reported", "accuracy"), ("--reported", "'accuracy'")),
    "add-reported-no-value": (lambda f: (*add_args(f), "--reported", "accuracy="), ("--reported", "'accuracy='")),
    "add-reported-word": (lambda f: (*add_args(f), "--reported", "accuracy=high"), ("--reported", "'accuracy=high'")),
    "ls-unknown-flag": (lambda f: ("ls", "--bogus"), ("--bogus",)),
    "ls-where-operator": (lambda f: ("ls", "--where", "step >>= 3"), ("--where",)),
    "ls-where-column": (lambda f: ("ls", "--where", "colour == red"), ("--where", "'colour'")),
    "ls-where-xor": (lambda f: ("ls", "--where", "step > 1 xor step < 0"), ("--where", "xor step")),
    "ls-where-not-number": (lambda f: ("ls", "--where", "step > ten"), ("--where", "'ten'")),
    "ls-where-empty-value": (lambda f: ("ls", "--where", "step >"), ("--where",)),
    "ls-sort-column": (lambda f: ("ls", "--sort", "colour"), ("--sort", "'colour'")),
    "ls-format": (lambda f: ("ls", "--format", "xml"), ("--format", "'xml'")),
    "show-no-ref": (lambda f: ("show",), ("ref",)),
    "pull-no-ref": (lambda f: ("pull",), ("REF",)),
    "unknown-verb": (lambda f: ("frobnicate",), ("'frobnicate'",)),
    "bogus-global-flag": (lambda f: ("--bogus",), ("--bogus",)),
    "bogus-global-flag-with-verb": (lambda f: ("--bogus", "ls"), ("--bogus",)),
}


@pytest.mark.parametrize("make_args, names", [pytest.param(*v, id=k) for k, v in USAGE.items()])
def test_usage_error_exits_2(zoo, tmp_path, make_args, names):
    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    refused(zoo, *make_args(str(src)), code=2, names=names)


# ---- duplicates --------------------------------------------------------------------------------------


def test_duplicate_with_other_bytes_is_refused(zoo, tmp_path):
    src = write_safetensors(tmp_path / "other.safetensors", seed=42)
    refused(zoo, *add_args(src, "alpha", "10"), names=("alpha@10", "--replace"))


def test_duplicate_with_identical_bytes_is_a_noop(zoo, tmp_path):
    src = tmp_path / "same.safetensors"
    src.write_bytes((zoo / A10).read_bytes())
    before = disk_state(zoo)
    r = run_zoo(*add_args(src, "alpha", "10"), cwd=zoo)
    assert r.code == 0, r.err
    assert "nothing to do" in r.out and "alpha@10" in r.out, r.out
    assert r.err == ""
    after = disk_state(zoo)
    assert after == before, describe_change(before, after)


# ---- a hand-edited invalid table ---------------------------------------------------------------------


def _bad_license(rows):
    r, c = cell(rows, 2, "license")
    rows[r][c] = "WTFPL"


def _bad_sha(rows):
    r, c = cell(rows, 3, "sha256")
    rows[r][c] = "not-a-sha256"


def _extra_column(rows):
    rows[0].append("color")
    for row in rows[1:]:
        row.append("red")


def _duplicate_row(rows):
    rows.append(list(rows[3]))  # beta@5 again, on line 5


# corruption -> (edits, expected problems: each a tuple of strings that must share one stderr line)
LICENSE_PROBLEM = ("line 2", "'license'", "WTFPL")
SHA_PROBLEM = ("line 3", "'sha256'", "not-a-sha256")
COLUMN_PROBLEM = ("line 1", "color")
DUP_PROBLEM = ("line 5", "beta@5", "more than once")
CORRUPTIONS = {
    "bad-license": ((_bad_license,), (LICENSE_PROBLEM,)),
    "bad-sha256": ((_bad_sha,), (SHA_PROBLEM,)),
    "extra-column": ((_extra_column,), (COLUMN_PROBLEM,)),
    "duplicate-row": ((_duplicate_row,), (DUP_PROBLEM,)),
    "license+sha+duplicate": ((_bad_license, _bad_sha, _duplicate_row), (LICENSE_PROBLEM, SHA_PROBLEM, DUP_PROBLEM)),
    "all-four": ((_bad_license, _bad_sha, _duplicate_row, _extra_column),
                 (LICENSE_PROBLEM, SHA_PROBLEM, DUP_PROBLEM, COLUMN_PROBLEM)),
}
READING_COMMANDS = {
    "ls": lambda f: ("ls",),
    "show": lambda f: ("show", "alpha@10"),
    "pull": lambda f: ("pull", "beta@5"),
    "add": lambda f: add_args(f, "gamma", "1"),
    "verify": lambda f: ("verify",),
    "rm": lambda f: ("rm", "alpha@10"),
    "validate": lambda f: ("validate",),
}


def _table_cases():
    for corruption, (edits, problems) in CORRUPTIONS.items():
        # every command on every single corruption; the combined ones through validate and ls
        for verb, make in READING_COMMANDS.items():
            if len(edits) == 1 or verb in ("validate", "ls"):
                yield pytest.param(edits, problems, make, id=f"{corruption}-{verb}")


@pytest.mark.parametrize("edits, problems, make_args", list(_table_cases()))
def test_invalid_table_is_reported_by_every_command(zoo, tmp_path, edits, problems, make_args):
    for edit in edits:
        edit_table(zoo, edit)
    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    lines = refused(zoo, *make_args(str(src)), report=True, names=(TABLE,))
    for problem in problems:
        assert any(all(part in line for part in problem) for line in lines), (
            f"no line names {problem}; report was:\n" + "\n".join(lines))


def test_validate_reports_sha256_that_does_not_match_the_file(zoo):
    def stale(rows):
        r, c = cell(rows, 4, "sha256")
        rows[r][c] = hashlib.sha256(b"something else").hexdigest()

    edit_table(zoo, stale)
    lines = refused(zoo, "validate", report=True)
    assert any("line 4" in l and "'sha256'" in l and "zoo/checkpoints/beta/step-00000005.safetensors" in l
               for l in lines), lines
    assert len(lines) == 1, lines


# ---- integrity: verify and pull ---------------------------------------------------------------------


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["mtime-changed", "mtime-kept"])
def test_verify_names_flipped_byte_and_pull_restores_it(clone, keep_mtime):
    r = run_zoo("pull", "alpha@10", cwd=clone)
    assert r.code == 0, r.err
    target = clone / A10
    good = target.read_bytes()
    st = target.stat()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01
    target.write_bytes(bytes(bad))
    if keep_mtime:  # bit rot: same inode, size and mtime
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))

    before = disk_state(clone)
    r = run_zoo("verify", "alpha@10", cwd=clone)
    assert disk_state(clone) == before
    assert r.code == 1, (r.code, r.out, r.err)
    assert "Traceback" not in r.err and "unexpected" not in r.err, r.err
    report = [l for l in (r.out + r.err).splitlines() if A10 in l]
    assert len(report) == 1 and "mismatch" in report[0], (r.out, r.err)
    assert target.read_bytes() == bytes(bad)  # verify reports, it does not repair

    r = run_zoo("pull", "alpha@10", cwd=clone)
    assert r.code == 0, r.err
    assert target.read_bytes() == good, f"pull did not restore the file; it said: {r.out.strip()!r}"
    r = run_zoo("verify", "alpha@10", cwd=clone)
    assert r.code == 0, (r.out, r.err)


def _dvc_md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_pull_refuses_corrupt_remote_object(fresh_clone, small_zoo, tmp_path):
    from checkpoint_zoo.storage.dvc import Storage

    storage = Storage(small_zoo)
    try:
        md5 = storage.manifest("zoo/checkpoints/alpha")["step-00000010.safetensors"]
    finally:
        storage.close()
    remote_objects = [p for p in (tmp_path / "remote").rglob("*") if p.is_file() and p.parent.name + p.name == md5]
    assert len(remote_objects) == 1, sorted((tmp_path / "remote").rglob("*"))
    obj = remote_objects[0]
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x01
    os.chmod(obj, 0o644)
    obj.write_bytes(bytes(data))

    for _attempt in range(2):  # a second try must not pick up anything the first one left behind
        refused(fresh_clone, "pull", "alpha@10", names=(A10,), check_cache=False)
        assert not (fresh_clone / A10).exists()
        cache = fresh_clone / ".dvc" / "cache"
        kept = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
        corrupt = [p for p in kept if p.suffix != ".dir" and _dvc_md5(p.read_bytes()) != p.parent.name + p.name]
        assert not corrupt, f"corrupt object kept in the local cache: {corrupt}"
