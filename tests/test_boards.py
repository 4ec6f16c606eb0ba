"""Issue 26, cases 3 and 4, on the reference zoo after `dvc repro`: leaderboards group by task and dataset (and
split) in INDEX.md, summary.json, `zoo versions`, `/api/leaderboard` and the compare view; a checkpoint under
another license than its model's is refused without --relicense (nothing changed on disk), and a model whose
checkpoints carry several licenses shows each with its count in its card, the API, the page and the facets."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import git, isolate, repro, run_zoo, snapshot, write_safetensors
from test_serve import Server
from test_site import _css, _one, _open

WINE = ("--arch", "linear", "--task", "tabular-classification", "--dataset", "wine")
DIGITS, PARITY = "mnist-5k", "mnist-parity"  # 10 classes and 2: their accuracies are not one scale


def _models(root: Path) -> dict[str, dict]:
    return json.loads((root / "zoo/index.json").read_text())["models"]


def _expected_boards(root: Path) -> dict[tuple[str, str], list[str]]:
    """(task, dataset) -> model names, best first, computed here from index.json's per-model summaries."""
    boards: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for name, m in _models(root).items():
        sign = -1 if m["higher_is_better"] else 1
        boards.setdefault((m["task"], m["dataset"]), []).append((sign * (m["best_value"] or 0), name))
    return {k: [n for _, n in sorted(v)] for k, v in boards.items()}


def _index_md_boards(text: str) -> dict[tuple[str, str], list[str]]:
    """INDEX.md's boards: (task, dataset) of each `### TASK on DATASET` heading -> its ranked models."""
    boards: dict[tuple[str, str], list[str]] = {}
    current = None
    for line in text.splitlines():
        m = re.fullmatch(r"### (\S+) on (\S+) \((\w+) split\)", line.replace("\\", ""))
        if m:
            current = boards.setdefault((m.group(1), m.group(2)), [])
        elif line.startswith("## "):
            current = None
        elif current is not None and re.match(r"\| \d+ \|", line):
            current.append(line.split("|")[2].strip().replace("\\", "").split("@")[0])
    return boards


def test_index_summary_and_versions_rank_within_task_and_dataset(pipeline_clone):
    root = pipeline_clone
    expected = _expected_boards(root)
    assert (expected[("image-classification", PARITY)] == ["mnist-parity-mobilenetv3"]
            and len(expected[("image-classification", DIGITS)]) == 2)
    # the 2-class model has the highest accuracy of the task; on no board does it outrank a 10-class one
    models = _models(root)
    assert max((m for m in models.values() if m["task"] == "image-classification"),
               key=lambda m: m["best_value"])["dataset"] == PARITY

    assert _index_md_boards((root / "zoo/INDEX.md").read_text()) == expected
    assert "## image-classification" in (root / "zoo/INDEX.md").read_text()

    summary = json.loads((root / "zoo/metrics/summary.json").read_text())
    boards = summary["leaderboards"]
    assert {(b["task"], b["dataset"]) for b in boards.values()} == set(expected)
    for name, board in boards.items():
        assert name == f"{board['task']}/{board['dataset']}/{board['split']}" and board["split"] == "test"
        best = expected[(board["task"], board["dataset"])][0]
        assert board["best"] == models[best]["best"]
        assert board[board["metric"]] == models[best]["best_value"]
    # one best per task only where the task is one board: a "best for image-classification" would cross datasets
    assert "image-classification" not in summary["tasks"]
    assert summary["tasks"]["object-detection"]["best"] == boards["object-detection/mnist-canvas/test"]["best"]
    assert summary["tasks"]["object-detection"]["dataset"] == "mnist-canvas"

    git("add", "-A", cwd=root)
    git("commit", "-qm", "regenerated index", "--allow-empty", cwd=root)  # fresh already when committed so
    r = run_zoo("versions", "--format", "json", cwd=root)
    assert r.code == 0, r.err
    head = git("rev-parse", "--abbrev-ref", "HEAD", cwd=root).strip()
    best = next(v for v in json.loads(r.out) if v["name"] == head)["best"]
    assert set(best) == set(boards)
    digits = best[f"image-classification/{DIGITS}/test"]
    assert digits["ref"] == models[expected[("image-classification", DIGITS)][0]]["best"]
    assert (digits["task"], digits["dataset"], digits["split"]) == ("image-classification", DIGITS, "test")
    assert best[f"image-classification/{PARITY}/test"]["ref"] == models["mnist-parity-mobilenetv3"]["best"]
    assert f"image-classification/{DIGITS}/test: " in run_zoo("versions", cwd=root).out


