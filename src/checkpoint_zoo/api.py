"""The library API: ``Zoo``, a thin facade with one bound function per verb.

``Zoo`` decides once where the zoo is read from (a ``Source``: the clone's working tree, or a git
revision or URL) and, for a working tree, opens its ``Workspace`` (lock, paths, staging, one
transaction) and its ``CheckpointStore``. Each verb lives in ``verbs/<verb>.py`` as a function of the
zoo's public surface and is bound into the class body below (DVC's ``Repo`` does the same), so adding
a verb is one module, one CLI command and one binding line.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import TYPE_CHECKING

from . import layout
from .entities import ExportResult
from .errors import NotAZooError, UsageError
from .utils import environ
from .utils.stamps import Stamps
from .verbs import add as add_
from .verbs import bulk as bulk_
from .verbs import commit as commit_
from .verbs import doctor as doctor_
from .verbs import export as export_
from .verbs import gc as gc_
from .verbs import lineage as lineage_
from .verbs import load as load_
from .verbs import ls as ls_
from .verbs import pull as pull_
from .verbs import push as push_
from .verbs import release as release_
from .verbs import remotes as remotes_
from .verbs import resume as resume_
from .verbs import rm as rm_
from .verbs import validate as validate_
from .verbs import verify as verify_
from .workspace.source import Source, WorkTree
from .workspace.tree import Workspace

if TYPE_CHECKING:
    from .storage.base import CheckpointStore

Row = dict[str, str]


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` that holds ``zoo/checkpoints.csv`` and ``.dvc``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / layout.TABLE_PATH).is_file() and (folder / ".dvc").is_dir():
            return folder
    raise NotAZooError(
        f"{start}: no zoo here or above (looked for {layout.TABLE_PATH} beside .dvc/); "
        "cd into a zoo clone or pass its path"
    )


class Zoo:
    """A checkpoint zoo on disk: the repo you stand in, ``ZOO_REPO``, or ``path``."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, rev: str | None = None,
                 remote: str | None = None, trust_code: bool = False) -> None:
        """``path``: a zoo clone (default: the repo you stand in, or ``ZOO_REPO``) or a git URL.

        With ``rev`` (any git ref or commit), or with a URL, the zoo is read at that revision without
        checking anything out, and checkpoints are fetched from its DVC remote (``remote``, or its
        default) into the user cache; such a Zoo is read-only. Its own code folder (``zoo_code/``,
        which architectures, loaders or metrics in ``conf/`` may name) runs only with ``trust_code``.
        """
        given = str(path or environ.zoo_repo() or "")
        self.remote = remote
        self.trust_code = trust_code
        self._store: CheckpointStore | None = None
        self._workspace: Workspace | None = None
        local = not given or os.path.isdir(given)
        root = find_root(Path(given) if given else Path.cwd()) if local else None
        self.source: Source
        if rev is None and root is not None:
            tree = WorkTree(root)
            self.source = tree
            self._workspace = Workspace(tree, lambda: self.storage)
            self.stamps = self._workspace.stamps
        else:
            from .workspace.revision import RevisionSource

            self.source = RevisionSource(str(root) if root is not None else given, rev, remote)
            self.stamps = Stamps(environ.cache_dir() / "stamps")
        # the repository read: the clone, or for a URL the mirror kept in the user cache
        self.root = self.source.git_dir

    def __repr__(self) -> str:
        if self._workspace is None:
            return f"Zoo({self.source.location!r}, rev={self.source.rev!r})"
        return f"Zoo({str(self.root)!r})"

    @property
    def revision(self) -> str | None:
        """The commit this Zoo reads, or None for a working tree."""
        return self.source.commit

    @property
    def location(self) -> str:
        """Where this zoo comes from: the clone's path, or the URL (or path) it was opened from."""
        return self.source.location

    @property
    def git_dir(self) -> Path:
        """The git repository this zoo is read from: the clone, or the cached mirror of a URL."""
        return self.source.git_dir

    @property
    def table_path(self) -> Path:
        return self.root / layout.TABLE_PATH

    @property
    def workspace(self) -> Workspace:
        """The working tree's write surface; a zoo at a revision has none (``writable`` says so per verb)."""
        return self.writable("this")

    def writable(self, verb: str) -> Workspace:
        """The workspace, or a one-line refusal naming ``verb`` for a zoo read at a revision."""
        if self._workspace is None:
            raise UsageError(f"{verb}: a zoo at a revision ({self.source.rev}) is read-only; "
                             "run it in a clone's working tree")
        return self._workspace

    @property
    def storage(self) -> CheckpointStore:
        """Where the bytes live (DVC: the one implementation, imported only when bytes are touched)."""
        if self._store is None:
            from .storage import open_store

            self._store = open_store(self.root, stamps=self.stamps)
        return self._store

    def close(self) -> None:
        """Release DVC's handles (the API also works without calling this)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Zoo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def registry(self):
        """The architectures, tasks and datasets declared in this zoo's ``conf/`` (at its revision)."""
        return self.source.registry(trusted=self.trust_code)

    def rows(self) -> builtins.list[Row]:
        """The validated table rows as strings (cached while the table is unchanged)."""
        return self.source.rows()

    # ---- verbs: each a function of this facade's public surface, in verbs/<verb>.py ------------------
    add = add_.add
    add_from = bulk_.add_from
    add_many = bulk_.add_items
    commit = commit_.commit
    lineage = lineage_.lineage
    load_model = load_.load_model
    pipeline = load_.pipeline
    get = ls_.get
    listing_registry = ls_.listing_registry
    metric_names = ls_.metric_names
    metrics = ls_.metrics
    records = ls_.records
    select = ls_.select
    doctor = doctor_.diagnose
    fetch = pull_.fetch
    gc = gc_.gc
    history = release_.history
    registry_overview = release_.overview
    load_state_dict = pull_.load_state_dict
    local_path = pull_.local_path
    pull = pull_.pull
    verified_file = pull_.verified_file
    push = push_.push
    release = release_.release
    stage = release_.stage
    unstage = release_.unstage
    remote_add = remotes_.remote_add
    remote_default = remotes_.remote_default
    remote_modify = remotes_.remote_modify
    remote_remove = remotes_.remote_remove
    remotes = remotes_.remotes
    resume = resume_.resume
    remove = rm_.remove
    validate = validate_.validate
    verify = verify_.verify

    def export(self, ref: str, dest: str | os.PathLike[str], *, format: str | None = None) -> ExportResult:
        """Write a checkpoint to the new (or empty) folder ``dest`` so that it loads without the zoo: ``hf``
        (transformers' ``from_pretrained``; the default for transformers architectures) or ``safetensors`` (the
        weights and a ``config.json`` describing architecture, labels and input contract)."""
        return export_.export(self, ref, dest, format)

    list = ls_.list_checkpoints  # last: the name shadows the builtin in this class body


def init(path: str | os.PathLike[str], remote_url: str | None = None, remote_name: str = "local",
         registries_from: str | os.PathLike[str] | None = None) -> Zoo:
    """Make ``path`` an empty zoo: git + DVC repo, header-only table, and a default remote if given.

    ``registries_from``: another zoo whose architectures, tasks and datasets (``conf/arch``,
    ``conf/task``, ``conf/dataset``) and own code folder are copied in, to start from the same
    registries."""
    from .verbs.init import create

    return Zoo(create(path, remote_url, remote_name, registries_from))
