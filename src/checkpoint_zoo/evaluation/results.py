"""Stored evaluation results: ``zoo/metrics/evaluations/<model>.json``, one file per model.

Light on purpose (json only): ``zoo ls``/``show`` read metrics without importing numpy or torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..catalog.table import atomic_write
from ..errors import ZooError


def parse_results(documents: Iterable[bytes | str | None]) -> dict[str, dict]:
    """Records by ``MODEL@STEP`` from the contents of per-model result files (None entries skipped)."""
    out: dict[str, dict] = {}
    for doc in documents:
        if doc is None:
            continue
        data = json.loads(doc)
        for rec in data.get("checkpoints", []):
            out[f"{data['model']}@{rec['step']}"] = rec
    return out


def read_results(folder: Path, models: Iterable[str] | None = None) -> dict[str, dict]:
    """Stored records by ``MODEL@STEP`` from ``zoo/metrics/evaluations`` (all models, or these)."""
    if not folder.is_dir():
        return {}
    files = sorted(folder.glob("*.json")) if models is None else [folder / f"{m}.json" for m in sorted(set(models))]
    out: dict[str, dict] = {}
    for f in files:
        if not f.exists():
            continue
        try:
            out.update(parse_results([f.read_bytes()]))
        except (OSError, ValueError) as e:
            raise ZooError(f"{f}: unreadable evaluation results ({e}); delete it and run `dvc repro`") from None
    return out


def dump_model_results(model: str, records: list[dict]) -> bytes:
    """The deterministic bytes of one model's results file (records sorted by step)."""
    body = {"model": model, "checkpoints": sorted(records, key=lambda r: r["step"])}
    return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()


def write_model_results(folder: Path, model: str, records: list[dict]) -> None:
    """One model's file, written atomically (and only when it changes)."""
    data = dump_model_results(model, records)
    path = folder / f"{model}.json"
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        atomic_write(path, data)


def write_results(folder: Path, records: dict[str, dict]) -> None:
    """One file per model, deterministic bytes; files of models no longer present are removed."""
    by_model: dict[str, list[dict]] = {}
    for ref, rec in records.items():
        by_model.setdefault(ref.rsplit("@", 1)[0], []).append(rec)
    folder.mkdir(parents=True, exist_ok=True)
    for model, recs in by_model.items():
        write_model_results(folder, model, recs)
    for f in folder.glob("*.json"):
        if f.stem not in by_model:
            f.unlink()
