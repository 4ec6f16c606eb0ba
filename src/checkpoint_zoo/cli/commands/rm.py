"""``zoo rm``: remove checkpoints from the zoo."""

from __future__ import annotations

from ..contributing import merge_drivers, recipe
from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("rm", help="remove checkpoints from the zoo")
    s.add_argument("refs", nargs="+", metavar="REF")


def run(zoo, args) -> int:
    gone = zoo.remove(args.refs)
    merge_drivers(zoo)
    refs = ", ".join(c.ref for c in gone)
    echo(f"removed {refs}; next: {recipe(f'Remove {refs}', push=False)}")
    return 0
