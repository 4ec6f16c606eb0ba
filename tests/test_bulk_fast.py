"""Bulk add at its floor (issue 27) without a weaker check: the fit check runs once per header a batch shares,
and the schema check of the new rows runs in a child interpreter whose only say is a pass.

Real zoos and files; the child is the real interpreter. A refusal is always the in-process check's, word for word."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import PROJECT, reference_rows, run_zoo, snapshot, write_safetensors
from test_bulk import table_rows, write_csv

from checkpoint_zoo.errors import TableInvalidError
from checkpoint_zoo.workspace import schema_child
from checkpoint_zoo.workspace.schema_child import SchemaChild

WIDE = {"fc.weight": (3, 14), "fc.bias": (3,), "norm.mean": (14,), "norm.std": (14,)}


def test_fit_is_checked_once_per_shared_header_and_a_misfit_is_refused_as_alone(small_zoo, tmp_path, monkeypatch):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.verbs import bulk

    run = tmp_path / "run"
    good = [write_safetensors(run / f"g{s}.safetensors", seed=40 + s) for s in range(4)]
    wide = write_safetensors(run / "wide.safetensors", seed=3, shapes=WIDE)
    calls: list[str] = []
    real = bulk.check_add
    monkeypatch.setattr(bulk, "check_add", lambda *a: (calls.append(a[-1]), real(*a))[1])
    items = [{"file": f, "model": "gamma", "step": n} for n, f in enumerate(good)]
    zoo = Zoo(small_zoo)
    try:
        before = snapshot(small_zoo)
        with pytest.raises(Exception) as refused:
            zoo.add_many([*items, {"file": wide, "model": "gamma", "step": 9}], arch="linear",
                          task="tabular-classification", dataset="wine", license="MIT")
        assert snapshot(small_zoo) == before
        assert calls == [str(good[0]), str(wide)], "one fit check per distinct header, and the misfit's own"
        alone = run_zoo("add", str(wide), "--model", "gamma", "--step", "9", "--arch", "linear", "--task",
                        "tabular-classification", "--dataset", "wine", "--license", "MIT", cwd=small_zoo)
        assert alone.code != 0
        line = next(x for x in str(refused.value).splitlines() if x.strip().startswith("item 5:"))
        assert line.strip().removeprefix("item 5: ") in alone.err, (line, alone.err)
        calls.clear()
        result = zoo.add_many(items, arch="linear", task="tabular-classification", dataset="wine", license="MIT")
        assert len(result.added) == 4 and calls == [str(good[0])]
    finally:
        zoo.close()
    assert {f"gamma@{n}" for n in range(4)} <= set(table_rows(small_zoo))


def _rows() -> list[dict[str, str]]:
    return [dict(r) for r in reference_rows()[:5]]


def test_schema_child_passes_good_rows_and_never_words_a_refusal():
    good = _rows()
    assert SchemaChild.start()._passed(good, "the new row(s)", "fix it"), "the child passes rows the schema passes"
    bad = _rows()
    bad[1]["license"] = "WTFPL"
    bad[3]["size_bytes"] = "-5"
    assert not SchemaChild.start()._passed(bad, "the new row(s)", "fix it")
    from checkpoint_zoo.catalog.schema import validate_frame

    with pytest.raises(TableInvalidError) as alone:
        validate_frame(bad, source="the new row(s)", fix="fix it")
    with pytest.raises(TableInvalidError) as via_child:
        SchemaChild.start().check(bad, "the new row(s)", "fix it")
    assert str(via_child.value) == str(alone.value) and via_child.value.problems == alone.value.problems


def test_a_child_that_does_not_pass_leaves_the_check_in_process(monkeypatch):
    monkeypatch.setattr(schema_child, "_CHILD", "import sys; sys.exit(3)")  # as one importing another copy
    bad = _rows()
    bad[0]["license"] = "WTFPL"
    with pytest.raises(TableInvalidError, match="license"):
        SchemaChild.start().check(bad, "the new row(s)", "fix it")
    SchemaChild.start().check(_rows(), "the new row(s)", "fix it")
    monkeypatch.setattr(sys, "executable", "")
    with pytest.raises(TableInvalidError, match="license"):
        SchemaChild.start().check(bad, "the new row(s)", "fix it")
    child = SchemaChild.start()
    child.close()
    assert child.proc is None


def test_bulk_add_validates_in_the_child_and_never_imports_the_schema_itself(empty_zoo, tmp_path):
    run = tmp_path / "run"
    files = [write_safetensors(run / f"s{s}.safetensors", seed=60 + s) for s in range(3)]
    manifest = write_csv(run / "manifest.csv", ["file", "model", "step"], [[f.name, "delta", n] for n, f in enumerate(files)])
    code = ("import sys; from checkpoint_zoo import Zoo; z = Zoo(sys.argv[1]); "
            "r = z.add_from(sys.argv[2], arch='linear', task='tabular-classification', dataset='wine', license='MIT'); "
            "z.close(); print(len(r.added), 'pandera' in sys.modules, 'checkpoint_zoo.catalog.schema' in sys.modules)")
    assert run_zoo("validate", cwd=empty_zoo).code == 0  # the table as it is: known valid, not parsed again
    proc = subprocess.run([sys.executable, "-c", code, str(empty_zoo), str(manifest)], capture_output=True, text=True,
                          cwd=PROJECT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["3", "False", "False"], proc.stdout
    r = run_zoo("validate", cwd=empty_zoo)
    assert r.code == 0, r.out + r.err
    assert set(table_rows(empty_zoo)) == {"delta@0", "delta@1", "delta@2"}


def test_a_refused_batch_stops_its_child(empty_zoo, tmp_path, monkeypatch):
    from checkpoint_zoo import Zoo

    started: list[SchemaChild] = []
    real = SchemaChild.start.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(SchemaChild, "start", classmethod(lambda cls: started.append(real(cls)) or started[-1]))
    zoo = Zoo(empty_zoo)
    try:
        with pytest.raises(Exception, match="no such file"):
            zoo.add_many([{"file": tmp_path / "missing.safetensors", "model": "m", "step": 1}], arch="linear",
                          task="tabular-classification", dataset="wine", license="MIT")
    finally:
        zoo.close()
    assert len(started) == 1 and started[0].proc is None
