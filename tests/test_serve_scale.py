"""`zoo serve` at scale: the working tree's snapshot is built model by model, its per-model parts kept in the user
cache, and each model's entries built only when a route asks; every answer is the one the whole build gives."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import PROJECT, git
from test_summary_cache import _write_records, _write_table


def _whole(root: Path):
    """The snapshot built from every row and record at once (what a revision gets)."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.publish.index import libraries
    from checkpoint_zoo.server.snapshot import _key_check, build

    zoo = Zoo(root)
    snap = build(zoo.rows(), zoo.source.stored_records(), None, None, _key_check(zoo))
    snap.libraries.update(libraries(zoo, {s["arch"] for s in snap.summaries.values()}))
    return snap


def _lazy(root: Path):
    from checkpoint_zoo.server.app import ZooServer

    return ZooServer(str(root)).snapshots.get(None)


def _seen(snap, refs) -> dict:
    """What the routes read of a snapshot: the listing, tasks, summaries, these entries (looked up one by one,
    before anything asks for every entry), cards, then every entry."""
    views = {m: (v.summary, v.search_text, v.facets) for m, v in snap.models.items()}
    looked = {ref: snap.by_ref.get(ref) for ref in refs}
    cards = {m: snap.card(m) for m in snap.models}
    return {"models": views, "tasks": snap.tasks, "summaries": snap.summaries, "looked": looked, "cards": cards,
            "entries": snap.entries, "kids": snap.links.kids}


def _refs(root: Path) -> list[str]:
    rows = list(csv.DictReader(open(root / "zoo/checkpoints.csv", encoding="utf-8")))
    return [f"{r['model']}@{r['step']}" for r in rows] + [r["parent"] for r in rows if r["parent"]] + ["nobody@1"]


def _edit(table: Path, model: str, step: str, **fields: str) -> None:
    with open(table, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames or ()), list(reader)
    for r in rows:
        if r["model"] == model and r["step"] == step:
            r.update(fields)
    with open(table, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def reference(tmp_path) -> Path:
    root = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(root)], check=True)
    return root


def test_the_reference_zoo_serves_what_the_whole_build_gives(reference):
    from checkpoint_zoo.server.snapshot import scoped

    refs = _refs(reference)
    whole = _whole(reference)
    assert any(e.get("parent") for e in whole.entries) and len(whole.models) > 3  # lineage across models
    for e in whole.entries:  # each checkpoint's children, across models, in (model, step) order
        assert e["children"] == [c["ref"] for c in whole.entries if c.get("parent") == e["ref"]]
    assert any(e["children"] for e in whole.entries)
    first = _lazy(reference)  # computes every part and keeps it
    assert first._all is None and not first._recent  # the listing built no entry
    assert _seen(first, refs) == _seen(whole, refs)
    second = _lazy(reference)  # every part from the cache
    assert _seen(second, refs) == _seen(_whole(reference), refs)
    half = sorted(whole.models)[::2]
    assert (_seen(scoped(_lazy(reference), lambda m: m in half), refs)
            == _seen(scoped(_whole(reference), lambda m: m in half), refs))


def test_parts_follow_each_changed_file_and_row(empty_zoo, monkeypatch):
    from checkpoint_zoo.server import snapshot

    steps = {f"model-{m:03d}": 100 for m in range(60)}  # 6,000 rows: the table's indexed copy is used
    _write_table(empty_zoo, steps)
    for model, n in steps.items():
        _write_records(empty_zoo, model, n)
    git("add", "-A", cwd=empty_zoo)
    git("commit", "-qm", "evaluated", cwd=empty_zoo)
    refs = ["model-007@99", "model-008@0"]
    first = _lazy(empty_zoo)
    assert first.models["model-007"].summary["best_value"] is not None
    assert list(Path(os.environ["ZOO_CACHE_DIR"]).rglob("snapshots/*.sqlite"))

    read: list[str] = []
    real = snapshot.part

    def spy(model, *args, **kwargs):
        read.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(snapshot, "part", spy)
    warm = _lazy(empty_zoo)
    assert read == []  # every part from the cache
    assert warm.by_ref["model-007@99"]["step"] == 99 and "model-007@100" not in warm.by_ref
    assert read == ["model-007"]  # only the entries asked for were built
    assert _seen(warm, refs) == _seen(_whole(empty_zoo), refs)

    _write_records(empty_zoo, "model-007", 100, bump=5.0)
    _write_table(empty_zoo, steps)  # the same rows, the file rewritten: the indexed copy is stale, the parts are not
    _edit(empty_zoo / "zoo/checkpoints.csv", "model-012", "99", description="changed")
    read.clear()
    changed = _lazy(empty_zoo)
    assert read == ["model-007", "model-012"]  # the other 58 models' parts came from the cache
    assert changed.models["model-012"].summary["description"] == "changed"
    assert changed.models["model-007"].summary["best_value"] > first.models["model-007"].summary["best_value"]
    assert _seen(changed, refs) == _seen(_whole(empty_zoo), refs)


