"""The browse page as a leaderboard, in real headless Chromium at a desktop (1,400 px) and a phone (390 px)
width: ranked per task-and-dataset boards, the model column that stays put while a wide table scrolls, view state
that a reload (or a shared link) restores, long checkpoint tables collapsed, each block of a model page once,
lineage in step order drawn as a tree, and a favicon nobody has to fetch."""

from __future__ import annotations

import threading
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from test_site import SCREENSHOTS, _entry, _Handler, _index, _one, _open

WIDTHS = [1400, 390]
# enough metric columns that the model list and the boards scroll sideways even at 1,400 px
EXTRA = ("top5_accuracy_held_out", "balanced_accuracy_held_out", "expected_calibration_error_x",
         "worst_class_recall_held_out", "mean_confidence_held_out", "brier_score_held_out")
LONG_STEPS = [10 * i for i in range(1, 56)]  # 55 checkpoints: 10, 20, …, 550


def _with_extra(e: dict) -> dict:
    e["metrics"].update({n: round(e["metrics"]["accuracy"] / (i + 2), 4) for i, n in enumerate(EXTRA)})
    return e


def _entries() -> list[dict]:
    es = [_entry("alpha", 10, 0.5), _entry("alpha", 20, 0.9), _entry("beta", 5, 0.7, task="image-classification"),
          _entry("gamma-net", 1, 0.6), _entry("omega", 3, 0.6)]
    es += [_entry("long", s, round(0.5 + s / 2000, 4), description="A model trained for a long time.")
           for s in LONG_STEPS]
    # two fine-tuned checkpoints of long@100: as text, @160 sorts before @20
    es += [_entry("long-ft", 160, 0.75, parent="long@100"), _entry("long-ft", 20, 0.72, parent="long@100")]
    iris = _entry("delta", 7, 0.99)
    iris["dataset"] = "iris"  # another dataset: a board of its own, never ranked with wine's
    return [_with_extra(e) for e in [*es, iris]]


@pytest.fixture(scope="module")
def data() -> dict:
    from checkpoint_zoo.publish.page import site_data

    index, cards = _index(_entries())
    return site_data(index, cards, title="Boards", downloads=False)


@pytest.fixture(scope="module")
def site(data, tmp_path_factory):
    """The page over HTTP on loopback (the requests it makes recorded)."""
    from checkpoint_zoo.publish.page import write_site

    root = tmp_path_factory.mktemp("boards")
    write_site(root, data)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=WIDTHS)
def width(request, browser):
    # headless Chromium keeps windows at least 500 px wide: emulate the phone's viewport instead
    w = request.param
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": w, "height": 900, "deviceScaleFactor": 1, "mobile": w < 500})
    yield w
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _x(browser, element) -> float:
    return browser.execute_script("return arguments[0].getBoundingClientRect().left", element)


def _shown(browser, selector: str) -> list:
    return [e for e in browser.find_elements("css selector", selector) if e.is_displayed()]


def _scrolls_sideways_keeping(browser, box, sticky: list, moving) -> None:
    """``box`` (a table's scroll box) is wider inside than out; scrolled, ``sticky`` stay put and ``moving`` moves."""
    inner, outer = browser.execute_script("return [arguments[0].scrollWidth, arguments[0].clientWidth]", box)
    assert inner > outer + 100, (inner, outer)
    before = [_x(browser, e) for e in sticky]
    moved = _x(browser, moving)
    browser.execute_script("arguments[0].scrollLeft = 400", box)
    browser.execute_script("return new Promise(function (r) { requestAnimationFrame(function () { r(); }); })")
    assert browser.execute_script("return arguments[0].scrollLeft", box) > 0
    assert [_x(browser, e) for e in sticky] == before
    assert _x(browser, moving) < moved - 100
    browser.execute_script("arguments[0].scrollLeft = 0", box)


def _visible_in(browser, element, box) -> bool:
    return browser.execute_script("""
        const r = arguments[0].getBoundingClientRect(), b = arguments[1].getBoundingClientRect();
        return r.left >= b.left - 1 && r.right <= Math.min(b.right, innerWidth) + 1 && r.width > 0""", element, box)


