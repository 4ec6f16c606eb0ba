"""``zoo ls`` (the table, filtered and sorted) and ``zoo show`` (every field of one checkpoint)."""

from __future__ import annotations

import json
import sys

from ...utils.redact import printable
from ..output import csv_safe, echo, human, print_table

TABLE_COLUMNS = ("model", "step", "arch", "task", "dataset", "num_params", "size", "license", "tags", "resumable")


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("ls", help="list checkpoints (the latest of each model by default)")
    s.add_argument("patterns", nargs="*", metavar="MODEL", help="model names or wildcards, e.g. 'mnist-*'")
    s.add_argument("--exclude", action="append", metavar="PATTERN", help="leave out models matching this")
    s.add_argument("--all-steps", action="store_true", help="every checkpoint, not only the latest per model")
    s.add_argument("--task")
    s.add_argument("--arch")
    s.add_argument("--tag")
    s.add_argument("--where", help="COLUMN OP VALUE clauses joined by and/or, negated by not, grouped by ( ); "
                   "OP one of == != < <= > >=")
    s.add_argument("--sort", metavar="COLUMN", help="sort by a column; --sort=-COLUMN for descending")
    s.add_argument("--format", choices=("table", "csv", "json"), default="table")
    s.add_argument("--rev", help="list the zoo at this git revision (branch, tag, commit) without checking it out")

    s = subparsers.add_parser("show", help="every field of one checkpoint and how to pull it")
    s.add_argument("ref")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.add_argument("--rev", help="read the zoo at this git revision")


def run(zoo, args) -> int:
    return show(zoo, args) if args.verb == "show" else ls(zoo, args)


def _unmatched(zoo, patterns) -> int:
    """After an empty listing: 1 with a hint when a pattern names no model at all, else 0 with a note."""
    import difflib
    import fnmatch

    if not patterns:
        empty = not zoo.select((), all_steps=True)
        echo("zoo ls: the zoo has no checkpoints yet (`zoo add` one)" if empty
             else "zoo ls: no checkpoint matches these filters", file=sys.stderr)
        return 0
    models = sorted({r["model"] for r in zoo.select(())})
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(m, pattern) for m in models):
            close = difflib.get_close_matches(pattern, models, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            echo(f"zoo ls: no model matches {printable(pattern)!r} ({hint}`zoo ls` lists all {len(models)} models)",
                 file=sys.stderr)
            return 1
    echo("zoo ls: no checkpoint of these models matches these filters", file=sys.stderr)
    return 0


def _row_of(c) -> dict[str, str]:
    """What ``failures`` needs of a listed checkpoint (its bytes), without reading the whole table again."""
    return {"model": c.model, "step": str(c.step), "sha256": c.sha256}


def ls(zoo, args) -> int:
    selection = dict(exclude=args.exclude or (), task=args.task, arch=args.arch, tag=args.tag,
                     where=args.where, sort=args.sort, all_steps=args.all_steps)
    if args.format == "csv":  # straight from the rows: the export path for large tables
        import csv

        from ...catalog.rules import COLUMNS

        rows = zoo.select(args.patterns, **selection)  # before any output: an error prints nothing on stdout
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([v if not v or v[0] not in "=+-@" else csv_safe(v) for v in (r[c] for c in COLUMNS)]
                         for r in rows)
        return 0 if rows else _unmatched(zoo, args.patterns)
    ckpts = zoo.list(args.patterns, **selection)
    if not ckpts and args.format == "table":
        return _unmatched(zoo, args.patterns)
    if args.format == "json":
        echo(json.dumps([c.to_dict() for c in ckpts], indent=2))
        return 0 if ckpts else _unmatched(zoo, args.patterns)
    rows = [[c.model, str(c.step), c.arch, c.task, c.dataset, f"{c.num_params:,}", human(c.size_bytes),
             c.license, ";".join(c.tags), "yes" if c.resumable else ""] for c in ckpts]
    headers = list(TABLE_COLUMNS)
    from ...verbs.ls import failures

    failed = failures(zoo, {c.model for c in ckpts}, [_row_of(c) for c in ckpts])
    if any(c.metrics for c in ckpts) or failed:
        # each row's own task decides which metric is its score
        tasks = zoo.listing_registry().tasks
        headers.insert(5, "score")
        for r, c in zip(rows, ckpts):
            metric = tasks[c.task].primary_metric if c.task in tasks else next(iter(sorted(c.metrics)), "")
            r.insert(5, f"{metric} {c.metrics[metric]:.4f}" if metric in c.metrics
                     else "evaluation failed" if c.ref in failed else "-")
    print_table(headers, [[printable(x) for x in r] for r in rows])
    models = {c.model for c in ckpts}
    total = sum(c.size_bytes for c in ckpts)
    scope = "checkpoints" if args.all_steps else "latest checkpoints (--all-steps for every row)"
    echo(f"\n{len(models)} models, {len(ckpts)} {scope}, {human(total)}")
    return 0


def show(zoo, args) -> int:
    ckpt = zoo.get(args.ref)
    d = ckpt.to_dict()
    d["local_path"] = str(zoo.local_path(ckpt.ref))
    local = zoo.local_path(ckpt.ref)
    d["pulled"] = all((local / n).is_file() for n in ckpt.files) if ckpt.files else local.is_file()
    from ...verbs.ls import failures

    failed = failures(zoo, [ckpt.model], [_row_of(ckpt)]).get(ckpt.ref)
    if failed:
        d["evaluation_failed"] = failed
    if args.format == "json":
        echo(json.dumps(d, indent=2))
        return 0
    if zoo.revision is None:
        from ...errors import ZooError
        from ...inference import InputContract

        try:
            contract = InputContract.from_spec(ckpt.dataset, zoo.registry().dataset(ckpt.dataset).input)
            d["use"] = f'Zoo().pipeline("{ckpt.ref}")(x), x: {contract.describe()}'
        except ZooError:  # an unregistered dataset is reported by zoo validate, not here
            pass
    width = max(len(k) for k in d)
    for key, value in d.items():
        if key == "files":
            for i, (name, sha) in enumerate(sorted(value.items())):  # one line per file of a folder checkpoint
                echo(f"{(key if i == 0 else '').ljust(width)}  {sha[:16]}…  {printable(name)}")
            continue
        if isinstance(value, list):
            value = ";".join(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v:.6g}" for k, v in value.items()) or (
                "(evaluation failed: see evaluation_failed)" if failed else "(not evaluated yet: dvc repro)")
        echo(f"{key.ljust(width)}  {printable('' if value is None else str(value))}")
    return 0
