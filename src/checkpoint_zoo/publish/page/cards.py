"""Model cards as the page shows them: the front matter as data and the body as HTML, rendered by markdown-it
with raw HTML off and links limited to http(s) and relative URLs (``render_card_html``).

The page of a zoo needs every model's card (``render_cards``), and markdown-it, written in Python, parses a
card's checkpoint table cell by cell: 20–40 ms for a card of 100 steps, which made rendering cards three
quarters of the index stage at 1,000 models and more (README, Performance). Two things cut that, neither
changing a byte of the output:

- the result depends only on the card's text and this code, so it is kept in the user cache under a hash of
  both (``_Kept``): a stage re-run after one model changed renders that model's card alone;
- the cards the cache lacks, when there are many, are shared out between this process and a fresh interpreter
  per other core (``_child``).

A cache that cannot be read or written, or processes that cannot start, only make it slower.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Rendered = tuple[dict, str]
POOL_FROM = 64           # misses from which other processes share them; below, starting one costs more than it saves
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


def render_card_html(markdown_text: str) -> Rendered:
    """A model card's (front-matter metadata, HTML body): raw HTML escaped, only http(s)/relative links."""
    import yaml

    meta: object = {}
    body = markdown_text
    m = _FRONT_MATTER.match(markdown_text)
    if m:
        body = markdown_text[m.end():]
        try:  # libyaml's parser when PyYAML has it: the same safe constructor, 5 × faster on a card's front matter
            meta = yaml.load(m.group(1), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
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


def _workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _child(texts: list[str]) -> Callable[[], list[Rendered] | None]:
    """Start rendering ``texts`` in a fresh interpreter; the returned call waits for its renderings (None if it
    failed: the caller renders them itself).

    A fresh ``python -I`` given the texts on stdin, rather than a multiprocessing pool: a spawned pool imports
    the caller's main module again in each child (a script without a ``__main__`` guard would run twice), and
    a forked one shares the stage's memory. ``-I`` keeps the zoo's folder, PYTHON* variables and the user's site
    off the child's path; only this package's folder is put first."""
    package_parent = str(Path(__file__).resolve().parents[3])
    boot = (f"import sys; sys.path.insert(0, {package_parent!r}); "
            "from checkpoint_zoo.publish.page.cards import _serve; _serve()")
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-c", boot], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return lambda: None
    result: list[list[Rendered] | None] = [None]

    def talk() -> None:
        try:
            out, _ = proc.communicate(json.dumps(texts).encode())
            if proc.returncode == 0:
                found = json.loads(out)
                if isinstance(found, list) and len(found) == len(texts):
                    result[0] = [(meta, html) for meta, html in found]
        except (OSError, ValueError, TypeError):
            proc.kill()

    thread = threading.Thread(target=talk, daemon=True)
    thread.start()

    def wait() -> list[Rendered] | None:
        thread.join()
        return result[0]
    return wait


def _serve() -> None:
    """The child's side of ``_child``: texts as a JSON list on stdin, their renderings as one on stdout."""
    texts = json.loads(sys.stdin.buffer.read())
    sys.stdout.write(json.dumps([render_card_html(t) for t in texts]))


def _render_all(texts: list[str]) -> list[Rendered]:
    """Each text's rendering. Many texts on more than one core: every core's share but this process's own goes to
    a child (``_child``), rendered while this process renders its share."""
    shares = min(_workers(), len(texts) // (POOL_FROM // 2)) if len(texts) >= POOL_FROM else 1
    waits = [(k, _child(texts[k::shares])) for k in range(1, shares)]
    out: list[Rendered | None] = [None] * len(texts)
    out[0::shares] = [render_card_html(t) for t in texts[0::shares]]
    for k, wait in waits:
        out[k::shares] = wait() or [render_card_html(t) for t in texts[k::shares]]
    return out  # type: ignore[return-value]  # every share filled


def render_cards(cards: Mapping[str, str]) -> dict[str, Rendered]:
    """``render_card_html`` of each card (by model), taken from the user cache where it was rendered before."""
    keys = {name: _key(text) for name, text in cards.items()}
    kept = _Kept()
    found = kept.get(list(dict.fromkeys(keys.values())))
    missing = {keys[name]: text for name, text in cards.items() if keys[name] not in found}
    made = dict(zip(missing, _render_all(list(missing.values())), strict=True))
    kept.put(made)
    found |= made
    return {name: found[key] for name, key in keys.items()}
