"""The frozen dataclasses the API hands out."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

from .catalog.rules import COLUMNS, parse_files

_TABLE = frozenset(COLUMNS)


def _opt_float(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


@dataclass(frozen=True)
class Checkpoint:
    """One row of the table, typed."""

    # identity
    model: str
    step: int
    epoch: float | None
    # the file, all computed from its bytes at add time
    path: str
    format: str
    size_bytes: int
    sha256: str
    num_params: int
    dtype: str
    # the optional training state beside the weights (optimizer, scheduler, RNG, step): its sha256, or None
    state_sha256: str | None
    # a folder checkpoint's files: name -> sha256 (empty for a one-file checkpoint)
    files: dict[str, str]
    # what it is
    arch: str
    task: str
    dataset: str
    license: str
    parent: str | None
    tags: tuple[str, ...]
    description: str
    # provenance and claims
    created: str
    source: str
    reported_metric: str | None
    reported_value: float | None
    # reproduced by the pipeline (empty until evaluated)
    metrics: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def ref(self) -> str:
        """``MODEL@STEP``, the reference that always names exactly this checkpoint."""
        return f"{self.model}@{self.step}"

    @property
    def resumable(self) -> bool:
        """Whether a training state is stored with the weights (``Zoo.resume`` can continue from it)."""
        return self.state_sha256 is not None

    @property
    def pull_command(self) -> str:
        """The command that fetches just this checkpoint into a clone."""
        return f"zoo pull {self.ref}"

    @property
    def dvc_pull_command(self) -> str:
        """The same with plain DVC."""
        return f"dvc pull {self.path}"

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Checkpoint:
        """Build from a validated table row of strings."""
        return cls(**_typed_fields(row))

    @staticmethod
    def dict_from_row(row: dict[str, str]) -> dict[str, Any]:
        """``from_row(row).to_dict()`` without building the object (the index of 100,000 rows)."""
        return _json_ready(_typed_fields(row))

    def to_dict(self) -> dict[str, object]:
        """Every field plus ref and the pull commands, JSON-ready."""
        # a shallow copy: asdict() deep-copies every field and dominated `zoo ls --format json` at 100k rows
        return _json_ready({name: getattr(self, name) for name in _field_names()})


def _typed_fields(row: dict[str, str]) -> dict[str, Any]:
    """The Checkpoint fields of a validated table row of strings."""
    return {
        "model": row["model"],
        "step": int(row["step"]),
        "epoch": _opt_float(row["epoch"]),
        "path": row["path"],
        "format": row["format"],
        "size_bytes": int(row["size_bytes"]),
        "sha256": row["sha256"],
        "num_params": int(row["num_params"]),
        "dtype": row["dtype"],
        "state_sha256": row.get("state_sha256") or None,
        "files": parse_files(row.get("files")),
        "arch": row["arch"],
        "task": row["task"],
        "dataset": row["dataset"],
        "license": row["license"],
        "parent": row["parent"] or None,
        "tags": tuple(t for t in row["tags"].split(";") if t),
        "description": row["description"],
        "created": row["created"],
        "source": row["source"],
        "reported_metric": row["reported_metric"] or None,
        "reported_value": _opt_float(row["reported_value"]),
        # columns beyond the table's are the evaluated metrics that Zoo.select added
        "metrics": {k: float(v) for k, v in row.items() if k not in _TABLE and v},
    }


def _json_ready(d: dict[str, Any]) -> dict[str, Any]:
    """Fields (as Checkpoint holds them) -> to_dict's form: lists, ref and the pull commands added."""
    d["metrics"] = dict(d["metrics"])
    d["files"] = dict(d["files"])
    d["tags"] = list(d["tags"])
    ref = f"{d['model']}@{d['step']}"
    d["ref"] = ref
    d["pull_command"] = f"zoo pull {ref}"
    d["dvc_pull_command"] = f"dvc pull {d['path']}"
    d["resumable"] = d["state_sha256"] is not None
    return d


