"""Releases and stages as ``zoo serve``'s cards show them (``/api/models/M``, its ``/card``, data.js, the Hub's
README.md): the shape ``zoo/metrics/registry.json`` has, so the served card's "Releases" section is the static
card's (``publish.registry.card_lines``), but read from the tags now, since a stage move changes no file.

The tags are read again (one ``for-each-ref``) only when their stamp (``workspace.tags.tags_stamp``: two ``stat``
calls) moved or cannot be told, and the ``dvc.yaml`` of the tagged commits only when the tags read differ.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

MAX_KEPT = 4096  # models whose releases are kept (then all are dropped and read again)


class LiveReleases:
    """Each model's (or every model's) releases and stages, kept with the tags' stamp and the tags they came from."""

    def __init__(self, git_dir: Callable[[], Path]) -> None:
        self._git_dir = git_dir
        self._held: dict[str | None, tuple[tuple | None, tuple, dict[str, dict]]] = {}  # model (None: all) -> …
        self._lock = threading.Lock()

    def of(self, model: str | None = None) -> dict[str, dict]:
        """model -> ``{"releases": [...], "stages": {...}}`` for ``model`` (every model when None); a model with
        neither is absent."""
        from ..verbs.release import registry_document
        from ..workspace.tags import read_tags, tags_stamp

        git_dir = self._git_dir()
        stamp = tags_stamp(git_dir)  # before the read: a tag made during it moves the next stamp
        with self._lock:
            held = self._held.get(model)
        if held is not None and stamp is not None and held[0] == stamp:
            return held[2]
        tags = tuple(read_tags(git_dir, model))
        if held is not None and held[1] == tags:
            found = held[2]
        else:
            found = {m: r for m, r in registry_document(git_dir, list(tags))["models"].items() if model in (None, m)}
        with self._lock:
            if len(self._held) >= MAX_KEPT:
                self._held.clear()
            self._held[model] = (stamp, tags, found)
        return found
