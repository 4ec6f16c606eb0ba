"""The ``zoo`` command: parses arguments, calls one ``Zoo`` method per verb, prints.

Error boundary: a known ZooError prints one line (or the validation list) on stderr and exits 1;
usage errors exit 2; ``--traceback`` shows the full trace of anything else. Heavy imports (dvc,
pandas, torch) happen only inside the verbs that need them, so ``zoo --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .safety import printable, redact_urls

TABLE_COLUMNS = ("model", "step", "arch", "task", "dataset", "num_params", "size", "license", "tags", "resumable")



def _print(*parts: object, file=None, end: str = "\n") -> None:
    """print(), through the one sanitiser: nothing from input reaches the terminal as a control sequence, and
    no URL password (a remote's hand-written config, an error quoting it) is shown."""
    print(*(printable(redact_urls(str(p))) for p in parts), file=file, end=end)


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors echo the arguments given through the same sanitiser."""

    def _print_message(self, message: str, file=None) -> None:
        super()._print_message(printable(message), file)

def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _csv_safe(value: object) -> str:
    """Neutralise spreadsheet formulas: a leading = + - @ gets a quote (numbers stay as they are)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@"):
        try:
            float(text)
            return text
        except ValueError:
            return "'" + text
    return text


def _print_table(headers: Sequence[str], rows: list[list[str]]) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    _print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip())
    for r in rows:
        _print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def cmd_ls(zoo, args) -> int:
    selection = dict(exclude=args.exclude or (), task=args.task, arch=args.arch, tag=args.tag,
                     where=args.where, sort=args.sort, all_steps=args.all_steps)
    if args.format == "csv":  # straight from the rows: the export path for large tables
        import csv

        from .catalog.rules import COLUMNS

        rows = zoo.select(args.patterns, **selection)  # before any output: an error prints nothing on stdout
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([v if not v or v[0] not in "=+-@" else _csv_safe(v) for v in (r[c] for c in COLUMNS)]
                         for r in rows)
        return 0
    ckpts = zoo.list(args.patterns, **selection)
    if args.format == "json":
        _print(json.dumps([c.to_dict() for c in ckpts], indent=2))
    else:
        rows = [[c.model, str(c.step), c.arch, c.task, c.dataset, f"{c.num_params:,}", _human(c.size_bytes),
                 c.license, ";".join(c.tags), "yes" if c.resumable else ""] for c in ckpts]
        headers = list(TABLE_COLUMNS)
        if any(c.metrics for c in ckpts):
            # each row's own task decides which metric is its score
            tasks = zoo.listing_registry().tasks
            headers.insert(5, "score")
            for r, c in zip(rows, ckpts):
                metric = tasks[c.task].primary_metric if c.task in tasks else next(iter(sorted(c.metrics)), "")
                r.insert(5, f"{metric} {c.metrics[metric]:.4f}" if metric in c.metrics else "-")
        _print_table(headers, [[printable(x) for x in r] for r in rows])
        models = {c.model for c in ckpts}
        total = sum(c.size_bytes for c in ckpts)
        scope = "checkpoints" if args.all_steps else "latest checkpoints (--all-steps for every row)"
        _print(f"\n{len(models)} models, {len(ckpts)} {scope}, {_human(total)}")
    return 0


def cmd_show(zoo, args) -> int:
    ckpt = zoo.get(args.ref)
    d = ckpt.to_dict()
    d["local_path"] = str(zoo.local_path(ckpt.ref))
    local = zoo.local_path(ckpt.ref)
    d["pulled"] = all((local / n).is_file() for n in ckpt.files) if ckpt.files else local.is_file()
    if args.format == "json":
        _print(json.dumps(d, indent=2))
        return 0
    if zoo.revision is None:
        from .errors import ZooError
        from .inference import InputContract

        try:
            contract = InputContract.from_spec(ckpt.dataset, zoo.registry().dataset(ckpt.dataset).input)
            d["use"] = f'Zoo().pipeline("{ckpt.ref}")(x), x: {contract.describe()}'
        except ZooError:  # an unregistered dataset is reported by zoo validate, not here
            pass
    width = max(len(k) for k in d)
    for key, value in d.items():
        if key == "files":
            for i, (name, sha) in enumerate(sorted(value.items())):  # one line per file of a folder checkpoint
                _print(f"{(key if i == 0 else '').ljust(width)}  {sha[:16]}…  {printable(name)}")
            continue
        if isinstance(value, list):
            value = ";".join(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v:.6g}" for k, v in value.items()) or "(not evaluated yet: dvc repro)"
        _print(f"{key.ljust(width)}  {printable('' if value is None else str(value))}")
    return 0


