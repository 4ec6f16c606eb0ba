"""Bulk add at its floor (issue 27) without a weaker check: the fit check runs once per header a batch shares.

Real zoos and files. A refusal is always the single add's, word for word."""

from __future__ import annotations

import pytest
from conftest import run_zoo, snapshot, write_safetensors
from test_bulk import table_rows

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
