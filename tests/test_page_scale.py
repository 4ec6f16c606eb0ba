"""The served page of a big zoo, in real headless Chromium against a real `zoo serve` child on 127.0.0.1: its data.js
is light (no checkpoint, no card) and the page asks the JSON API for each view (api.js). At 100,000 checkpoints
(1,000 models × 100, table and evaluation records written directly, no checkpoint bytes) the first rows, a search
and a model page each show within 1 s of navigation (or of the keystroke), measured in the page by its
performance marks. The same paged page on the reference zoo (``?paged=1``) does what the all-in-one one does:
search, facets, sort and pages in the URL, a model page with its card and downloads, compare and the boards."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PROJECT, git
from test_serve import Server
from test_site import _css, _one, _open

MODELS, STEPS = 1_000, 100
LIMIT_MS = 1_000


def _model(m: int) -> str:
    return f"wine-lin-{m:04d}"


def _row(model: str, step: int, m: int) -> dict[str, str]:
    """A table row as ``zoo add`` writes it, for bytes that are not there (only their sha256 is)."""
    from checkpoint_zoo.catalog import rules

    return {
        "model": model, "step": str(step), "epoch": repr(step / 100), "path": rules.checkpoint_path(model, step),
        "format": "safetensors", "size_bytes": str(1_000 + m), "sha256": hashlib.sha256(f"{model}@{step}".encode()).hexdigest(),
        "num_params": "42", "dtype": "F32", "arch": "linear", "task": "tabular-classification", "dataset": "wine",
        "license": "CC0-1.0" if m % 3 else "MIT", "parent": "", "tags": f"synthetic;group-{m % 7}",
        "description": f"synthetic linear model number {m}", "created": "2026-01-01T00:00:00Z", "source": "test",
        "reported_metric": "", "reported_value": "", "state_sha256": "",
    }


def write_big_zoo(root: Path, models: int, steps: int) -> Path:
    """A zoo of ``models`` × ``steps`` checkpoints whose table and evaluation records are written directly, each
    record under the memo key this zoo's code and config give (so the server reads them as current)."""
    from checkpoint_zoo import layout
    from checkpoint_zoo.api import init
    from checkpoint_zoo.catalog import table
    from checkpoint_zoo.catalog.records import write_results
    from checkpoint_zoo.evaluation.plan import key_for, package_code_hash, zoo_code_hash
    from checkpoint_zoo.registry import workspace_registry

    init(root, registries_from=PROJECT).close()
    git("commit", "-qm", "empty zoo", cwd=root)
    rows = [_row(_model(m), 10 * s, m) for m in range(models) for s in range(steps)]
    table.atomic_write(root / layout.TABLE_PATH, table.dump_csv(rows))
    reg = workspace_registry(root)
    task = reg.task("tabular-classification")
    key = key_for(rows[0], reg, package_code_hash(), zoo_code_hash(reg.code_dir), "p" * 64, "d" * 64)
    records = {}
    for i, row in enumerate(rows):
        acc = round(0.3 + (i * 7919 % 6000) / 10_000, 4)
        metrics = {"accuracy": acc, "macro_f1": round(acc * 0.97, 4), "nll": round(1.5 - acc, 4)}
        records[f"{row['model']}@{row['step']}"] = {
            "step": int(row["step"]), "sha256": row["sha256"], "task": row["task"], "dataset": row["dataset"],
            "arch": row["arch"], "metrics": metrics, "split": task.report_split, "n_examples": 36,
            "selection": {"split": task.select_split, "n_examples": 35, "metric": "accuracy", "higher_is_better": True,
                          "value": acc, "metrics": metrics},
            "reproducibility": {n: m.tolerance.to_dict() for n, m in sorted(task.metrics.items())},
            "higher_is_better": {n: m.higher_is_better for n, m in sorted(task.metrics.items())},
            "provenance": {**key.provenance(), "sha256": row["sha256"], "code_version": "test"},
        }
    write_results(root / layout.EVALUATIONS_DIR, records)
    return root


