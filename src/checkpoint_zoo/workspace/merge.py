"""Merges that just work: git merge drivers for the table, the DVC folder pointers and the pipeline's outputs.

* ``zoo/checkpoints.csv``: a three-way merge by (model, step). Rows added or removed on either side
  are kept or dropped; a row changed on both sides differently is a conflict, written as a git
  conflict block around the two rows so that ``zoo validate`` can explain it.
* ``*.dvc``: DVC's own merge driver, which needs the ``.dir`` manifests of all three versions in
  the local cache; a fresh clone lacks them, so this driver fetches exactly those manifests first.
* ``zoo/metrics/evaluations/*.json``: a three-way merge by step of the evaluation records, so the
  checkpoints both branches evaluated are not evaluated again. A record changed differently on both
  sides keeps this branch's: records are keyed caches, and ``dvc repro`` re-evaluates any whose key
  no longer matches.
* everything else ``dvc repro`` writes (``dvc.lock``, index, leaderboard, cards, curves, summary,
  registry): this branch's version is kept and the next ``dvc repro`` regenerates it from the merged
  table (the registry, from the tags).

``setup(root)`` writes the drivers into the repo's ``.git/config`` (once per clone; zoo's writing
commands do it when missing; ``.gitattributes`` is committed).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from .. import layout
from ..catalog import rules, table
from ..errors import ZooError
from ..utils import gitcmd
from ..utils.redact import printable

GENERATED = ("dvc.lock", "zoo/index.json", "zoo/INDEX.md", "zoo/metrics/summary.json", "zoo/metrics/validation.json",
             layout.REGISTRY_FILE, "zoo/cards/*.md", "zoo/metrics/curves/*.csv")
ATTRIBUTES = ("*.dvc merge=dvc", f"{layout.TABLE_PATH} merge=zoo-table",
              f"{layout.EVALUATIONS_DIR}/*.json merge=zoo-evaluations",
              *(f"{path} merge=zoo-generated" for path in GENERATED))
MARK_OURS, MARK_SEP, MARK_THEIRS = "<<<<<<< ours", "=======", ">>>>>>> theirs"


def _rows(path: Path) -> dict[tuple[str, int], dict[str, str]]:
    data = path.read_bytes() if path.exists() else b""
    if not data.strip():
        return {}
    return {table.sort_key(r): r for r in table.parse_csv(data, str(path))}


def merge_tables(base: Path, ours: Path, theirs: Path) -> tuple[bytes, list[str]]:
    """The merged table and the refs in conflict (written as conflict blocks in the bytes)."""
    b, o, t = _rows(base), _rows(ours), _rows(theirs)
    merged: dict[tuple[str, int], dict[str, str]] = {}
    conflicts: dict[tuple[str, int], tuple[dict, dict]] = {}
    for key in set(b) | set(o) | set(t):
        rb, ro, rt = b.get(key), o.get(key), t.get(key)
        if ro == rt:
            pick = ro
        elif ro == rb:
            pick = rt
        elif rt == rb:
            pick = ro
        elif ro is not None and rt is not None:
            conflicts[key] = (ro, rt)
            continue
        else:  # deleted on one side, changed on the other: keep the change, a deletion is easy to redo
            pick = ro if ro is not None else rt
        if pick is not None:
            merged[key] = pick
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(rules.COLUMNS)
    for key in sorted(set(merged) | set(conflicts)):
        if key in merged:
            w.writerow([merged[key].get(c, "") for c in rules.COLUMNS])
        else:
            ro, rt = conflicts[key]
            buf.write(MARK_OURS + "\n")
            w.writerow([ro.get(c, "") for c in rules.COLUMNS])
            buf.write(MARK_SEP + "\n")
            w.writerow([rt.get(c, "") for c in rules.COLUMNS])
            buf.write(MARK_THEIRS + "\n")
    return buf.getvalue().encode(), [f"{m}@{s}" for m, s in sorted(conflicts)]


def table_driver(base: str, ours: str, theirs: str) -> int:
    """git merge driver: merged table into ``ours``; exit 1 on conflicts (git then marks the file conflicted)."""
    data, conflicts = merge_tables(Path(base), Path(ours), Path(theirs))
    table.atomic_write(Path(ours), data)
    if conflicts:
        print(printable(f"zoo: {layout.TABLE_PATH}: {len(conflicts)} checkpoint(s) changed differently on both "
                        f"sides: {', '.join(conflicts)}; `zoo validate` shows both versions"), file=sys.stderr)
        return 1
    return 0


def _records(path: Path) -> tuple[str | None, dict[int, dict]]:
    try:
        data = json.loads(path.read_bytes() or b"{}")
        return data.get("model"), {int(r["step"]): r for r in data.get("checkpoints", [])}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None, {}  # unreadable: treated as holding nothing; dvc repro evaluates what is missing


def evaluations_driver(base: str, ours: str, theirs: str) -> int:
    """git merge driver for a model's evaluation records: the three-way union by step, into ``ours``."""
    _, b = _records(Path(base))
    model_o, o = _records(Path(ours))
    model_t, t = _records(Path(theirs))
    merged = {}
    for step in set(b) | set(o) | set(t):
        rb, ro, rt = b.get(step), o.get(step), t.get(step)
        pick = rt if ro == rb else ro  # changed on both sides: ours (a keyed cache; repro re-checks the key)
        if pick is not None:
            merged[step] = pick
    from ..catalog.records import dump_model_results

    table.atomic_write(Path(ours), dump_model_results(model_o or model_t or "", list(merged.values())))
    return 0


