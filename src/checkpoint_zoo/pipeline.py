"""The stages of ``dvc.yaml``: ``python -m checkpoint_zoo.pipeline {validate,evaluate,index,compose}``.

Each stage prints what it did and exits 1 with the clear report on failure, leaving the outputs of
the stages after it untouched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from . import layout
from .catalog import rules
from .errors import ZooError
from .utils import environ, heap

PARAMS_FILE = "params.yaml"
CONF_DIR = "conf"
VALIDATION_FILE = "zoo/metrics/validation.json"
REGISTRY_FILE = layout.REGISTRY_FILE


def compose(root: Path, overrides: list[str] | None = None) -> dict:
    """What Hydra composes from ``conf/`` (``config.yaml`` and its defaults), as plain data."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from .registry.targets import resolver_problem

    conf = (root / CONF_DIR).resolve()
    if not (conf / "config.yaml").is_file():
        raise ZooError(f"{conf / 'config.yaml'}: missing; the pipeline's params are composed from conf/")
    check_conf_resolvers(root)
    with initialize_config_dir(str(conf), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=overrides or [])
    problem = resolver_problem(OmegaConf.to_container(cfg, resolve=False))
    if problem:  # an override given on the command line
        raise ZooError(f"{CONF_DIR}/ composed with {' '.join(overrides or [])}: {problem}")
    data = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(data, dict):
        raise ZooError(f"{conf / 'config.yaml'}: must compose to a mapping of sections")
    if "package" in data:  # a zoo made by `zoo init`: its stages re-run when the installed package changes
        data["package"] = package_identity()
    return data


def package_identity() -> dict[str, str]:
    """The installed package's version and a sha256 over its code (every module), for params.yaml."""
    from .utils.version import __version__

    base = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(base.rglob("*.py")):
        if "__pycache__" not in p.parts:
            h.update(p.relative_to(base).as_posix().encode() + b"\0" + p.read_bytes())
    return {"version": __version__, "code": h.hexdigest()}


def check_conf_resolvers(root: Path) -> None:
    """Refuse a file of ``conf/`` that calls an OmegaConf resolver (``${oc.env:SECRET}`` would copy the
    environment into params.yaml, the site and exports), one line naming the file and key."""
    from .registry.targets import resolver_problem
    from .utils.safe_yaml import load_yaml

    for path in sorted((root / CONF_DIR).rglob("*.y*ml")):
        if not path.is_file() or path.suffix not in (".yaml", ".yml"):
            continue
        rel = path.relative_to(root).as_posix()
        try:
            data = load_yaml(path.read_bytes(), rel)
        except ZooError:
            continue  # Hydra, or the registry, reports a file that is not YAML
        problem = resolver_problem(data)
        if problem:
            raise ZooError(f"{rel}: {problem}")


def write_params(root: Path, overrides: list[str] | None = None) -> Path:
    """Recompose params.yaml from conf/ (what ``dvc exp run`` does through DVC's Hydra integration)."""
    import yaml

    from .catalog.table import atomic_write
    from .evaluation.executors import address_problem

    data = compose(root, overrides)
    problem = address_problem(data.get("executor"), f"{CONF_DIR}/ (composed)")
    if problem:
        raise ZooError(problem)
    atomic_write(root / PARAMS_FILE, yaml.safe_dump(data, sort_keys=False).encode())
    return root / PARAMS_FILE


def load_params(root: Path) -> dict:
    """params.yaml, read with safe YAML loading."""
    import yaml

    path = root / PARAMS_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ZooError(f"{path}: missing; create it with `python -m checkpoint_zoo.pipeline compose`") from None
    except yaml.YAMLError as e:
        raise ZooError(f"{path}: not valid YAML ({str(e).splitlines()[0]}); recompose it with "
                       "`python -m checkpoint_zoo.pipeline compose`") from None
    if not isinstance(data, dict) or not {"eval", "run", "index"} <= set(data):
        raise ZooError(f"{path}: needs 'eval', 'run' and 'index' sections; recompose it with "
                       "`python -m checkpoint_zoo.pipeline compose`")
    from .registry.targets import resolver_problem

    check_conf_resolvers(root)
    problem = resolver_problem(data)
    if problem:
        raise ZooError(f"{path}: {problem}; fix conf/ and recompose with `python -m checkpoint_zoo.pipeline compose`")
    check_params(data, PARAMS_FILE)
    return data


# (section, key): (default, lowest, highest, what a good value is); None allowed only where the default is None
_WHOLE_PARAMS = {
    ("eval", "max_examples"): (None, 1, rules.MAX_COUNT, "null (every example) or a whole number >= 1"),
    ("run", "batch_size"): (256, 1, 1 << 20, "a whole number from 1 to 1048576"),
    ("run", "threads"): (1, 1, 1024, "a whole number from 1 to 1024"),
}


def check_params(data: dict, source: str) -> None:
    """Refuse eval and run params the evaluation cannot use as meant (``max_examples: -5`` would silently cut
    the data, ``batch_size: 0`` loop forever), one line naming the field and what fits."""
    from .evaluation.executors import address_problem

    for section in ("eval", "run"):
        if not isinstance(data.get(section), dict):
            raise ZooError(f"{source} {section}: must be a mapping of settings (conf/config.yaml)")
    for (section, key), (default, low, high, good) in _WHOLE_PARAMS.items():
        value = data[section].get(key, default)
        if value is None and default is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ZooError(f"{source} {section}.{key}: {value!r} is not {good}; fix conf/ (or the -S override) "
                           "and recompose")
    problem = address_problem(data.get("executor"), source)
    if problem:
        raise ZooError(problem)
    device = data["run"].get("device", "cpu")
    if device not in ("cpu", "cuda", "auto"):
        raise ZooError(f"{source} run.device: {device!r} is not cpu, cuda or auto; fix conf/ and recompose")


