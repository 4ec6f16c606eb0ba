"""``zoo token create``: a bearer token for ``zoo serve --tokens``, printed once, stored only as its sha256."""

from __future__ import annotations

import sys

from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("token", help="bearer tokens for zoo serve --tokens (each reads only the models it names)")
    sub = s.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    c = sub.add_parser("create", help="print a new token once; the file keeps only its sha256")
    c.add_argument("--models", action="append", required=True, metavar="PATTERN",
                   help="models the token reads: a name or fnmatch pattern (mnist-*, '*' for all); repeatable")
    c.add_argument("--name", help="a name for the token in the file (default token-N)")
    c.add_argument("--file", dest="token_file", metavar="FILE",
                   help="the token file (default ~/.config/checkpoint-zoo/tokens.json, outside any git work tree)")


def run(zoo, args) -> int:
    from ...server.tokens import create_token

    token, path = create_token(args.models, args.name, args.token_file)
    echo(f"stored its sha256 in {path}; serve with: zoo serve --tokens {path}", file=sys.stderr)
    echo(token)
    return 0
