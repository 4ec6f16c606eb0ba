"""The identity of a config (memo keys, shape cache), in a module of its own so that the registry's
children need not import the package that imports them."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def digest_of(data: Any) -> str:
    """sha256 of canonical JSON: the identity of a config, for memo keys."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()
