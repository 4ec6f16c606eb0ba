"""The page's cards rendered many at once (``publish/page/cards.py``): kept in the user cache by their text, and in
every case exactly what ``render_card_html`` gives one card."""

from __future__ import annotations

import sqlite3

import pytest

from checkpoint_zoo.publish.page import cards
from checkpoint_zoo.publish.page.cards import render_card_html, render_cards


def _card(i: int) -> str:
    rows = "\n".join(f"| {s} | 0.{i:02d}{s:02d} | [run](https://example.org/{i}/{s}) | `{s:08x}` |" for s in range(30))
    return (f"---\nlicense: mit\ntags:\n- t{i % 3}\nmodel-index:\n- name: m{i}\n  results: []\n---\n\n# m{i}\n\n"
            f"Notes with <b>raw html</b> and a [bad link](javascript:alert({i})).\n\n"
            f"| step | accuracy | log | sha256 |\n|---|--:|---|---|\n{rows}\n")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "cards" / "html.v1.sqlite"


def _kept(path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT key, value FROM cards"))


def test_many_cards_render_exactly_as_one_at_a_time(cache):
    texts = {f"m{i}": _card(i) for i in range(40)}
    texts["m7"] = texts["m6"]  # two models with the same card text: one kept entry serves both
    got = render_cards(texts)
    assert list(got) == list(texts)
    for name, text in texts.items():
        assert got[name] == render_card_html(text)
    meta, html = got["m5"]
    assert meta == {"license": "mit", "tags": ["t2"], "model-index": [{"name": "m5", "results": []}]}
    assert "&lt;b&gt;raw html&lt;/b&gt;" in html and "href=\"javascript" not in html and 'style="text-align:right"' in html
    assert len(_kept(cache)) == len(texts) - 1
    assert render_cards(texts) == got


def test_a_rerun_renders_only_the_changed_card(cache):
    texts = {f"m{i}": _card(i) for i in range(5)}
    first = render_cards(texts)
    before = _kept(cache)
    # what is kept is what is served: a kept value changed by hand comes back as it is (nothing was rendered again)
    key = cards._key(texts["m1"])
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE cards SET value = ? WHERE key = ?", ('[{"kept": true}, "<p>kept</p>"]', key))
    texts["m3"] = texts["m3"].replace("# m3", "# m3, retrained")
    again = render_cards(texts)
    assert again["m1"] == ({"kept": True}, "<p>kept</p>")
    assert again["m3"] == render_card_html(texts["m3"]) != first["m3"]
    assert {k: again[k] for k in ("m0", "m2", "m4")} == {k: first[k] for k in ("m0", "m2", "m4")}
    assert set(_kept(cache)) == set(before) | {cards._key(texts["m3"])}


def test_a_cache_that_cannot_be_read_only_costs_time(cache):
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a database" * 100)
    texts = {"a": _card(1), "b": "no front matter, [x](//evil.example/x)"}
    got = render_cards(texts)
    assert got == {name: render_card_html(text) for name, text in texts.items()}
    assert got["b"][0] == {} and "href" not in got["b"][1]
    assert cache.read_bytes() == b"not a database" * 100


def test_the_key_is_the_text_and_the_code(cache):
    assert cards._key("a") != cards._key("a ") and cards._key("a") == cards._key("a")
    assert len(cards._code()) == 32

