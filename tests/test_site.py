"""The static browse page in real headless Chromium (Debian's chromium + chromedriver), opened from disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parent / "artifacts"


def _index(entries: list[dict]) -> dict:
    from checkpoint_zoo.publish.index import mark_best, task_summaries

    models = mark_best(entries)
    records = {e["ref"]: {"higher_is_better": {"accuracy": True, "macro_f1": True, "nll": False},
                          "reproducibility": {"accuracy": {"kind": "exact"}}} for e in entries}
    return {"format": 2, "table_sha256": "0" * 64, "tasks": task_summaries(entries, records), "models": models,
            "checkpoints": entries}


def _entry(model: str, step: int, acc: float, description: str = "", task: str = "tabular-classification",
           arch: str = "linear") -> dict:
    return {
        "model": model, "step": step, "ref": f"{model}@{step}", "epoch": None, "arch": arch, "task": task,
        "dataset": "wine", "license": "MIT", "tags": ["t"], "description": description, "num_params": 68,
        "size_bytes": 584, "sha256": "a" * 64, "path": f"zoo/checkpoints/{model}/step-{step:08d}.safetensors",
        "pull_command": f"zoo pull {model}@{step}", "reported_metric": None, "reported_value": None,
        "metrics": {"accuracy": acc, "macro_f1": acc, "nll": 1 - acc}, "evaluation": {"split": "test"},
        "selection": {"split": "val", "metric": "accuracy", "higher_is_better": True, "value": acc},
    }


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        pytest.fail("Debian's chromium and chromium-driver are required: apt-get install chromium chromium-driver "
                    "(scripts/install.sh --browser does it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,900"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


def _rows(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [tr.get_attribute("data-ref") for tr in driver.find_elements(By.CSS_SELECTOR, "#rows tr")]


def test_search_filter_sort_panel_and_escaping(browser, tmp_path):
    from selenium.webdriver.common.by import By

    from checkpoint_zoo.publish.index import render_site

    hostile = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'
    entries = [
        _entry("alpha", 10, 0.5), _entry("alpha", 20, 0.9, description=hostile),
        _entry("beta", 5, 0.7, task="image-classification", arch="mlp"),
        _entry("gamma-net", 1, 0.6, description="javascript:alert(1) \"quoted\" </script>"),
    ]
    page = tmp_path / "index.html"
    page.write_text(render_site(_index(entries), title="Test <Zoo>"))
    browser.get(page.as_uri())
    assert browser.title == "Test <Zoo>"  # the title was escaped, no script ran
    assert set(_rows(browser)) == {"alpha@10", "alpha@20", "beta@5", "gamma-net@1"}
    assert hostile in browser.find_element(By.CSS_SELECTOR, 'tr[data-ref="alpha@20"] td.desc').text
    assert not browser.find_elements(By.CSS_SELECTOR, "#rows img, #rows script")

    search = browser.find_element(By.ID, "search")
    search.send_keys("alph")
    assert _rows(browser) == ["alpha@10", "alpha@20"]
    assert browser.find_element(By.ID, "count").text == "2 of 4 checkpoints"
    search.clear()
    search.send_keys("mlp")
    assert _rows(browser) == ["beta@5"]
    search.clear()
    browser.execute_script("document.getElementById('search').dispatchEvent(new Event('input'))")

    browser.find_element(By.CSS_SELECTOR, 'th[data-key="metric:accuracy"]').click()
    assert _rows(browser) == ["alpha@20", "beta@5", "gamma-net@1", "alpha@10"]  # best first

    browser.find_element(By.CSS_SELECTOR, 'tr[data-ref="alpha@10"]').click()
    assert browser.find_element(By.ID, "panel-pull").text == "zoo pull alpha@20"  # the model's best
    assert len(browser.find_elements(By.CSS_SELECTOR, "#curve circle")) == 2
    SCREENSHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "site.png"))
    assert (SCREENSHOTS / "site.png").stat().st_size > 1000
    assert browser.title == "Test <Zoo>"


def test_reference_site_opens_from_disk(browser, reference_clone, tmp_path):
    """The page the pipeline builds for the reference zoo: every checkpoint listed, no network needed."""
    from checkpoint_zoo.publish.index import render_site

    index = json.loads((reference_clone / "zoo/index.json").read_text())
    page = tmp_path / "site.html"
    page.write_text(render_site(index, title="Checkpoint Zoo"))
    import re

    text = page.read_text()
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text) and "<link" not in text  # nothing fetched
    assert "default-src 'none'" in text  # and the page's CSP forbids it anyway
    browser.get(page.as_uri())
    assert len(_rows(browser)) == len(index["checkpoints"]) == 20
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "latest-only").click()
    assert len(_rows(browser)) == 4
