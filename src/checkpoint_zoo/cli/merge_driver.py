"""``zoo merge-driver table|dvc|evaluations|generated %O %A %B [%P]``: the entry git's merge drivers call
(configured by ``merge.setup``); not an argparse command, and it opens no Zoo."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .output import echo

ARITY = {"table": 4, "dvc": 4, "evaluations": 4, "generated": 5}


def merge_driver(argv: Sequence[str]) -> int:
    """Run the named driver on the files git passes; 0 merged, 1 conflict or failure, 2 misuse."""
    from ..errors import ZooError
    from ..workspace.merge import dvc_driver, evaluations_driver, generated_driver, table_driver

    if not argv or ARITY.get(argv[0]) != len(argv):
        echo("usage: zoo merge-driver table|dvc|evaluations|generated BASE OURS THEIRS [PATH] (git calls this)",
             file=sys.stderr)
        return 2
    try:
        if argv[0] == "table":
            return table_driver(*argv[1:])
        if argv[0] == "evaluations":
            return evaluations_driver(*argv[1:])
        if argv[0] == "generated":
            return generated_driver(*argv[1:])
        from pathlib import Path

        from ..api import find_root

        return dvc_driver(argv[1], argv[2], argv[3], root=find_root(Path.cwd()))
    except ZooError as e:
        echo(f"zoo merge-driver: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # git passes temp files; anything else given by hand is named, not a traceback
        echo(f"zoo merge-driver: {e.filename}: {e.strerror}; git calls this with the three versions of one file",
             file=sys.stderr)
        return 1
