"""``zoo lineage``: the checkpoints a model was fine-tuned from, and the ones fine-tuned from it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..entities import Lineage
from .resolve import resolve_row

if TYPE_CHECKING:
    from .facade import Facade


def lineage(zoo: Facade, model: str) -> Lineage:
    """The checkpoints ``model`` was fine-tuned from and the ones fine-tuned from it, across models."""
    rows = zoo.rows()
    if not any(r["model"] == model for r in rows):
        resolve_row(zoo, model, rows)  # the one "unknown model" message
    parents = {f"{r['model']}@{r['step']}": r["parent"] for r in rows if r["parent"]}
    children: dict[str, list[str]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    own = [f"{r['model']}@{r['step']}" for r in rows if r["model"] == model]

    def walk(links: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
        visited, frontier, found = set(own), list(own), []
        while frontier:  # breadth first, so nearest first
            nxt = []
            for ref in frontier:
                for other in links.get(ref, ()):
                    if other not in visited:
                        visited.add(other)
                        nxt.append(other)
                        found.append(other)
            frontier = nxt
        return tuple(found)

    return Lineage(model, walk({k: [v] for k, v in parents.items()}), walk(children))
