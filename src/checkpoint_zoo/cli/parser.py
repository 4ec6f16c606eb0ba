"""The ``zoo`` argument parser: the global flags, then one subcommand group per module of ``COMMANDS``.

A new command is a module in ``commands/`` with ``add_parser(subparsers)`` and ``run(zoo, args)``, listed
here; ``zoo --help`` lists the commands in this order.
"""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import Any

from ..utils.redact import printable
from .commands import (
    add,
    commit,
    diff,
    doctor,
    export,
    init,
    lineage,
    ls,
    merge_setup,
    pull,
    push,
    registries,
    release,
    remote,
    rm,
    serve,
    validate,
    verify,
    versions,
)
from .commands import token as token_command  # "token" names a loop variable below

COMMANDS: tuple[ModuleType, ...] = (ls, pull, lineage, add, export, push, commit, rm, verify, validate, registries, versions,
                                    release, serve, token_command, diff, merge_setup, remote, init, doctor)

GLOBAL_FLAGS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("-C", "--repo"), dict(help="the zoo to work on (default: the repo you stand in, or $ZOO_REPO)")),
    (("--traceback",), dict(action="store_true", help="show the full traceback of unexpected errors")),
    (("--trust-code",), dict(action="store_true",
                             help="let a zoo opened at another revision (--rev) run its own code folder (zoo_code/), "
                                  "which its conf/ may name; read that code first")),
)

# what may stand before COMMAND (check_global_flags)
GLOBAL_OPTION_STRINGS = frozenset({"-h", "--help", *(flag for flags, _ in GLOBAL_FLAGS for flag in flags)})


class ZooParser(argparse.ArgumentParser):
    """argparse, whose usage errors echo the arguments given through the same sanitiser."""

    def _print_message(self, message: str, file=None) -> None:
        super()._print_message(printable(message), file)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (public so tests and docs can inspect it). Each subcommand's ``run`` default is
    the ``run`` of the module that added it."""
    p = ZooParser(
        prog="zoo",
        description="Checkpoint Zoo: list, fetch, add and check the checkpoints of a git + DVC model zoo.",
        epilog="References: MODEL, MODEL@STEP, MODEL@latest, MODEL@best. Model arguments of ls take shell wildcards.",
    )
    for flags, options in GLOBAL_FLAGS:
        p.add_argument(*flags, **options)
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        known = set(sub.choices)
        module.add_parser(sub)
        for name in sub.choices.keys() - known:
            sub.choices[name].set_defaults(run=module.run)
    return p


def check_global_flags(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Name a bad flag before COMMAND as unrecognized (a usage error, exit 2), rather than let argparse
    complain about the missing COMMAND."""
    for token in argv:
        if not token.startswith("-"):
            break
        if token.split("=")[0] not in GLOBAL_OPTION_STRINGS:
            parser.error(f"unrecognized arguments: {token}")
