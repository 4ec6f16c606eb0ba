"""``zoo release``, ``zoo stage``, ``zoo history`` and ``zoo gc``: the model registry in git tags, and the
remote's garbage."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ...errors import UsageError
from ...utils.redact import printable
from ..output import echo, human, print_table


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("release", help="release a checkpoint as a version of its model (a GTO tag MODEL@vX.Y.Z)")
    s.add_argument("ref", metavar="MODEL@STEP")
    s.add_argument("version", metavar="VERSION", help="a semantic version: v1.2.0")
    s.add_argument("-m", "--message", default="", help="why (kept in the annotated tag)")

    s = subparsers.add_parser("stage", help="put a release in a stage (prod, staging …): GTO's MODEL#STAGE#N tags")
    s.add_argument("ref", metavar="MODEL@VERSION", help="MODEL@v1.2.0 (or MODEL@STEP for an unprotected stage); "
                                                        "with --remove: MODEL")
    s.add_argument("stage", metavar="STAGE")
    s.add_argument("--remove", action="store_true", help="empty the stage instead")
    s.add_argument("-m", "--message", default="", help="why (kept in the annotated tag)")

    s = subparsers.add_parser("history", help="every release and stage change of a model: who, when, why")
    s.add_argument("model")
    s.add_argument("--at", metavar="DATE", help="which checkpoint held each stage at this date (ISO 8601, UTC "
                                                "unless it says otherwise)")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.add_argument("--rev", help="read the zoo at this git revision")

    s = subparsers.add_parser("gc", help="remove from the remote the objects no branch, tag, release or stage uses")
    s.add_argument("--dry-run", action="store_true", help="list what would go and how many bytes; remove nothing")
    s.add_argument("--grace-days", type=float, default=7.0,
                   help="keep objects pushed in the last N days even if nothing references them yet (default 7)")
    s.add_argument("-r", "--remote", help="the remote to clean (default: the zoo's default remote)")


def run(zoo, args) -> int:
    return {"release": _release, "stage": _stage, "history": _history, "gc": _gc}[args.verb](zoo, args)


def _release(zoo, args) -> int:
    done = zoo.release(args.ref, args.version, message=args.message)
    echo(f"released {printable(done.ref)} as {printable(done.tag)} (commit {done.commit[:12]})")
    echo("next: git push --follow-tags   # the release commit and its tag travel together")
    return 0


def _stage(zoo, args) -> int:
    if args.remove:
        done = zoo.unstage(args.ref, args.stage, message=args.message)
        echo(f"{printable(args.ref)}: stage {printable(args.stage)} emptied ({printable(done.tag)})")
    else:
        done = zoo.stage(args.ref, args.stage, message=args.message)
        echo(f"{printable(done.ref)} is now in {printable(args.stage)} ({printable(done.tag)})")
    echo(f"next: git push origin {printable(done.tag)}")
    return 0


def _parse_date(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at {text!r}: not a date; write ISO 8601, e.g. 2026-12-01 or 2026-12-01T14:30") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _history(zoo, args) -> int:
    data = zoo.history(args.model, at=_parse_date(args.at) if args.at else None)
    if args.format == "json":
        echo(json.dumps(data, indent=2))
        return 0
    rows = [[e["date"][:19].replace("T", " "), e["action"], e["version"] or e["stage"] or "", e["checkpoint"] or "?",
             e["by"], e["message"].splitlines()[0] if e["message"] else ""] for e in data["events"]]
    if not rows:
        echo(f"{printable(args.model)}: no releases or stages yet (`zoo release {printable(args.model)}@STEP v1.0.0`)")
        return 0
    print_table(["DATE", "ACTION", "VERSION/STAGE", "CHECKPOINT", "BY", "MESSAGE"],
                [[printable(x) for x in r] for r in rows])
    when = f" at {data['at']}" if data["at"] else " now"
    held = ", ".join(f"{s}: {v['version'] or v['checkpoint']}" for s, v in data["stages"].items()) or "none"
    echo(f"\nstages{when}: {printable(held)}")
    return 0


def _gc(zoo, args) -> int:
    report = zoo.gc(dry_run=args.dry_run, grace_days=args.grace_days, remote=args.remote)
    verb = "would remove" if args.dry_run else "removed"
    for path, size in report.removed[:50]:
        echo(f"  {verb} {printable(path)} ({human(size)})")
    if len(report.removed) > 50:
        echo(f"  … and {len(report.removed) - 50} more")
    echo(f"{report.remote}: {verb} {len(report.removed)} object(s), {human(report.removed_bytes)}; kept "
         f"{report.kept} in use and {report.young} younger than {args.grace_days:g} day(s)")
    for key, upload in report.aborted[:50]:
        echo(f"  {'would abort' if args.dry_run else 'aborted'} the unfinished upload {printable(upload)[:16]}… "
             f"of {printable(key)}")
    for journal in report.journals[:50]:
        echo(f"  {'would drop' if args.dry_run else 'dropped'} the abandoned transfer journal {printable(journal)}")
    if report.aborted or report.journals:
        echo(f"abandoned transfers older than {args.grace_days:g} day(s): {len(report.aborted)} upload(s) "
             f"{'to abort' if args.dry_run else 'aborted'}, {len(report.journals)} journal(s) "
             f"{'to drop' if args.dry_run else 'dropped'}")
    return 0
