"""``zoo remote add|list|modify|default|remove``: DVC remotes (S3-compatible endpoints); credentials are
never written to the committed .dvc/config."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("remote", help="configure DVC remotes (S3-compatible endpoints); credentials never committed",
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
    r = rsub.add_parser("list", help="the configured remotes, where each is set and where its credentials come from")
    r.add_argument("--format", choices=("text", "json"), default="text")
    r = rsub.add_parser("modify", help="set one option: zoo remote modify NAME KEY VALUE [--local]")
    r.add_argument("name")
    r.add_argument("key", help="e.g. endpointurl, region, url; access_key_id/secret_access_key need --local")
    r.add_argument("value", nargs="?")
    r.add_argument("--unset", action="store_true", help="remove the option")
    r.add_argument("--local", action="store_true", help="write to .dvc/config.local (this clone only)")
    r = rsub.add_parser("default", help="make a remote the default one")
    r.add_argument("name", nargs="?")
    r.add_argument("--unset", action="store_true", help="no default remote")
    r.add_argument("--local", action="store_true", help="for this clone only")
    r = rsub.add_parser("remove", help="forget a remote (.dvc/config and .dvc/config.local)")
    r.add_argument("name")


def run(zoo, args) -> int:
    actions = {"list": _list, "add": _add, "modify": _modify, "default": _default, "remove": _remove}
    if args.remote_verb not in actions:
        raise AssertionError(args.remote_verb)
    return actions[args.remote_verb](zoo, args)


def _list(zoo, args) -> int:
    found = zoo.remotes()
    if args.format == "json":
        echo(json.dumps([r.to_dict() for r in found], indent=2))
    elif not found:
        echo("no remotes; add one with `zoo remote add NAME s3://BUCKET/PREFIX --endpoint URL`")
    for r in found if args.format != "json" else ():
        _print_remote(r)
    return 0


def _add(zoo, args) -> int:
    r = zoo.remote_add(args.name, args.url, endpoint=args.endpoint, region=args.region,
                       options=_parse_options(args.option), default=args.default, local=args.local,
                       force=args.force)
    _print_remote(r)
    if not args.local:
        echo("staged: .dvc/config (credentials stay in the environment or `zoo remote modify "
             f"{r.name} access_key_id KEY --local`); next: git commit -m 'Add remote {r.name}'")
    return 0


def _modify(zoo, args) -> int:
    if args.unset == (args.value is not None):
        from ...errors import UsageError

        raise UsageError("give VALUE, or --unset without a VALUE")
    r = zoo.remote_modify(args.name, args.key, None if args.unset else args.value, local=args.local)
    _print_remote(r)
    return 0


def _default(zoo, args) -> int:
    if args.unset == bool(args.name):
        from ...errors import UsageError

        raise UsageError("give a remote NAME, or --unset without one")
    zoo.remote_default(None if args.unset else args.name, local=args.local)
    echo("no default remote" if args.unset else f"default remote: {args.name}")
    return 0


def _remove(zoo, args) -> int:
    files = zoo.remote_remove(args.name)
    echo(f"removed remote {args.name!r} from {', '.join(files)}")
    return 0


def _parse_options(pairs: Sequence[str] | None) -> dict[str, str]:
    from ...errors import UsageError

    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-o {pair!r}: write KEY=VALUE, e.g. -o region=us-east-1")
        out[key.strip()] = value
    return out


def _print_remote(r) -> None:
    extra = ", ".join(f"{k}={v}" for k, v in sorted(r.options.items()))
    echo(f"{r.name}{' (default)' if r.default else ''}  {r.url}"
         f"{'  endpoint ' + r.endpoint if r.endpoint else ''}  "
         f"[{'.dvc/config' if r.level == 'repo' else '.dvc/config.local' if r.level == 'local' else r.level}]"
         f"{'  credentials: ' + r.credentials if r.credentials else ''}{'  ' + extra if extra else ''}")
    if r.committed_secrets:
        echo(f"  warning: .dvc/config (committed) holds {', '.join(r.committed_secrets)} for {r.name}; move it with "
             f"`dvc remote modify --unset {r.name} {r.committed_secrets[0]}` and "
             f"`zoo remote modify {r.name} {r.committed_secrets[0]} VALUE --local`", file=sys.stderr)
