"""``zoo validate``: the table against its schema and the present files; problems on stderr, exit 1."""

from __future__ import annotations

import sys

from ..output import echo


def add_parser(subparsers) -> None:
    subparsers.add_parser("validate", help="check the table against its schema and present files")


def run(zoo, args) -> int:
    problems = zoo.validate()
    if problems:
        for p in problems:
            echo(p, file=sys.stderr)
        return 1
    echo(f"{zoo.table_path.relative_to(zoo.root)}: valid ({len(zoo.rows())} rows); present files match it")
    return 0
