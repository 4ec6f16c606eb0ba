"""Checkpoint references: ``MODEL@STEP``, ``MODEL@latest``, ``MODEL@best``, ``MODEL`` (= latest), and the
registry's names: ``MODEL@v1.2.0`` (a release) and ``MODEL@prod`` (whatever release holds a stage)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import RefError
from .releases import STAGE_RE, VERSION_RE

_REF_RE = re.compile(r"(?P<model>[^@\s]+)(?:@(?P<rev>[^@\s]+))?")
ALIASES = ("latest", "best")


@dataclass(frozen=True)
class Ref:
    """A parsed reference; ``selector`` is a step number or an alias."""

    model: str
    selector: int | str = "latest"

    def __str__(self) -> str:
        return f"{self.model}@{self.selector}"

    @property
    def kind(self) -> str:
        """``step``, ``alias`` (latest, best), ``version`` (v1.2.0) or ``stage`` (prod)."""
        if isinstance(self.selector, int):
            return "step"
        if self.selector in ALIASES:
            return "alias"
        return "version" if VERSION_RE.fullmatch(self.selector) else "stage"


def parse_ref(text: str) -> Ref:
    """Parse ``MODEL[@STEP|@latest|@best]``; raises RefError naming the reference on bad input."""
    if not isinstance(text, str) or not text.strip():
        raise RefError("empty checkpoint reference: use MODEL, MODEL@STEP, MODEL@latest, MODEL@best, "
                       "MODEL@v1.2.0 or MODEL@STAGE")
    m = _REF_RE.fullmatch(text.strip())
    if not m:
        raise RefError(f"malformed reference {text!r}: use MODEL, MODEL@STEP, MODEL@latest or MODEL@best")
    model, sel = m.group("model"), m.group("rev")
    if sel is None:
        return Ref(model, "latest")
    if sel in ALIASES:
        return Ref(model, sel)
    if sel.isascii() and sel.isdigit():
        return Ref(model, int(sel))
    if VERSION_RE.fullmatch(sel) or (STAGE_RE.fullmatch(sel) and len(sel) > 1 and not sel[0].isdigit()):
        return Ref(model, sel)
    raise RefError(
        f"malformed reference {text!r}: after '@' comes a step number, 'latest', 'best', a release (v1.2.0) or "
        f"a stage (prod), not {sel!r}"
    )


def natural_key(text: str) -> list[object]:
    """Sort key that orders ``m2`` before ``m10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]
