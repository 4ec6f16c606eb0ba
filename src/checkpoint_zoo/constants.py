"""The one place that reads environment variables and fixed layout names.

Read at call time (not import time) so that tests can patch the environment per test.
"""

from __future__ import annotations

import os
from pathlib import Path

TABLE_PATH = "zoo/checkpoints.csv"
CHECKPOINTS_DIR = "zoo/checkpoints"
METRICS_DIR = "zoo/metrics"
EVALUATIONS_DIR = "zoo/metrics/evaluations"
LOCK_NAME = "zoo.lock"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


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


def offline() -> bool:
    """``ZOO_OFFLINE=1``: never touch the network, serve only cached, verified files."""
    return _flag("ZOO_OFFLINE")


def zoo_repo() -> str | None:
    """``ZOO_REPO``: the zoo to use when no path is given (default: the repo you stand in)."""
    return os.environ.get("ZOO_REPO") or None


def in_dvc_experiment() -> bool:
    """True inside ``dvc exp run``, which has just composed params.yaml from conf/ with its overrides."""
    return bool(os.environ.get("DVC_EXP_NAME"))
