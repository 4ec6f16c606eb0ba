"""Progress bars for long work: tqdm on stderr, off when stderr is not a TTY or ZOO_NO_PROGRESS=1."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from . import constants

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, unit: str = "it") -> Iterator[T]:
    """Iterate with a progress bar when a person is watching."""
    items = list(items)
    if constants.progress_disabled() or not sys.stderr.isatty() or len(items) < 2:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, unit=unit, file=sys.stderr, leave=False)
