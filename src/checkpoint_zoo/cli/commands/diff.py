"""``zoo diff``: what changed between two zoo versions (default: HEAD vs the working tree)."""

from __future__ import annotations

import json

from ...utils.redact import printable
from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("diff", help="what changed between two zoo versions (default: HEAD vs the working tree)")
    s.add_argument("a", nargs="?", help="old revision (default HEAD)")
    s.add_argument("b", nargs="?", help="new revision (default: the working tree)")
    s.add_argument("--format", choices=("text", "json"), default="text")


def run(zoo, args) -> int:
    from ...verbs.versions import diff

    a = args.a if args.a is not None else "HEAD"
    if zoo.revision is not None and args.b is None:
        from ...errors import UsageError

        raise UsageError("a zoo opened from a URL has no working tree: give two revisions, e.g. `zoo diff v1 main`")
    d = diff(zoo.root if zoo.revision is None else zoo.location, a, args.b)
    if args.format == "json":
        echo(json.dumps(d.to_dict(), indent=2))
        return 0
    echo(f"zoo diff {d.a} -> {d.b}")
    for label, refs in (("added", d.added), ("removed", d.removed), ("replaced (new bytes)", d.replaced)):
        for ref in refs:
            echo(f"  {label:<20} {ref}")
    for ref, files in d.files.items():
        echo(f"  {'files':<20} {ref}  " + ", ".join(f"{printable(n)} {what}" for n, what in files.items()))
    for ref, cols in d.changed.items():
        for col, (old, new) in cols.items():
            if col == "files":
                continue
            echo(f"  {'changed':<20} {ref}  {col}: {printable(old)!r} -> {printable(new)!r}")
    moved = {r: m for r, m in d.metrics.items() if any(v["changed"] for v in m.values())}
    for ref, m in moved.items():
        echo(f"  {'metrics':<20} {ref}  " + ", ".join(f"{k} {v['a']:.6g} -> {v['b']:.6g} ({v['delta']:+.4g})"
                                                     for k, v in m.items() if v["changed"]))
    echo(f"{len(d.added)} added, {len(d.removed)} removed, {len(d.replaced)} replaced, {len(d.changed)} with "
         f"metadata changes, {len(moved)} with metric changes beyond their reproducibility tolerance "
         f"({len(d.metrics) - len(moved)} "
         "compared unchanged)")
    return 0
