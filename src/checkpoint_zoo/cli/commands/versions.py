"""``zoo versions``: the branches and tags holding a zoo, with counts and the best per task and dataset."""

from __future__ import annotations

import json

from ..output import echo, print_table


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("versions", help="branches and tags holding a zoo, with counts and the best per task and dataset")
    s.add_argument("--format", choices=("table", "json"), default="table")


def run(zoo, args) -> int:
    from ...verbs.versions import versions

    found = versions(zoo.git_dir)
    if args.format == "json":
        echo(json.dumps([v.to_dict() for v in found], indent=2))
        return 0
    rows = []
    for v in found:
        best = "; ".join(f"{task}: {info['ref']} ("
                         f"{', '.join(f'{k}={val:.4f}' for k, val in info.items() if k != 'ref' and isinstance(val, float))})"
                         for task, info in sorted(v.best.items())) or "-"
        rows.append([v.name, v.kind, v.commit[:10], v.date[:19], str(v.models), str(v.checkpoints), best])
    print_table(("version", "kind", "commit", "date", "models", "checkpoints", "best per task/dataset/split"), rows)
    return 0