def _count(text: str, flag: str) -> int:
    from .catalog.rules import count_problem
    from .errors import InvalidValueError, UsageError

    problem = count_problem(text, flag)
    if problem:
        try:
            int(text)
        except ValueError:
            raise UsageError(problem) from None  # not a whole number at all, like any other bad argument
        raise InvalidValueError(problem)
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number from 1 to 256")
    return int(text)


def cmd_pull(zoo, args) -> int:
    for r in zoo.pull(args.refs, remote=args.remote, jobs=args.jobs, with_state=args.with_state):
        shown = r.path.relative_to(zoo.root) if zoo.revision is None else r.path
        _print(f"{r.status:<10}  {r.ref:<32}  {shown}  (sha256 verified)")
    return 0


def _parse_reported(text: str | None):
    from .errors import UsageError

    if not text:
        return None
    metric, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return metric.strip(), float(value)
    except ValueError:
        raise UsageError(f"--reported {text!r}: write METRIC=VALUE, e.g. accuracy=0.97") from None


def recipe(message: str, push: bool = True) -> str:
    """The contributor recipe's remaining steps (README: Contributing), as one command line."""
    quoted = "'" + message.replace("'", "'\\''") + "'"
    return f"dvc repro && {'zoo push && ' if push else ''}zoo commit -m {quoted}"


def _merge_drivers(zoo) -> None:
    """Configure the merge drivers in a clone that lacks them (git never takes them from the repo), so a
    contributor's later `git merge` just works."""
    from .merge import ensure

    if zoo.revision is None:
        ensure(zoo.root)


def cmd_lineage(zoo, args) -> int:
    lineage = zoo.lineage(args.model)
    if args.format == "json":
        _print(json.dumps({"model": args.model, "ancestors": list(lineage.ancestors),
                           "descendants": list(lineage.descendants)}, indent=2))
        return 0
    _print(f"{printable(args.model)}: {len(lineage.ancestors)} ancestor(s), {len(lineage.descendants)} descendant(s)")
    for ref in lineage.ancestors:
        _print(f"  ancestor    {printable(ref)}")
    for ref in lineage.descendants:
        _print(f"  descendant  {printable(ref)}")
    return 0


def cmd_export(zoo, args) -> int:
    out = zoo.export(args.ref, args.dir, format=args.format)
    _print(printable(f"exported {out.ref} ({out.format}) to {out.path}: {', '.join(out.files)}"))
    _print(printable(f"load it: {out.how_to_load}"))
    return 0


def cmd_add(zoo, args) -> int:
    if args.from_manifest:
        return _add_from(zoo, args)
    missing = [flag for flag, value in (("the checkpoint file (FILE)", args.file), ("--model", args.model), ("--step", args.step),
                                        ("--task", args.task), ("--dataset", args.dataset),
                                        ("--license", args.license)) if value is None]
    if missing:
        from .errors import UsageError

        raise UsageError(f"missing {', '.join(missing)}; or add many with --from MANIFEST")
    res = zoo.add(
        args.file, model=args.model, step=_count(args.step, "--step"), arch=args.arch, task=args.task, dataset=args.dataset,
        license=args.license, epoch=args.epoch, description=args.description or "",
        tags=[t.strip() for t in (args.tags or "").split(",") if t.strip()], parent=args.parent,
        source=args.source, reported=_parse_reported(args.reported), move=args.move, replace=args.replace,
        convert=args.convert, allow_globals=tuple(args.allow_global or ()), training_state=args.state,
    )
    c = res.checkpoint
    if res.conversion is not None:
        conv = res.conversion
        _print(printable(f"converted {conv.source_name} ({conv.source_kind}) to safetensors in a separate process "
                             f"with torch.load(weights_only=True): {conv.tensors} tensor{'s' if conv.tensors != 1 else ''}"
                             + (f" from key {conv.taken_from!r}" if conv.taken_from else "")
                             + (f", left out {', '.join(conv.dropped)}" if conv.dropped else "")
                             + (f", allowed globals {', '.join(conv.allowed_globals)}" if conv.allowed_globals else "")))
    if res.status == "unchanged":
        _print(f"{c.ref}: identical bytes already in the zoo; nothing to do")
        return 0
    _print(f"{res.status} {c.ref}: {c.path} ({_human(c.size_bytes)}, {c.num_params:,} params, {c.dtype}, "
           f"sha256 {c.sha256[:12]}…)")
    if c.state_sha256:
        from .catalog.rules import state_path

        _print(f"training state: {state_path(c.model, c.step)} (sha256 {c.state_sha256[:12]}…); resumable")
    if res.staged:
        _print(f"staged: {' '.join(res.staged)}")
    _print(f"next: {recipe(f'Add {c.ref}')}")
    _merge_drivers(zoo)  # after success only: a refused command changes nothing
    return 0


