"""Each model's last evaluation record in the user cache: `zoo ls` answers the same with it, without it, and
after any change of an evaluation file or the table, and reads whole only the files that changed."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_zoo

MODELS, STEPS = 6, 4
LISTINGS = (("ls",), ("ls", "--format", "json"), ("ls", "--format", "csv"), ("ls", "--all-steps", "--format", "json"),
            ("ls", "model-00*", "--exclude", "model-001"), ("ls", "--sort=-accuracy"), ("ls", "--where", "accuracy > 0.3"),
            ("show", "model-002"), ("show", "model-003@best", "--format", "json"))


def _sha(model: str, step: int, salt: str = "") -> str:
    return hashlib.sha256(f"{model}@{step}{salt}".encode()).hexdigest()


def _write_table(root: Path, steps: dict[str, int], salt: dict[str, str] | None = None) -> None:
    from checkpoint_zoo.catalog import rules

    with open(root / "zoo/checkpoints.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(rules.COLUMNS)
        for model, n in sorted(steps.items()):
            for s in range(n):
                row = {"model": model, "step": s, "format": "safetensors", "path": rules.checkpoint_path(model, s),
                       "size_bytes": 100 + s, "dtype": "F32", "num_params": 25,
                       "sha256": _sha(model, s, (salt or {}).get(f"{model}@{s}", "")), "arch": "linear",
                       "task": "tabular-classification", "dataset": "wine", "license": "MIT",
                       "created": "2026-01-01T00:00:00Z", "source": "test"}
                w.writerow([row.get(c, "") for c in rules.COLUMNS])


def _write_records(root: Path, model: str, steps: int, bump: float = 0.0) -> None:
    from checkpoint_zoo.catalog.records import write_model_results

    records = [{"step": s, "sha256": _sha(model, s), "metrics": {"accuracy": round(0.1 * s + 0.01 * len(model) + bump, 6)},
                "selection": {"split": "val", "metric": "accuracy", "higher_is_better": True, "value": 0.1 * s},
                "split": "test", "provenance": {"code_hash": "c0", "config_hash": "c1", "params_hash": "p", "data_hash": "d"}}
               for s in range(steps)]
    write_model_results(root / "zoo/metrics/evaluations", model, records)


@pytest.fixture
def evaluated(empty_zoo) -> Path:
    steps = {f"model-{m:03d}": STEPS for m in range(MODELS)}
    _write_table(empty_zoo, steps)
    for model, n in steps.items():
        _write_records(empty_zoo, model, n)
    return empty_zoo


def _outputs(root: Path, cache: Path) -> list[tuple[int, str, str]]:
    out = []
    for args in LISTINGS:
        r = run_zoo(*args, cwd=root, env={"ZOO_CACHE_DIR": str(cache)})
        out.append((r.code, r.out, r.err))
    return out


def _uncached(root: Path, tmp_path: Path) -> list[tuple[int, str, str]]:
    """What every listing prints with no cache at all (a fresh, empty cache folder each time)."""
    fresh = tmp_path / "no-cache"
    shutil.rmtree(fresh, ignore_errors=True)
    out = _outputs(root, fresh)
    shutil.rmtree(fresh, ignore_errors=True)
    return out


def _read_whole(root: Path, monkeypatch) -> tuple[list[list[str]], list[dict]]:
    """The models whose evaluation files an in-process `ls` read whole, and what it listed."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.catalog import summary_cache

    seen: list[list[str]] = []
    real = summary_cache.read_steps

    def spy(folder, model, steps):
        seen.append([model])
        return real(folder, model, steps)

    monkeypatch.setattr(summary_cache, "read_steps", spy)
    with Zoo(root) as zoo:
        listed = [{"model": c.model, "step": c.step, "metrics": c.metrics} for c in zoo.list()]
    return seen, listed


def test_every_listing_is_the_same_with_a_warm_cache(evaluated, tmp_path, monkeypatch):
    expected = _uncached(evaluated, tmp_path)
    assert all(code == 0 for code, _, _ in expected), expected
    assert "0.3" in expected[0][1]  # the scores are listed
    cache = Path(os.environ["ZOO_CACHE_DIR"])
    assert _outputs(evaluated, cache) == expected  # fills the cache
    assert list(cache.rglob("evaluations/*.sqlite"))
    assert _outputs(evaluated, cache) == expected  # answered from it
    seen, listed = _read_whole(evaluated, monkeypatch)
    assert seen == [] and len(listed) == MODELS and all(c["metrics"] for c in listed)


def test_a_changed_evaluation_file_is_read_again_alone(evaluated, tmp_path, monkeypatch):
    cache = Path(os.environ["ZOO_CACHE_DIR"])
    _outputs(evaluated, cache)
    _write_records(evaluated, "model-004", STEPS, bump=0.5)
    expected = _uncached(evaluated, tmp_path)
    assert _outputs(evaluated, cache) == expected
    os.utime(evaluated / "zoo/metrics/evaluations/model-002.json", ns=(1, 1))  # same bytes, another stat
    seen, listed = _read_whole(evaluated, monkeypatch)
    assert seen == [["model-002"]]
    assert next(c for c in listed if c["model"] == "model-004")["metrics"]["accuracy"] == pytest.approx(0.3 + 0.09 + 0.5)

    # a record made bad after it was cached: the same error as without the cache
    path = evaluated / "zoo/metrics/evaluations/model-001.json"
    data = json.loads(path.read_text())
    data["checkpoints"][-1]["metrics"]["accuracy"] = "high"
    path.write_text(json.dumps(data))
    expected = _uncached(evaluated, tmp_path)
    assert expected[0][0] != 0 and "model-001.json" in expected[0][2]
    assert _outputs(evaluated, cache) == expected

    # a file removed: its model is listed unevaluated
    path.unlink()
    expected = _uncached(evaluated, tmp_path)
    assert _outputs(evaluated, cache) == expected and expected[0][0] == 0


def test_a_changed_table_gets_the_records_of_its_rows(evaluated, tmp_path):
    cache = Path(os.environ["ZOO_CACHE_DIR"])
    _outputs(evaluated, cache)
    steps = {f"model-{m:03d}": STEPS for m in range(MODELS)}
    # model-000 lost its last step (a record below the file's last is asked), model-001 has a new step with no
    # record yet, model-002's last checkpoint holds other bytes than its record's
    _write_table(evaluated, {**steps, "model-000": STEPS - 1, "model-001": STEPS + 1},
                 salt={f"model-002@{STEPS - 1}": "other"})
    expected = _uncached(evaluated, tmp_path)
    listed = {c["model"]: c for c in json.loads(expected[1][1])}
    assert listed["model-000"]["step"] == STEPS - 2 and listed["model-000"]["metrics"]
    assert not listed["model-001"]["metrics"] and not listed["model-002"]["metrics"]
    assert _outputs(evaluated, cache) == expected


def test_a_damaged_cache_is_never_needed(evaluated, tmp_path):
    cache = Path(os.environ["ZOO_CACHE_DIR"])
    expected = _uncached(evaluated, tmp_path)
    _outputs(evaluated, cache)
    for copy in cache.rglob("evaluations/*.sqlite"):
        copy.write_bytes(b"not a database")
    assert _outputs(evaluated, cache) == expected
