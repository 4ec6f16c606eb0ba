"""Bearer tokens for ``zoo serve --tokens FILE``: what lets the server leave loopback.

``zoo token create --models PATTERN`` prints a new token once; the file keeps only its sha256, a name and the
model patterns it reads (``fnmatch``, e.g. ``mnist-*``). With a token file, every route asks for
``Authorization: Bearer <token>`` (what the Hub clients send from ``HF_TOKEN``): no or an unknown token gets
401, and a model the token's patterns do not match answers exactly as a model that does not exist. Every list
(the zoo's ``/api/models``, ``/api/facets``, ``/api/leaderboard``, ``/api/versions``, ``/data.js``, and the Hub's) shows a token
only the models it reads: the app serves it a snapshot cut to them (``snapshot.scoped``). Tokens are compared
in constant time and never logged or echoed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse

from ..errors import InvalidValueError, UsageError

PREFIX = "zoo_"
SCOPE_KEY = "checkpoint_zoo.models"  # the request scope's key for the token's patterns (absent: no token file)


def default_file() -> Path:
    """Where tokens live unless ``--file`` says otherwise: the user's config folder, never a git work tree."""
    return Path.home() / ".config" / "checkpoint-zoo" / "tokens.json"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise InvalidValueError(f"{path}: not a token file ({e}); give the file `zoo token create` wrote") from None
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, list) or not all(isinstance(t, dict) and isinstance(t.get("sha256"), str)
                                               and isinstance(t.get("models"), list) for t in tokens):
        raise InvalidValueError(f"{path}: 'tokens' must be a list of {{name, sha256, models}}; "
                                "give the file `zoo token create` wrote")
    return tokens


def create_token(patterns: list[str], name: str | None = None, path: Path | None = None) -> tuple[str, Path]:
    """A new token reading the models ``patterns`` match, stored by its sha256 in ``path``; (token, path)."""
    path = Path(path) if path is not None else default_file()
    clean = [p.strip() for p in patterns if p.strip()]
    if not clean or any(len(p) > 200 or any(c in p for c in "\n\r\t/") for p in clean):
        raise UsageError("--models: one or more model names or patterns (fnmatch, as in mnist-* or '*'), "
                         "without '/' or whitespace")
    tokens = _read(path)
    token = PREFIX + secrets.token_urlsafe(32)
    name = name or f"token-{len(tokens) + 1}"
    if any(t.get("name") == name for t in tokens):
        raise UsageError(f"--name {name!r}: {path} already has a token of that name; choose another")
    tokens.append({"name": name, "sha256": _digest(token), "models": clean,
                   "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"tokens": tokens}, indent=2) + "\n")
    os.replace(tmp, path)
    return token, path


@dataclass(frozen=True)
class TokenSet:
    """The tokens of one file: sha256 -> model patterns."""

    entries: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def load(cls, path: str | Path) -> TokenSet:
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"--tokens {path}: no such file; create one with zoo token create --models PATTERN "
                             f"--file {path}")
        return cls(tuple((t["sha256"], tuple(str(m) for m in t["models"])) for t in _read(path)))

    def patterns(self, authorization: str) -> tuple[str, ...] | None:
        """The patterns of the token an ``Authorization`` header carries, or None (compared in constant time,
        against every stored hash)."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = _digest(token.strip())
        found = None
        for stored, patterns in self.entries:
            if hmac.compare_digest(stored, digest):
                found = patterns
        return found


def allows(scope, model: str) -> bool:
    """Whether the request's token reads ``model`` (always, without a token file)."""
    patterns = scope.get(SCOPE_KEY)
    return patterns is None or any(fnmatch.fnmatchcase(model, p) for p in patterns)


def _path_model(path: str, namespace: str) -> str | None:
    """The model one of the zoo's own routes names: ``/api/models/{model}``, ``/api/models/{model}/history``,
    ``/api/models/{model}/checkpoints/{step}``, ``/files/{model}/{step}[/{file}]`` (``/api/models/{namespace}/…``
    is the Hub's, which checks its own)."""
    parts = path.split("/")
    if parts[1:3] == ["api", "models"] and (len(parts) == 4 or (len(parts) == 5 and parts[4] == "history"
                                                                and parts[3] != namespace)
                                            or (len(parts) == 6 and parts[4] == "checkpoints")):
        return parts[3]
    if parts[1:2] == ["files"] and len(parts) >= 4:
        return parts[2]
    return None


class TokenGuard:
    """ASGI middleware: a valid bearer token on every route, its patterns put in the scope for the routes
    below (which list only the models they match), and the zoo's own per-model routes checked against them."""

    def __init__(self, app, tokens: TokenSet, namespace: str = "zoo") -> None:
        self.app = app
        self.tokens = tokens
        self.namespace = namespace

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers") or () if k == b"authorization"), "")
        patterns = self.tokens.patterns(header)
        if patterns is None:
            await _answer(401, "RepoNotFound", "a token is required: Authorization: Bearer <token> (HF_TOKEN for "
                          "Hugging Face clients)", scope, receive, send, {"WWW-Authenticate": 'Bearer realm="zoo"'})
            return
        scope = {**scope, SCOPE_KEY: patterns}
        path = scope["path"]
        model = _path_model(path, self.namespace)
        if model is not None and not allows(scope, model):
            # the words and headers of the zoo's own answer for a model that does not exist
            await _answer(404, None, f"no model {model[:80]!r} in this zoo", scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _answer(status: int, code: str | None, message: str, scope, receive, send,
                  headers: dict[str, str] | None = None) -> None:
    extra = {**({"X-Error-Code": code} if code else {}), **(headers or {})}
    response = JSONResponse({"error": message}, status_code=status, headers=extra)
    await response(scope, receive, send)
