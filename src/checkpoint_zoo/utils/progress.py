"""Progress bars for long work: tqdm on stderr, off when stderr is not a TTY or ZOO_NO_PROGRESS=1."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from . import environ

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, unit: str = "it") -> Iterator[T]:
    """Iterate with a progress bar when a person is watching."""
    items = list(items)
    if environ.progress_disabled() or not sys.stderr.isatty() or len(items) < 2:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, unit=unit, file=sys.stderr, leave=False)


@contextmanager
def byte_progress(total: int, desc: str, files: int) -> Iterator[Callable[[int], None]]:
    """A bar over ``total`` bytes of ``files`` files (bytes, rate, files done); yields ``advance(nbytes)``."""
    if environ.progress_disabled() or not sys.stderr.isatty() or files < 2:
        yield lambda n: None
        return
    from tqdm import tqdm

    done = [0]
    with tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
              leave=False) as bar:
        def advance(n: int) -> None:
            done[0] += 1
            bar.set_postfix_str(f"{done[0]}/{files} files", refresh=False)
            bar.update(n)

        yield advance


@contextmanager
def bar(total: int, desc: str, unit: str) -> Iterator[Callable[[], None]]:
    """A bar over ``total`` items finishing in any order (done / total, rate); yields ``advance()``."""
    if environ.progress_disabled() or not sys.stderr.isatty() or total < 2:
        yield lambda: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False) as b:
        yield lambda: b.update(1)


class TransferBar:
    """What a transfer reports to its bar: bytes as they move (from any thread), files as they finish."""

    def __init__(self, bar=None, files: int = 0) -> None:
        import threading

        self._bar, self._files, self._done = bar, files, 0
        self._lock = threading.Lock()

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.update(nbytes)

    def done(self) -> None:
        if self._bar is not None:
            with self._lock:
                self._done += 1
                self._bar.set_postfix_str(f"{self._done}/{self._files} files", refresh=False)


@contextmanager
def transfer_progress(total: int, desc: str, files: int) -> Iterator[TransferBar]:
    """A bar over ``total`` bytes of ``files`` files moving concurrently: bytes, rate, files done, time left;
    silent (a bar that records nothing) when no one is watching or there is nothing to move."""
    if environ.progress_disabled() or not sys.stderr.isatty() or total <= 0:
        yield TransferBar()
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
              leave=False, postfix=f"0/{files} files") as bar:
        yield TransferBar(bar, files)
