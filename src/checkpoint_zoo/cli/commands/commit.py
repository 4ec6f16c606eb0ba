"""``zoo commit``: stage the zoo's changes and git commit them."""

from __future__ import annotations

from ...utils.redact import printable
from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("commit", help="stage the zoo's changes (table, pointers, pipeline inputs and outputs, "
                                             "in-repo remote objects) and git commit them; refused while dvc repro is "
                                             "due or a checkpoint it adds is not on the default remote")
    s.add_argument("-m", "--message", required=True)
    s.add_argument("--push", action="store_true",
                   help="first push the checkpoints this commit adds that the default remote lacks")
    s.add_argument("--allow-in-repo", action="store_true",
                   help="with --push: as zoo push --allow-in-repo (checkpoints above the in-repo limit)")
    s.add_argument("--no-check", action="store_true",
                   help="commit even if the pipeline's outputs are stale or a checkpoint is not on the remote")


def run(zoo, args) -> int:
    res = zoo.commit(args.message, check_pipeline=not args.no_check, push=args.push, check_remote=not args.no_check,
                     allow_in_repo=args.allow_in_repo)
    if not res.commit:
        echo("nothing to commit: the zoo's files and the pipeline's outputs are as in the last commit")
        return 0
    echo(f"committed {res.commit}: {len(res.files)} file(s)")
    for f in res.files:
        echo(f"  {printable(f)}")
    return 0
