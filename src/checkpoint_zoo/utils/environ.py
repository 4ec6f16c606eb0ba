"""The one place that reads environment variables.

Read at call time (not import time) so that tests can patch the environment per test.
"""

from __future__ import annotations

import os
from pathlib import Path


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def arch_cache_dir() -> Path:
    """Where architectures' expected shapes and input-contract verdicts are kept (``ZOO_ARCH_CACHE_DIR``,
    default ``arch-shapes`` in the user cache). Entries are keyed by the architecture's config, the library
    versions and the zoo's own code, so one folder may serve many users, clones and test runs."""
    explicit = os.environ.get("ZOO_ARCH_CACHE_DIR")
    return Path(explicit) if explicit else cache_dir() / "arch-shapes"


def cache_dir() -> Path:
    """User-level cache (validation verdicts, later: fetched checkpoints); ``ZOO_CACHE_DIR``."""
    explicit = os.environ.get("ZOO_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "checkpoint-zoo"


def progress_disabled() -> bool:
    """``ZOO_NO_PROGRESS=1`` turns progress bars off (they are also off when not on a TTY)."""
    return _flag("ZOO_NO_PROGRESS")


def convert_timeout() -> float:
    """``ZOO_CONVERT_TIMEOUT``: seconds the ``zoo add --convert`` child may take (default 600)."""
    try:
        value = float(os.environ.get("ZOO_CONVERT_TIMEOUT", "") or 600)
    except ValueError:
        return 600.0
    return value if value > 0 else 600.0


def network_timeout() -> float:
    """``ZOO_NETWORK_TIMEOUT``: seconds a git server (a zoo opened from a URL) may stay silent, with no
    progress at all, before zoo gives up on the clone or fetch (default 60). A stall timeout, not a total
    one: a large clone that keeps making progress is never cut off."""
    raw = os.environ.get("ZOO_NETWORK_TIMEOUT", "").strip()
    if not raw:
        return 60.0
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < 86400:  # also false for nan
        from ..errors import UsageError

        raise UsageError(f"ZOO_NETWORK_TIMEOUT={raw!r}: not a number of seconds; set it to e.g. 60, or unset it")
    return value


def offline() -> bool:
    """``ZOO_OFFLINE=1``: never touch the network, serve only cached, verified files."""
    return _flag("ZOO_OFFLINE")


def zoo_repo() -> str | None:
    """``ZOO_REPO``: the zoo to use when no path is given (default: the repo you stand in)."""
    return os.environ.get("ZOO_REPO") or None


def in_dvc_experiment() -> bool:
    """True inside ``dvc exp run``, which has just composed params.yaml from conf/ with its overrides."""
    return bool(os.environ.get("DVC_EXP_NAME"))


def s3_client_env() -> dict[str, str]:
    """Botocore settings applied while zoo talks to a remote, so that a dead endpoint fails in seconds
    instead of minutes: ``ZOO_S3_MAX_ATTEMPTS`` (default 2, first try included) becomes
    ``AWS_MAX_ATTEMPTS`` with the ``standard`` retry mode. ``AWS_MAX_ATTEMPTS``/``AWS_RETRY_MODE`` set
    by the user win."""
    out = {}
    if not os.environ.get("AWS_MAX_ATTEMPTS"):
        attempts = os.environ.get("ZOO_S3_MAX_ATTEMPTS", "").strip()
        out["AWS_MAX_ATTEMPTS"] = attempts if attempts.isdigit() and int(attempts) > 0 else "2"
    if not os.environ.get("AWS_RETRY_MODE"):
        out["AWS_RETRY_MODE"] = "standard"
    return out


class scoped_env:
    """Set environment variables for the duration of a ``with`` block, then restore them."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> scoped_env:
        for key, value in self.values.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value
        return self

    def __exit__(self, *exc: object) -> None:
        for key, old in self.saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def aws_credentials_in_env() -> bool:
    """True when ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` are both set."""
    return bool(os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"))


def dask_scheduler() -> str | None:
    """``ZOO_DASK_SCHEDULER``: the Dask scheduler the ``dask`` executor connects to (else a LocalCluster). Only
    the user's environment names it, never committed configuration: the scheduler runs the evaluation code
    and its results are unpickled in the ``dvc repro`` process, so point it at your own cluster only."""
    return os.environ.get("ZOO_DASK_SCHEDULER", "").strip() or None


def kill_at_step() -> int | None:
    """``ZOO_TEST_KILL_AT_STEP=N`` (tests only): a writing command kills itself right after the N-th write of
    its transaction's journal, so that a test can stop it at every step in turn."""
    raw = os.environ.get("ZOO_TEST_KILL_AT_STEP", "").strip()
    return int(raw) if raw.isdigit() else None