def _add_from(zoo, args) -> int:
    from .errors import UsageError

    if args.file is not None:
        raise UsageError(f"give FILE or --from MANIFEST, not both ({args.file!r} and {args.from_manifest!r})")
    if args.convert or args.allow_global:
        raise UsageError("--convert works one file at a time; convert them first, or add each with zoo add FILE --convert")
    tags = [t.strip() for t in (args.tags or "").split(",") if t.strip()]
    common = dict(model=args.model, step=args.step, arch=args.arch, task=args.task, dataset=args.dataset,
                  license=args.license, epoch=args.epoch, description=args.description, tags=tuple(tags),
                  parent=args.parent, source=args.source, reported=args.reported)
    res = zoo.add_from(args.from_manifest, move=args.move, replace=args.replace,
                       **{k: v for k, v in common.items() if v not in (None, "", ())})
    models = {c.model for c in res.added + res.replaced}
    _print(f"added {len(res.added)}, replaced {len(res.replaced)}, unchanged {len(res.unchanged)} "
          f"checkpoint(s) of {len(models)} model(s): {_human(res.bytes_added)} in {res.seconds:.1f} s")
    if res.staged:
        _print(f"staged: {' '.join(res.staged)}")
    if models:
        names = sorted(models)
        what = f"{len(res.added) + len(res.replaced)} checkpoints of {', '.join(names[:3])}{' …' if len(names) > 3 else ''}"
        _print(f"next: {recipe(f'Add {what}')}")
        _merge_drivers(zoo)
    return 0


def cmd_commit(zoo, args) -> int:
    res = zoo.commit(args.message, check_pipeline=not args.no_check)
    if not res.commit:
        _print("nothing to commit: the zoo's files and the pipeline's outputs are as in the last commit")
        return 0
    _print(f"committed {res.commit}: {len(res.files)} file(s)")
    for f in res.files:
        _print(f"  {printable(f)}")
    return 0


def cmd_push(zoo, args) -> int:
    res = zoo.push(args.refs, remote=args.remote, jobs=args.jobs)
    _print(f"pushed to remote {res.remote!r}: {res.uploaded} object(s) uploaded (sha256 checked before upload)")
    if res.replaced:
        _print(f"replaced {res.replaced} wrong object(s) on the remote (other bytes at their keys) with the good "
               "local copies")
    if res.staged:
        _print(f"staged {' '.join(res.staged)}: this remote lives in the work tree, so its objects reach teammates "
              "in git; commit them (zoo commit -m MESSAGE)")
    if res.skipped:
        _print(f"not in the local cache, skipped: {', '.join(res.skipped)}")
    return 0


def cmd_rm(zoo, args) -> int:
    gone = zoo.remove(args.refs)
    _merge_drivers(zoo)
    refs = ", ".join(c.ref for c in gone)
    _print(f"removed {refs}; next: {recipe(f'Remove {refs}', push=False)}")
    return 0


def cmd_verify(zoo, args) -> int:
    results = zoo.verify(args.refs, present_only=args.present_only)
    bad = [r for r in results if r.status != "ok"]
    for r in results:
        if r.status != "ok" or args.verbose:
            _print(f"{r.status:<8}  {r.ref:<32}  {r.path}  {r.detail}".rstrip())
    ok = len(results) - len(bad)
    _print(f"{ok} ok, {sum(r.status == 'mismatch' for r in bad)} mismatched, {sum(r.status == 'missing' for r in bad)} missing")
    return 1 if bad else 0


def cmd_validate(zoo, args) -> int:
    problems = zoo.validate()
    if problems:
        for p in problems:
            _print(p, file=sys.stderr)
        return 1
    _print(f"{zoo.table_path.relative_to(zoo.root)}: valid ({len(zoo.rows())} rows); present files match it")
    return 0


def cmd_serve(zoo, args) -> int:
    from .publish.server import serve

    location = zoo.location
    zoo.close()
    serve(location, host=args.host, port=args.port, rev=args.serve_rev, log=_print)
    return 0


