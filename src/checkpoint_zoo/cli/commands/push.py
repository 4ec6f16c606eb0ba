"""``zoo push``: upload checkpoints (all local ones by default) to the remote."""

from __future__ import annotations

from ..arguments import positive_int
from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("push", help="upload checkpoints (all local ones by default) to the remote")
    s.add_argument("refs", nargs="*", metavar="REF")
    s.add_argument("-r", "--remote")
    s.add_argument("-j", "--jobs", type=positive_int, help="uploads at a time (default DVC's: 4 per core)")
    s.add_argument("--allow-in-repo", action="store_true",
                   help="store checkpoints above storage.in_repo_max_mb (default 5 MB) in a remote inside the work "
                        "tree anyway (git then carries them into every clone)")


def run(zoo, args) -> int:
    res = zoo.push(args.refs, remote=args.remote, jobs=args.jobs, allow_in_repo=args.allow_in_repo)
    echo(f"pushed to remote {res.remote!r}: {res.uploaded} object(s) uploaded (sha256 checked before upload)")
    if res.replaced:
        echo(f"replaced {res.replaced} wrong object(s) on the remote (other bytes at their keys) with the good "
             "local copies")
    if res.staged:
        echo(f"staged {' '.join(res.staged)}: this remote lives in the work tree, so its objects reach teammates "
             "in git; commit them (zoo commit -m MESSAGE)")
    if res.skipped:
        echo(f"not in the local cache, skipped: {', '.join(res.skipped)}")
    return 0
