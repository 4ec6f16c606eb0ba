"""The indexed copy of a large table in the user cache: same answers as the CSV, never stale, never needed."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import git, run_zoo

MODELS, STEPS = 60, 100  # 6,000 rows: above index_cache.MIN_ROWS


def _write_table(path, models: int, steps: int, extra: int = 0) -> None:
    from checkpoint_zoo.catalog import rules

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(rules.COLUMNS)
        for m in range(models):
            model = f"model-{m:03d}"
            for s in range(steps + (extra if m == 7 else 0)):
                row = {"model": model, "step": s * 10, "format": "safetensors", "path": rules.checkpoint_path(model, s * 10),
                       "size_bytes": 100 + s, "dtype": "F32", "num_params": 25,
                       "sha256": hashlib.sha256(f"{model}@{s}".encode()).hexdigest(), "arch": "linear",
                       "task": "tabular-classification", "dataset": "wine", "license": "MIT",
                       "created": "2026-01-01T00:00:00Z", "source": "test"}
                w.writerow([row.get(c, "") for c in rules.COLUMNS])


def _ls(root, *args, env=None):
    r = run_zoo("ls", "--format", "json", *args, cwd=root, env=env)
    assert r.code == 0, r.err
    return json.loads(r.out)


def test_a_warm_ls_reads_the_copy_and_gives_the_csvs_answer(empty_zoo, tmp_path):
    table = empty_zoo / "zoo/checkpoints.csv"
    _write_table(table, MODELS, STEPS)
    git("commit", "-qam", "big", cwd=empty_zoo)
    cold = _ls(empty_zoo)  # parses and validates the CSV, and writes the copy
    copies = list(Path(os.environ["ZOO_CACHE_DIR"]).rglob("tables/*.sqlite"))
    assert len(copies) == 1
    # a warm ls never parses the CSV: parse_csv made to fail proves it
    code = ("import sys; sys.argv = ['zoo', 'ls']\n"
            "import checkpoint_zoo.catalog.table as t\n"
            "def boom(*a, **k): raise SystemExit('the CSV was parsed')\n"
            "t.parse_csv = boom\n"
            "from checkpoint_zoo.cli.main import main\nsys.exit(main())")
    warm = subprocess.run([sys.executable, "-c", code], cwd=empty_zoo, capture_output=True, text=True)
    assert warm.returncode == 0 and "model-059" in warm.stdout, warm.stdout[-300:] + warm.stderr
    assert _ls(empty_zoo) == cold and len(cold) == MODELS
    assert json.loads(run_zoo("show", "model-007@990", "--format", "json", cwd=empty_zoo).out)["step"] == 990
    # with no copy at all, the same answers
    assert _ls(empty_zoo, env={"ZOO_CACHE_DIR": str(tmp_path / "empty-cache")}) == cold

    # the table changes: the copy is not used, the new row is seen
    _write_table(table, MODELS, STEPS, extra=1)
    latest = {c["model"]: c["step"] for c in _ls(empty_zoo)}
    assert latest["model-007"] == STEPS * 10 and latest["model-008"] == (STEPS - 1) * 10

    # a damaged copy is never needed
    for copy in copies:
        copy.write_bytes(b"not a database")
    assert {c["model"]: c["step"] for c in _ls(empty_zoo)} == latest