def cmd_versions(zoo, args) -> int:
    from .versions import versions

    found = versions(zoo.git_dir)
    if args.format == "json":
        _print(json.dumps([v.to_dict() for v in found], indent=2))
        return 0
    rows = []
    for v in found:
        best = "; ".join(f"{task}: {info['ref']} ("
                         f"{', '.join(f'{k}={val:.4f}' for k, val in info.items() if k != 'ref' and isinstance(val, float))})"
                         for task, info in sorted(v.best.items())) or "-"
        rows.append([v.name, v.kind, v.commit[:10], v.date[:19], str(v.models), str(v.checkpoints), best])
    _print_table(("version", "kind", "commit", "date", "models", "checkpoints", "best per task"), rows)
    return 0


def cmd_diff(zoo, args) -> int:
    from .versions import diff

    a = args.a if args.a is not None else "HEAD"
    if zoo.revision is not None and args.b is None:
        from .errors import UsageError

        raise UsageError("a zoo opened from a URL has no working tree: give two revisions, e.g. `zoo diff v1 main`")
    d = diff(zoo.root if zoo.revision is None else zoo.location, a, args.b)
    if args.format == "json":
        _print(json.dumps(d.to_dict(), indent=2))
        return 0
    _print(f"zoo diff {d.a} -> {d.b}")
    for label, refs in (("added", d.added), ("removed", d.removed), ("replaced (new bytes)", d.replaced)):
        for ref in refs:
            _print(f"  {label:<20} {ref}")
    for ref, files in d.files.items():
        _print(f"  {'files':<20} {ref}  " + ", ".join(f"{printable(n)} {what}" for n, what in files.items()))
    for ref, cols in d.changed.items():
        for col, (old, new) in cols.items():
            if col == "files":
                continue
            _print(f"  {'changed':<20} {ref}  {col}: {printable(old)!r} -> {printable(new)!r}")
    moved = {r: m for r, m in d.metrics.items() if any(v["changed"] for v in m.values())}
    for ref, m in moved.items():
        _print(f"  {'metrics':<20} {ref}  " + ", ".join(f"{k} {v['a']:.6g} -> {v['b']:.6g} ({v['delta']:+.4g})"
                                                  for k, v in m.items() if v["changed"]))
    _print(f"{len(d.added)} added, {len(d.removed)} removed, {len(d.replaced)} replaced, {len(d.changed)} with "
          f"metadata changes, {len(moved)} with metric changes beyond their reproducibility tolerance "
          f"({len(d.metrics) - len(moved)} "
          "compared unchanged)")
    return 0


def cmd_merge_setup(zoo, args) -> int:
    from .merge import setup

    zoo._workspace_only("merge-setup")
    keys = setup(zoo.root)
    _print(f"configured {', '.join(k for k in keys if k.endswith('.driver'))} in .git/config; "
          ".gitattributes routes the table, *.dvc pointers and the pipeline's outputs to them (commit it if it changed)")
    return 0


def _parse_options(pairs: Sequence[str] | None) -> dict[str, str]:
    from .errors import UsageError

    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-o {pair!r}: write KEY=VALUE, e.g. -o region=us-east-1")
        out[key.strip()] = value
    return out


def _print_remote(r) -> None:
    extra = ", ".join(f"{k}={v}" for k, v in sorted(r.options.items()))
    _print(f"{r.name}{' (default)' if r.default else ''}  {r.url}"
          f"{'  endpoint ' + r.endpoint if r.endpoint else ''}  "
          f"[{'.dvc/config' if r.level == 'repo' else '.dvc/config.local' if r.level == 'local' else r.level}]"
          f"{'  credentials: ' + r.credentials if r.credentials else ''}{'  ' + extra if extra else ''}")
    if r.committed_secrets:
        _print(f"  warning: .dvc/config (committed) holds {', '.join(r.committed_secrets)} for {r.name}; move it with "
              f"`dvc remote modify --unset {r.name} {r.committed_secrets[0]}` and "
              f"`zoo remote modify {r.name} {r.committed_secrets[0]} VALUE --local`", file=sys.stderr)