def test_boards_rank_each_task_and_dataset(browser, site, data, width):
    _open(browser, site + "#/boards", "table.board")
    names = [s.get_attribute("data-board") for s in _shown(browser, "section.board-section")]
    assert names == [b["name"] for b in data["leaderboards"]]
    assert "tabular-classification/wine/test" in names and "tabular-classification/iris/test" in names
    wine = '[data-board="tabular-classification/wine/test"]'
    rows = _shown(browser, f"table{wine} tbody tr")
    ranked = sorted((m for m, s in data["models"].items() if s["dataset"] == "wine" and s["task"].startswith("tab")),
                    key=lambda m: (-data["models"][m]["best_value"], data["models"][m]["best"]))
    assert [r.get_attribute("data-model") for r in rows] == ranked
    ranks = [r.find_element("css selector", "td.rank").text for r in rows]
    assert ranks == ["1", "2", "3", "4", "4"]  # gamma-net and omega tie
    assert "delta" not in ranked  # iris: its own board

    _open(browser, site + "#/board/tabular-classification/wine/test", "table.board")
    assert [s.get_attribute("data-board") for s in _shown(browser, "section.board-section")] == \
        ["tabular-classification/wine/test"]
    box = _one(browser, ".board-scroll")
    first = _one(browser, "table.board tbody tr")
    primary = first.find_element("css selector", "td.primary")
    assert _visible_in(browser, primary, box), "the primary metric needs no scrolling"
    assert primary.text == f"{data['models'][ranked[0]]['best_value']:.4f}"
    SCREENSHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"leaderboard-board-{width}.png"))
    _scrolls_sideways_keeping(browser, box, [first.find_element("css selector", "td.name"),
                                             first.find_element("css selector", "td.rank")],
                              first.find_elements("css selector", "td[data-metric]")[-1])

    _open(browser, site + "#/model/alpha", "#sidebar")
    assert _one(browser, "#board-rank").text.startswith("#1 of 5 on tabular-classification on wine")


