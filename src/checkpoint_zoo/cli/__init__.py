"""The ``zoo`` command line: ``main`` (parse, run one command, map errors to exit codes) and the console
script ``console_main``. Commands live in ``commands/``, one module per group, listed in ``parser.COMMANDS``.
Nothing in the library imports this package (ruff's banned-api rule): it is the top layer."""

from __future__ import annotations

from .main import console_main, main
from .output import csv_safe as _csv_safe  # tests check the CSV export's formula guard through this name
from .parser import build_parser

__all__ = ["_csv_safe", "build_parser", "console_main", "main"]
