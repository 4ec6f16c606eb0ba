"""``zoo serve``: the read-only HTTP API, downloads and web UI."""

from __future__ import annotations

from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("serve", help="a read-only HTTP API, downloads and web UI for this zoo (loopback by default)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other is served with a warning: no authentication)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    s.add_argument("--rev", dest="serve_rev", metavar="REV",
                   help="serve this branch, tag or commit by default (default: the working tree); ?rev= picks any")
    s.add_argument("--hub-namespace", default="zoo", metavar="NS",
                   help="the namespace of the Hugging Face Hub repositories served: NS/MODEL (default zoo); "
                        "clients point HF_ENDPOINT at this server")


def run(zoo, args) -> int:
    from ...server import serve

    location = zoo.location
    zoo.close()
    serve(location, host=args.host, port=args.port, rev=args.serve_rev, hub_namespace=args.hub_namespace, log=echo)
    return 0