def cmd_remote(zoo, args) -> int:
    verb = args.remote_verb
    if verb == "list":
        found = zoo.remotes()
        if args.format == "json":
            _print(json.dumps([r.to_dict() for r in found], indent=2))
        elif not found:
            _print("no remotes; add one with `zoo remote add NAME s3://BUCKET/PREFIX --endpoint URL`")
        for r in found if args.format != "json" else ():
            _print_remote(r)
        return 0
    if verb == "add":
        r = zoo.remote_add(args.name, args.url, endpoint=args.endpoint, region=args.region,
                           options=_parse_options(args.option), default=args.default, local=args.local,
                           force=args.force)
        _print_remote(r)
        if not args.local:
            _print("staged: .dvc/config (credentials stay in the environment or `zoo remote modify "
                  f"{r.name} access_key_id KEY --local`); next: git commit -m 'Add remote {r.name}'")
        return 0
    if verb == "modify":
        if args.unset == (args.value is not None):
            from .errors import UsageError

            raise UsageError("give VALUE, or --unset without a VALUE")
        r = zoo.remote_modify(args.name, args.key, None if args.unset else args.value, local=args.local)
        _print_remote(r)
        return 0
    if verb == "default":
        if args.unset == bool(args.name):
            from .errors import UsageError

            raise UsageError("give a remote NAME, or --unset without one")
        zoo.remote_default(None if args.unset else args.name, local=args.local)
        _print("no default remote" if args.unset else f"default remote: {args.name}")
        return 0
    if verb == "remove":
        files = zoo.remote_remove(args.name)
        _print(f"removed remote {args.name!r} from {', '.join(files)}")
        return 0
    raise AssertionError(verb)


def cmd_registry(zoo, args) -> int:
    """``zoo archs|tasks|datasets``: what conf/ registers (broken files are listed, not hidden)."""
    reg = zoo.listing_registry()
    group = args.verb
    items: list[dict[str, Any]]
    if group == "archs":
        items = [{"name": a.name, "target": a.target, "file": a.file,
                  "kwargs": {k: v for k, v in a.config.items() if k != "_target_"}} for a in reg.archs.values()]
        rows = [[i["name"], i["target"], i["file"]] for i in items]
        headers: tuple[str, ...] = ("arch", "target", "declared in")
    elif group == "tasks":
        items = [{"name": t.name, "metrics": list(t.metrics), "primary_metric": t.primary_metric,
                  "higher_is_better": t.primary.higher_is_better, "select_split": t.select_split,
                  "report_split": t.report_split, "file": t.file, "description": t.description,
                  "reproducibility": {m: spec.tolerance.describe() for m, spec in t.metrics.items()}}
                 for t in reg.tasks.values()]
        rows = [[i["name"], ", ".join(i["metrics"]),
                 f"{i['primary_metric']} on {i['select_split']} ({'max' if i['higher_is_better'] else 'min'})",
                 i["report_split"], i["file"]] for i in items]
        headers = ("task", "metrics", "@best by", "reported", "declared in")
    else:
        items = [{"name": d.name, "task": d.task, "loader": d.loader.get("_target_"), "input": d.input,
                  "labels": list(d.labels), "license": d.license, "file": d.file, "description": d.description}
                 for d in reg.datasets.values()]
        rows = [[i["name"], i["task"], "x".join(str(n) for n in (i["input"].get("shape") or [])) or "-",
                 str(len(i["labels"])), i["license"], i["file"]] for i in items]
        headers = ("dataset", "task", "input", "classes", "license", "declared in")
    if args.format == "json":
        _print(json.dumps({"items": items, "problems": list(reg.problems)}, indent=2, default=str))
    else:
        _print_table(headers, [[printable(c) for c in r] for r in rows])
        for problem in reg.problems:
            _print(f"problem: {printable(problem)}", file=sys.stderr)
    return 1 if reg.problems else 0


