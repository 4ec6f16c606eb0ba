"""``zoo add``: one checkpoint (a file or a folder, optionally converted from a pickle) with its metadata, or
many from a manifest (``--from``)."""

from __future__ import annotations

from ...utils.redact import printable
from ..contributing import merge_drivers, recipe
from ..output import echo, human


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("add", help="add a safetensors checkpoint with its metadata (or many: --from MANIFEST)")
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
    s.add_argument("--relicense", action="store_true",
                   help="allow a --license other than the model's checkpoints carry (the model then shows each)")
    s.add_argument("--convert", action="store_true",
                   help="convert a pickle-based checkpoint (torch.save .pt/.pth/.ckpt/.bin) to safetensors first, in a "
                        "separate process with torch.load(weights_only=True); TorchScript is always refused")
    s.add_argument("--allow-global", action="append", metavar="MODULE.NAME",
                   help="with --convert: also allow this data type when unpickling (only if you trust the file; "
                        "recorded in the row); repeatable; one of: " + _allowed_globals_help())


def _allowed_globals_help() -> str:
    from ...formats import ALLOWED_GLOBALS

    groups: dict[str, list[str]] = {}
    for name in sorted(ALLOWED_GLOBALS):
        module, _, attr = name.rpartition(".")
        groups.setdefault(module, []).append(attr)
    return "; ".join(f"{m}.{a[0]}" if len(a) == 1 else f"{m}.{{{','.join(a)}}}" for m, a in groups.items())


def run(zoo, args) -> int:
    if args.from_manifest:
        return _add_from(zoo, args)
    missing = [flag for flag, value in (("the checkpoint file (FILE)", args.file), ("--model", args.model),
                                        ("--step", args.step), ("--task", args.task), ("--dataset", args.dataset),
                                        ("--license", args.license)) if value is None]
    if missing:
        from ...errors import UsageError

        raise UsageError(f"missing {', '.join(missing)}; or add many with --from MANIFEST")
    res = zoo.add(
        args.file, model=args.model, step=_count(args.step, "--step"), arch=args.arch, task=args.task, dataset=args.dataset,
        license=args.license, epoch=args.epoch, description=args.description or "",
        tags=[t.strip() for t in (args.tags or "").split(",") if t.strip()], parent=args.parent,
        source=args.source, reported=_parse_reported(args.reported), move=args.move, replace=args.replace,
        convert=args.convert, allow_globals=tuple(args.allow_global or ()), training_state=args.state,
        relicense=args.relicense,
    )
    c = res.checkpoint
    if res.conversion is not None:
        _print_conversion(res.conversion)
    if res.status == "unchanged":
        echo(f"{c.ref}: identical bytes already in the zoo; nothing to do")
        return 0
    echo(f"{res.status} {c.ref}: {c.path} ({human(c.size_bytes)}, {c.num_params:,} params, {c.dtype}, "
         f"sha256 {c.sha256[:12]}…)")
    if c.state_sha256:
        from ...catalog.rules import state_path

        echo(f"training state: {state_path(c.model, c.step)} (sha256 {c.state_sha256[:12]}…); resumable")
    if res.staged:
        echo(f"staged: {' '.join(res.staged)}")
    echo(f"next: {recipe(f'Add {c.ref}')}")
    merge_drivers(zoo)  # after success only: a refused command changes nothing
    return 0


def _print_conversion(conv) -> None:
    echo(printable(f"converted {conv.source_name} ({conv.source_kind}) to safetensors in a separate process "
                   f"with torch.load(weights_only=True): {conv.tensors} tensor{'s' if conv.tensors != 1 else ''}"
                   + (f" from key {conv.taken_from!r}" if conv.taken_from else "")
                   + (f", left out {', '.join(conv.dropped)}" if conv.dropped else "")
                   + (f", allowed globals {', '.join(conv.allowed_globals)}" if conv.allowed_globals else "")))


def _add_from(zoo, args) -> int:
    from ...errors import UsageError

    if args.file is not None:
        raise UsageError(f"give FILE or --from MANIFEST, not both ({args.file!r} and {args.from_manifest!r})")
    if args.convert or args.allow_global:
        raise UsageError("--convert works one file at a time; convert them first, or add each with zoo add FILE --convert")
    tags = [t.strip() for t in (args.tags or "").split(",") if t.strip()]
    common = dict(model=args.model, step=args.step, arch=args.arch, task=args.task, dataset=args.dataset,
                  license=args.license, epoch=args.epoch, description=args.description, tags=tuple(tags),
                  parent=args.parent, source=args.source, reported=args.reported)
    res = zoo.add_from(args.from_manifest, move=args.move, replace=args.replace, relicense=args.relicense,
                       **{k: v for k, v in common.items() if v not in (None, "", ())})
    models = {c.model for c in res.added + res.replaced}
    echo(f"added {len(res.added)}, replaced {len(res.replaced)}, unchanged {len(res.unchanged)} "
         f"checkpoint(s) of {len(models)} model(s): {human(res.bytes_added)} in {res.seconds:.1f} s")
    if res.staged:
        echo(f"staged: {' '.join(res.staged)}")
    if models:
        names = sorted(models)
        what = f"{len(res.added) + len(res.replaced)} checkpoints of {', '.join(names[:3])}{' …' if len(names) > 3 else ''}"
        echo(f"next: {recipe(f'Add {what}')}")
        merge_drivers(zoo)
    return 0


def _count(text: str, flag: str) -> int:
    from ...catalog.rules import count_problem
    from ...errors import InvalidValueError, UsageError

    problem = count_problem(text, flag)
    if problem:
        try:
            int(text)
        except ValueError:
            raise UsageError(problem) from None  # not a whole number at all, like any other bad argument
        raise InvalidValueError(problem)
    return int(text)


def _parse_reported(text: str | None):
    from ...errors import UsageError

    if not text:
        return None
    metric, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return metric.strip(), float(value)
    except ValueError:
        raise UsageError(f"--reported {text!r}: write METRIC=VALUE, e.g. accuracy=0.97") from None
