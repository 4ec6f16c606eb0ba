"""The registries: architectures, tasks and datasets, one YAML file each under ``conf/``.

- ``conf/arch/<name>.yaml``: a ``_target_`` returning a ``torch.nn.Module`` and its keyword arguments.
- ``conf/task/<name>.yaml``: the evaluator, the metrics (torchmetrics ``_target_``s), the primary metric,
  the split that selects ``@best`` and the split that is reported.
- ``conf/dataset/<name>.yaml``: the task it serves, a loader ``_target_`` returning train/val/test
  splits, the input contract and the label names.

Reading a registry parses YAML only (no torch): ``zoo add``, ``ls`` and ``validate`` check names and
rules against it cheaply; building a model, a metric or a dataset instantiates the ``_target_``
(``targets.instantiate``), which only then imports the libraries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import layout
from ..catalog import rules
from ..errors import RegistryError
from .archs import ArchSpec, parse_arch
from .datasets import DatasetSpec, parse_dataset
from .digest import digest_of
from .targets import activate_code_folder, resolver_problem
from .tasks import MetricSpec, TaskSpec, parse_task

__all__ = ["ArchSpec", "DatasetSpec", "MetricSpec", "Registry", "TaskSpec", "load_registry", "digest_of"]

# (folder listing, file bytes) readers, so a registry loads from a working tree or a git revision alike.
ListDir = Callable[[str], list[str]]
ReadBytes = Callable[[str], bytes | None]


@dataclass(frozen=True)
class Registry:
    """Every registered architecture, task and dataset of one zoo (at one revision)."""

    archs: Mapping[str, ArchSpec]
    tasks: Mapping[str, TaskSpec]
    datasets: Mapping[str, DatasetSpec]
    # where the zoo's own code folder is on disk (None: it has none), and whether it may run
    code_dir: Path | None = None
    trusted: bool = True
    problems: tuple[str, ...] = field(default=())

    def arch(self, name: str) -> ArchSpec:
        """The architecture ``name`` or a RegistryError listing the registered ones."""
        return _get(self.archs, name, "arch", "architecture")

    def task(self, name: str) -> TaskSpec:
        """The task ``name`` or a RegistryError listing the registered ones."""
        return _get(self.tasks, name, "task", "task")

    def dataset(self, name: str) -> DatasetSpec:
        """The dataset ``name`` or a RegistryError listing the registered ones."""
        return _get(self.datasets, name, "dataset", "dataset")

    def activate_code(self, where: str) -> None:
        """Make the zoo's own code folder importable (refused unless trusted)."""
        activate_code_folder(self.code_dir, self.trusted, where)

    def row_problems(self, arch: str, task: str, dataset: str, reported_metric: str = "") -> list[str]:
        """Why a row's arch / task / dataset / reported metric do not fit the registries (empty: they do)."""
        out = []
        for group, value, known in (("arch", arch, self.archs), ("task", task, self.tasks),
                                    ("dataset", dataset, self.datasets)):
            if value not in known:
                out.append(_unknown(group, value, known))
        if dataset in self.datasets and task in self.tasks and self.datasets[dataset].task != task:
            out.append(f"dataset {dataset!r} serves task {self.datasets[dataset].task!r}, not {task!r} "
                       f"({self.datasets[dataset].file}); use --task {self.datasets[dataset].task} or another dataset")
        if reported_metric and task in self.tasks and reported_metric not in self.tasks[task].metrics:
            out.append(f"reported metric {reported_metric!r} is not a metric of task {task!r}; use one of "
                       f"{', '.join(self.tasks[task].metrics)}")
        return out

    def label_problem(self, arch: str, dataset: str) -> str | None:
        """Why the label map ``arch`` declares is not ``dataset``'s labels in order (None: it is, or either
        name is unregistered: ``row_problems`` says that)."""
        from .labels import arch_label_problem

        if arch not in self.archs or dataset not in self.datasets:
            return None
        spec, data = self.archs[arch], self.datasets[dataset]
        return arch_label_problem(spec.file, spec.config, data.labels, data.name)

    def metric_names(self) -> tuple[str, ...]:
        """Every metric name any task declares, sorted."""
        return tuple(sorted({m for t in self.tasks.values() for m in t.metrics}))


_GROUP_WORD = {"arch": "architecture", "task": "task", "dataset": "dataset"}


def _unknown(group: str, value: str, known: Mapping[str, object]) -> str:
    names = ", ".join(sorted(known)) or "none yet"
    return (f"{_GROUP_WORD[group]} {value!r} is not registered (registered: {names}); declare it in "
            f"{layout.CONF_DIR}/{group}/{value}.yaml (`zoo {group}s` lists them)")


def _get(specs: Mapping[str, Any], name: str, group: str, word: str) -> Any:
    if name not in specs:
        raise RegistryError(_unknown(group, name, specs))
    return specs[name]


_PARSERS: dict[str, Callable[[str, str, Mapping[str, Any]], Any]] = {
    "arch": parse_arch, "task": parse_task, "dataset": parse_dataset,
}


def load_registry(list_dir: ListDir, read_bytes: ReadBytes, *, code_dir: Path | None = None,
                  trusted: bool = True, strict: bool = True) -> Registry:
    """Read ``conf/{arch,task,dataset}/*.yaml``; strict: the first bad file raises, else it is skipped and
    listed in ``problems`` (so one broken file does not hide every other entry from ``zoo archs``)."""
    import yaml

    found: dict[str, dict[str, Any]] = {g: {} for g in layout.REGISTRY_GROUPS}
    problems: list[str] = []
    for group in layout.REGISTRY_GROUPS:
        folder = f"{layout.CONF_DIR}/{group}"
        for name in sorted(list_dir(folder)):
            if not name.endswith((".yaml", ".yml")):
                continue
            rel = f"{folder}/{name}"
            entry = name.rsplit(".", 1)[0]
            try:
                problem = rules.slug_problem(entry, f"{group} name")
                if problem:
                    raise RegistryError(f"{rel}: {problem}; rename the file")
                data = read_bytes(rel)
                try:
                    cfg = yaml.safe_load(data or b"")
                except yaml.YAMLError as e:
                    raise RegistryError(f"{rel}: not valid YAML ({str(e).splitlines()[0]}); fix the file") from None
                if not isinstance(cfg, dict):
                    raise RegistryError(f"{rel}: must be a YAML mapping of keys to values")
                resolver = resolver_problem(cfg)
                if resolver:
                    raise RegistryError(f"{rel}: {resolver}")
                found[group][entry] = _PARSERS[group](entry, rel, cfg)
            except RegistryError as e:
                if strict:
                    raise
                problems.append(str(e))
    for ds in found["dataset"].values():
        if ds.task not in found["task"]:
            msg = f"{ds.file}: task {ds.task!r} is not registered; declare {layout.CONF_DIR}/task/{ds.task}.yaml"
            if strict:
                raise RegistryError(msg)
            problems.append(msg)
    return Registry(found["arch"], found["task"], found["dataset"], code_dir, trusted, tuple(problems))


def workspace_registry(root: Path, strict: bool = True) -> Registry:
    """The registry of a working tree (its own code folder trusted: it is your clone)."""
    def list_dir(rel: str) -> list[str]:
        folder = root / rel
        return [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []

    def read_bytes(rel: str) -> bytes | None:
        path = root / rel
        return path.read_bytes() if path.is_file() else None

    code = root / layout.CODE_DIR
    return load_registry(list_dir, read_bytes, code_dir=code if code.is_dir() else None, trusted=True, strict=strict)
