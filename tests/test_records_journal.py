"""The evaluate stage's journal (catalog.records.Journal): results appended as they finish, each model's file
written once at the end, and what a killed run journaled folded in by the next run; write_results writing
only the models named. Real files in a temp folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from checkpoint_zoo.catalog.records import (
    JOURNAL,
    Journal,
    dump_model_results,
    read_results,
    recover_journal,
    write_model_results,
    write_results,
)
from checkpoint_zoo.errors import ZooError


def record(step: int, accuracy: float = 0.5) -> dict:
    return {"step": step, "sha256": f"{step:064x}", "task": "t", "arch": "a", "dataset": "d",
            "metrics": {"accuracy": accuracy}}


def test_a_killed_writer_keeps_every_appended_result_for_the_next_run(tmp_path):
    write_model_results(tmp_path, "m", [record(1, 0.1), record(2, 0.2)])
    # a process that journals two results and dies mid-write of a third (SIGKILL: nothing closes the file)
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from checkpoint_zoo.catalog.records import Journal\n"
        f"j = Journal(Path({str(tmp_path)!r}))\n"
        f"j.append('m', {record(2, 0.25)!r})\n"
        f"j.append('n', {record(7, 0.7)!r})\n"
        "os.write(j._fd, b'{\"model\": \"m\", \"rec')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ}, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (tmp_path / JOURNAL).exists()
    assert read_results(tmp_path)["m@2"]["metrics"] == {"accuracy": 0.2}  # the files are not touched yet

    assert recover_journal(tmp_path) == ["m", "n"]
    got = read_results(tmp_path)
    assert {ref: rec["metrics"]["accuracy"] for ref, rec in got.items()} == {"m@1": 0.1, "m@2": 0.25, "n@7": 0.7}
    assert (tmp_path / "m.json").read_bytes() == dump_model_results("m", [record(1, 0.1), record(2, 0.25)])
    assert not (tmp_path / JOURNAL).exists()
    assert recover_journal(tmp_path) == []  # nothing left to fold


def test_a_journal_line_that_is_not_a_record_is_one_clear_line_and_nothing_is_written(tmp_path):
    write_model_results(tmp_path, "m", [record(1)])
    before = (tmp_path / "m.json").read_bytes()
    good = json.dumps({"model": "m", "record": record(2)})
    bad = json.dumps({"model": "m", "record": {**record(3), "metrics": {"accuracy": "high"}}})
    (tmp_path / JOURNAL).write_text(f"{good}\n{bad}\n")
    with pytest.raises(ZooError) as e:
        recover_journal(tmp_path)
    msg = str(e.value)
    assert f"zoo/metrics/evaluations/{JOURNAL}: line 2:" in msg and "metrics.accuracy" in msg
    assert "delete the file" in msg and "\n" not in msg
    assert (tmp_path / "m.json").read_bytes() == before and (tmp_path / JOURNAL).exists()


def test_a_closed_journal_is_removed(tmp_path):
    journal = Journal(tmp_path)
    journal.append("m", record(1))
    assert json.loads((tmp_path / JOURNAL).read_text())["record"]["step"] == 1
    journal.close()
    assert not (tmp_path / JOURNAL).exists()


def test_write_results_writes_only_the_models_named_and_prunes_the_rest(tmp_path):
    write_results(tmp_path, {"a@1": record(1), "b@1": record(1), "c@1": record(1)})
    (tmp_path / "b.json").write_text((tmp_path / "b.json").read_text() + " ")  # not what the zoo writes
    write_results(tmp_path, {"a@1": record(1, 0.9), "b@1": record(1)}, models=["a"])
    assert read_results(tmp_path)["a@1"]["metrics"] == {"accuracy": 0.9}
    assert (tmp_path / "b.json").read_text().endswith(" ")  # not named: left as it was
    assert not (tmp_path / "c.json").exists()  # its model is gone
    write_results(tmp_path, {"a@1": record(1, 0.9), "b@1": record(1)})
    assert (tmp_path / "b.json").read_bytes() == dump_model_results("b", [record(1)])


def test_a_left_journal_is_never_committed(tmp_path):
    """A killed run's journal sits in a tracked output folder until the next run folds it in: git ignores it,
    in this zoo and in every zoo `zoo init` makes."""
    from conftest import PROJECT, git

    from checkpoint_zoo.verbs.init import new_zoo

    new_zoo(tmp_path / "zoo")
    for root in (PROJECT, tmp_path / "zoo"):
        assert git("check-ignore", f"zoo/metrics/evaluations/{JOURNAL}", cwd=root).strip() != ""
