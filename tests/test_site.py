"""The browse page (publish/page) in real headless Chromium (Debian's chromium + chromedriver): the static
site opened from disk (file://, downloads off) and the same files served over loopback HTTP with the strict
Content-Security-Policy of `zoo serve` (downloads on, a revision picked)."""

from __future__ import annotations

import json
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import reference_rows

SCREENSHOTS = Path(__file__).resolve().parent / "artifacts"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'
HOSTILE_CARD = ("---\nlicense: mit\ntags: [t]\n---\n\n# alpha\n\n## Training notes\n\nPlain text.\n\n" + HOSTILE + "\n\n"
                "[click me](javascript:document.title='pwned') [ok](https://example.org/x) [rel](docs/a.md)\n")
TITLE = "Test <Zoo>"


def _entry(model: str, step: int, acc: float, description: str = "", task: str = "tabular-classification",
           arch: str = "linear", license: str = "MIT", tags: tuple[str, ...] = ("t",), parent: str | None = None) -> dict:
    return {
        "model": model, "step": step, "ref": f"{model}@{step}", "epoch": step / 10, "arch": arch, "task": task,
        "dataset": "wine", "license": license, "tags": list(tags), "description": description, "num_params": 68,
        "size_bytes": 584 + step, "sha256": f"{step:02x}" * 32, "created": f"2026-11-{10 + step % 17:02d}T10:00:00Z",
        "path": f"zoo/checkpoints/{model}/step-{step:08d}.safetensors", "format": "safetensors", "dtype": "F32",
        "source": "test", "parent": parent, "pull_command": f"zoo pull {model}@{step}", "reported_metric": None,
        "reported_value": None, "reproduced_value": None, "delta": None,
        "metrics": {"accuracy": acc, "macro_f1": round(acc - 0.05, 4), "nll": round(1 - acc, 4)},
        "evaluation": {"split": "test"},
        "selection": {"split": "val", "metric": "accuracy", "higher_is_better": True, "value": acc},
    }


ENTRIES = [
    _entry("alpha", 10, 0.5), _entry("alpha", 20, 0.9, description=HOSTILE), _entry("alpha", 30, 0.8),
    _entry("alpha-ft", 0, 0.93, parent="alpha@20", tags=("t", "finetuned")), _entry("alpha-ft", 5, 0.95),
    _entry("beta", 5, 0.7, task="image-classification", arch="mlp", license="Apache-2.0", tags=("vision",)),
    _entry("gamma-net", 1, 0.6, description="javascript:alert(1) \"quoted\" </script>"),
]


def _index(entries: list[dict]) -> tuple[dict, dict[str, str]]:
    from checkpoint_zoo.publish.index import mark_best, render_card, task_summaries

    models = mark_best(entries)
    records = {e["ref"]: {"higher_is_better": {"accuracy": True, "macro_f1": True, "nll": False},
                          "reproducibility": {"accuracy": {"kind": "exact"}}} for e in entries}
    index = {"format": 2, "table_sha256": "0" * 64, "tasks": task_summaries(entries, records), "models": models,
             "checkpoints": entries}
    cards = {m: render_card(m, [e for e in entries if e["model"] == m], s) for m, s in models.items()}
    cards["alpha"] = HOSTILE_CARD
    return index, cards


@pytest.fixture(scope="module")
def data() -> dict:
    from checkpoint_zoo.publish.page import site_data

    index, cards = _index([dict(e) for e in ENTRIES])
    return site_data(index, cards, title=TITLE, downloads=False)


@pytest.fixture(scope="module")
def static_url(data, tmp_path_factory) -> str:
    from checkpoint_zoo.publish.page import write_site

    site = tmp_path_factory.mktemp("static") / "site"
    write_site(site, data)
    return (site / "index.html").as_uri()


class _Handler(SimpleHTTPRequestHandler):
    requested: list[str] = []

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.requested.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The same page over HTTP on loopback, as `zoo serve` sends it: CSP header, downloads, a revision."""
    from checkpoint_zoo.publish.page import site_data, write_site

    index, cards = _index([dict(e) for e in ENTRIES])
    versions = [{"name": "v1", "kind": "tag", "commit": "1" * 40}, {"name": "main", "kind": "branch", "commit": "2" * 40}]
    site = tmp_path_factory.mktemp("served")
    write_site(site, site_data(index, cards, title=TITLE, downloads=True, rev="v1", versions=versions))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _open(driver, url: str, ready: str = "#app > *:not(.loading)"):
    """A fresh page load (not just a hash change), waiting until the app has rendered."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")
    driver.get(url)
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, ready))
    return driver


