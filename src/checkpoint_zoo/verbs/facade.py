"""What a verb may use of the facade it is bound into (``api.Zoo``), as a type.

Verbs sit below ``api`` in the layering (pyproject's import-linter contract), so they never import ``Zoo``,
not even for a type: they are functions of this protocol, which ``Zoo`` satisfies. The protocol is the
facade's public surface; there is nothing private of ``Zoo`` a verb could reach.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..entities import Checkpoint, RemoteInfo
    from ..registry import Registry
    from ..storage.base import CheckpointStore
    from ..utils.stamps import Stamps
    from ..workspace.source import Source
    from ..workspace.tree import Workspace

Row = dict[str, str]


class Facade(Protocol):
    """A zoo opened at a working tree or a revision, with every verb bound in."""

    root: Path
    stamps: Stamps
    trust_code: bool
    source: Source

    @property
    def revision(self) -> str | None: ...

    @property
    def workspace(self) -> Workspace: ...

    @property
    def storage(self) -> CheckpointStore: ...

    def writable(self, verb: str) -> Workspace: ...

    def registry(self) -> Registry: ...

    def rows(self) -> list[Row]: ...

    def records(self, models: Iterable[str] | None = None, rows: Iterable[Row] | None = None) -> dict[str, dict]: ...

    def get(self, ref: str) -> Checkpoint: ...

    def fetch(self, ref: str, remote: str | None = None) -> Path: ...

    def load_model(self, ref: str, remote: str | None = None) -> Any: ...

    def remotes(self) -> list[RemoteInfo]: ...