def test_a_license_change_is_refused_and_changes_nothing(pipeline_clone, tmp_path):
    root = pipeline_clone
    rows = list(csv.DictReader((root / "zoo/checkpoints.csv").open(newline="")))
    assert {r["license"] for r in rows if r["model"] == "wine-linear"} == {"CC0-1.0"}
    before = snapshot(root)
    f = write_safetensors(tmp_path / "w.safetensors", seed=5)
    r = run_zoo("add", str(f), "--model", "wine-linear", "--step", "160", *WINE, "--license", "MIT", cwd=root)
    assert r.code != 0
    message = r.err.strip()
    assert len(message.splitlines()) == 1, message
    for word in ("wine-linear", "CC0-1.0", "MIT", "--relicense"):
        assert word in message, (word, message)
    assert snapshot(root) == before

    manifest = tmp_path / "m.csv"
    manifest.write_text(f"file,model,step\n{f},wine-linear,160\n{write_safetensors(tmp_path / 'x.safetensors', 6)},"
                        "wine-linear,170\n")
    r = run_zoo("add", "--from", str(manifest), *WINE, "--license", "MIT", cwd=root)
    assert r.code != 0 and "nothing was added" in r.err
    assert "wine-linear" in r.err and "CC0-1.0" in r.err and "MIT" in r.err and "--relicense" in r.err, r.err
    assert snapshot(root) == before
    # a new model may not mix licenses in one batch either; the same license as the model's rows goes in
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(f"file,model,step,license\n{f},newcomer,1,MIT\n{tmp_path / 'x.safetensors'},newcomer,2,CC0-1.0\n")
    r = run_zoo("add", "--from", str(mixed), *WINE, cwd=root)
    assert r.code != 0 and "newcomer" in r.err and "--relicense" in r.err, r.err
    assert snapshot(root) == before
    r = run_zoo("add", str(f), "--model", "wine-linear", "--step", "160", *WINE, "--license", "CC0-1.0", cwd=root)
    assert r.code == 0, r.err


# ---- a zoo where wine-linear carries two licenses, evaluated and served ------------------------------------


@pytest.fixture(scope="module")
def relicensed(pipeline_base, tmp_path_factory):
    """A copy of the evaluated reference zoo with 4 MIT checkpoints added to wine-linear (5 CC0-1.0) by --from
    and by one add, both with --relicense, then `dvc repro`; served by `zoo serve`."""
    base = tmp_path_factory.mktemp("boards")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = base / "zoo"
        shutil.copytree(pipeline_base, root, symlinks=True)
        files = [write_safetensors(base / f"w{s}.safetensors", seed=s) for s in (160, 170, 180, 190)]
        manifest = base / "m.csv"
        manifest.write_text("file,model,step\n" + "".join(f"{p},wine-linear,{s}\n" for p, s in zip(files, (160, 170, 180))))
        r = run_zoo("add", "--from", str(manifest), *WINE, "--license", "MIT", "--relicense", cwd=root)
        assert r.code == 0, r.err
        r = run_zoo("add", str(files[3]), "--model", "wine-linear", "--step", "190", *WINE, "--license", "MIT",
                    "--relicense", cwd=root)
        assert r.code == 0, r.err
        out = repro(root).stdout
        assert "evaluated 4" in out, out
        server = Server(root)
        try:
            yield root, server
        finally:
            server.stop()


