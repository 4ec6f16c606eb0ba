"""``zoo doctor``: what this clone needs once (merge drivers, a remote, a recomposed params.yaml …)."""

from __future__ import annotations

from ...utils.redact import printable
from ..output import echo


def add_parser(subparsers) -> None:
    subparsers.add_parser("doctor", help="name anything this clone needs a one-time command for, and the command")


def _pipeline_findings(zoo) -> list[str]:
    """The pipeline's params.yaml against conf/ and the installed package (a zoo made by `zoo init`)."""
    from ...errors import ZooError
    from ...pipeline import PARAMS_FILE, compose, load_params

    if not (zoo.root / "dvc.yaml").is_file() or not (zoo.root / "conf" / "config.yaml").is_file():
        return []
    try:
        fresh = compose(zoo.root) == load_params(zoo.root)
    except ZooError as e:
        return [f"{PARAMS_FILE}: {e}"]
    if fresh:
        return []
    return [f"{PARAMS_FILE} is not what conf/ and the installed checkpoint-zoo compose to (conf/ edited, or the "
            "package upgraded): run `python -m checkpoint_zoo.pipeline compose`, then `dvc repro`"]


def run(zoo, args) -> int:
    from ...verbs.doctor import diagnose

    found = [*diagnose(zoo), *_pipeline_findings(zoo)]
    for line in found:
        echo(f"- {printable(line)}")
    echo("nothing to do" if not found else f"{len(found)} thing(s) to do once")
    return 1 if found else 0
