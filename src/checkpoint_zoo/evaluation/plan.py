"""What to evaluate: the memo key of every checkpoint, and which stored results it can reuse.

The key of a checkpoint is (its sha256, the evaluation code, the config of its task + dataset +
architecture, the semantic eval params, the hash of the evaluated data). Execution settings (batch
size, threads, device, executor) are not in it: changing them re-evaluates nothing. Changing one
task's file re-evaluates that task's checkpoints only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import layout
from ..registry import Registry, digest_of

# The eval params that change results; everything else in params.yaml's `run` section only changes how
# fast they come.
SEMANTIC_PARAMS: tuple[str, ...] = ("max_examples",)
# The package code whose change must re-evaluate everything (paths relative to the package).
_CODE = ("evaluation", "registry", "datasets.py", "nets.py", "text.py")
_PACKAGE = Path(__file__).resolve().parents[1]


def _files(base: Path, names: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for name in names:
        p = base / name
        out.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
    return out


def package_code_hash() -> str:
    """sha256 over the package's evaluation code."""
    h = hashlib.sha256()
    for p in _files(_PACKAGE, _CODE):
        h.update(p.relative_to(_PACKAGE).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def zoo_code_hash(code_dir: Path | None) -> str:
    """sha256 over the zoo's own code folder (empty when it has none)."""
    h = hashlib.sha256()
    if code_dir is not None and code_dir.is_dir():
        for p in sorted(code_dir.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(p.relative_to(code_dir).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def params_hash(params: Mapping[str, Any]) -> str:
    """sha256 of the semantic eval params only."""
    return digest_of({k: params.get(k) for k in SEMANTIC_PARAMS})


@dataclass(frozen=True)
class Key:
    """The memo key of one checkpoint's evaluation."""

    sha256: str
    code_hash: str
    config_hash: str
    params_hash: str
    data_hash: str

    def provenance(self) -> dict[str, str]:
        """The key's hashes as stored in the record."""
        return {"code_hash": self.code_hash, "config_hash": self.config_hash, "params_hash": self.params_hash,
                "data_hash": self.data_hash}

    @classmethod
    def of_record(cls, rec: Mapping[str, Any]) -> Key:
        """The key a stored record was made under."""
        p = rec.get("provenance") or {}
        return cls(str(rec.get("sha256")), str(p.get("code_hash")), str(p.get("config_hash")),
                   str(p.get("params_hash")), str(p.get("data_hash")))

    def why_not(self, old: Key) -> str:
        """Why a stored result under ``old`` cannot be reused for this key."""
        if old.sha256 != self.sha256:
            return "checkpoint bytes changed"
        if old.code_hash != self.code_hash:
            return "evaluation code changed"
        if old.config_hash != self.config_hash:
            return "task, dataset or architecture config changed"
        if old.params_hash != self.params_hash:
            return "eval params changed"
        return "evaluation data changed"


def key_for(row: Mapping[str, str], registry: Registry, code_hash: str, zoo_code: str, phash: str,
            data_hash: str) -> Key:
    """The memo key of one table row."""
    task, dataset, arch = registry.task(row["task"]), registry.dataset(row["dataset"]), registry.arch(row["arch"])
    from ..registry.targets import uses_code_folder

    own = any(uses_code_folder(c) for c in (arch.config, task.evaluator, dataset.loader,
                                            *[m.config for m in task.metrics.values()]))
    code = digest_of({"package": code_hash, "zoo_code": zoo_code}) if own else code_hash
    config = digest_of({"task": task.digest, "dataset": dataset.digest, "arch": arch.digest})
    return Key(row["sha256"], code, config, phash, data_hash)


def code_dir_of(root: Path) -> Path:
    """Where a zoo's own code folder is."""
    return root / layout.CODE_DIR