def generated_driver(base: str, ours: str, theirs: str, path: str) -> int:
    """git merge driver for files ``dvc repro`` writes: keep ours (git has it in place) and say what to run."""
    print(printable(f"zoo: {path}: kept this branch's version; it is generated: run `dvc repro` after the merge"),
          file=sys.stderr)
    return 0


def _manifests_from_git(root: Path, storage, missing: list[str]) -> None:
    """Take folder manifests from the in-tree remote as the commits being merged hold it.

    A remote inside the work tree travels in git: the other branch's new manifests are in its commits,
    not yet in this work tree while git merges. Candidates are the commits git names to merge drivers
    (``GITHEAD_<sha>``) and every ref; whatever is found is checked against its md5 by the storage."""
    import os

    from .tree import in_tree_remotes

    folders = list(in_tree_remotes(root, storage.remotes()).values())
    if not missing or not folders:
        return
    refs = gitcmd.run(root, "for-each-ref", "--format=%(objectname)", text=True, check=False, timeout=None).stdout.split()
    commits = list(dict.fromkeys([k[len("GITHEAD_"):] for k in os.environ if k.startswith("GITHEAD_")] + refs))
    for md5 in missing:
        candidates = (f"{c}:{f}/files/md5/{md5[:2]}/{md5[2:]}" for f in folders for c in commits)
        for spec in candidates:
            proc = gitcmd.run(root, "cat-file", "blob", operands=(spec,), end="--end-of-options", check=False, timeout=None)
            if proc.returncode == 0 and _stored(storage, md5, proc.stdout):
                break


def _stored(storage, md5: str, raw: bytes) -> bool:
    try:
        storage.store_manifest(md5, raw)
        return True
    except ValueError:  # not the manifest its name says: keep looking
        return False


def dvc_driver(base: str, ours: str, theirs: str, root: Path) -> int:
    """git merge driver for ``*.dvc`` pointers: fetch the three ``.dir`` manifests, then run DVC's driver."""
    from ..storage.dvc import Storage

    storage = Storage(root)
    try:
        pointers = [Path(p) for p in (base, ours, theirs)]
        _manifests_from_git(root, storage, storage.missing_manifests(pointers))
        storage.fetch_manifests(pointers)
    finally:
        storage.close()
    proc = subprocess.run([sys.executable, "-m", "dvc", "git-hook", "merge-driver", "--ancestor", base,
                           "--our", ours, "--their", theirs], cwd=root)
    return proc.returncode


def _settings() -> dict[str, str]:
    py = sys.executable
    return {
        "merge.zoo-table.name": "checkpoint zoo table merge (by model, step)",
        "merge.zoo-table.driver": f'"{py}" -m checkpoint_zoo.cli merge-driver table %O %A %B',
        "merge.dvc.name": "DVC merge driver (fetches the .dir manifests first)",
        "merge.dvc.driver": f'"{py}" -m checkpoint_zoo.cli merge-driver dvc %O %A %B',
        "merge.zoo-evaluations.name": "checkpoint zoo evaluation records merge (by step)",
        "merge.zoo-evaluations.driver": f'"{py}" -m checkpoint_zoo.cli merge-driver evaluations %O %A %B',
        "merge.zoo-generated.name": "checkpoint zoo pipeline outputs (keep ours; dvc repro regenerates)",
        "merge.zoo-generated.driver": f'"{py}" -m checkpoint_zoo.cli merge-driver generated %O %A %B %P',
    }


def setup(root: Path) -> list[str]:
    """Configure this clone's merge drivers and make sure ``.gitattributes`` routes files to them."""
    settings = _settings()
    for key, value in settings.items():
        proc = gitcmd.run(root, "config", "--local", operands=(key, value), text=True, check=False, timeout=None)
        if proc.returncode != 0:
            raise ZooError(f"git config {key} failed in {root}: {proc.stderr.strip()}")
    attrs = root / ".gitattributes"
    lines = attrs.read_text().splitlines() if attrs.exists() else []
    missing = [a for a in ATTRIBUTES if a not in lines]
    if missing:
        table.atomic_write(attrs, ("\n".join(lines + missing) + "\n").encode())
    return list(settings)


def configured(root: Path) -> bool:
    """Whether this clone's git config has every zoo merge driver and ``.gitattributes`` routes to them."""
    try:
        config = (root / ".git" / "config").read_text()
        attrs = (root / ".gitattributes").read_text().splitlines()
    except OSError:
        return False
    drivers = {f'[merge "{key.split(".")[1]}"]' for key in _settings()}
    return all(d in config for d in drivers) and all(a in attrs for a in ATTRIBUTES)


def ensure(root: Path) -> bool:
    """``setup`` unless already configured (a plain clone has none: git keeps drivers out of the repo);
    True when it configured something."""
    if not (root / ".git").is_dir() or configured(root):
        return False
    setup(root)
    return True
