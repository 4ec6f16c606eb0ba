"""The browse page: one app (``index.html``, ``leaderboard.js``, ``lineage.js``, ``app.js``, ``style.css``) and its
data (``data.js``); ``zoo serve`` adds ``api.js``, the page's paged data source.

The same files serve two places: the static ``site/`` the index stage writes (opened from disk,
no server) and ``zoo serve`` (which sends them with a strict Content-Security-Policy and generates
``data.js`` per revision). So the page has no inline script or style and builds every element from data
with ``textContent``; the one HTML it inserts is a model card's, rendered by markdown-it (``cards.py``) with raw
HTML off and links limited to http(s) and relative URLs.

``app.js`` loads ``data.js`` itself: from ``file://`` the plain ``data.js`` beside the page, over
http(s) ``data.js?rev=REV`` with the ``rev`` of the page's own query string, so one ``index.html``
works in both places. Two kinds of ``data.js`` exist. The all-in-one one (``site_data``: every model,
checkpoint and card) is the static site's, which fetches nothing else and holds no network code at all.
A big zoo's served page gets the light one instead (``paged_data``: title, revision, versions, metric
directions, facet values with counts, releases and stages); the page then loads ``api.js`` (served only,
never in ``site/``) and asks the JSON API for the page of models it shows, a model, the compared
checkpoints or the boards, so what it parses stays the same size whatever the zoo's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

from ...catalog.table import atomic_write
from .cards import render_card_html as render_card_html  # the served card's route renders one
from .cards import render_cards

PAGE_FILES = ("index.html", "leaderboard.js", "lineage.js", "app.js", "style.css")
SERVED_FILES = ("api.js",)  # the paged data source: only zoo serve has an API to ask
# the page's facet -> the facet of ModelView.facets (and of /api/models?tag=)
PAGED_FACETS = {"task": "task", "arch": "arch", "license": "license", "dataset": "dataset", "tags": "tag"}
# Checkpoint fields the page shows. The rest of an index entry (evaluation hashes, source, the per-checkpoint
# copy of the model's description, the selection split's every metric) stays in zoo/index.json: data.js
# is parsed whole by the browser, and at 100,000 checkpoints each dropped field is megabytes.
_CKPT_FIELDS = ("model", "step", "ref", "epoch", "created", "task", "arch", "dataset", "license", "tags",
                "num_params", "size_bytes", "sha256", "path", "format", "dtype", "parent", "metrics", "selection",
                "reported_metric", "reported_value", "reproduced_value", "delta", "reproduced_agrees",
                "pull_command", "is_best", "is_latest", "files", "status", "error", "stale")


def _step_order(ref: str) -> tuple[str, int, str]:
    """``model@20`` before ``model@160``: refs by model, then by step as a number."""
    model, _, step = ref.rpartition("@")
    return (model, int(step), "") if step.isdigit() else (model, -1, step)


def _boards(models: dict[str, dict]) -> list[dict]:
    """The leaderboards of ``publish.index.leaderboards`` (task, dataset, split; best first) for the page."""
    from ..index import board_name, leaderboards

    named = {name: {**m, "name": name} for name, m in models.items()}
    return [{"name": board_name(key), "task": key[0], "dataset": key[1], "split": key[2],
             "metric": ranked[0].get("primary_metric"), "higher_is_better": bool(ranked[0].get("higher_is_better", True)),
             "models": [m["name"] for m in ranked]}
            for key, ranked in leaderboards(named).items()]


def _metric_directions(index: dict) -> tuple[dict[str, dict], list[dict]]:
    tasks: dict[str, dict] = {}
    overall: dict[str, bool] = {}
    for name, t in index.get("tasks", {}).items():
        by = t.get("higher_is_better_by_metric") or {}
        tasks[name] = {"primary_metric": t.get("primary_metric"),
                       "metrics": [{"name": n, "higher_is_better": bool(by.get(n, True))} for n in t["metrics"]]}
        for n in t["metrics"]:
            # a metric two tasks rank differently sorts by the stricter reading: lower is better wins
            overall[n] = overall.get(n, True) and bool(by.get(n, True))
    return tasks, [{"name": n, "higher_is_better": h} for n, h in sorted(overall.items())]


def site_data(index: dict, cards_md: dict[str, str], *, title: str, downloads: bool, rev: str | None = None,
              versions: list[dict] | None = None, registry: dict[str, dict] | None = None) -> dict:
    """Everything the page shows, as JSON-ready data: models (summary, card HTML and metadata, lineage),
    checkpoints (with children derived from ``parent``, in step order), metric names with direction per task,
    the leaderboards (one per task, dataset and split, best first), the title, whether to offer downloads
    (``files/by-sha256/SHA/NAME``, served mode) and the revision picker."""
    tasks, metrics = _metric_directions(index)
    entries = {e["ref"]: e for e in index["checkpoints"]}
    checkpoints = [{k: e.get(k) for k in _CKPT_FIELDS} for e in index["checkpoints"]]
    for c in checkpoints:
        c["selection"] = {k: v for k, v in (c["selection"] or {}).items() if k != "metrics"}
        # the split its metrics are on: with task and dataset, what the compare view may rank together
        c["split"] = (entries[c["ref"]].get("evaluation") or {}).get("split")
    children: dict[str, list[str]] = {}
    for c in checkpoints:
        if c["parent"]:
            children.setdefault(c["parent"], []).append(c["ref"])
    by_model: dict[str, list[dict]] = {}
    for c in checkpoints:
        c["children"] = sorted(children.get(c["ref"], []), key=_step_order)
        by_model.setdefault(c["model"], []).append(c)
    rendered = render_cards({name: cards_md[name] for name in index["models"] if name in cards_md})
    models = {}
    for name, summary in index["models"].items():
        cs = by_model.get(name, [])
        best = entries.get(summary.get("best"), {})
        own = {c["ref"] for c in cs}
        meta, card_html = rendered.get(name, ({}, ""))
        models[name] = {
            **summary, "name": name, "description": best.get("description") or "",
            "tags": sorted({t for c in cs for t in c.get("tags") or []}),
            "num_params": best.get("num_params"), "size_bytes": sum(c.get("size_bytes") or 0 for c in cs),
            "created": max((c.get("created") or "" for c in cs), default=""),
            "parents": sorted({c["parent"] for c in cs if c["parent"] and c["parent"] not in own}, key=_step_order),
            "children": sorted({r for c in cs for r in c["children"] if r not in own}, key=_step_order),
            "card_html": card_html, "card_meta": meta,
            **(registry or {}).get(name, {}),
        }
    return {"format": 1, "title": title, "downloads": bool(downloads), "rev": rev,
            "versions": [{k: v.get(k) for k in ("name", "kind", "commit")} for v in versions or []],
            "tasks": tasks, "metrics": metrics, "models": models, "checkpoints": checkpoints,
            "leaderboards": _boards(index["models"])}


def paged_data(facets: Iterable[Mapping[str, Sequence[str]]], tasks: dict, *, title: str, rev: str | None = None,
               versions: list[dict] | None = None, registry: dict[str, dict] | None = None,
               checkpoints: int = 0) -> dict:
    """The light ``data.js`` of a served big zoo: what the page needs before its first API request, built from
    each model's facets (``ModelView.facets``) and the tasks alone, so its size follows the number of facet
    values, not of checkpoints. ``paged`` tells the page to load ``api.js`` and ask the API for the rest."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in PAGED_FACETS}
    models = 0
    for f in facets:
        models += 1
        for name, key in PAGED_FACETS.items():
            counts[name].update(v for v in set(f.get(key, ())) if v)
    by_task, metrics = _metric_directions({"tasks": tasks})
    return {"format": 1, "paged": True, "title": title, "downloads": True, "rev": rev,
            "versions": [{k: v.get(k) for k in ("name", "kind", "commit")} for v in versions or []],
            "tasks": by_task, "metrics": metrics, "registry": registry or {},
            "facets": {name: dict(sorted(c.items())) for name, c in counts.items()},
            "total": {"models": models, "checkpoints": checkpoints}}


def page_files(served: bool = False) -> dict[str, bytes]:
    """The page's assets by file name: ``PAGE_FILES`` (the static site's), and ``SERVED_FILES`` too if ``served``."""
    folder = resources.files(__name__)
    return {name: folder.joinpath(name).read_bytes() for name in PAGE_FILES + (SERVED_FILES if served else ())}


def json_for_script(data: object) -> str:
    """JSON that cannot close a <script> element or start a comment inside it."""
    import orjson

    text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def data_js(data: dict) -> bytes:
    """``data.js``: ``window.ZOO_DATA = {...};`` with the JSON escaped so no text in it can end the script."""
    return f"window.ZOO_DATA = {json_for_script(data)};\n".encode()


def write_site(site_dir: Path, data: dict) -> None:
    """Write the page's assets (``PAGE_FILES``) and ``data.js`` into ``site_dir``, each atomically."""
    atomic_write(site_dir / "data.js", data_js(data))
    for name, content in page_files().items():
        atomic_write(site_dir / name, content)
