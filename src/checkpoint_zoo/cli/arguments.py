"""Argument types more than one command shares."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """``-j/--jobs``: transfers at a time, 1 to 256."""
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number from 1 to 256")
    return int(text)
