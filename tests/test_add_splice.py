"""One ``zoo add`` into a big zoo writes in proportion to the change: the new row is spliced into the table's bytes
and the table's indexed copy takes the same change in place. The bytes must be exactly those of the whole
rewrite, the copy must answer as the CSV does, and a killed add must leave both as they were or as they will be.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import signal
from pathlib import Path

import pytest
from conftest import add_args, git, run_zoo, write_safetensors

MODELS, STEPS = 60, 100  # 6,000 rows: above index_cache.MIN_ROWS, so the table has an indexed copy
TABLE = "zoo/checkpoints.csv"


def _row(model: str, step: int, **extra: str) -> dict[str, str]:
    from checkpoint_zoo.catalog import rules

    row = {"model": model, "step": str(step), "format": "safetensors", "path": rules.checkpoint_path(model, step),
           "size_bytes": str(100 + step), "dtype": "F32", "num_params": "25",
           "sha256": hashlib.sha256(f"{model}@{step}".encode()).hexdigest(), "arch": "linear",
           "task": "tabular-classification", "dataset": "wine", "license": "MIT",
           "created": "2026-01-01T00:00:00Z", "source": "test"}
    return {c: "" for c in rules.COLUMNS} | row | extra


def _big_rows() -> list[dict[str, str]]:
    rows = [_row(f"model-{m:03d}", s * 10) for m in range(MODELS) for s in range(STEPS)]
    rows[5]["parent"] = "model-000@0"
    rows[6]["parent"] = "model-000@50"
    return rows


def _copy_file() -> Path:
    found = list(Path(os.environ["ZOO_CACHE_DIR"]).rglob("tables/*.sqlite"))
    assert len(found) == 1, found
    return found[0]


def _copy_rows(path: Path) -> tuple[tuple[str, int], list[tuple[str, ...]]]:
    import sqlite3

    from checkpoint_zoo.catalog import rules

    with sqlite3.connect(path) as db:
        meta = db.execute("SELECT stamp, canonical FROM meta").fetchone()
        rows = db.execute(f"SELECT {', '.join(chr(34) + c + chr(34) for c in rules.COLUMNS)} FROM rows").fetchall()
    return meta, sorted(rows)


def _csv_rows(root: Path) -> list[tuple[str, ...]]:
    from checkpoint_zoo.catalog import rules, table

    return sorted(tuple(r[c] for c in rules.COLUMNS) for r in table.parse_csv((root / TABLE).read_bytes()))


@pytest.fixture
def big_zoo(empty_zoo: Path) -> Path:
    """An empty zoo with a 6,000-row table as ``zoo add`` writes it, committed, its copy made by a ``zoo ls``."""
    from checkpoint_zoo.catalog import table

    (empty_zoo / TABLE).write_bytes(table.dump_csv(_big_rows()))
    git("commit", "-qam", "big", cwd=empty_zoo)
    r = run_zoo("ls", cwd=empty_zoo)
    assert r.code == 0, r.err
    return empty_zoo


def test_splice_gives_the_bytes_of_the_whole_rewrite_in_any_order():
    """Rows added one at a time in random orders, new models, steps between steps, first and last rows, and
    replacements: every splice is byte for byte what dump_csv writes of all the rows."""
    from checkpoint_zoo.catalog import table

    base = [_row(m, s) for m in ("b", "d", "d-x", "f") for s in (0, 10, 100, 2000)]
    new = [_row("a", 5), _row("b", 5), _row("b", 11), _row("b", 10**12), _row("c", 0), _row("d", 99),
           _row("d.x", 3), _row("e", 1, description='says "hi", twice'), _row("g", 0), _row("f", 10, size_bytes="7")]
    for seed in range(20):
        order = random.Random(seed).sample(new, len(new))
        rows = list(base)
        data = table.dump_csv(rows)
        assert table.is_canonical(data, table.parse_csv(data))
        for row in order:
            key = table.sort_key(row)
            replaces = any(table.sort_key(r) == key for r in rows)
            after = min((table.sort_key(r) for r in rows if table.sort_key(r) > key), default=None)
            following = (after[0], str(after[1])) if after else None
            data = table.splice_row(data, row, following, replaces)
            rows = [r for r in rows if table.sort_key(r) != key] + [row]
            assert data == table.dump_csv(rows), (seed, row["model"], row["step"])
        assert table.is_canonical(data, table.parse_csv(data))


def test_a_table_not_as_dump_csv_writes_it_is_not_canonical():
    from checkpoint_zoo.catalog import table

    rows = [_row("a", 0), _row("a", 10), _row("b", 0)]
    data = table.dump_csv(rows)
    unsorted = data.replace(table.row_line(rows[1]), b"").replace(table.row_line(rows[2]),
                                                                  table.row_line(rows[2]) + table.row_line(rows[1]))
    for other in (unsorted, data.replace(b"\n", b"\r\n"), data + b"\n", data.replace(b",test,", b',"test",', 1),
                  data[:-1]):
        assert not table.is_canonical(other, table.parse_csv(other)), other
    assert table.splice_row(data, _row("a", 20), ("z", "0"), False) is None  # a following row that is not there


def test_adds_into_a_big_zoo_splice_the_table_and_update_its_copy_in_place(big_zoo, tmp_path):
    from checkpoint_zoo.catalog import table

    copy = _copy_file()
    inode = copy.stat().st_ino
    adds = [("model-003", "15", ()), ("model-0035", "0", ()), ("aaa", "7", ()), ("zzz", "1", ("--parent", "model-000@50")),
            ("model-059", "5000", ()), ("model-003", "15", ("--replace",))]
    for n, (model, step, extra) in enumerate(adds):
        before = _csv_rows(big_zoo)
        f = write_safetensors(tmp_path / f"w{n}.safetensors", seed=n)
        r = run_zoo(*add_args(f, model, step, *extra), cwd=big_zoo)
        assert r.code == 0, r.err
        data = (big_zoo / TABLE).read_bytes()
        assert data == table.dump_csv(table.parse_csv(data)), f"{model}@{step}: not the bytes of the whole rewrite"
        after = _csv_rows(big_zoo)
        assert len(after) == len(before) + (0 if "--replace" in extra else 1)
        meta, rows = _copy_rows(copy)
        assert copy.stat().st_ino == inode, "the copy was rebuilt, not updated in place"
        assert meta[1] == 1 and rows == after
        from checkpoint_zoo.catalog.index_cache import stamp_of

        assert meta[0] == stamp_of(big_zoo / TABLE)
    r = run_zoo("show", "zzz@1", "--format", "json", cwd=big_zoo)
    assert r.code == 0 and '"model-000@50"' in r.out, r.out + r.err
    r = run_zoo("validate", cwd=big_zoo)
    assert r.code == 0, r.out + r.err


def test_checks_against_the_copy_refuse_as_the_whole_table_does(big_zoo, tmp_path):
    f = write_safetensors(tmp_path / "w.safetensors", seed=3)
    before = (big_zoo / TABLE).read_bytes()
    copy_before = _copy_rows(_copy_file())
    for extra, words in ((("--parent", "model-000@5"), "no such checkpoint"), ((), "exists with other bytes")):
        model, step = ("new", "1") if extra else ("model-001", "10")
        r = run_zoo(*add_args(f, model, step, *extra), cwd=big_zoo)
        assert r.code != 0 and words in r.err, r.err
    r = run_zoo(*add_args(f, "model-001", "1", "--license", "Apache-2.0"), cwd=big_zoo)
    assert r.code != 0 and "--relicense" in r.err, r.err
    assert (big_zoo / TABLE).read_bytes() == before and _copy_rows(_copy_file()) == copy_before


def test_a_table_edited_by_hand_is_rewritten_whole_and_canonical(empty_zoo, tmp_path):
    """Rows out of order (as a hand edit leaves them): the add writes the whole table sorted, and the copy anew."""
    from checkpoint_zoo.catalog import table

    rows = _big_rows()
    with open(empty_zoo / TABLE, "w", newline="", encoding="utf-8") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(list(rows[0]))
        w.writerows([list(r.values()) for r in reversed(rows)])
    git("commit", "-qam", "big, reversed", cwd=empty_zoo)
    assert run_zoo("ls", cwd=empty_zoo).code == 0
    meta, _ = _copy_rows(_copy_file())
    assert meta[1] == 0  # not what dump_csv writes: no splicing into it
    r = run_zoo(*add_args(write_safetensors(tmp_path / "w.safetensors"), "model-010", "5"), cwd=empty_zoo)
    assert r.code == 0, r.err
    data = (empty_zoo / TABLE).read_bytes()
    assert data == table.dump_csv(table.parse_csv(data))
    meta, copied = _copy_rows(_copy_file())
    assert meta[1] == 1 and copied == _csv_rows(empty_zoo)


def test_a_killed_add_leaves_the_table_and_its_copy_as_they_were_or_as_they_will_be(big_zoo, tmp_path):
    from checkpoint_zoo.catalog import table
    from checkpoint_zoo.catalog.index_cache import stamp_of

    completed = False
    for step in range(1, 15):
        src = write_safetensors(tmp_path / f"k{step}.safetensors", seed=step)
        count = len(_csv_rows(big_zoo))
        r = run_zoo(*add_args(src, "model-007", str(1000 + step)), cwd=big_zoo,
                    env={"ZOO_TEST_KILL_AT_STEP": str(step)})
        if r.code == 0:
            completed = True
            break
        assert r.code == -signal.SIGKILL, (step, r)
        # the next writing command recovers: the table is the old one or the new one, and the copy says which
        r = run_zoo(*add_args(write_safetensors(tmp_path / f"o{step}.safetensors", seed=50 + step), "other",
                              str(step)), cwd=big_zoo)
        assert r.code == 0, r.err
        data = (big_zoo / TABLE).read_bytes()
        assert data == table.dump_csv(table.parse_csv(data))
        killed = ("model-007", str(1000 + step)) in {(r[0], r[1]) for r in _csv_rows(big_zoo)}
        assert len(_csv_rows(big_zoo)) == count + 1 + killed
        meta, copied = _copy_rows(_copy_file())
        assert meta[0] == stamp_of(big_zoo / TABLE) and copied == _csv_rows(big_zoo), step
    assert completed, "the add never ran to its end: the step loop is too short"


def test_a_copy_that_disagrees_with_the_file_falls_back_to_the_whole_rewrite(big_zoo, tmp_path):
    """A row in the copy that the file lacks (the copy is only a cache): the splice finds no line to put the new row
    before, and the add writes the whole table from the file's rows, and a new copy of it."""
    import sqlite3

    from checkpoint_zoo.catalog import rules, table

    fake = _row("model-003", 16)
    with sqlite3.connect(_copy_file()) as db:
        db.execute(f"INSERT INTO rows VALUES ({', '.join('?' * (len(rules.COLUMNS) + 1))})",
                   [fake[c] for c in rules.COLUMNS] + [16])
    r = run_zoo(*add_args(write_safetensors(tmp_path / "w.safetensors"), "model-003", "15"), cwd=big_zoo)
    assert r.code == 0, r.err
    data = (big_zoo / TABLE).read_bytes()
    rows = table.parse_csv(data)
    assert data == table.dump_csv(rows) and len(rows) == MODELS * STEPS + 1
    assert not any(r["model"] == "model-003" and r["step"] == "16" for r in rows)
    meta, copied = _copy_rows(_copy_file())
    assert meta[1] == 1 and copied == _csv_rows(big_zoo)
