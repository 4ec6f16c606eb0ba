"""``zoo archs|tasks|datasets``: what conf/ registers (broken files are listed, not hidden)."""

from __future__ import annotations

import json
import sys
from typing import Any

from ...utils.redact import printable
from ..output import echo, print_table

GROUPS = (("archs", "architectures (conf/arch/*.yaml): name, target, where declared"),
          ("tasks", "tasks (conf/task/*.yaml): metrics, the @best rule, the reported split"),
          ("datasets", "datasets (conf/dataset/*.yaml): task, input contract, classes, license"))

Listing = tuple[list[dict[str, Any]], list[list[str]], tuple[str, ...]]


def add_parser(subparsers) -> None:
    for name, what in GROUPS:
        s = subparsers.add_parser(name, help=f"list the registered {what}")
        s.add_argument("--format", choices=("table", "json"), default="table")
        s.add_argument("--rev", help="read conf/ at this git revision")


def run(zoo, args) -> int:
    reg = zoo.listing_registry()
    items, rows, headers = {"archs": _archs, "tasks": _tasks, "datasets": _datasets}[args.verb](reg)
    if args.format == "json":
        echo(json.dumps({"items": items, "problems": list(reg.problems)}, indent=2, default=str))
    else:
        print_table(headers, [[printable(c) for c in r] for r in rows])
        for problem in reg.problems:
            echo(f"problem: {printable(problem)}", file=sys.stderr)
    return 1 if reg.problems else 0


def _archs(reg) -> Listing:
    items = [{"name": a.name, "target": a.target, "file": a.file,
              "kwargs": {k: v for k, v in a.config.items() if k != "_target_"}} for a in reg.archs.values()]
    rows = [[i["name"], i["target"], i["file"]] for i in items]
    return items, rows, ("arch", "target", "declared in")


def _tasks(reg) -> Listing:
    items = [{"name": t.name, "metrics": list(t.metrics), "primary_metric": t.primary_metric,
              "higher_is_better": t.primary.higher_is_better, "select_split": t.select_split,
              "report_split": t.report_split, "file": t.file, "description": t.description,
              "reproducibility": {m: spec.tolerance.describe() for m, spec in t.metrics.items()}}
             for t in reg.tasks.values()]
    rows = [[i["name"], ", ".join(i["metrics"]),
             f"{i['primary_metric']} on {i['select_split']} ({'max' if i['higher_is_better'] else 'min'})",
             i["report_split"], i["file"]] for i in items]
    return items, rows, ("task", "metrics", "@best by", "reported", "declared in")


def _datasets(reg) -> Listing:
    items = [{"name": d.name, "task": d.task, "loader": d.loader.get("_target_"), "input": d.input,
              "labels": list(d.labels), "license": d.license, "file": d.file, "description": d.description}
             for d in reg.datasets.values()]
    rows = [[i["name"], i["task"], "x".join(str(n) for n in (i["input"].get("shape") or [])) or "-",
             str(len(i["labels"])), i["license"], i["file"]] for i in items]
    return items, rows, ("dataset", "task", "input", "classes", "license", "declared in")
