"""Pure parsing of the Hub's names: raw request paths (revisions arrive quoted with ``safe=""``, so ``%2F``
and ``%40`` must be decoded after splitting, never before), repo ids and revisions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

NAME = re.compile(r"[a-z0-9]([a-z0-9_-]*[a-z0-9])?")
HEX40 = re.compile(r"[0-9a-f]{40}")
STEP = re.compile(r"(?:step-)?0*([0-9]{1,18})")
ALIASES = ("best", "latest")


@dataclass(frozen=True)
class Request:
    """What a Hub request asks for: ``kind`` is ``resolve``, ``info``, ``revision``, ``tree``, ``refs`` or
    ``list``; ``rev`` and ``path`` are decoded."""

    kind: str
    namespace: str = ""
    model: str = ""
    rev: str = "main"
    path: str = ""


def namespace_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Hub namespace (the Hub's and GTO's shared name rule), or None."""
    if not NAME.fullmatch(name) or len(name) > 96 or "--" in name:
        return (f"--hub-namespace {name[:40]!r}: lower-case letters, digits, '-' and '_' (not first or last, "
                "no '--'), at most 96 characters, as in --hub-namespace team")
    return None


def parse(raw_path: str) -> Request | None:
    """The Hub request a raw path (still percent-encoded) makes, or None when it is not one of the Hub's
    shapes (then the app's own routes answer, other ``/api/*`` paths included). ``/api/models`` alone is
    ``list``."""
    parts = raw_path.split("/")[1:]
    if parts[:2] == ["api", "models"]:
        rest = parts[2:]
        if rest in ([], [""]):
            return Request("list")
        if len(rest) < 2 or (len(rest) == 3 and rest[1] == "checkpoints"):  # the zoo's own /api/models/{model}…
            return None
        ns, model, tail = unquote(rest[0]), unquote(rest[1]), rest[2:]
        if not tail or tail == [""]:
            return Request("info", ns, model)
        if tail[0] == "revision" and len(tail) >= 2:
            return Request("revision", ns, model, unquote("/".join(tail[1:])))
        if tail[0] == "tree" and len(tail) >= 2:
            return Request("tree", ns, model, unquote(tail[1]), unquote("/".join(tail[2:])).strip("/"))
        if tail == ["refs"]:
            return Request("refs", ns, model)
        return Request("unknown", ns, model)
    if len(parts) >= 5 and parts[2] == "resolve" and parts[0] != "api":
        return Request("resolve", unquote(parts[0]), unquote(parts[1]), unquote(parts[3]),
                       unquote("/".join(parts[4:])))
    return None


def split_revision(rev: str) -> tuple[str | None, str]:
    """``(git ref or None for the served revision, selector)``: ``main`` -> (None, "best"); ``best``,
    ``latest``, ``step-300``, ``300`` -> (None, it); ``v1@300`` -> ("v1", "300"); anything else is a git ref
    (or a registry name) whose best checkpoint is served -> (rev, "best")."""
    if rev == "main":
        return None, "best"
    if rev in ALIASES or STEP.fullmatch(rev):
        return None, rev
    if "@" in rev:
        ref, _, selector = rev.rpartition("@")
        return ref or None, selector or "best"
    return rev, "best"


def step_of(selector: str) -> int | None:
    """The step a selector names (``300``, ``step-300``, ``step-00000300``), else None."""
    m = STEP.fullmatch(selector)
    return int(m.group(1)) if m else None


def git_ref_problem(ref: str) -> bool:
    """True when ``ref`` cannot be a git branch, tag or commit (checked before it reaches git)."""
    return (ref.startswith("-") or len(ref) > 256 or ".." in ref
            or any(c in ref for c in " \t\r\n\\\x00~^:?*["))