@cache
def _field_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Checkpoint))


@dataclass(frozen=True)
class AddResult:
    """What ``Zoo.add`` did: ``added``, ``replaced`` or ``unchanged`` (identical bytes already there)."""

    checkpoint: Checkpoint
    status: str
    staged: tuple[str, ...] = ()
    conversion: object | None = None  # formats.Conversion when the file was converted (zoo add --convert)


@dataclass(frozen=True)
class Lineage:
    """A model's family in the zoo: the checkpoints its checkpoints descend from (``ancestors``, followed
    through ``parent`` across models) and the checkpoints descending from them (``descendants``), as
    ``MODEL@STEP`` refs of other models, nearest first."""

    model: str
    ancestors: tuple[str, ...]
    descendants: tuple[str, ...]


@dataclass(frozen=True)
class Resumed:
    """What ``Zoo.resume`` hands back, ready to continue training: ``model`` (train mode), ``optimizer`` and
    ``scheduler`` (None when none was stored) with their state loaded, ``scaler_state`` (for
    ``GradScaler.load_state_dict``, None when none was stored), ``step`` and ``epoch`` of the checkpoint.
    The RNG states were restored when this was made."""

    ref: str
    model: Any
    optimizer: Any
    scheduler: Any
    scaler_state: dict[str, Any] | None
    step: int
    epoch: float | None


@dataclass(frozen=True)
class BulkAddResult:
    """What ``Zoo.add_many`` / ``zoo add --from`` did, in one transaction."""

    added: tuple[Checkpoint, ...]
    replaced: tuple[Checkpoint, ...]
    unchanged: tuple[Checkpoint, ...]  # identical bytes were already in the zoo
    staged: tuple[str, ...]
    bytes_added: int
    seconds: float


@dataclass(frozen=True)
class CommitResult:
    """What ``Zoo.commit`` committed: the new commit (short hash) and the files in it ("" and none when the
    zoo's files and the pipeline's outputs were all as in the last commit)."""

    commit: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class FileCheck:
    """Outcome of checking one file against the table: ``ok``, ``mismatch`` or ``missing``."""

    ref: str
    path: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class PullResult:
    """One pulled checkpoint: ``downloaded``, ``restored`` (from the local cache) or ``present``."""

    ref: str
    path: Path
    status: str


@dataclass(frozen=True)
class PushResult:
    """Objects uploaded and checkpoints skipped because their bytes are not local."""

    remote: str
    uploaded: int
    skipped: tuple[str, ...] = field(default_factory=tuple)
    staged: tuple[str, ...] = ()  # a remote inside the work tree: its folder, staged in git
    replaced: int = 0  # objects the remote held with other bytes, overwritten with the good local copy


@dataclass(frozen=True)
class RemoteInfo:
    """One DVC remote of a zoo clone, as ``zoo remote list`` shows it (secrets never included)."""

    # identity and where it is configured: "repo" (.dvc/config, committed) or "local" (.dvc/config.local)
    name: str
    url: str
    level: str
    default: bool = False
    # S3-compatible endpoint (None: AWS itself) and the other options, secrets masked as "***"
    endpoint: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    # where the credentials come from: "config.local", "environment", "AWS default chain", or "" (not S3)
    credentials: str = ""
    # secret options found in the committed .dvc/config (written there by hand): they should move
    committed_secrets: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True)
class ExportResult:
    """What ``Zoo.export`` wrote: the folder, its format (``hf`` or ``safetensors``), its files and how to load it
    without the zoo."""

    ref: str
    path: Path
    format: str
    files: tuple[str, ...]
    how_to_load: str


@dataclass(frozen=True)
class RegistryChange:
    """What ``release`` or ``stage`` made: the tag, the checkpoint it names and the commit it points at."""

    tag: str
    ref: str
    commit: str
    version: str = ""
    stage: str = ""
