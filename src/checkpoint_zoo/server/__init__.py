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
          hub_namespace: str = "zoo", log=print) -> None:
    """Serve the zoo at ``location`` until interrupted (uvicorn). Loopback by default; any other host is
    served only when asked, with a warning that the server has no authentication."""
    import uvicorn

    from .app import create_app
    from .hub.names import namespace_problem

    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: a port number from 0 to 65535")
    problem = namespace_problem(hub_namespace)
    if problem is not None:
        raise UsageError(problem)
    app = create_app(location, rev, hub_namespace)
    if not is_loopback(host):
        print(f"zoo serve: warning: listening on {host}, not a loopback address: anyone who can reach it can read "
              "and download every checkpoint (there is no authentication)", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    log(f"serving {location}{' at ' + rev if rev else ''} on http://{shown}:{port}/ (read-only; Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
