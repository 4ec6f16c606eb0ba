"""``zoo serve``: the read-only HTTP API, downloads and web UI."""

from __future__ import annotations

from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("serve", help="a read-only HTTP API, downloads and web UI for this zoo (loopback by default)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other needs --tokens or --allow-anonymous)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    s.add_argument("--rev", dest="serve_rev", metavar="REV",
                   help="serve this branch, tag or commit by default (default: the working tree); ?rev= picks any")
    s.add_argument("--hub-namespace", default="zoo", metavar="NS",
                   help="the namespace of the Hugging Face Hub repositories served: NS/MODEL (default zoo); "
                        "clients point HF_ENDPOINT at this server")
    s.add_argument("--tokens", metavar="FILE",
                   help="require Authorization: Bearer TOKEN on every request, each token reading only the models "
                        "it names (FILE as zoo token create writes it)")
    s.add_argument("--redirect-to-storage", action="store_true",
                   help="answer a Hub download of weights kept on the S3 remote with a 302 to a short-lived presigned "
                        "URL of the object (signed with the remote's credentials, which never leave the server)")
    s.add_argument("--presign-seconds", type=int, metavar="S",
                   help="how long a --redirect-to-storage URL stays valid (60 to 3600; default 600)")
    s.add_argument("--allow-anonymous", action="store_true",
                   help="serve a non-loopback --host without --tokens: anyone who can reach it reads every checkpoint")


def run(zoo, args) -> int:
    from ...errors import UsageError
    from ...server import serve

    if args.presign_seconds is not None and not args.redirect_to_storage:
        raise UsageError("--presign-seconds: only with --redirect-to-storage (how long its redirect URLs stay valid)")
    presign = (600 if args.presign_seconds is None else args.presign_seconds) if args.redirect_to_storage else None
    location = zoo.location
    zoo.close()
    serve(location, host=args.host, port=args.port, rev=args.serve_rev, hub_namespace=args.hub_namespace,
          tokens=args.tokens, allow_anonymous=args.allow_anonymous,
          presign_seconds=presign, log=echo)
    return 0
