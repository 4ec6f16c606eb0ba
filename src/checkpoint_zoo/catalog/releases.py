"""Releases and stages in GTO's grammar, read from git tags: pure functions over tag records.

GTO (and so ``dvc artifacts get`` and DVC Studio) reads a model registry from annotated git tags:
``MODEL@v1.2.0`` registers a version on a commit, ``MODEL#prod#3`` assigns a stage to the version on that
commit, ``MODEL#prod!#4`` unassigns it, ``MODEL@v1.2.0!`` deregisters a version. The zoo writes and reads
exactly these tags, so a registry made by ``gto`` itself reads the same; the counter after ``#`` orders
events (tag times have one-second resolution and GTO's own counters increase per artifact).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# GTO's own grammar (gto/constants.py), without its dirname prefix: the zoo's artifacts live in the root dvc.yaml.
GTO_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9-_]*[a-zA-Z0-9])?"
SEMVER = (r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
          r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
          r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?")
VERSION_RE = re.compile(rf"v{SEMVER}")
STAGE_RE = re.compile(GTO_NAME)
_TAG_RE = re.compile(
    rf"(?P<model>{GTO_NAME})(?:(?:#(?P<stage>{GTO_NAME})|@(?P<version>v{SEMVER}))(?P<cancel>!?)"
    rf"|@(?P<deprecated>deprecated))(?:#(?P<counter>[0-9]+))?"
)
# Names a stage may not take: they already mean something after '@'.
RESERVED_STAGES = frozenset({"latest", "best", "deprecated", "created"})
SHA256_RE = re.compile(r"[0-9a-f]{64}")
REGISTRY_FORMAT = 1


@dataclass(frozen=True)
class TagRecord:
    """One annotated tag as git tells it: its name, the commit it points at, who made it, when, and why."""

    name: str
    commit: str
    tagger: str
    date: datetime
    message: str


@dataclass(frozen=True)
class Event:
    """A registry event: ``release``, ``unrelease``, ``assign``, ``unassign`` or ``deprecate``."""

    kind: str
    model: str
    version: str
    stage: str
    counter: int
    tag: TagRecord


def name_problem(model: str) -> str | None:
    """Why GTO cannot name this model (None if it can), naming the characters it cannot take."""
    if STAGE_RE.fullmatch(model):
        return None
    bad = sorted({c for c in model if not (c.isascii() and (c.isalnum() or c in "-_"))})
    if bad:
        return (f"model {model!r}: GTO (and DVC's model registry) cannot name it: {' '.join(map(repr, bad))} not "
                "allowed (letters, digits, '-' and '_' only)")
    return f"model {model!r}: GTO (and DVC's model registry) needs a name that begins and ends with a letter or digit"


def version_problem(version: str) -> str | None:
    """Why ``version`` is not a release version (None if it is): a semver with a leading ``v``."""
    if VERSION_RE.fullmatch(version):
        return None
    return f"version {version!r}: not a semantic version; write vMAJOR.MINOR.PATCH, e.g. v1.2.0"


def stage_problem(stage: str) -> str | None:
    if stage in RESERVED_STAGES or stage.isdigit():
        return f"stage {stage!r}: already means something after '@'; pick another name (prod, staging, dev …)"
    if not STAGE_RE.fullmatch(stage) or stage.startswith("v") and VERSION_RE.fullmatch(stage):
        return (f"stage {stage!r}: letters, digits, '-' and '_', beginning and ending with a letter or digit "
                "(prod, staging, dev …)")
    return None


def _kind(m: re.Match[str]) -> str:
    cancel = m.group("cancel") == "!"
    if m.group("deprecated"):
        return "deprecate"
    if m.group("version"):
        return "unrelease" if cancel else "release"
    return "unassign" if cancel else "assign"


def tag_kind(name: str) -> str | None:
    """What a tag name records in GTO's grammar (``release``, ``unrelease``, ``assign``, ``unassign``,
    ``deprecate``), or None for a tag that is not GTO's."""
    m = _TAG_RE.fullmatch(name)
    return _kind(m) if m else None


def parse_event(tag: TagRecord) -> Event | None:
    """The event a tag records, or None for a tag that is not GTO's."""
    m = _TAG_RE.fullmatch(tag.name)
    if not m:
        return None
    return Event(_kind(m), m.group("model"), m.group("version") or "", m.group("stage") or "",
                 int(m.group("counter") or 0), tag)


def events(tags: Iterable[TagRecord], model: str | None = None) -> list[Event]:
    """GTO events of ``model`` (every model's when None), oldest first: by date, then counter, then name."""
    found = [e for e in (parse_event(t) for t in tags) if e is not None and (model is None or e.model == model)]
    return sorted(found, key=lambda e: (e.tag.date, e.counter, e.tag.name))


def releases(evs: Iterable[Event]) -> dict[str, Event]:
    """Version -> the release event that made it, deregistered versions left out."""
    out: dict[str, Event] = {}
    for e in evs:
        if e.kind == "release":
            out[e.version] = e
        elif e.kind == "unrelease":
            out.pop(e.version, None)
    return out


