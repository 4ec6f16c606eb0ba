"""``zoo init``: a new zoo for a team, from the files the installed package carries."""

from __future__ import annotations

from pathlib import Path

from ...utils.redact import printable
from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("init", help="start a new zoo in an empty folder or an existing git repository")
    s.add_argument("dir", nargs="?", default=".", help="where (default: here)")
    s.add_argument("--remote", metavar="URL", help="the default DVC remote (s3://bucket/prefix or a folder); "
                                                   "without it the zoo has none yet: `zoo remote add` one")
    s.add_argument("--reference", action="store_true",
                   help="also register the reference zoo's architectures and datasets (needs checkpoint-zoo[reference])")


def run(zoo, args) -> int:
    from ...pipeline import write_params
    from ...utils.version import __version__
    from ...verbs.init import first_commit, new_zoo

    root = new_zoo(Path(args.dir), remote_url=args.remote, reference=args.reference)
    write_params(root)
    commit = first_commit(root, f"Start a checkpoint zoo (checkpoint-zoo {__version__})")
    echo(f"new zoo in {printable(str(root))} (commit {commit[:12]})")
    echo("next: zoo add FILE --model NAME --step N --arch A --task T --dataset D --license L; dvc repro; "
         "zoo commit --push")
    return 0