def _rows(browser) -> list[str]:
    """The listed models, read at once (a list the page replaces meanwhile leaves no stale element behind)."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#rows tr')).map(function (tr) { return tr.dataset.model; })")


def _since(browser, mark: str, after: float = 0.0) -> float:
    """When (ms since navigation) the page last set this performance mark after ``after``; -1 if never."""
    return browser.execute_script("""
        const after = arguments[1];
        const m = performance.getEntriesByName(arguments[0]).filter(function (e) { return e.startTime > after; });
        return m.length ? m[m.length - 1].startTime : -1;""", mark, after)


def _wait(browser, condition, limit: float = 30.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, limit, poll_frequency=0.02).until(lambda d: condition())


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """`zoo serve` over 100,000 checkpoints, its snapshot built by warm-up requests."""
    from conftest import isolate

    base = tmp_path_factory.mktemp("page-scale")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = write_big_zoo(base / "zoo", MODELS, STEPS)
        server = Server(root)
        try:
            # the warm-up (the server's first answers are not the page's to speed up): the snapshot, and the
            # grouping of its entries by model that its first card does once
            assert server.json("/api/models?limit=1")[0]["id"] == _model(0)
            assert server.json(f"/api/models/{_model(0)}")["checkpoints"]
            yield server
        finally:
            server.stop()


def test_the_served_page_at_100000_checkpoints_within_a_second(big, browser):
    code, _, body = big.get("/data.js")
    assert code == 200 and b'"paged":true' in body and b"@" not in body  # no checkpoint ref, no card
    assert len(body) < 100_000, len(body)
    base = f"http://127.0.0.1:{big.port}/"

    _open(browser, base, "#rows tr")
    assert len(_css(browser, "#rows tr")) == 100 and _one(browser, "#count").text == "1–100 of 1000 models (1000 in all)"
    first = _since(browser, "zoo:list")
    assert 0 < first <= LIMIT_MS, f"first rows after {first:.0f} ms"

    _one(browser, "#page-next").click()  # the next page, from the server
    _wait(browser, lambda: _rows(browser)[:1] == [_model(100)])
    assert "page=2" in browser.current_url and _one(browser, "#page-of").text == "page 2 of 10"
    assert _one(browser, 'fieldset[data-facet="license"] label[data-value="MIT"] .count').text == "(334)"

    typed = browser.execute_script("""
        const box = document.getElementById("search"), t = performance.now();
        box.value = "number 421"; box.dispatchEvent(new Event("input")); return t;""")
    _wait(browser, lambda: _rows(browser) == [_model(421)])
    searched = _since(browser, "zoo:list", typed) - typed
    assert 0 < searched <= LIMIT_MS, f"search answered after {searched:.0f} ms"

    browser.get("about:blank")
    browser.get(base + f"#/model/{_model(500)}")
    _wait(browser, lambda: len(_css(browser, "#checkpoints tbody tr")) == STEPS)
    shown = _since(browser, "zoo:model")
    assert 0 < shown <= LIMIT_MS, f"model page after {shown:.0f} ms"
    assert _one(browser, "#card h1").text == _model(500)
    print(f"\nserved page at {MODELS * STEPS:,} checkpoints: first rows {first:.0f} ms, search {searched:.0f} ms, "
          f"model page {shown:.0f} ms")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """`zoo serve` over a clone of the reference zoo (small: its page is all-in-one unless asked ?paged=1)."""
    from conftest import isolate

    base = tmp_path_factory.mktemp("page-paged")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = base / "clone"
        subprocess.run(["git", "clone", "-q", str(PROJECT), str(root)], check=True)
        server = Server(root)
        try:
            yield root, server
        finally:
            server.stop()


def _requests(browser) -> list[str]:
    return browser.execute_script("return performance.getEntriesByType('resource').map(function (e) { return e.name; })")


def test_the_paged_page_lists_searches_sorts_and_shows_models(reference, browser):
    root, s = reference
    index = json.loads((root / "zoo/index.json").read_text())
    names = sorted(index["models"])
    code, _, body = s.get("/data.js")
    assert b'"checkpoints":[' in body  # a small zoo's page stays all-in-one
    base = f"http://127.0.0.1:{s.port}/?paged=1"

    _open(browser, base, "#rows tr")
    assert any("/api/models?" in u for u in _requests(browser)) and any("data.js?paged=1" in u for u in _requests(browser))
    assert _rows(browser) == names
    _one(browser, 'th[data-sort="size"]').click()  # the server sorts: biggest first
    _wait(browser, lambda: _rows(browser) == sorted(names, key=lambda m: (-_size(index, m), m)))
    assert "sort=-size" in browser.current_url
    task = index["models"][names[0]]["task"]
    _one(browser, f'fieldset[data-facet="task"] label[data-value="{task}"] input').click()
    _wait(browser, lambda: set(_rows(browser)) == {m for m in names if index["models"][m]["task"] == task})
    url = browser.current_url
    _open(browser, url, "#rows tr")  # a reload keeps the filter and the sort
    assert set(_rows(browser)) == {m for m in names if index["models"][m]["task"] == task}
    assert _one(browser, 'th[data-sort="size"]').get_attribute("aria-sort") == "descending"

    model = "mnist-shufflenet"  # several single-file checkpoints (a folder checkpoint lists its files under Use)
    _open(browser, base + f"#/model/{model}", "#checkpoints")
    assert _one(browser, "#card h1").text == model
    mine = sorted(e["ref"] for e in index["checkpoints"] if e["model"] == model)
    for button in _css(browser, "#show-all"):
        button.click()
    assert sorted(tr.get_attribute("data-ref") for tr in _css(browser, "#checkpoints tbody tr")) == mine
    best = index["models"][model]["best"]
    assert _one(browser, "#snippet-pull").text == f"zoo pull {best}"
    link = _one(browser, "#checkpoints tbody tr a.download").get_attribute("href")
    assert "/files/by-sha256/" in link
    assert _one(browser, "#board-rank").text.startswith("#")

    # the lineage reaches into another model: its checkpoints are fetched, so the tree links them
    _open(browser, base + "#/model/mnist-parity-mobilenetv3", "#lineage")
    assert _one(browser, '#ancestors a[data-ref="mnist-mobilenetv3@300"]').get_attribute("href").endswith(
        "#/model/mnist-mobilenetv3")

    a, b = mine[0], mine[-1]
    _open(browser, base + f"#/compare/{a},{b}", "#compare")
    assert [th.get_attribute("data-ref") for th in _css(browser, "#compare thead th[data-ref]")] == [a, b]
    _open(browser, base + "#/boards", "table.board")
    assert _css(browser, f'table.board tr[data-model="{model}"]')
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not refused, refused


def _counts(browser) -> dict[str, str]:
    """Every facet checkbox's shown count, by facet and value."""
    return browser.execute_script("""
        const out = {};
        document.querySelectorAll("fieldset[data-facet] label[data-value]").forEach(function (l) {
          out[l.closest("fieldset").dataset.facet + "=" + l.dataset.value] = l.querySelector(".count").textContent;
        });
        return out;""")


