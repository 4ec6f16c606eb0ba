"""The one translation of what DVC and its remotes raise or log into the zoo's one-line errors.

A transfer runs inside ``remote_session`` (DVC's console output captured); what it raised and logged is
classified once (``classify_remote_failure``: credentials, bucket, lost, unreachable, missing) and
told by ``transfer_error`` (a store's transfers) or through ``KIND_ERRORS`` (a read at a revision).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from ...errors import (
    DiskFullError,
    NotPushedError,
    RemoteAuthError,
    RemoteBucketError,
    RemoteUnreachableError,
    StorageError,
    ZooError,
)
from ...utils.files import _chain, disk_full, disk_full_message

# botocore.endpoint logs each failed attempt (with its exception) before retrying: after a retry the
# final error only says "could not connect", the first one says the connection was cut mid-transfer
_DVC_LOGGERS = ("dvc", "dvc_data", "dvc_objects", "botocore.endpoint", "s3fs")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class DvcLog(logging.Handler):
    """Keeps what DVC logs during a transfer (its exceptions and warnings) instead of printing it, so
    that the zoo can say in one line what went wrong."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.errors: list[BaseException] = []
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])
        elif isinstance(record.args, tuple) and any(isinstance(a, BaseException) for a in record.args):
            # s3fs logs the error of each attempt it retries as an argument ("Retryable error: %s")
            self.errors.extend(a for a in record.args if isinstance(a, BaseException))
        elif record.levelno >= logging.WARNING:
            try:
                self.warnings.append(record.getMessage())
            except Exception:  # a malformed log call must not break the transfer
                pass


@contextmanager
def remote_session() -> Iterator[DvcLog]:
    """Around every DVC transfer: DVC's console output captured (see DvcLog), and botocore's retries
    bounded (environ.s3_client_env) so that a dead endpoint fails in seconds, not minutes."""
    import dvc  # noqa: F401  (importing dvc installs its console handlers; swap them after that)

    from ...utils import environ

    log = DvcLog()
    saved = []
    for name in _DVC_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.level, logger.propagate))
        logger.handlers = [log]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    try:
        with environ.scoped_env(environ.s3_client_env()):
            yield log
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers = handlers
            logger.setLevel(level)
            logger.propagate = propagate


_LOST = ("ClientPayloadError", "ContentLengthError", "ConnectionResetError", "IncompleteRead", "BrokenPipeError",
         "ServerDisconnectedError", "ConnectionClosedError", "ReadTimeoutError", "AioReadTimeoutError",
         "SocketTimeoutError", "ConnectionAbortedError", "ClientOSError")
_UNREACHABLE = ("EndpointConnectionError", "ConnectionRefusedError", "ClientConnectorError", "ConnectTimeoutError",
                "gaierror", "ProxyConnectionError")
_AUTH_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken",
               "InvalidClientTokenId", "AuthorizationHeaderMalformed")


def classify_remote_failure(errors: Iterable[BaseException], warnings: Iterable[str] = ()) -> tuple[str, str] | None:
    """(kind, short cause) of a failed transfer from the exceptions DVC raised or logged, or None.

    kind is one of: credentials, bucket, lost (the connection dropped mid-transfer), unreachable,
    missing (an object the remote does not hold).
    """
    excs = [e for err in errors for e in _chain(err)]
    names = [type(e).__name__ for e in excs]
    texts = [str(e) for e in excs]

    def has_name(*wanted: str) -> str | None:
        return next((n for n in names if n in wanted), None)

    if has_name("NoCredentialsError", "PartialCredentialsError"):
        return "credentials", "no credentials found"
    for e, text in zip(excs, texts):
        code = next((c for c in _AUTH_CODES if c in text), None)
        if code:
            return "credentials", code
        if (isinstance(e, PermissionError) and e.errno is None and getattr(e, "filename", None) is None
                and ("Forbidden" in text or "403" in text or "Access" in text)):
            return "credentials", "403 Forbidden"
    if any("NoSuchBucket" in t or "specified bucket does not exist" in t for t in texts):
        return "bucket", "NoSuchBucket"
    lost = has_name(*_LOST)
    if lost:
        detail = {"ConnectionResetError": "connection reset by peer", "ClientPayloadError": "response cut short",
                  "ContentLengthError": "response cut short"}.get(lost, lost)
        return "lost", detail
    down = has_name(*_UNREACHABLE)
    if down:
        refused = any(isinstance(e, ConnectionRefusedError) or "Connect call failed" in t for e, t in zip(excs, texts))
        return "unreachable", "connection refused" if refused else down
    if any("NoSuchKey" in t or "specified key does not exist" in t for t in texts) or any(
            "do not exist neither locally nor on remote" in w for w in warnings):
        return "missing", "not in the remote"
    return None



