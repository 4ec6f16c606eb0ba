"""The zoo's DVC pipeline (``dvc.yaml``) seen from outside: which stages are stale, which paths it reads
and writes (``zoo commit`` stages them).
"""

from __future__ import annotations

from pathlib import Path

from ...errors import StorageError
from .failures import first_line


def stale_stages(root: Path) -> list[str]:
    """Names of the pipeline stages of ``root`` whose outputs are not up to date (``dvc status``); [] if none
    or if there is no pipeline. A stage DVC lists only as ``always changed`` (``always_changed: true``, such as
    ``registry``) is not stale: it is listed whatever its outputs."""
    if not (root / "dvc.yaml").is_file():
        return []
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            status = repo.status()
    except Exception as e:  # DVC raises many unrelated types; each means the status is unknown
        raise StorageError(f"dvc status failed in {root}: {first_line(e)}; run `dvc status` to see why") from None
    return sorted(str(name).rsplit(":", 1)[-1] for name, why in status.items()
                  if not str(name).endswith(".dvc") and why != ["always changed"])


def pipeline_paths(root: Path) -> list[str]:
    """Every file or folder the pipeline (``dvc.yaml``) reads or writes, repo-relative: deps, outs, metrics,
    plots and the params files; [] without a pipeline."""
    from ...utils.safe_yaml import load_yaml

    path = root / "dvc.yaml"
    if not path.is_file():
        return []
    data = load_yaml(path.read_bytes(), "dvc.yaml") or {}
    out: list[str] = ["dvc.yaml", "dvc.lock"]
    for stage in (data.get("stages") or {}).values():
        if not isinstance(stage, dict):
            continue
        for key in ("deps", "outs", "metrics", "plots"):
            for item in stage.get(key) or []:
                out.append(next(iter(item)) if isinstance(item, dict) else str(item))
        if stage.get("params"):
            out.append("params.yaml")
    return list(dict.fromkeys(p for p in out if p and not p.startswith(("/", "..")) and "${" not in p))


def set_artifact(root: Path, name: str, entry: dict) -> None:
    """Write ``name``'s entry in the ``artifacts:`` section of ``dvc.yaml`` (DVC's model registry reads it;
    ``dvc artifacts get`` fetches its ``path``), keeping the rest of the file, comments included, as it is.
    ruamel's round trip configured as DVC's ``modify_yaml`` (the same bytes) without importing DVC, which
    would cost ``zoo release`` a tenth of a second."""
    import io

    from ruamel.yaml import YAML

    from ...utils.files import atomic_write

    path = root / "dvc.yaml"
    # round trip: plain mappings, lists and scalars with their comments; a tag it does not know (a Python
    # object's) is refused, never constructed
    round_trip = YAML(typ="rt")
    round_trip.default_flow_style = False
    try:
        data = round_trip.load(path.read_text(encoding="utf-8")) or {}
        data.setdefault("artifacts", {})[name] = entry
        out = io.StringIO()
        round_trip.dump(data, out)
    except Exception as e:  # a dvc.yaml ruamel cannot parse, or not a mapping: say so, change nothing
        raise StorageError(f"dvc.yaml: cannot add the artifact {name!r}: {first_line(e)}; fix dvc.yaml "
                           "(`dvc status` shows the problem)") from None
    atomic_write(path, out.getvalue().encode())
