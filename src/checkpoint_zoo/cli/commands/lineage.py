"""``zoo lineage``: the checkpoints a model descends from and the ones fine-tuned from it."""

from __future__ import annotations

import json

from ...utils.redact import printable
from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("lineage", help="the checkpoints a model descends from and the ones fine-tuned from it")
    s.add_argument("model")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.add_argument("--rev", help="read the zoo at this git revision")


def run(zoo, args) -> int:
    lineage = zoo.lineage(args.model)
    if args.format == "json":
        echo(json.dumps({"model": args.model, "ancestors": list(lineage.ancestors),
                         "descendants": list(lineage.descendants)}, indent=2))
        return 0
    echo(f"{printable(args.model)}: {len(lineage.ancestors)} ancestor(s), {len(lineage.descendants)} descendant(s)")
    for ref in lineage.ancestors:
        echo(f"  ancestor    {printable(ref)}")
    for ref in lineage.descendants:
        echo(f"  descendant  {printable(ref)}")
    return 0
