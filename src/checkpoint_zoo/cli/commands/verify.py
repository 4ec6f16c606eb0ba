"""``zoo verify``: re-hash local checkpoint files against the table; exit 1 if any is bad.

A checkpoint that is not pulled is the normal state of a partial clone: it is counted and reported as
information (exit 0) unless ``--all`` is given or the checkpoint was named, when it must be here."""

from __future__ import annotations

from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("verify", help="re-hash local checkpoint files against the table (checkpoints not "
                                             "pulled are information unless named or --all)")
    s.add_argument("refs", nargs="*", metavar="REF")
    s.add_argument("--all", action="store_true", dest="require_all",
                   help="require every checkpoint to be here: exit 1 if any is not pulled")
    s.add_argument("--present-only", action="store_true", help="do not mention checkpoints that are not pulled")
    s.add_argument("-v", "--verbose", action="store_true", help="list the good files and the ones not pulled too")


def run(zoo, args) -> int:
    results = zoo.verify(args.refs, present_only=args.present_only and not args.require_all)
    required = args.require_all or bool(args.refs)  # a named checkpoint must be here
    mismatched = [r for r in results if r.status == "mismatch"]
    missing = [r for r in results if r.status == "missing"]
    for r in results:
        if r.status == "mismatch" or (r.status == "missing" and required) or args.verbose:
            echo(f"{r.status:<8}  {r.ref:<32}  {r.path}  {r.detail}".rstrip())
    ok = len(results) - len(mismatched) - len(missing)
    summary = f"{ok} ok, {len(mismatched)} mismatched, {len(missing)} missing"
    if missing and not required:
        refs = len({r.ref for r in missing})
        summary += (f" (not pulled here: {refs} checkpoint(s), fine in a partial clone; `zoo pull REF` fetches one, "
                    "`zoo verify --all` requires every one)")
    echo(summary)
    return 1 if mismatched or (missing and required) else 0
