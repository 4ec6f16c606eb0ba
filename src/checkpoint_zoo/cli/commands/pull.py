"""``zoo pull``: fetch just these checkpoints, sha256-checked."""

from __future__ import annotations

from ..arguments import positive_int
from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("pull", help="fetch just these checkpoints and check their sha256")
    s.add_argument("refs", nargs="+", metavar="REF")
    s.add_argument("-r", "--remote", help="DVC remote (default: the repo's default remote)")
    s.add_argument("--rev", help="fetch the checkpoint of this git revision into the user cache (nothing is checked out)")
    s.add_argument("-j", "--jobs", type=positive_int, help="transfers at a time (default 8)")
    s.add_argument("--with-state", action="store_true",
                   help="also fetch the training state (optimizer, scheduler, RNG, step), sha256-checked")


def run(zoo, args) -> int:
    for r in zoo.pull(args.refs, remote=args.remote, jobs=args.jobs, with_state=args.with_state):
        shown = r.path.relative_to(zoo.root) if zoo.revision is None else r.path
        echo(f"{r.status:<10}  {r.ref:<32}  {shown}  (sha256 verified)")
    return 0
