"""What ``/api/models`` and ``/api/facets`` select: the search's words and the facets' filters of one query, as
the static page's search box and checkboxes select (every word anywhere in a model's text, in any order; a
facet's values OR'ed, the facets AND'ed), and the drill-down counts its checkboxes show."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .snapshot import ModelView

FACETS = ("task", "arch", "license", "dataset", "tag")


class Params(Protocol):  # a request's query parameters (starlette's QueryParams)
    def get(self, key: str) -> str | None: ...
    def getlist(self, key: str) -> list[str]: ...


@dataclass(frozen=True)
class Filter:
    """``search``'s words (lower case) and each facet's wanted values."""

    words: tuple[str, ...] = ()
    wanted: Mapping[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, params: Params) -> Filter:
        return cls(tuple((params.get("search") or "").lower().split()),
                   {f: set(params.getlist(f)) for f in FACETS if params.getlist(f)})

    def __bool__(self) -> bool:
        return bool(self.words or self.wanted)

    def failing(self, view: ModelView) -> list[str] | None:
        """The facets whose filter ``view`` fails; None when it fails the search."""
        if not all(word in view.search_text for word in self.words):
            return None
        return [f for f, values in self.wanted.items() if values.isdisjoint(view.facets[f])]

    def keeps(self, view: ModelView) -> bool:
        return self.failing(view) == []


def facet_counts(views: Iterable[ModelView], chosen: Filter) -> dict[str, dict[str, int]]:
    """Each facet value's count of models that the search and the other facets' filters leave with it (a facet's
    own filter does not narrow its counts, so its other values stay choosable)."""
    counts: dict[str, Counter[str]] = {f: Counter() for f in FACETS}
    for view in views:
        failing = chosen.failing(view)
        if failing is None or len(failing) > 1:
            continue
        for f in failing or FACETS:  # passing every filter: counted in every facet; all but f's: in f only
            counts[f].update({value for value in view.facets[f] if value})
    return {f: dict(sorted(c.items())) for f, c in counts.items()}