def test_model_list_keeps_the_model_column_and_shows_the_primary_metric(browser, site):
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    try:
        _open(browser, site, "#rows tr")
        box = _one(browser, ".list-main .scroll")
        row = _one(browser, '#rows tr[data-model="long"]')
        assert _visible_in(browser, row.find_element("css selector", 'td[data-col="primary"]'), box)
        _scrolls_sideways_keeping(browser, box, [row.find_element("css selector", "td.name")],
                                  row.find_elements("css selector", "td[data-metric]")[-1])
        assert browser.execute_script("return getComputedStyle(arguments[0]).position",
                                      row.find_element("css selector", "td.name")) == "sticky"
        browser.save_screenshot(str(SCREENSHOTS / "leaderboard-list-1400.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _model_rows(browser) -> list[str]:
    return [tr.get_attribute("data-model") for tr in _shown(browser, "#rows tr")]


def test_filter_sort_and_compare_survive_a_reload(browser, site, width):
    _open(browser, site, "#rows tr")
    _one(browser, "#search").send_keys("a")
    panel = _one(browser, "details.facet-panel")
    if not panel.get_attribute("open"):
        panel.find_element("css selector", "summary").click()
    _one(browser, 'fieldset[data-facet="task"] label[data-value="tabular-classification"] input').click()
    _one(browser, 'th[data-sort="m:accuracy"]').click()  # far right: the table scrolls to it
    browser.execute_script("document.querySelector('.list-main .scroll').scrollLeft = 0")
    _one(browser, '#rows tr[data-model="gamma-net"] input.pick').click()
    rows = _model_rows(browser)
    assert rows[0] == "delta" and "beta" not in rows and "long" in rows
    url = browser.current_url
    assert "q=a" in url and "sort=-m" in url and "task=tabular-classification" in url and "cmp=gamma-net" in url

    _open(browser, url, "#rows tr")  # a reload (or the link, shared)
    assert _model_rows(browser) == rows
    assert _one(browser, "#search").get_attribute("value") == "a"
    assert _one(browser, 'fieldset[data-facet="task"] label[data-value="tabular-classification"] input').is_selected()
    assert _one(browser, 'th[data-sort="m:accuracy"]').get_attribute("aria-sort") == "descending"
    assert _one(browser, '#rows tr[data-model="gamma-net"] input.pick').is_selected()
    assert _one(browser, "#compare-link").text == "Compare (1)"

    # a model page's chosen checkpoint and expanded table too
    _open(browser, site + "#/model/long", "#checkpoints")
    _one(browser, "#show-all").click()
    _one(browser, '#checkpoints tr[data-ref="long@500"] td.step').click()
    _open(browser, browser.current_url, "#checkpoints")
    assert _one(browser, "#snippet-pull").text == "zoo pull long@500"
    assert len(_shown(browser, "#checkpoints tbody tr")) == 55 and not _shown(browser, "#show-all")


def test_long_checkpoint_table_is_paged(browser, site, data, width):
    _open(browser, site + "#/model/long", "#checkpoints")
    rows = _shown(browser, "#checkpoints tbody tr")
    assert len(_shown(browser, "#checkpoints tbody tr[data-ref]")) == len(rows) <= 20
    best, latest = data["models"]["long"]["best"], data["models"]["long"]["latest"]
    assert {best, latest} <= {r.get_attribute("data-ref") for r in rows}
    button = _one(browser, "#show-all")
    assert button.text.startswith("Show all 55 checkpoints")
    browser.execute_script("document.querySelector('section.checkpoints').scrollIntoView()")
    browser.save_screenshot(str(SCREENSHOTS / f"leaderboard-model-{width}.png"))
    button.click()
    assert len(_shown(browser, "#checkpoints tbody tr")) == 55
    assert "all=1" in browser.current_url


def test_a_model_page_shows_each_block_once(browser, site):
    _open(browser, site + "#/model/long", "#checkpoints")
    app = _one(browser, "#app")
    assert [h.text for h in app.find_elements("css selector", "h1")] == ["long"]
    assert app.text.count("A model trained for a long time.") == 1
    assert len(app.find_elements("css selector", "table")) == 1  # the card's own checkpoint table is not repeated
    assert len(app.find_elements("css selector", "h2")) == len({h.text for h in app.find_elements("css selector", "h2")})
    _one(browser, "#show-all").click()
    units = {c.text.split()[-1] for c in _shown(browser, '#checkpoints td[data-label="size"]')}
    assert len(units) == 1, units  # one column, one unit (the largest value's): 1.1 KiB and 0.6 KiB, not 594 B


def test_lineage_children_in_step_order_as_a_tree(browser, site, width):
    _open(browser, site + "#/model/long", "#descendants")
    node = _one(browser, '#descendants > li')
    assert node.find_element("css selector", ".self").text == "long@100"
    kids = [a.get_attribute("data-ref") for a in node.find_elements("css selector", ":scope > ul > li > a")]
    assert kids == ["long-ft@20", "long-ft@160"]
    line = browser.execute_script("return getComputedStyle(arguments[0], '::before').borderLeftStyle",
                                  node.find_element("css selector", ":scope > ul > li"))
    assert line == "solid"  # drawn as a tree, not a bulleted list
    _one(browser, 'a[data-ref="long-ft@20"]').click()
    root = _one(browser, "#ancestors > li")
    assert root.find_element("css selector", ":scope > a").get_attribute("data-ref") == "long@100"
    assert [s.text for s in root.find_elements("css selector", ":scope > ul > li > .self")] == \
        ["long-ft@20", "long-ft@160"]
    browser.execute_script("document.getElementById('lineage').scrollIntoView()")
    browser.save_screenshot(str(SCREENSHOTS / f"leaderboard-lineage-{width}.png"))


def test_favicon_is_inline_and_zoo_serve_answers_for_it(browser, site):
    from starlette.testclient import TestClient

    from checkpoint_zoo.publish.page import page_files
    from checkpoint_zoo.server.app import create_app

    assert '<link rel="icon" type="image/svg+xml" href="data:image/svg+xml,' in page_files()["index.html"].decode()
    _Handler.requested.clear()
    # a query the browser has not seen yet: the page itself is fetched again (its assets may come from the cache)
    _open(browser, site + "?fresh=1#/boards", "table.board")
    _open(browser, site + "?fresh=2#/model/alpha", "#checkpoints")
    assert _Handler.requested and not [p for p in _Handler.requested if "favicon" in p]
    with TestClient(create_app(Path(__file__).resolve().parents[1])) as client:  # this project's own zoo, read only
        assert client.get("/favicon.ico").status_code == 204
        assert client.get("/leaderboard.js").text == page_files()["leaderboard.js"].decode()


def test_dvc_plots_title_each_model_and_metric_with_a_legend():
    """`dvc plots show` draws one chart per model curve, titled with the model and its primary metric, with two or
    more named lines (the legend: metric names, not only "workspace") and named axes."""
    import json

    import yaml

    root = Path(__file__).resolve().parents[1]
    plots = {}
    for item in yaml.safe_load((root / "dvc.yaml").read_text())["plots"]:
        ((name, spec),) = item.items()
        ((path, columns),) = spec["y"].items()
        plots[path] = (name, spec, columns)
    models = json.loads((root / "zoo/index.json").read_text())["models"]
    curves = sorted(p.relative_to(root).as_posix() for p in (root / "zoo/metrics/curves").glob("*.csv"))
    assert sorted(plots) == curves
    titles = set()
    for path, (name, spec, columns) in plots.items():
        model = Path(path).stem
        header = (root / path).read_text().splitlines()[0].split(",")
        assert name == model and spec["title"].startswith(f"{model}: {models[model]['primary_metric']} (primary)")
        assert columns[0] == models[model]["primary_metric"] and len(columns) >= 2 and set(columns) <= set(header)
        assert spec["x"] == "step" and spec["x_label"] and spec["y_label"] != "primary"
        titles.add(spec["title"])
    assert len(titles) == len(plots)
