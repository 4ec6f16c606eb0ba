"""A cold `zoo ls` (empty user cache) of a large table: the column-wise shortcuts of the table's checks find every
problem the cell-by-cell checks find, with the same one-line errors, and a verdict is reused only for the same
table bytes and the same schema code."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from conftest import git, run_zoo

from checkpoint_zoo.catalog import rules, schema, table
from checkpoint_zoo.errors import TableInvalidError

MODELS, STEPS = 60, 100  # 6,000 rows: above index_cache.MIN_ROWS, so a good table also gets its indexed copy


def _rows() -> list[dict[str, str]]:
    rows = []
    for m in range(MODELS):
        model = f"model-{m:03d}"
        for s in range(STEPS):
            rows.append({c: "" for c in rules.COLUMNS} | {
                "model": model, "step": str(s), "format": "safetensors", "path": rules.checkpoint_path(model, s),
                "size_bytes": str(100 + s), "dtype": "F32", "num_params": "25",
                "sha256": hashlib.sha256(f"{model}@{s}".encode()).hexdigest(), "arch": "linear",
                "task": "tabular-classification", "dataset": "wine", "license": "MIT",
                "created": "2026-01-01T00:00:00Z", "source": "test", "description": f"step {s}"})
    return rows


def _csv(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(rules.COLUMNS)
    w.writerows([r[c] for c in rules.COLUMNS] for r in rows)
    return buf.getvalue().encode()


# (row, column, value) -> the one line the check gives: each one goes past a column-wise shortcut
BAD = [
    (1234, "size_bytes", "0100", "line 1236 (model-012@34): column 'size_bytes' value '0100': must be a whole number"),
    (77, "num_params", "\uff12\uff15", "line 79 (model-000@77): column 'num_params' value '２５': must be a whole number"),
    (4321, "description", "=HYPERLINK()", "line 4323 (model-043@21): column 'description' value '=HYPERLINK()': must "
                                          "have no control characters and not start with"),
    (5, "source", "a\x07b", "line 7 (model-000@5): column 'source' value 'a\\x07b': must have no control"),
    (999, "description", "x" * 4097, "line 1001 (model-009@99): column 'description' is 4097 characters; at most 4096"),
    (3000, "dtype", "F32;F99", "line 3002 (model-030@0): column 'dtype' value 'F32;F99': each ';' part must be one of"),
    (2500, "parent", "model-001@100", "line 2502 (model-025@0): column 'parent' value 'model-001@100': must be empty or "
                                      "an existing MODEL@STEP"),
    (3333, "epoch", "nan", "line 3335 (model-033@33): column 'epoch' value 'nan': must be a finite number or empty"),
    (10, "parent", "model-000@10", "line 12 (model-000@10): column 'parent' value 'model-000@10': makes a loop"),
]


@pytest.mark.parametrize("row_no, column, value, line", BAD, ids=[b[1] for b in BAD])
def test_one_bad_cell_in_a_big_table_is_found_and_named(row_no, column, value, line):
    rows = _rows()
    rows[row_no][column] = value
    with pytest.raises(TableInvalidError) as e:
        table.load(_csv(rows), "zoo/checkpoints.csv")
    assert e.value.problems and any(p.startswith(f"zoo/checkpoints.csv {line}") for p in e.value.problems), \
        e.value.problems


def test_a_case_collision_among_many_names_is_found():
    rows = _rows()
    for r in rows[4200:4300]:
        r["model"] = "Model-042"
    with pytest.raises(TableInvalidError) as e:
        table.load(_csv(rows))
    assert any("column 'model' value 'Model-042'" in p for p in e.value.problems)


def test_an_all_empty_row_is_named_for_its_empty_cells_not_as_a_wrong_path():
    data = _csv(_rows()) + b"," * (len(rules.COLUMNS) - 1) + b"\n"
    with pytest.raises(TableInvalidError) as e:
        table.load(data)
    line = f"line {MODELS * STEPS + 2} (@)"
    assert any(f"{line}: column 'model' (empty): must not be empty" in p for p in e.value.problems)
    assert not any(line in p and ("must be zoo/checkpoints" in p or "'files'" in p) for p in e.value.problems)


@pytest.mark.parametrize("text", ["a,b\nc,d\n", "a,b\nc\x0bx,\x1c\u2028\x85\x00\n,\n", "h\n" + "x" * 200_000 + "\n",
                                  "a,b\n\nc,d\n", "a,b\nc,d", "a,b\r\nc,d\r\n", 'a,b\n"c,d",e\n'])
def test_the_split_of_plain_text_reads_what_the_csv_module_reads(text):
    try:
        expected = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        with pytest.raises(TableInvalidError):
            table._read_records(text, "t.csv", table._plain_lines(text))
        return
    header, records = table._read_records(text, "t.csv", table._plain_lines(text))
    assert [header, *records] == expected


@pytest.mark.parametrize("change", ["none", "no optional column", "a field too many", "a field too few", "header"])
def test_plain_rows_are_the_rows_the_csv_module_reads_and_a_wrong_line_is_reported(change):
    """A plain table (``_plain_lines``) becomes its rows in one pass; a line with the wrong number of fields or a
    wrong header leaves that pass for the line-by-line read, which names the problem."""
    text = _csv(_rows()[:300]).decode()
    lines = text.split("\n")
    if change == "no optional column":
        at = rules.COLUMNS.index(rules.OPTIONAL_COLUMNS[0])
        lines = [",".join(f for i, f in enumerate(line.split(",")) if i != at) if line else line for line in lines]
    elif change == "a field too many":
        lines[120] += ",x"
    elif change == "a field too few":
        lines[120] = lines[120].rsplit(",", 1)[0]
    elif change == "header":
        lines[0] = lines[0].replace("model", "modell", 1)
    text = "\n".join(lines)
    problems: list[str] = []
    rows = table.parse_csv(text.encode(), "t.csv", problems)
    if change in ("none", "no optional column"):
        header, *records = list(csv.reader(io.StringIO(text, newline="")))
        absent = {c: "" for c in rules.OPTIONAL_COLUMNS if c not in header}
        assert not problems and rows == [{**dict(zip(header, r)), **absent} for r in records]
    else:
        assert len(problems) == 1 and problems[0].startswith("t.csv line 1: " if change == "header" else "t.csv line 121:")


@pytest.mark.parametrize("values", [["1", "", "20"], ["01"], ["1\n2"], ["-1"], [" 1"], ["1" * 19], ["١"], [], [""]])
def test_the_column_shortcut_for_numbers_agrees_with_the_cell_check(values):
    clean = all(not v or rules.count_problem(v, "") is None for v in values)
    assert not schema._counts_clean(values) or clean  # the shortcut may only ever say "clean" of a clean column
    if clean and values and any(values) and all(len(v) <= 18 for v in values):
        assert schema._counts_clean(values)


def test_a_bad_table_is_refused_by_a_cold_ls_with_its_line_and_nothing_cached(empty_zoo, tmp_path):
    rows = _rows()
    rows[4321]["description"] = "=HYPERLINK()"
    (empty_zoo / "zoo/checkpoints.csv").write_bytes(_csv(rows))
    git("commit", "-qam", "bad", cwd=empty_zoo)
    cache = tmp_path / "cold-cache"
    r = run_zoo("ls", cwd=empty_zoo, env={"ZOO_CACHE_DIR": str(cache)})
    assert r.code != 0 and "line 4323 (model-043@21): column 'description'" in r.err and not r.out
    assert not list(cache.rglob("tables/*.sqlite")) and not list(cache.rglob("verdicts/*"))

    rows[4321]["description"] = "fixed"
    (empty_zoo / "zoo/checkpoints.csv").write_bytes(_csv(rows))
    good = run_zoo("ls", "--format", "json", cwd=empty_zoo, env={"ZOO_CACHE_DIR": str(cache)})
    assert good.code == 0 and len(json.loads(good.out)) == MODELS
    assert len(list(cache.rglob("verdicts/*"))) == 1 and len(list(cache.rglob("tables/*.sqlite"))) == 1


def test_a_verdict_is_reused_only_for_the_same_bytes_and_the_same_schema(monkeypatch):
    data = _csv(_rows())
    table.load(data)
    assert table.is_known_valid(data)
    changed = data.replace(b",step 5,", b",step 5!,", 1)
    assert changed != data and not table.is_known_valid(changed)
    monkeypatch.setattr(table, "_schema_fingerprint", lambda: "another-schema")
    assert not table.is_known_valid(data)
    calls = []
    real = schema.validate_frame
    monkeypatch.setattr(schema, "validate_frame", lambda *a, **k: calls.append(1) or real(*a, **k))
    table.load(data)
    assert calls == [1]  # validated again by pandera under the new schema


def test_the_cyclic_collector_is_paused_while_a_table_loads_and_resumed_after(monkeypatch):
    """Parsing and validating 100,000 rows makes millions of objects and no cycle: the collector is off meanwhile
    (``utils.heap``), and on again after a good table, a bad one, and a pause inside a pause."""
    import gc

    from checkpoint_zoo.utils import heap

    seen = []
    real = table.validate_rows
    monkeypatch.setattr(table, "validate_rows", lambda *a, **k: (seen.append(gc.isenabled()), real(*a, **k))[1])
    good = table.dump_csv(_rows()[:50])
    assert gc.isenabled()
    assert len(table.load(good)) == 50 and seen == [False] and gc.isenabled()
    with pytest.raises(TableInvalidError):
        table.load(good.replace(b",MIT,", b",no-such-license,", 1))
    assert seen == [False, False] and gc.isenabled()
    with heap.paused_gc():
        table.load(good)
        assert not gc.isenabled()  # the inner pause does not resume what the outer one paused
    assert gc.isenabled()