def test_the_paged_pages_facet_counts_are_the_static_pages(reference, browser):
    """With a filter on, each checkbox counts the models the search and the other facets leave with its value, on
    the paged page (from ``/api/facets``) as on the all-in-one page; without one, the whole zoo's."""
    root, s = reference
    index = json.loads((root / "zoo/index.json").read_text())
    task = index["models"]["mnist-shufflenet"]["task"]
    base = f"http://127.0.0.1:{s.port}/"
    seen = {}
    for page in ("?paged=1", ""):
        _open(browser, base + page, "#rows tr")
        whole = _counts(browser)
        _one(browser, f'fieldset[data-facet="task"] label[data-value="{task}"] input').click()
        _wait(browser, lambda: _rows(browser) and all(index["models"][m]["task"] == task for m in _rows(browser)))
        _wait(browser, lambda before=whole: _counts(browser) != before)
        seen[page or "static"] = (whole, _counts(browser))
    assert seen["?paged=1"] == seen["static"]
    whole, narrowed = seen["static"]
    others = {m for m in index["models"] if index["models"][m]["task"] != task}
    assert others and any(narrowed[k] != whole[k] for k in whole if not k.startswith("task=")), (whole, narrowed)


def test_api_facets_counts_a_drill_down(reference):
    """``/api/facets``: a value's count is the models that match the search and every other facet's filter and have
    that value, worked out here from ``/api/models``'s own summaries."""
    _, s = reference
    summaries = s.json("/api/models?limit=1000")
    facets = {m["id"]: {"task": {m["task"]}, "arch": {m["arch"]}, "license": set(m["licenses"]),
                        "dataset": {m["dataset"]}, "tag": set(m["tags"])} for m in summaries}
    text = {m["id"]: " ".join([m["id"], m["description"], m["arch"], m["task"], m["dataset"], *m["tags"]]).lower()
            for m in summaries}
    task = summaries[0]["task"]
    for query, search, wanted in [("", "", {}), (f"?task={task}", "", {"task": {task}}),
                                  (f"?search=mnist&license={summaries[0]['license']}", "mnist",
                                   {"license": {summaries[0]["license"]}})]:
        got = s.json("/api/facets" + query)
        shown = {m for m in facets if search in text[m]}
        for f in ("task", "arch", "license", "dataset", "tag"):
            kept = [m for m in shown if all(facets[m][g] & v for g, v in wanted.items() if g != f)]
            expected = {}
            for m in kept:
                for value in facets[m][f]:
                    expected[value] = expected.get(value, 0) + 1
            assert got[f] == dict(sorted(expected.items())), (query, f)
    assert s.json("/api/facets?task=no-such-task")["arch"] == {}


