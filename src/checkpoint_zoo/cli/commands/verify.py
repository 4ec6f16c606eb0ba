"""``zoo verify``: re-hash local checkpoint files against the table; exit 1 if any is bad."""

from __future__ import annotations

from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("verify", help="re-hash local checkpoint files against the table")
    s.add_argument("refs", nargs="*", metavar="REF")
    s.add_argument("--present-only", action="store_true", help="do not count checkpoints that are not pulled")
    s.add_argument("-v", "--verbose", action="store_true", help="list the good files too")


def run(zoo, args) -> int:
    results = zoo.verify(args.refs, present_only=args.present_only)
    bad = [r for r in results if r.status != "ok"]
    for r in results:
        if r.status != "ok" or args.verbose:
            echo(f"{r.status:<8}  {r.ref:<32}  {r.path}  {r.detail}".rstrip())
    ok = len(results) - len(bad)
    echo(f"{ok} ok, {sum(r.status == 'mismatch' for r in bad)} mismatched, {sum(r.status == 'missing' for r in bad)} missing")
    return 1 if bad else 0
