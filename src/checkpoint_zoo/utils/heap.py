"""Pausing Python's cyclic garbage collector while a command builds many objects at once.

Parsing a table of 100,000 rows, validating it and writing its indexed copy make millions of lists, dicts and
tuples that live on; the collector, started every few hundred new containers, walks more of them each time it
reaches its older generations, for nothing: none of them forms a cycle. Paused for that work (and resumed after
it if it ran before), a cold ``zoo ls`` or an index stage spends that time on its own work.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside; reference counting frees as usual. Nested pauses resume at the outermost."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