def test_mixed_licenses_in_card_api_and_facets(relicensed):
    root, s = relicensed
    counts = {"CC0-1.0": 5, "MIT": 4}
    card = (root / "zoo/cards/wine-linear.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "other" and front["license_name"] == "mixed"
    assert front["licenses"] == [{"license": "cc0-1.0", "checkpoints": 5}, {"license": "mit", "checkpoints": 4}]
    assert "license: CC0-1.0 (5 checkpoints), MIT (4 checkpoints)" in card
    assert yaml.safe_load((root / "zoo/cards/mnist-fcos.md").read_text().split("---\n")[1])["license"] == "cc-by-sa-3.0"

    model = s.json("/api/models/wine-linear")
    assert model["licenses"] == counts and model["card"]["metadata"]["licenses"][1]["license"] == "mit"
    listed = {m["id"]: m for m in s.json("/api/models")}
    assert listed["wine-linear"]["licenses"] == counts and listed["cancer-resmlp"]["licenses"] == {"CC0-1.0": 5}
    for lic in counts:  # the facet counts the model under each of its licenses
        assert "wine-linear" in [m["id"] for m in s.json(f"/api/models?license={lic}")], lic
    assert [m["id"] for m in s.json("/api/models?license=MIT")] == ["wine-linear"]


def test_leaderboard_api_groups_by_dataset_and_honours_dataset(relicensed):
    _, s = relicensed
    models = {m["id"]: m for m in s.json("/api/models?task=image-classification")}
    board = s.json("/api/leaderboard?task=image-classification")["image-classification"]
    assert {b["dataset"] for b in board["boards"]} == {DIGITS, PARITY}
    for b in board["boards"]:
        assert all(e["dataset"] == b["dataset"] and e["split"] == "test" for e in b["models"])
        mine = sorted((m for m in models.values() if m["dataset"] == b["dataset"]), key=lambda m: -m["best_value"])
        assert [e["model"] for e in b["models"]] == [m["id"] for m in mine]
        assert [e["rank"] for e in b["models"]] == list(range(1, len(mine) + 1))
    ranks = {e["model"]: (e["rank"], e["dataset"]) for e in board["models"]}
    assert ranks["mnist-parity-mobilenetv3"] == (1, PARITY)  # first on its own board, ranked against no digit model

    only = s.json(f"/api/leaderboard?dataset={DIGITS}")
    assert list(only) == ["image-classification"]
    assert {e["dataset"] for e in only["image-classification"]["models"]} == {DIGITS}
    assert "mnist-parity-mobilenetv3" not in {e["model"] for e in only["image-classification"]["models"]}
    assert only["image-classification"]["models"][0]["rank"] == 1
    assert s.json("/api/leaderboard?task=tabular-classification&dataset=wine")["tabular-classification"]["models"][0][
        "model"] == "wine-linear"
    for bad in ("nope", DIGITS + "&task=tabular-classification"):
        error = s.json(f"/api/leaderboard?dataset={bad}", status=404)["error"]
        assert "\n" not in error and "datasets:" in error, error
    assert DIGITS in s.json("/api/leaderboard?dataset=nope", status=404)["error"]


def test_page_compare_across_datasets_paints_no_winner_and_licenses_show(browser, relicensed):
    root, _ = relicensed
    data = json.loads((root / "site/data.js").read_text().split("=", 1)[1].rstrip().rstrip(";"))
    models = data["models"]
    digits = [models[n]["best"] for n in sorted(models) if models[n]["dataset"] == DIGITS]
    parity = models["mnist-parity-mobilenetv3"]["best"]
    refs = [parity, *digits]
    url = (root / "site/index.html").as_uri()
    _open(browser, url + "#/compare/" + ",".join(refs), "#compare")
    note = _one(browser, "#compare-note").text
    assert DIGITS in note and PARITY in note and parity in note and "not comparable" in note
    accuracy = {c["ref"]: c["metrics"]["accuracy"] for c in data["checkpoints"] if c["ref"] in refs}
    assert max(accuracy, key=accuracy.__getitem__) == parity  # the highest number, on another dataset
    winners = [td.get_attribute("data-ref") for td in _css(browser, '#compare tr[data-field="metric:accuracy"] td.best-value')]
    assert winners == [max(digits, key=accuracy.__getitem__)]
    _open(browser, url + "#/compare/" + ",".join(digits), "#compare")
    assert not _css(browser, "#compare-note")
    assert len(_css(browser, '#compare tr[data-field="metric:accuracy"] td.best-value')) == 1

    _open(browser, url)
    lic = _one(browser, '#rows tr[data-model="wine-linear"] td[data-col="license"]').text
    assert lic == "CC0-1.0 (5), MIT (4)"
    for value, n in (("MIT", 1), ("CC0-1.0", 2)):  # wine-linear counts under both; cancer-resmlp is CC0-1.0
        label = _one(browser, f'fieldset[data-facet="license"] label[data-value="{value}"] .count')
        assert label.text == f"({n})", value
    _one(browser, 'fieldset[data-facet="license"] label[data-value="MIT"] input').click()
    assert [tr.get_attribute("data-model") for tr in _css(browser, "#rows tr")] == ["wine-linear"]
    _open(browser, url + "#/model/wine-linear", "#sidebar")
    assert _one(browser, "#licenses").text == "CC0-1.0 (5), MIT (4)"


def test_license_rule_reads_the_table_not_the_batch_order():
    """The rule itself: a replaced row is not the model's; a model already mixed takes either license."""
    from checkpoint_zoo.catalog.rules import license_problems

    rows = [{"model": "m", "step": "1", "license": "MIT"}, {"model": "m", "step": "2", "license": "CC0-1.0"}]
    assert license_problems(rows, [{"model": "m", "step": "3", "license": "CC0-1.0"}]) == []
    assert license_problems(rows, [{"model": "m", "step": "3", "license": "Apache-2.0"}])[0][0] == "m@3"
    assert license_problems(rows, [{"model": "m", "step": "3", "license": "Apache-2.0"}], relicense=True) == []
    one = [{"model": "m", "step": "1", "license": "MIT"}]
    assert license_problems(one, [{"model": "m", "step": "1", "license": "CC0-1.0"}]) == []  # --replace of the only row
    assert license_problems(one, [{"model": "n", "step": "1", "license": "CC0-1.0"}]) == []