def test_a_damaged_part_cache_is_never_needed(reference):
    refs = _refs(reference)
    expected = _seen(_whole(reference), refs)
    _lazy(reference)
    for copy in Path(os.environ["ZOO_CACHE_DIR"]).rglob("snapshots/*.sqlite"):
        copy.write_bytes(b"not a database")
    assert _seen(_lazy(reference), refs) == expected
    assert json.dumps(expected["tasks"], sort_keys=True)


def _zoo_of(root: Path, models: int, steps: int) -> list[str]:
    names = {f"model-{m:03d}": steps for m in range(models)}
    _write_table(root, names)
    for model, n in names.items():
        _write_records(root, model, n)
    git("add", "-A", cwd=root)
    git("commit", "-qm", "evaluated", cwd=root)
    return sorted(names)


def test_a_first_start_lists_its_first_page_from_that_page_s_parts(empty_zoo, monkeypatch):
    import threading

    from starlette.testclient import TestClient

    from checkpoint_zoo.server import snapshot
    from checkpoint_zoo.server.app import create_app

    names = _zoo_of(empty_zoo, 30, 20)
    whole = _whole(empty_zoo)
    read: list[tuple[str, str]] = []
    real = snapshot.part

    def spy(model, *args, **kwargs):
        read.append((model, threading.current_thread().name))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(snapshot, "part", spy)
    with TestClient(create_app(empty_zoo)) as client:
        first = client.get("/api/models?limit=5")
        assert first.status_code == 200
        assert first.json() == [whole.models[m].summary for m in names[:5]]
        assert first.headers["x-total-count"] == "30" and "offset=5" in first.headers["link"]
        assert sorted(m for m, thread in read if thread != "zoo-serve-parts") == names[:5]  # the page's parts only
        last = client.get("/api/models?limit=5&direction=desc&offset=5")
        assert last.json() == [whole.models[m].summary for m in names[::-1][5:10]]
        found = client.get("/api/models?search=model-0")  # needs every part: waits for the background ones
        assert found.json() == [whole.models[m].summary for m in names]
        assert {m for m, _ in read} == set(names)  # every part computed, in the background or by this answer
    assert list(Path(os.environ["ZOO_CACHE_DIR"]).rglob("snapshots/*.sqlite"))  # and kept for the next start


@pytest.mark.parametrize("bad", ["model-002", "model-025"])
def test_a_bad_record_fails_every_answer_that_shows_it_as_the_whole_build_does(empty_zoo, bad):
    from starlette.testclient import TestClient

    from checkpoint_zoo.errors import ZooError
    from checkpoint_zoo.server.app import create_app

    _zoo_of(empty_zoo, 30, 20)
    f = empty_zoo / f"zoo/metrics/evaluations/{bad}.json"
    f.write_text(f.read_text().replace('"split": "test"', '"split": 7', 1))  # a record no zoo writes
    with pytest.raises(ZooError) as whole:
        _whole(empty_zoo)
    expected = {"error": str(whole.value).split("\n", 1)[0][:500]}
    assert "split is 7" in expected["error"]
    with TestClient(create_app(empty_zoo)) as client:
        first = client.get("/api/models?limit=5")
        if bad == "model-002":  # on the page: its answer is the error
            assert (first.status_code, first.json()) == (500, expected)
        else:  # not on it: the page is shown; every answer that needs the bad part fails as before
            assert first.status_code == 200 and len(first.json()) == 5
        for path in ("/api/models?search=model", "/api/models?sort=best_value", f"/api/models/{bad}",
                     "/api/leaderboard"):
            r = client.get(path)
            assert (r.status_code, r.json()) == (500, expected), path


def test_a_replaced_snapshot_stops_completing_in_the_background(empty_zoo):
    import time

    from checkpoint_zoo.server.app import ZooServer

    _zoo_of(empty_zoo, 12, 5)
    server = ZooServer(str(empty_zoo))
    old = server.snapshots.get(None, every=False)
    _write_records(empty_zoo, "model-003", 5, bump=1.0)
    time.sleep(1.1)  # what a snapshot comes from is checked at most once a second
    new = server.snapshots.get(None, every=False)
    assert new is not old and old._tasks.dropped and not new._tasks.dropped
    assert old._tasks.tasks(background=True) == {} and old._tasks._tasks is None  # stopped, nothing computed
    assert new.tasks == _whole(empty_zoo).tasks  # a route still completes its own snapshot