def _merge_driver(argv: Sequence[str]) -> int:
    """``zoo merge-driver table|dvc|evaluations|generated %O %A %B [%P]``, called by git."""
    from .errors import ZooError
    from .merge import dvc_driver, evaluations_driver, generated_driver, table_driver

    arity = {"table": 4, "dvc": 4, "evaluations": 4, "generated": 5}
    if not argv or arity.get(argv[0]) != len(argv):
        _print("usage: zoo merge-driver table|dvc|evaluations|generated BASE OURS THEIRS [PATH] (git calls this)",
              file=sys.stderr)
        return 2
    try:
        if argv[0] == "table":
            return table_driver(*argv[1:])
        if argv[0] == "evaluations":
            return evaluations_driver(*argv[1:])
        if argv[0] == "generated":
            return generated_driver(*argv[1:])
        from pathlib import Path

        from .api import find_root

        return dvc_driver(argv[1], argv[2], argv[3], root=find_root(Path.cwd()))
    except ZooError as e:
        _print(f"zoo merge-driver: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # git passes temp files; anything else given by hand is named, not a traceback
        _print(f"zoo merge-driver: {e.filename}: {e.strerror}; git calls this with the three versions of one file",
               file=sys.stderr)
        return 1


def _allowed_globals_help() -> str:
    from .formats import ALLOWED_GLOBALS

    groups: dict[str, list[str]] = {}
    for name in sorted(ALLOWED_GLOBALS):
        module, _, attr = name.rpartition(".")
        groups.setdefault(module, []).append(attr)
    return "; ".join(f"{m}.{a[0]}" if len(a) == 1 else f"{m}.{{{','.join(a)}}}" for m, a in groups.items())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (public so tests and docs can inspect it)."""
    p = _Parser(
        prog="zoo",
        description="Checkpoint Zoo: list, fetch, add and check the checkpoints of a git + DVC model zoo.",
        epilog="References: MODEL, MODEL@STEP, MODEL@latest, MODEL@best. Model arguments of ls take shell wildcards.",
    )
    p.add_argument("-C", "--repo", help="the zoo to work on (default: the repo you stand in, or $ZOO_REPO)")
    p.add_argument("--traceback", action="store_true", help="show the full traceback of unexpected errors")
    p.add_argument("--trust-code", action="store_true",
                   help="let a zoo opened at another revision (--rev) run its own code folder (zoo_code/), which "
                        "its conf/ may name; read that code first")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("ls", help="list checkpoints (the latest of each model by default)")
    s.add_argument("patterns", nargs="*", metavar="MODEL", help="model names or wildcards, e.g. 'mnist-*'")
    s.add_argument("--exclude", action="append", metavar="PATTERN", help="leave out models matching this")
    s.add_argument("--all-steps", action="store_true", help="every checkpoint, not only the latest per model")
    s.add_argument("--task")
    s.add_argument("--arch")
    s.add_argument("--tag")
    s.add_argument("--where", help="COLUMN OP VALUE [and ...], OP one of == != < <= > >=")
    s.add_argument("--sort", metavar="COLUMN", help="sort by a column; --sort=-COLUMN for descending")
    s.add_argument("--format", choices=("table", "csv", "json"), default="table")
    s.add_argument("--rev", help="list the zoo at this git revision (branch, tag, commit) without checking it out")
    s.set_defaults(func=cmd_ls)

    s = sub.add_parser("show", help="every field of one checkpoint and how to pull it")
    s.add_argument("ref")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.add_argument("--rev", help="read the zoo at this git revision")
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("pull", help="fetch just these checkpoints and check their sha256")
    s.add_argument("refs", nargs="+", metavar="REF")
    s.add_argument("-r", "--remote", help="DVC remote (default: the repo's default remote)")
    s.add_argument("--rev", help="fetch the checkpoint of this git revision into the user cache (nothing is checked out)")
    s.add_argument("-j", "--jobs", type=_positive_int, help="transfers at a time (default 8)")
    s.add_argument("--with-state", action="store_true",
                   help="also fetch the training state (optimizer, scheduler, RNG, step), sha256-checked")
    s.set_defaults(func=cmd_pull)

    s = sub.add_parser("lineage", help="the checkpoints a model descends from and the ones fine-tuned from it")
    s.add_argument("model")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.add_argument("--rev", help="read the zoo at this git revision")
    s.set_defaults(func=cmd_lineage)

    s = sub.add_parser("add", help="add a safetensors checkpoint with its metadata (or many: --from MANIFEST)")
    s.add_argument("file", nargs="?", help="the checkpoint file, or a folder as save_pretrained writes it (leave out "
                                           "with --from)")
    s.add_argument("--from", dest="from_manifest", metavar="MANIFEST",
                   help="add every checkpoint a CSV or JSON Lines file lists (columns: file, model, step and any "
                        "option below), all or nothing; options given here apply to every line")
    s.add_argument("--model")
    s.add_argument("--step")
    s.add_argument("--arch", help="a registered architecture; for a transformers folder it may be left out: read from "
                                  "its config.json into conf/arch/MODEL.yaml")
    s.add_argument("--task")
    s.add_argument("--dataset")
    s.add_argument("--license")
    s.add_argument("--epoch", type=float)
    s.add_argument("--description")
    s.add_argument("--tags", help="comma-separated slugs")
    s.add_argument("--parent", metavar="MODEL@STEP", help="the checkpoint this one was fine-tuned from")
    s.add_argument("--source", help="how it was made: command, commit or URL")
    s.add_argument("--reported", metavar="METRIC=VALUE", help="a claimed metric, e.g. accuracy=0.97")
    s.add_argument("--state", metavar="STATE",
                   help="a training state written by checkpoint_zoo.training.save_state, stored beside the weights")
    s.add_argument("--move", action="store_true", help="move the file into the zoo instead of copying it")
    s.add_argument("--replace", action="store_true", help="overwrite an existing MODEL@STEP that has other bytes")
    s.add_argument("--convert", action="store_true",
                   help="convert a pickle-based checkpoint (torch.save .pt/.pth/.ckpt/.bin) to safetensors first, in a "
                        "separate process with torch.load(weights_only=True); TorchScript is always refused")
    s.add_argument("--allow-global", action="append", metavar="MODULE.NAME",
                   help="with --convert: also allow this data type when unpickling (only if you trust the file; "
                        "recorded in the row); repeatable; one of: " + _allowed_globals_help())
    s.set_defaults(func=cmd_add)

    s = sub.add_parser("export", help="write a checkpoint to a folder that loads without the zoo (transformers' "
                                      "from_pretrained, or safetensors + config.json)")
    s.add_argument("ref", metavar="REF")
    s.add_argument("dir", metavar="DIR", help="a new (or empty) folder")
    s.add_argument("--format", choices=("hf", "safetensors"),
                   help="hf: what transformers' from_pretrained loads (transformers architectures); safetensors: the "
                        "weights as stored with a config.json describing the architecture (default: hf for "
                        "transformers architectures, else safetensors)")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("push", help="upload checkpoints (all local ones by default) to the remote")
    s.add_argument("refs", nargs="*", metavar="REF")
    s.add_argument("-r", "--remote")
    s.add_argument("-j", "--jobs", type=_positive_int, help="uploads at a time (default DVC's: 4 per core)")
    s.set_defaults(func=cmd_push)

    s = sub.add_parser("commit", help="stage the zoo's changes (table, pointers, pipeline inputs and outputs, "
                                      "in-repo remote objects) and git commit them; refused while dvc repro is due")
    s.add_argument("-m", "--message", required=True)
    s.add_argument("--no-check", action="store_true", help="commit even if the pipeline's outputs are stale")
    s.set_defaults(func=cmd_commit)

    s = sub.add_parser("rm", help="remove checkpoints from the zoo")
    s.add_argument("refs", nargs="+", metavar="REF")
    s.set_defaults(func=cmd_rm)

    s = sub.add_parser("verify", help="re-hash local checkpoint files against the table")
    s.add_argument("refs", nargs="*", metavar="REF")
    s.add_argument("--present-only", action="store_true", help="do not count checkpoints that are not pulled")
    s.add_argument("-v", "--verbose", action="store_true", help="list the good files too")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("validate", help="check the table against its schema and present files")
    s.set_defaults(func=cmd_validate)

    for name, what in (("archs", "architectures (conf/arch/*.yaml): name, target, where declared"),
                       ("tasks", "tasks (conf/task/*.yaml): metrics, the @best rule, the reported split"),
                       ("datasets", "datasets (conf/dataset/*.yaml): task, input contract, classes, license")):
        s = sub.add_parser(name, help=f"list the registered {what}")
        s.add_argument("--format", choices=("table", "json"), default="table")
        s.add_argument("--rev", help="read conf/ at this git revision")
        s.set_defaults(func=cmd_registry)

    s = sub.add_parser("versions", help="branches and tags holding a zoo, with counts and the best per task")
    s.add_argument("--format", choices=("table", "json"), default="table")
    s.set_defaults(func=cmd_versions)

    s = sub.add_parser("serve", help="a read-only HTTP API, downloads and web UI for this zoo (loopback by default)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other is served with a warning: no authentication)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    s.add_argument("--rev", dest="serve_rev", metavar="REV",
                   help="serve this branch, tag or commit by default (default: the working tree); ?rev= picks any")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("diff", help="what changed between two zoo versions (default: HEAD vs the working tree)")
    s.add_argument("a", nargs="?", help="old revision (default HEAD)")
    s.add_argument("b", nargs="?", help="new revision (default: the working tree)")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_diff)

    s = sub.add_parser("merge-setup", help="configure git merge drivers for the table and DVC pointers (once per clone)")
    s.set_defaults(func=cmd_merge_setup)

    s = sub.add_parser("remote", help="configure DVC remotes (S3-compatible endpoints); credentials never committed",
                       description="Remotes live in .dvc/config (committed) or, with --local, in .dvc/config.local "
                                   "(this clone only). Credentials come from the environment (AWS_ACCESS_KEY_ID, "
                                   "AWS_SECRET_ACCESS_KEY) or --local options; zoo refuses to write them to .dvc/config.")
    rsub = s.add_subparsers(dest="remote_verb", metavar="ACTION")
    rsub.required = True
    r = rsub.add_parser("add", help="add a remote: zoo remote add NAME s3://BUCKET/PREFIX --endpoint URL [--default]")
    r.add_argument("name")
    r.add_argument("url", help="s3://BUCKET/PREFIX (or any DVC remote URL)")
    r.add_argument("--endpoint", metavar="URL", help="S3-compatible endpoint (MinIO, Ceph RGW, moto …); default AWS")
    r.add_argument("--region")
    r.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="any other DVC remote option")
    r.add_argument("-d", "--default", action="store_true", help="make it the default remote")
    r.add_argument("--local", action="store_true", help="write to .dvc/config.local (this clone only, not committed)")
    r.add_argument("-f", "--force", action="store_true", help="replace a remote of that name")
    r.set_defaults(func=cmd_remote)
    r = rsub.add_parser("list", help="the configured remotes, where each is set and where its credentials come from")
    r.add_argument("--format", choices=("text", "json"), default="text")
    r.set_defaults(func=cmd_remote)
    r = rsub.add_parser("modify", help="set one option: zoo remote modify NAME KEY VALUE [--local]")
    r.add_argument("name")
    r.add_argument("key", help="e.g. endpointurl, region, url; access_key_id/secret_access_key need --local")
    r.add_argument("value", nargs="?")
    r.add_argument("--unset", action="store_true", help="remove the option")
    r.add_argument("--local", action="store_true", help="write to .dvc/config.local (this clone only)")
    r.set_defaults(func=cmd_remote)
    r = rsub.add_parser("default", help="make a remote the default one")
    r.add_argument("name", nargs="?")
    r.add_argument("--unset", action="store_true", help="no default remote")
    r.add_argument("--local", action="store_true", help="for this clone only")
    r.set_defaults(func=cmd_remote)
    r = rsub.add_parser("remove", help="forget a remote (.dvc/config and .dvc/config.local)")
    r.add_argument("name")
    r.set_defaults(func=cmd_remote)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zoo`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge-driver"]:
        return _merge_driver(argv[1:])
    parser = build_parser()
    for token in argv:  # name a bad global flag rather than complain about the missing COMMAND
        if not token.startswith("-"):
            break
        if token.split("=")[0] not in {"-h", "--help", "-C", "--repo", "--traceback", "--trust-code"}:
            parser.error(f"unrecognized arguments: {token}")
    args = parser.parse_args(argv)
    from .errors import TableInvalidError, UsageError, ZooError

    zoo = None
    try:
        from .api import Zoo

        zoo = Zoo(args.repo, rev=getattr(args, "rev", None), remote=getattr(args, "remote", None),
                  trust_code=args.trust_code)
        return args.func(zoo, args)
    except UsageError as e:
        _print(f"zoo {args.verb}: {e}", file=sys.stderr)
        return 2
    except TableInvalidError as e:
        _print(f"zoo {args.verb}: {e}", file=sys.stderr)
        return 1
    except ZooError as e:
        _print(f"zoo {args.verb}: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader (e.g. `| head`) has gone; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        _print("zoo: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
    except Exception as e:
        if args.traceback:
            raise
        _print(f"zoo {args.verb}: unexpected {type(e).__name__}: {e} (rerun with --traceback and report it)",
              file=sys.stderr)
        return 1
    finally:
        if zoo is not None:
            zoo.close()


def console_main() -> None:
    """The ``zoo`` console script: ``main``, then exit without tearing the interpreter down.

    After a command that loaded DVC, botocore and s3fs, Python's own finalisation (freeing every
    module and object) takes about 0.4 s, a third of pulling one checkpoint (measured with
    scripts/bench_s3.py). Output is flushed and atexit handlers run first; only the teardown is skipped.
    Exceptions (``--traceback``) and usage errors exit the normal way."""
    import atexit
    import os

    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or 1
    try:
        sys.stderr.flush()
    except OSError:
        pass
    atexit._run_exitfuncs()
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    sys.exit(main())
