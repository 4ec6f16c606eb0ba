"""The schema: YAML export in sync, lazy validation reporting every failure, refs, where."""

from __future__ import annotations

import pytest
from conftest import PROJECT


def test_yaml_export_is_in_sync_and_round_trips():
    import pandera.pandas as pa

    from checkpoint_zoo.catalog.schema import CheckpointSchema, to_yaml

    exported = (PROJECT / "schemas" / "checkpoints.schema.yaml").read_text()
    body = "\n".join(l for l in exported.splitlines() if not l.startswith("#")) + "\n"
    stale = "schemas/checkpoints.schema.yaml is stale: python -m checkpoint_zoo.catalog.schema > schemas/checkpoints.schema.yaml"
    assert body == to_yaml(), stale
    loaded = pa.DataFrameSchema.from_yaml(body)
    assert set(loaded.columns) == set(CheckpointSchema.columns)
    assert {c.name for c in loaded.checks} == {"canonical_path", "folder_files", "parent_exists", "reported_pair"}
    sha = [c for c in loaded.columns["sha256"].checks if c.name == "full_match"]
    assert len(sha) == 1 and sha[0].statistics == {"pattern": "[0-9a-f]{64}"}


@pytest.mark.parametrize("repeated", [False, True])
def test_full_match_is_re_fullmatch_of_each_cell_in_ascii(repeated):
    """The column check behind every pattern of the table: the same verdict per cell whether the column repeats its
    values (judged once per distinct value) or not (judged cell by cell), a trailing newline and another script's
    digits refused, a missing cell left to the null check."""
    import re

    import numpy as np
    import pandas as pd

    from checkpoint_zoo.catalog import rules, schema

    rng = np.random.default_rng(7)
    good = ["2026-01-01T00:00:00Z", "2026-12-31T23:59:59.123456Z"]
    bad = ["2026-01-01T00:00:00Z\n", "٢٠٢٦-01-01T00:00:00Z", "2026-01-01 00:00:00Z", "", "x2026-01-01T00:00:00Z"]
    distinct = [f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z" for i in range(800)]
    cells = [(good[i % 2] if repeated else distinct[i]) if i % 7 else bad[i % 5] for i in range(800)]
    cells[int(rng.integers(0, 50))] = None
    series = pd.Series(cells, dtype=object)
    got = schema.full_match(series, pattern=rules.CREATED_PATTERN).tolist()
    rx = re.compile(rules.CREATED_PATTERN, re.ASCII)
    assert got == [c is None or rx.fullmatch(c) is not None for c in cells]
    assert (series.nunique() * 2 <= len(series)) == repeated
    assert not all(got) and any(got)


def _row(**over):
    from checkpoint_zoo.catalog import rules

    row = {c: "" for c in rules.COLUMNS}
    row.update(model="m", step="1", path=rules.checkpoint_path("m", 1), format="safetensors", size_bytes="10",
               sha256="a" * 64, num_params="3", dtype="F32", arch="linear", task="tabular-classification",
               dataset="wine", license="MIT", created="2026-01-01T00:00:00Z", source="test")
    row.update(over)
    return row


def test_lazy_validation_lists_every_failure_with_line_column_value():
    from checkpoint_zoo.catalog.schema import validate_frame
    from checkpoint_zoo.errors import TableInvalidError

    rows = [
        _row(),
        _row(step="2", path="zoo/checkpoints/m/step-00000002.safetensors", license="WTFPL"),
        _row(step="3", path="zoo/checkpoints/m/step-00000003.safetensors", sha256="xyz"),
        _row(step="4", path="zoo/checkpoints/other/x.safetensors", description="=HYPERLINK()"),
        _row(step="5", path="zoo/checkpoints/m/step-00000005.safetensors", parent="m@99"),
        _row(step="6", path="zoo/checkpoints/m/step-00000006.safetensors", reported_metric="accuracy"),
        _row(),  # duplicate (m, 1)
        _row(step="7", path="zoo/checkpoints/m/step-00000007.safetensors", reported_metric="nll", reported_value="inf"),
    ]
    with pytest.raises(TableInvalidError) as exc:
        validate_frame(rows)
    text = "\n".join(exc.value.problems)
    assert "line 3 (m@2): column 'license' value 'WTFPL'" in text
    assert "line 4 (m@3): column 'sha256' value 'xyz'" in text
    assert "line 5 (m@4): column 'description' value '=HYPERLINK()'" in text
    assert "line 5 (m@4): column 'path' value 'zoo/checkpoints/other/x.safetensors'" in text
    assert "line 6 (m@5): column 'parent' value 'm@99'" in text
    assert "line 7 (m@6): column 'reported_metric'" in text
    assert "line 8 (m@1): column 'step' value '1': (model, step) appears more than once" in text
    assert "line 9 (m@7): column 'reported_value' value inf" in text
    assert "line 2 (m@1): column 'step'" in text  # both rows of the duplicate are named
    assert len(exc.value.problems) == 9  # one line per problem, none repeated per column


def test_case_collision_and_nfc_are_schema_errors():
    from checkpoint_zoo.catalog.schema import validate_frame
    from checkpoint_zoo.errors import TableInvalidError

    rows = [_row(model="caf\u0065\u0301", path=_row(model="caf\u0065\u0301")["path"])]
    with pytest.raises(TableInvalidError):
        validate_frame(rows)


@pytest.mark.parametrize("text, model, sel", [
    ("m", "m", "latest"), ("m@3", "m", 3), ("m@latest", "m", "latest"), ("m@best", "m", "best"),
    ("m@v1.2.0", "m", "v1.2.0"), ("m@prod", "m", "prod"), ("m@v2.0.0-rc.1", "m", "v2.0.0-rc.1"),
])
def test_parse_ref(text, model, sel):
    from checkpoint_zoo.catalog.refs import parse_ref

    r = parse_ref(text)
    assert (r.model, r.selector) == (model, sel)


@pytest.mark.parametrize("text", ["", "m@", "m@x", "a@b@c", "m@-1", "m @1", "m@v1.2", "m@pro.d", "m@3rd", "m@prod-"])
def test_parse_ref_rejects(text):
    from checkpoint_zoo.catalog.refs import parse_ref
    from checkpoint_zoo.errors import RefError

    with pytest.raises(RefError):
        parse_ref(text)


def test_where_grammar():
    from checkpoint_zoo.catalog.query import parse_where
    from checkpoint_zoo.errors import UsageError

    pred = parse_where("step >= 10 and arch == 'mlp' and epoch < 2")
    assert pred({"step": "10", "arch": "mlp", "epoch": "1.5"})
    assert not pred({"step": "9", "arch": "mlp", "epoch": "1.5"})
    assert not pred({"step": "10", "arch": "mlp", "epoch": ""})  # empty numbers never compare
    for bad in ("step >=", "nope == 1", "step >= 1 xor arch == x", "__import__('os') == 1", "step >= abc",
                "(step >= 1", "step >= 1)", "not", "step >= 1 and", "(" * 40 + "step > 1" + ")" * 40):
        with pytest.raises(UsageError):
            parse_where(bad)


def test_where_or_not_and_parentheses_follow_python_precedence():
    from checkpoint_zoo.catalog.query import parse_where

    rows = [{"step": str(s), "arch": a, "tags": t} for s, a, t in
            ((5, "mlp", "old"), (20, "mlp", ""), (20, "cnn", "old"), (40, "cnn", ""))]

    def steps(expr: str) -> list[tuple[str, str]]:
        pred = parse_where(expr)
        return [(r["step"], r["arch"]) for r in rows if pred(r)]

    assert steps("arch == cnn or step < 10 and tags == old") == [("5", "mlp"), ("20", "cnn"), ("40", "cnn")]
    assert steps("(arch == cnn or step < 10) and tags == old") == [("5", "mlp"), ("20", "cnn")]
    assert steps("not tags == old") == [("20", "mlp"), ("40", "cnn")]
    assert steps("NOT (arch == mlp OR step >= 40)") == [("20", "cnn")]
    assert steps("not not arch==mlp") == [("5", "mlp"), ("20", "mlp")]
    assert steps("((step > 5))and(arch == 'mlp')") == [("20", "mlp")]


def test_table_reads_do_not_import_pandas_when_cached(tmp_path):
    """An unchanged table is validated once; later reads skip pandera (the speed of `zoo ls`)."""
    import subprocess
    import sys

    from checkpoint_zoo.catalog import rules, table

    data = table.dump_csv([_row()])
    code = (
        "import sys; from checkpoint_zoo.catalog import table; "
        f"table.load({data!r}); print('pandas' in sys.modules)"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "True" and second.stdout.strip() == "False"
    assert rules.COLUMNS[0] == "model"