def raise_if_disk_full(exc: BaseException | None, doing: str, *logged: BaseException) -> None:
    """A full disk is told as DiskFullError naming what was being done, whatever DVC wrapped it in."""
    full = disk_full(exc, *logged)
    if full is not None:
        raise DiskFullError(disk_full_message(full, doing)) from None


# the error class of each kind classify_remote_failure finds
KIND_ERRORS: dict[str, type[ZooError]] = {
    "unreachable": RemoteUnreachableError, "lost": RemoteUnreachableError, "credentials": RemoteAuthError,
    "bucket": RemoteBucketError, "missing": NotPushedError,
}


def transfer_error(where: str, name: str, conf: dict, action: str, log: DvcLog, exc: BaseException | None,
                   paths: Iterable[str], summary: str | None, probed: bool,
                   drop_temps: Callable[..., None]) -> ZooError:
    """The one-line error for a failed transfer with remote ``name`` (described as ``where``, configured as
    ``conf``): what went wrong and how to fix it. ``probed``: the remote answered before the transfer, so
    a connection failure now means it dropped mid-way. ``drop_temps`` removes the partial files a full
    disk left."""
    errors = [*log.errors, *([exc] if exc is not None else [])]
    full = disk_full(*errors)
    if full is not None:
        drop_temps(*errors)
        return DiskFullError(disk_full_message(full, f"{where}: {action}"))
    found = classify_remote_failure(errors, log.warnings)
    if found and found[0] == "unreachable" and probed:
        found = ("lost", f"{found[1]} after the transfer had started")
    if found is None:
        # the first real error: later ones are often its aftermath (e.g. a failed multipart abort);
        # 404s are DVC asking whether objects exist
        logged = next((e for e in log.errors if not isinstance(e, FileNotFoundError)
                       and "(404)" not in str(e) and "Not Found" not in str(e)), None)
        first = logged if logged is not None else exc
        cause = first_line(first) if first is not None else "unknown cause"
        return StorageError(f"{where}: {summary or action + ' failed'}: {cause}")
    kind, detail = found
    return KIND_ERRORS[kind](_kind_message(kind, detail, where, name, conf, action, paths))


def _kind_message(kind: str, detail: str, where: str, name: str, conf: dict, action: str, paths: Iterable[str]) -> str:
    again = "run the command again"
    if kind == "unreachable":
        return (f"{where}: cannot connect to the endpoint ({detail}); check that it is up and that `zoo remote "
                f"list` shows the right endpoint (fix: `zoo remote modify {name} endpointurl URL`), then {again}")
    if kind == "lost":
        return (f"{where}: the connection dropped during the {action} ({detail}); no partial file entered the "
                f"cache or the workspace; {again} when the endpoint is back (it transfers only what is missing)")
    if kind == "credentials":
        return (f"{where}: the endpoint refused the credentials ({detail}); set AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, or store them for this clone only with `zoo remote modify {name} "
                "access_key_id KEY --local` (and secret_access_key)")
    if kind == "bucket":
        bucket = str(conf.get("url", "")).split("://", 1)[-1].split("/", 1)[0] or "?"
        return (f"{where}: bucket {bucket!r} does not exist; create it, or point the remote at an existing one "
                f"with `zoo remote modify {name} url s3://BUCKET/PREFIX`")
    listed = ", ".join(paths) or "the requested files"
    return (f"{where}: {listed} not there: not pushed yet; run `zoo push --remote {name}` "
            "in the clone that added them")