def _css(driver, selector: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _one(driver, selector: str):
    """The element, waiting for it: a click on a link changes the hash, and the page renders on `hashchange`,
    which the browser fires after the click has returned."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 10).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)))


def _until(driver, value, expected):
    """Wait until `value()` equals `expected` (after a hash change), then return it for the assertion."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, 10).until(lambda d: value() == expected)
    except TimeoutException:
        pass
    return value()


def _rows(driver) -> list[str]:
    return [tr.get_attribute("data-model") for tr in _css(driver, "#rows tr")]


def _best_metric(data: dict, model: str, metric: str) -> float:
    best = data["models"][model]["best"]
    return next(c for c in data["checkpoints"] if c["ref"] == best)["metrics"][metric]


def _no_script_ran(driver) -> None:
    assert driver.title == TITLE
    assert not _css(driver, "#app script, #app img, #app [onerror], #app a[href^='javascript']")


def test_card_html_is_inert_and_data_js_cannot_end_its_script():
    from checkpoint_zoo.publish.page import data_js, page_files, render_card_html

    meta, body = render_card_html(HOSTILE_CARD)
    assert meta == {"license": "mit", "tags": ["t"]}
    assert "<h2>Training notes</h2>" in body and "<script" not in body and "<img" not in body
    assert 'href="javascript' not in body and 'href="https://example.org/x"' in body and 'href="docs/a.md"' in body
    for bad in ("data:text/html,x", "//evil.example/x", "vbscript:x", "file:///etc/passwd", " JaVaScRiPt:x"):
        assert "href=" not in render_card_html(f"[x]({bad})")[1], bad
    js = data_js({"x": "</script><!--\u2028"}).decode()
    assert js.startswith("window.ZOO_DATA = {") and js.endswith(";\n") and "</script" not in js and "<!--" not in js
    files = page_files()
    assert set(files) == {"index.html", "leaderboard.js", "lineage.js", "app.js", "style.css"}
    html = files["index.html"].decode()
    # CSP script-src/style-src 'self': no inline script or style anywhere, and nothing from another origin
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "<style" not in html
    assert not re.search(r"\son\w+\s*=|\sstyle\s*=|(src|href)\s*=\s*[\"']?(https?:)?//", html)


def test_list_search_facet_and_metric_sort(browser, static_url, data):
    _open(browser, static_url)
    _no_script_ran(browser)
    assert sorted(_rows(browser)) == ["alpha", "alpha-ft", "beta", "gamma-net"]
    assert _one(browser, '#rows tr[data-model="alpha"] a').get_attribute("href").endswith("#/model/alpha")
    search = _one(browser, "#search")
    search.send_keys("alph")
    assert _rows(browser) == ["alpha", "alpha-ft"]
    assert _one(browser, "#count").text == "2 of 4 models"
    search.clear()
    search.send_keys("finetuned")  # a tag
    assert _rows(browser) == ["alpha-ft"]
    search.clear()
    search.send_keys("mlp")  # an arch
    assert _rows(browser) == ["beta"]
    _one(browser, "#clear-filters").click()
    assert len(_rows(browser)) == 4

    task = _one(browser, 'fieldset[data-facet="task"] label[data-value="image-classification"]')
    assert task.find_element("css selector", ".count").text == "(1)"
    task.find_element("css selector", "input").click()
    assert _rows(browser) == ["beta"]
    lic = _one(browser, 'fieldset[data-facet="license"] label[data-value="MIT"]')
    assert lic.find_element("css selector", ".count").text == "(0)"  # counts follow the other facets
    task.find_element("css selector", "input").click()
    assert len(_rows(browser)) == 4

    _one(browser, 'th[data-sort="m:accuracy"]').click()
    by_acc = sorted(data["models"], key=lambda m: -_best_metric(data, m, "accuracy"))
    assert _rows(browser) == by_acc == ["alpha-ft", "alpha", "beta", "gamma-net"]  # higher is better: best first
    assert _one(browser, 'th[data-sort="m:accuracy"]').get_attribute("aria-sort") == "descending"
    _one(browser, 'th[data-sort="m:accuracy"]').click()
    assert _rows(browser) == by_acc[::-1]
    _one(browser, 'th[data-sort="m:nll"]').click()  # lower is better: best (lowest) first
    assert _rows(browser) == sorted(data["models"], key=lambda m: _best_metric(data, m, "nll"))
    _one(browser, 'th[data-sort="task"]').click()
    assert [_one(browser, f'#rows tr[data-model="{m}"] td[data-col="task"]').text for m in _rows(browser)] == \
        sorted(m["task"] for m in data["models"].values())
    _no_script_ran(browser)


def test_model_page_card_chart_and_selected_snippet(browser, static_url):
    _open(browser, static_url + "#/model/alpha", "#card")
    card = _one(browser, "#card")
    assert "Training notes" in [h.text for h in card.find_elements("css selector", "h2")]
    assert "<script>" in card.text and "onerror" in card.text  # shown as text
    assert not card.find_elements("css selector", "script, img, a[href^='javascript']")
    assert [a.get_attribute("href") for a in card.find_elements("css selector", "a")][0] == "https://example.org/x"
    _no_script_ran(browser)
    side = _one(browser, "#sidebar").text
    assert "MIT" in side and "linear" in side and "alpha@20" in side and "alpha@30" in side

    rows = _css(browser, "#checkpoints tbody tr")
    assert [r.get_attribute("data-ref") for r in rows] == ["alpha@10", "alpha@20", "alpha@30"]
    best = _one(browser, '#checkpoints tr[data-ref="alpha@20"]')
    assert "best" in best.text and "0.9000" in best.text and "0.1000" in best.text
    assert _one(browser, '#checkpoints tr[data-ref="alpha@30"] .badge.latest')
    sha = _one(browser, '#checkpoints tr[data-ref="alpha@20"] code.hash')
    assert sha.get_attribute("title") == "14" * 32 and len(sha.text) < 20
    assert _one(browser, '#checkpoints tr[data-ref="alpha@10"] code.pull').text == "zoo pull alpha@10"
    assert not _css(browser, "a.download")  # static: pull commands, no downloads

    assert _one(browser, "#snippet-pull").text == "zoo pull alpha@20"  # default: the best
    _one(browser, '#checkpoints tr[data-ref="alpha@10"] td.step').click()
    assert _one(browser, "#snippet-pull").text == "zoo pull alpha@10"
    assert 'Zoo(".").load_model("alpha@10")' in _one(browser, "#snippet-python").text
    assert _one(browser, '#checkpoints tr[data-ref="alpha@10"]').get_attribute("aria-selected") == "true"

    assert _one(browser, "#chart .x-label").text == "step"
    assert _one(browser, "#chart .y-label").text.startswith("accuracy")
    assert len(_css(browser, "#chart .x-tick")) >= 2 and len(_css(browser, "#chart .y-tick")) >= 2
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", t.text) for t in _css(browser, "#chart .tick"))
    assert len(_css(browser, "#chart circle.point")) == 3
    assert _one(browser, '#chart circle.selected').get_attribute("data-ref") == "alpha@10"
    from selenium.webdriver.support.ui import Select

    Select(_one(browser, "#chart-metric")).select_by_value("nll")
    assert _one(browser, "#chart .y-label").text.startswith("nll (lower")
    _one(browser, '#chart circle[data-ref="alpha@30"]').click()  # the chart selects too
    assert _one(browser, "#snippet-pull").text == "zoo pull alpha@30"


def test_lineage_both_directions(browser, static_url):
    _open(browser, static_url + "#/model/alpha", "#lineage")
    down = _one(browser, "#descendants")
    link = down.find_element("css selector", 'a[data-ref="alpha-ft@0"]')
    assert "alpha@20" in down.text and link.get_attribute("href").endswith("#/model/alpha-ft")
    link.click()
    up = _one(browser, "#ancestors")
    assert "alpha-ft@0" in up.text
    assert up.find_element("css selector", 'a[data-ref="alpha@20"]').get_attribute("href").endswith("#/model/alpha")
    assert "alpha@20" in _one(browser, "#sidebar").text  # base model
    assert _one(browser, '#checkpoints tr[data-ref="alpha-ft@0"] a[data-ref="alpha@20"]')


def test_compare_two_checkpoints(browser, static_url, data):
    _open(browser, static_url)
    _one(browser, '#rows tr[data-model="beta"] input.pick').click()  # beta's best
    _one(browser, '#rows tr[data-model="alpha"] a').click()
    _one(browser, '#checkpoints tr[data-ref="alpha@10"] input.pick').click()
    link = _one(browser, "#compare-link")
    assert link.text == "Compare (2)"
    link.click()

    def heads() -> list:
        return [th.get_attribute("data-ref") for th in _css(browser, "#compare thead th[data-ref]")]

    assert _until(browser, heads, ["beta@5", "alpha@10"]) == ["beta@5", "alpha@10"]
    for metric in ("accuracy", "macro_f1", "nll"):
        cells = _css(browser, f'#compare tr[data-field="metric:{metric}"] td')
        by_ref = {c["ref"]: c for c in data["checkpoints"]}
        assert [c.text for c in cells] == [f"{by_ref[r]['metrics'][metric]:.4f}" for r in heads()]
    best = {m: _one(browser, f'#compare tr[data-field="metric:{m}"] td.best-value').get_attribute("data-ref")
            for m in ("accuracy", "nll")}
    assert best == {"accuracy": "beta@5", "nll": "beta@5"}  # 0.7 > 0.5; lower nll wins
    for field in ("sha256", "created", "license", "size", "parent", "tags", "epoch"):
        assert _css(browser, f'#compare tr[data-field="{field}"]'), field
    assert _one(browser, '#compare tr[data-field="license"]').text.split()[1:] == ["Apache-2.0", "MIT"]
    _one(browser, '#compare th[data-ref="alpha@10"] button.remove').click()
    assert _until(browser, heads, ["beta@5"]) == ["beta@5"]


def test_served_mode_downloads_revision_and_csp(browser, served):
    _Handler.requested.clear()
    _open(browser, served + "?rev=v1#/model/alpha", "#checkpoints")
    assert "/data.js?rev=v1" in _Handler.requested  # the revision the page was opened at
    assert _one(browser, "#rev").text == "revision v1"
    versions = [a.get_attribute("href") for a in _css(browser, "#versions a")]
    assert versions == [served + "?rev=v1", served + "?rev=main"]
    hrefs = {tr.get_attribute("data-ref"): tr.find_element("css selector", "a.download").get_attribute("href")
             for tr in _css(browser, "#checkpoints tbody tr")}
    # content-addressed (immutable) links: /files/by-sha256/SHA/NAME
    assert hrefs["alpha@20"] == served + f"files/by-sha256/{'14' * 32}/step-00000020.safetensors?rev=v1"
    assert _one(browser, "#download").get_attribute("href") == hrefs["alpha@20"]
    _one(browser, '#checkpoints tr[data-ref="alpha@30"] td.step').click()
    assert _one(browser, "#download").get_attribute("href") == \
        served + f"files/by-sha256/{'1e' * 32}/step-00000030.safetensors?rev=v1"
    assert _one(browser, "#snippet-pull").text == "zoo pull alpha@30"
    assert not _css(browser, "#checkpoints code.pull")
    _no_script_ran(browser)
    _open(browser, served + "#/")
    assert len(_rows(browser)) == 4
    assert "/data.js" in _Handler.requested  # no ?rev: the server's default
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not refused, refused


@pytest.mark.parametrize("width", [1400, 390])
def test_nothing_overflows_the_viewport(browser, static_url, width):
    SCREENSHOTS.mkdir(exist_ok=True)
    # headless Chromium keeps windows at least 500 px wide: emulate the phone's viewport instead
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500})
    try:
        for name, route, ready in [("list", "#/", "#rows"), ("model", "#/model/alpha-ft", "#chart"),
                                   ("compare", "#/compare/alpha@20,beta@5,gamma-net@1", "#compare")]:
            _open(browser, static_url + route, ready)
            inner, scroll = browser.execute_script("return [innerWidth, document.scrollingElement.scrollWidth]")
            assert inner == width and scroll <= inner, (name, width, scroll, inner)
            wide = browser.execute_script("""
                return Array.from(document.querySelectorAll('#app *')).filter(function (e) {
                  const r = e.getBoundingClientRect();
                  let clipped = false;  // inside a box that scrolls (or clips) horizontally on its own
                  for (let p = e.parentElement; p && !clipped; p = p.parentElement) {
                    clipped = getComputedStyle(p).overflowX !== 'visible';
                  }
                  return r.width > 0 && (r.right > innerWidth + 1 || r.left < -1) && !clipped;
                }).map(function (e) { return e.tagName + '.' + e.className; })""")
            assert not wide, (name, width, wide)
            path = SCREENSHOTS / f"site-{name}-{width}.png"
            browser.save_screenshot(str(path))
            assert path.stat().st_size > 1000
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_reference_site_opens_from_disk(browser, reference_clone, tmp_path):
    """The page the pipeline builds for the reference zoo: every model and checkpoint, nothing fetched."""
    from checkpoint_zoo.publish.page import site_data, write_site

    index = json.loads((reference_clone / "zoo/index.json").read_text())
    cards = {p.stem: p.read_text() for p in (reference_clone / "zoo/cards").glob("*.md")}
    write_site(tmp_path / "site", site_data(index, cards, title="Checkpoint Zoo", downloads=False))
    for name in ("index.html", "leaderboard.js", "lineage.js", "app.js", "style.css"):
        text = (tmp_path / "site" / name).read_text()
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//|fetch\(|XMLHttpRequest|@import", text), name
    assert "default-src 'none'" in (tmp_path / "site/index.html").read_text()
    _open(browser, (tmp_path / "site/index.html").as_uri())
    rows = reference_rows()
    assert sorted(_rows(browser)) == sorted(index["models"]) and len(index["models"]) == len({r["model"] for r in rows})
    shown = 0
    for model in index["models"]:
        _open(browser, (tmp_path / "site/index.html").as_uri() + f"#/model/{model}", "#checkpoints")
        shown += len(_css(browser, "#checkpoints tbody tr"))
        assert _one(browser, "#card h1").text == model
        assert _one(browser, "#snippet-pull").text == f"zoo pull {index['models'][model]['best']}"
    assert shown == len(index["checkpoints"]) == len(rows)
