"""Model cards as the page shows them: the front matter as data and the body as HTML, rendered by markdown-it
with raw HTML off and links limited to http(s) and relative URLs (``render_card_html``).

The page of a zoo needs every model's card (``render_cards``), and markdown-it, written in Python, parses a
card's checkpoint table cell by cell: about 21 ms for a card of 100 steps, most of the index stage at 1,000 models
and more (README, Performance). The result depends only on the card's text and this code, so it is kept in the
user cache under a hash of both (``_Kept``): a stage re-run after one model changed renders that model's card
alone, and the output is byte for byte what rendering every card gives. A cache that cannot be read or written
only makes it slower.

Rendering the misses in a second process was tried and not kept: on the 2-core machines here the two processes
together rendered no faster than one (21.9 s against 21.5 s for 1,000 cards), each slowed by the other.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Rendered = tuple[dict, str]
KEEP_S = 30 * 24 * 3600  # a kept card not used for this long is dropped (cards change with every evaluation)

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


def _safe_link(url: str) -> bool:
    """http(s) or a relative path: no javascript:, data:, file:, nor a protocol-relative //host."""
    u = "".join(ch for ch in url if ch > " ").lower()
    if u.startswith(("//", "\\", "/\\")):
        return False
    m = _SCHEME.match(u)
    return m is None or m.group(1) in ("http", "https")


@functools.lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    class SafeMarkdown(MarkdownIt):
        def validateLink(self, url: str) -> bool:
            return _safe_link(url)

    return SafeMarkdown("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def _plain(value: object) -> object:
    """YAML values as JSON ones (dates, non-string keys and the like become strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _front_matter(text: str) -> object:
    """``yaml.safe_load``, through libyaml's parser when PyYAML has it (the same safe constructor, 5 × faster)."""
    import yaml

    try:
        return yaml.load(text, Loader=yaml.CSafeLoader)
    except AttributeError:  # a PyYAML built without libyaml
        return yaml.load(text, Loader=yaml.SafeLoader)


def render_card_html(markdown_text: str) -> Rendered:
    """A model card's (front-matter metadata, HTML body): raw HTML escaped, only http(s)/relative links."""
    import yaml

    meta: object = {}
    body = markdown_text
    m = _FRONT_MATTER.match(markdown_text)
    if m:
        body = markdown_text[m.end():]
        try:
            meta = _front_matter(m.group(1))
        except yaml.YAMLError:
            meta = {}
    plain = _plain(meta)
    return (plain if isinstance(plain, dict) else {}), _markdown().render(body)


@functools.cache
def _code() -> bytes:
    """What a rendering depends on besides the text: this module and the versions of markdown-it and PyYAML."""
    import markdown_it
    import yaml

    return hashlib.sha256(Path(__file__).read_bytes() + f"\0{markdown_it.__version__}\0{yaml.__version__}".encode()
                          ).digest()


def _key(text: str) -> str:
    return hashlib.sha256(_code() + text.encode()).hexdigest()


class _Kept:
    """Rendered cards in the user cache (SQLite), by ``_key``."""

    def __init__(self) -> None:
        from ...utils import environ

        self.path = environ.cache_dir() / "cards" / "html.v1.sqlite"

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=2)
        db.execute("PRAGMA synchronous = OFF")  # a cache: a torn file is one that cannot be read, hence only slower
        db.execute("CREATE TABLE IF NOT EXISTS cards (key TEXT PRIMARY KEY, value TEXT, used INTEGER)")
        return db

    def get(self, keys: list[str]) -> dict[str, Rendered]:
        found: dict[str, Rendered] = {}
        if not keys or not self.path.is_file():
            return found
        try:
            db = self._open()
        except (OSError, sqlite3.Error):
            return found
        try:
            for key in keys:
                row = db.execute("SELECT value FROM cards WHERE key = ?", (key,)).fetchone()
                if row:
                    meta, html = json.loads(row[0])
                    if isinstance(meta, dict) and isinstance(html, str):
                        found[key] = (meta, html)
            with db:
                db.executemany("UPDATE cards SET used = ? WHERE key = ?", [(int(time.time()), k) for k in found])
        except (sqlite3.Error, ValueError, TypeError):
            pass
        finally:
            db.close()
        return found

    def put(self, rendered: dict[str, Rendered]) -> None:
        if not rendered:
            return
        now = int(time.time())
        try:
            db = self._open()
        except (OSError, sqlite3.Error):
            return
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO cards VALUES (?, ?, ?)",
                               [(k, json.dumps(v), now) for k, v in rendered.items()])
                db.execute("DELETE FROM cards WHERE used < ?", (now - KEEP_S,))
        except sqlite3.Error:
            pass
        finally:
            db.close()


def render_cards(cards: Mapping[str, str]) -> dict[str, Rendered]:
    """``render_card_html`` of each card (by model), taken from the user cache where it was rendered before."""
    keys = {name: _key(text) for name, text in cards.items()}
    kept = _Kept()
    found = kept.get(list(dict.fromkeys(keys.values())))
    missing = {keys[name]: text for name, text in cards.items() if keys[name] not in found}
    made = {key: render_card_html(text) for key, text in missing.items()}
    kept.put(made)
    found |= made
    return {name: found[key] for name, key in keys.items()}