def holders(evs: Iterable[Event], at: datetime | None = None) -> dict[str, Event]:
    """Stage -> the assign event that holds it now (or at ``at``): one holder per stage, the latest assignment
    wins; an unassign empties the stage."""
    out: dict[str, Event] = {}
    for e in evs:
        if at is not None and e.tag.date > at:
            break
        if e.kind == "assign":
            out[e.stage] = e
        elif e.kind == "unassign":
            out.pop(e.stage, None)
    return out


def next_counter(evs: Iterable[Event]) -> int:
    """GTO's counter for a model's next stage tag: one more than any it has used."""
    return max((e.counter for e in evs), default=0) + 1


def _point(entry: Mapping[str, Any] | None, step_of: Any) -> dict[str, Any]:
    """The step and sha256 an artifact entry names (None where it names none, or something that is not one)."""
    meta = entry.get("meta") if entry else None
    sha = meta.get("sha256") if isinstance(meta, dict) else None
    return {"step": step_of(entry) if entry else None,
            "sha256": sha if isinstance(sha, str) and SHA256_RE.fullmatch(sha) else None}


def registry_document(evs: Iterable[Event], entry_of: Any, step_of: Any) -> dict[str, Any]:
    """What ``zoo/metrics/registry.json`` holds: per model, its releases (version, step, sha256, date) in the
    order they were made and the holder of each current stage (version, step, since). ``entry_of(commit,
    model)`` gives the ``dvc.yaml`` artifact entry at a tagged commit; ``step_of`` its step. Only what GTO's
    grammar parses gets here, so names and versions are already checked; steps and digests are checked here."""
    by_model: dict[str, list[Event]] = {}
    for e in evs:
        by_model.setdefault(e.model, []).append(e)
    models: dict[str, Any] = {}
    for model, mine in sorted(by_model.items()):
        made, held = releases(mine), holders(mine)
        released_at = {e.tag.commit: v for v, e in made.items()}
        rels = [{"version": v, **_point(entry_of(e.tag.commit, model), step_of), "date": e.tag.date.isoformat()}
                for v, e in made.items()]
        stages = {s: {"version": released_at.get(e.tag.commit), "step": _point(entry_of(e.tag.commit, model),
                                                                                step_of)["step"],
                      "since": e.tag.date.isoformat()} for s, e in sorted(held.items())}
        if rels or stages:
            models[model] = {"releases": rels, "stages": stages}
    return {"format": REGISTRY_FORMAT, "models": models}


def _release_problem(r: object) -> str | None:
    if not isinstance(r, dict) or set(r) != {"version", "step", "sha256", "date"}:
        return "must have exactly version, step, sha256 and date"
    if not isinstance(r["version"], str) or version_problem(r["version"]):
        return f"version {r['version']!r} is not vMAJOR.MINOR.PATCH"
    if r["step"] is not None and (isinstance(r["step"], bool) or not isinstance(r["step"], int) or r["step"] < 0):
        return f"step {r['step']!r} is not a whole number"
    if r["sha256"] is not None and not (isinstance(r["sha256"], str) and SHA256_RE.fullmatch(r["sha256"])):
        return "sha256 is not 64 lower-case hex digits"
    return None if isinstance(r["date"], str) and _is_date(r["date"]) else f"date {r['date']!r} is not an ISO date"


def _holder_problem(stage: object, h: object) -> str | None:
    if not isinstance(stage, str) or not STAGE_RE.fullmatch(stage):
        return f"stage {stage!r} is not a GTO stage name"
    if not isinstance(h, dict) or set(h) != {"version", "step", "since"}:
        return f"stage {stage}: must have exactly version, step and since"
    if h["version"] is not None and (not isinstance(h["version"], str) or version_problem(h["version"])):
        return f"stage {stage}: version {h['version']!r} is not vMAJOR.MINOR.PATCH"
    if h["step"] is not None and (isinstance(h["step"], bool) or not isinstance(h["step"], int) or h["step"] < 0):
        return f"stage {stage}: step {h['step']!r} is not a whole number"
    return None if isinstance(h["since"], str) and _is_date(h["since"]) else f"stage {stage}: since is not an ISO date"


def _is_date(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def registry_problem(doc: object) -> str | None:
    """Why a ``registry.json`` is not one ``registry_document`` could have written (None if it is), naming the
    model and field: the file is committed, so anyone could have edited it."""
    if not isinstance(doc, dict) or doc.get("format") != REGISTRY_FORMAT or not isinstance(doc.get("models"), dict):
        return f"needs format {REGISTRY_FORMAT} and a 'models' mapping"
    for model, entry in doc["models"].items():
        if not isinstance(model, str) or not STAGE_RE.fullmatch(model):
            return f"model {model!r} is not a GTO artifact name"
        if not isinstance(entry, dict) or set(entry) != {"releases", "stages"} or not isinstance(
                entry["releases"], list) or not isinstance(entry["stages"], dict):
            return f"models.{model}: needs a 'releases' list and a 'stages' mapping"
        for i, r in enumerate(entry["releases"]):
            problem = _release_problem(r)
            if problem:
                return f"models.{model}.releases[{i}]: {problem}"
        for stage, h in entry["stages"].items():
            problem = _holder_problem(stage, h)
            if problem:
                return f"models.{model}.stages: {problem}"
    return None
