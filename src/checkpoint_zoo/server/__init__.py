"""``zoo serve``: the zoo over HTTP (read-only JSON API, verified downloads, the web UI)."""

from __future__ import annotations

import ipaddress
import sys

from ..errors import UsageError


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(location: str, *, host: str = "127.0.0.1", port: int = 8000, rev: str | None = None,
          hub_namespace: str = "zoo", tokens: str | None = None, allow_anonymous: bool = False,
          presign_seconds: int | None = None, log=print) -> None:
    """Serve the zoo at ``location`` until interrupted (uvicorn). Loopback by default; any other host needs
    ``tokens`` (a token file: every request then carries a bearer token) or ``allow_anonymous``. With
    ``presign_seconds`` (``--redirect-to-storage``), Hub downloads of weights on the S3 remote are redirected
    to URLs presigned for that long."""
    import uvicorn

    from .app import create_app
    from .hub.names import namespace_problem
    from .tokens import TokenSet

    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: a port number from 0 to 65535")
    problem = namespace_problem(hub_namespace)
    if problem is not None:
        raise UsageError(problem)
    if not is_loopback(host) and tokens is None and not allow_anonymous:
        raise UsageError(f"--host {host}: not a loopback address, so anyone who can reach it could read every "
                         "checkpoint; give --tokens FILE (zoo token create makes one), or --allow-anonymous")
    token_set = TokenSet.load(tokens) if tokens is not None else None
    app = create_app(location, rev, hub_namespace, token_set, presign_seconds)
    if not is_loopback(host) and token_set is None:
        print(f"zoo serve: warning: listening on {host}, not a loopback address: anyone who can reach it can read "
              "and download every checkpoint (there is no authentication)", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    access = f"; {len(token_set.entries)} token(s) from {tokens}" if token_set is not None else ""
    access += f"; Hub downloads redirected to storage ({presign_seconds} s URLs)" if presign_seconds else ""
    log(f"serving {location}{' at ' + rev if rev else ''} on http://{shown}:{port}/ (read-only{access}; Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
