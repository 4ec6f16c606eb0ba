"""dvc.lock records the sources it was run from: a code change committed without `dvc repro` fails here, in a second.

A fresh clone's `dvc repro` would otherwise re-run the stage and rewrite dvc.lock (test_pipeline
catches that too, after the trained zoo is built, twenty minutes in).
"""

from __future__ import annotations

import hashlib

import yaml
from conftest import PROJECT


def test_every_file_dependency_in_dvc_lock_matches_the_tree():
    lock = yaml.safe_load((PROJECT / "dvc.lock").read_text())
    stale, checked = [], 0
    for name, stage in lock["stages"].items():
        for dep in stage.get("deps", []):
            path = PROJECT / dep["path"]
            if dep["md5"].endswith(".dir") or not path.is_file():
                continue
            checked += 1
            if hashlib.md5(path.read_bytes()).hexdigest() != dep["md5"]:
                stale.append(f"{name}: {dep['path']}")
    assert checked >= 10, checked
    assert not stale, f"dvc.lock is stale for {stale}: run `dvc repro` and commit dvc.lock"
