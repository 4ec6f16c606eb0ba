"""The DVC store: the only package that imports dvc.

store.py: the Storage class (the DVC repo opened lazily; tracking, the folder manifests);
transfer.py: fetch, push; checkout.py: fetched files into the workspace; remotes.py: remote configuration;
failures.py: the one translation of remote errors; at_revision.py: one file at another revision;
pipeline.py: dvc.yaml's stages and paths. The names other modules import are re-exported here.
"""

from ..base import tracked_split
from .at_revision import download_at_revision
from .failures import classify_remote_failure
from .pipeline import pipeline_paths, stale_stages
from .remotes import SECRET_OPTIONS
from .store import Storage

__all__ = ["SECRET_OPTIONS", "Storage", "classify_remote_failure", "download_at_revision", "pipeline_paths",
           "stale_stages", "tracked_split"]
