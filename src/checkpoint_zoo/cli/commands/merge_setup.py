"""``zoo merge-setup``: configure git's merge drivers for the table and DVC pointers (once per clone)."""

from __future__ import annotations

from ..output import echo


def add_parser(subparsers) -> None:
    subparsers.add_parser("merge-setup", help="configure git merge drivers for the table and DVC pointers (once per clone)")


def run(zoo, args) -> int:
    from ...workspace.merge import setup

    if zoo.revision is not None:
        from ...errors import UsageError

        # merge-setup takes no --rev: a zoo opened from a URL (-C) is read at HEAD
        raise UsageError("merge-setup: a zoo at a revision (HEAD) is read-only; run it in a clone's working tree")
    keys = setup(zoo.root)
    echo(f"configured {', '.join(k for k in keys if k.endswith('.driver'))} in .git/config; "
         ".gitattributes routes the table, *.dvc pointers and the pipeline's outputs to them (commit it if it changed)")
    return 0