def test_a_search_of_several_words_finds_what_the_static_page_finds(reference, browser):
    """Every word, anywhere, in any order: the server's search (the paged page's) is the static page's."""
    _, s = reference
    assert [m["id"] for m in s.json("/api/models?search=shufflenet%20mnist")] == ["mnist-shufflenet"]
    assert s.json("/api/facets?search=shufflenet%20mnist")["task"] == {"image-classification": 1}
    base = f"http://127.0.0.1:{s.port}/"
    found = {}
    for page in ("?paged=1", ""):
        _open(browser, base + page, "#rows tr")
        browser.execute_script("""const box = document.getElementById("search");
            box.value = "MNIST  parity"; box.dispatchEvent(new Event("input"));""")
        _wait(browser, lambda: _rows(browser) and all("parity" in m for m in _rows(browser)))
        found[page] = sorted(_rows(browser))
    assert found["?paged=1"] == found[""] and found[""] and all("mnist" in m for m in found[""]), found


def _size(index: dict, model: str) -> int:
    return sum(int(e["size_bytes"]) for e in index["checkpoints"] if e["model"] == model)


def test_typing_a_word_asks_once(reference, browser):
    """Typing a word sends one search, not one per key (the list waits for a pause)."""
    _, s = reference
    _open(browser, f"http://127.0.0.1:{s.port}/?paged=1", "#rows tr")
    _one(browser, "#search").send_keys("mnist")
    time.sleep(0.6)
    asked = [u for u in _requests(browser) if "search=" in u and "/api/models?" in u]
    assert len(asked) == 1 and "search=mnist" in asked[0], asked
    counted = [u for u in _requests(browser) if "/api/facets?" in u]
    assert len(counted) == 1 and "search=mnist" in counted[0], counted


def test_light_data_js_api_js_and_the_card_route(small_zoo, tmp_path):
    """The light data.js has no checkpoint and no card but every facet value with its count; api.js (with the
    page's only network code) is served and never written to the static site; the card route renders the card."""
    from starlette.testclient import TestClient

    from checkpoint_zoo.publish.page import page_files, write_site
    from checkpoint_zoo.server.app import create_app

    client = TestClient(create_app(small_zoo))
    whole = client.get("/data.js").text
    assert '"checkpoints":[' in whole and "alpha@10" in whole  # 3 checkpoints: all-in-one
    light = client.get("/data.js?paged=1").text
    data = json.loads(light.split("=", 1)[1].strip().rstrip(";"))
    assert data["paged"] and data["total"] == {"models": 2, "checkpoints": 3} and "@" not in light
    assert data["facets"]["tags"] == {"test": 1} and data["facets"]["task"] == {"tabular-classification": 2}
    api = client.get("/api.js")
    assert api.status_code == 200 and "fetch(" in api.text and api.headers["content-type"].startswith("text/javascript")
    card = client.get("/api/models/alpha/card").json()
    assert "<h1>alpha</h1>" in card["html"] and card["metadata"]["license"] == "mit"  # the Hub spells it so
    assert client.get("/api/models/nobody/card").status_code == 404
    write_site(tmp_path / "site", {"x": 1})
    assert "api.js" not in page_files() and not (tmp_path / "site/api.js").exists()