def check_params_fresh(root: Path) -> None:
    """Refuse to run on a params.yaml that conf/ no longer composes to (outside ``dvc exp run``)."""
    if environ.in_dvc_experiment():
        return
    if compose(root) != load_params(root):
        raise ZooError(
            "params.yaml differs from what conf/ composes to (conf/ was edited, or an experiment's -S "
            "overrides are still in the workspace): run `python -m checkpoint_zoo.pipeline compose` to "
            "recompose it from conf/ (or use `dvc exp run -S ...`), then `dvc repro` again"
        )


def stage_validate(root: Path) -> None:
    from .api import Zoo

    check_params_fresh(root)
    zoo = Zoo(root)
    problems = zoo.validate(evaluations=False)  # failed evaluations are retried by the evaluate stage
    if problems:
        raise ZooError("validate: " + f"{len(problems)} problem(s)\n  " + "\n  ".join(problems))
    data = zoo.table_path.read_bytes()
    # only what downstream stages depend on: a code edit that keeps the verdict changes nothing here
    report = {"rows": len(zoo.rows()), "table_sha256": hashlib.sha256(data).hexdigest()}
    from .catalog.table import atomic_write

    atomic_write(root / VALIDATION_FILE, (json.dumps(report, indent=1, sort_keys=True) + "\n").encode())
    print(f"validate: {report['rows']} rows valid; present files match the table")


def stage_evaluate(root: Path, force: bool = False) -> None:
    from .api import Zoo
    from .evaluation.run import evaluate_zoo

    params = load_params(root)
    evaluate_zoo(Zoo(root), params["eval"], params["run"], root / layout.EVALUATIONS_DIR, force=force,
                 executor=params.get("executor"))


def stage_registry(root: Path) -> None:
    """Write every model's releases and current stages (GTO tags) to ``REGISTRY_FILE`` for the index stage. The
    stage is ``always_changed`` (a tag changes no file DVC could watch), so it runs on every ``dvc repro``: the
    file is rewritten only when its bytes would change, and only then does the index stage run again."""
    import orjson

    from .utils.files import atomic_write
    from .verbs.release import registry_document

    doc = registry_document(root)
    data = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    path = root / REGISTRY_FILE
    same = path.is_file() and path.read_bytes() == data
    if not same:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    n = sum(len(m["releases"]) for m in doc["models"].values())
    print(f"registry: {n} releases; {REGISTRY_FILE} {'unchanged' if same else 'written'}")


def stage_index(root: Path) -> None:
    from .api import Zoo
    from .catalog.records import read_results
    from .publish import index

    params = load_params(root)["index"]
    zoo = Zoo(root)
    with heap.paused_gc():  # an entry, card and curve per checkpoint, none in a cycle
        built = index.build(zoo, read_results(root / layout.EVALUATIONS_DIR), params, root / "site")
    print(f"index: {len(built['checkpoints'])} checkpoints of {len(built['models'])} models -> "
          "zoo/index.json, zoo/INDEX.md, zoo/cards/, zoo/metrics/summary.json, zoo/metrics/curves/, "
          "site/ (index.html, app.js, style.css, data.js)")
    print("index: next `zoo commit --push -m MESSAGE` pushes the new checkpoints, stages dvc.lock and every output "
          "with the table and pointers, and commits them (it does what DVC's own hints below would have you do)")


def main(argv: list[str] | None = None) -> int:
    """Run one stage; known errors print their report and exit 1."""
    p = argparse.ArgumentParser(prog="python -m checkpoint_zoo.pipeline", description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=("validate", "evaluate", "index", "compose", "registry"))
    p.add_argument("--force", action="store_true",
                   help="evaluate: re-evaluate every checkpoint; a result that agrees with the stored one "
                   "within the reproducibility contract keeps the stored bytes, one that does not is written and fails the run")
    p.add_argument("overrides", nargs="*", help="compose: Hydra overrides such as eval.batch_size=64")
    p.add_argument("-C", "--repo", default=".", help="the zoo (default: current folder)")
    args = p.parse_args(argv)
    root = Path(args.repo).resolve()
    try:
        if args.stage == "compose":
            print(f"composed {write_params(root, args.overrides)} from {CONF_DIR}/")
            return 0
        if args.stage == "registry":  # reads tags, writes one file of its own: no zoo lock, no Zoo
            stage_registry(root)
            return 0
        from .api import Zoo

        # a stage reads the table and pointers: never while a zoo add or rm is changing them (its
        # outputs are persistent, so a refusal leaves the previous ones in place)
        with Zoo(root).workspace.lock(wait=0, refusal="a zoo add or rm is changing this zoo right now; run `dvc repro` "
                                             "again when it has finished (the previous outputs are unchanged)"):
            if args.stage == "validate":
                stage_validate(root)
            elif args.stage == "evaluate":
                stage_evaluate(root, force=args.force)
            else:
                stage_index(root)
    except ZooError as e:
        from .utils.redact import printable

        print(printable(f"{args.stage}: {e}" if not str(e).startswith(args.stage) else str(e)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
