"""The registry's git side: annotated tags read in one ``for-each-ref``, tags made, and ``dvc.yaml`` at a commit.

Reading every tag is one git process whatever their number (GTO itself reads each tag object through
GitPython and takes seconds at a thousand tags); a release's checkpoint is read from the ``artifacts:``
entry of ``dvc.yaml`` at the tagged commit, as ``dvc artifacts get`` does.
"""

from __future__ import annotations

import functools
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .. import layout
from ..catalog import rules
from ..catalog.releases import TagRecord
from ..errors import ZooError
from ..utils import gitcmd
from ..utils.safe_yaml import load_yaml

_FORMAT = "%(refname:strip=2)%00%(objecttype)%00%(*objectname)%00%(taggername) %(taggeremail)%00" \
          "%(taggerdate:iso-strict)%00%(contents)%00%00"


def read_tags(git_dir: Path, model: str | None = None) -> list[TagRecord]:
    """Every annotated tag of the repository (lightweight ones are not GTO's and are left out), or only those
    GTO's grammar could give ``model`` (``MODEL@…``, ``MODEL#…``): git matches the names, so a verb on one model
    reads its own tags whatever the number of others. Glob characters in ``model`` are taken literally."""
    if not (Path(git_dir) / ".git").exists() and not (Path(git_dir) / "HEAD").is_file():
        return []
    patterns = ["refs/tags"]
    if model is not None:
        literal = re.sub(r"([*?\[\\])", r"\\\1", model)
        patterns = [f"refs/tags/{literal}@*", f"refs/tags/{literal}#*"]
    proc = gitcmd.run(git_dir, "for-each-ref", f"--format={_FORMAT}", *patterns, check=False)
    if proc.returncode != 0:
        return []
    out = []
    for record in proc.stdout.decode("utf-8", "replace").split("\0\0\n"):
        fields = record.split("\0")
        if len(fields) < 6 or fields[1] != "tag" or not fields[2]:
            continue
        name, _, commit, tagger, date, message = fields[:6]
        try:
            when = datetime.fromisoformat(date)
        except ValueError:
            continue
        out.append(TagRecord(name, commit, tagger.strip(), when, message.strip()))
    return out


# A stamp younger than this is not trusted: a file system whose clock ticks in seconds could give the next change
# the same mtime (git's "racy" rule for its index).
RACY_SECONDS = 2.0


@functools.cache
def _common_dir(git_dir: str) -> Path | None:
    proc = gitcmd.run(Path(git_dir), "rev-parse", "--path-format=absolute", "--git-common-dir", check=False)
    found = proc.stdout.decode("utf-8", "replace").strip() if proc.returncode == 0 else ""
    return Path(found) if found else None


def tags_stamp(git_dir: Path) -> tuple | None:
    """What changes whenever a tag is made, moved or deleted, from two ``stat`` calls and no git process: git
    writes a loose tag by renaming a lock file into ``refs/tags`` (GTO's names have no ``/``, so the folder itself
    changes) and rewrites ``packed-refs`` the same way. None when that cannot be told (a reftable repository,
    no ``refs/tags``, or a change within ``RACY_SECONDS``): the caller then reads the tags."""
    common = _common_dir(str(git_dir))
    if common is None or (common / "reftable").exists():
        return None
    try:
        refs = os.stat(common / "refs" / "tags")
    except OSError:
        return None
    packed: tuple = ()
    try:
        st = os.stat(common / "packed-refs")
        packed = (st.st_ino, st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        pass
    except OSError:
        return None
    newest = max(refs.st_mtime_ns, packed[2] if packed else 0)
    if time.time_ns() - newest < RACY_SECONDS * 1e9:
        return None
    return (str(common), refs.st_ino, refs.st_mtime_ns, packed)


def create_tag(root: Path, name: str, commit: str, message: str, after: datetime | None = None) -> None:
    """An annotated tag ``name`` on ``commit``. Its date is later than ``after`` (the model's last registry
    event), so tools that order by tag time alone (``dvc artifacts get --stage``) see the same order."""
    now = datetime.now(UTC).replace(microsecond=0)
    if after is not None and now <= after:
        now = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    env = {"GIT_COMMITTER_DATE": now.strftime("%Y-%m-%dT%H:%M:%S+0000")}
    gitcmd.run(root, "tag", "-a", "-m", message, name, commit, env_extra=env)


def delete_tag(root: Path, name: str) -> None:
    gitcmd.run(root, "tag", "-d", name, check=False)


def artifact_at(git_dir: Path, commit: str, model: str) -> dict[str, Any] | None:
    """The ``artifacts:`` entry of ``model`` in ``dvc.yaml`` at ``commit`` (None if there is none)."""
    proc = gitcmd.run(git_dir, "cat-file", "blob", operands=(f"{commit}:dvc.yaml",), end="--end-of-options",
                      check=False)
    if proc.returncode != 0:
        return None
    entry = _artifacts(load_yaml(proc.stdout, f"dvc.yaml at {commit[:12]}")).get(model)
    return entry if isinstance(entry, dict) else None


def _artifacts(data: Any) -> dict[str, Any]:
    """The ``artifacts:`` section of a parsed ``dvc.yaml``; {} when it has none, or not as a mapping."""
    section = data.get("artifacts") if isinstance(data, dict) else None
    return section if isinstance(section, dict) else {}


def artifacts_at(git_dir: Path, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any] | None]:
    """``artifact_at`` for many (commit, model) pairs: every ``dvc.yaml`` read by one ``git cat-file --batch``
    and each distinct blob parsed once, so a thousand releases cost one git process, not a thousand."""
    commits = sorted({c for c, _ in wanted if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", c)})
    if not commits:
        return {pair: None for pair in wanted}
    proc = gitcmd.run(git_dir, "cat-file", "--batch", input="".join(f"{c}:dvc.yaml\n" for c in commits).encode(),
                      check=False)
    out, pos, parsed = proc.stdout, 0, {}
    blobs: dict[str, dict] = {}
    for commit in commits:
        end = out.find(b"\n", pos)
        if end < 0:
            break
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3 or header[1] != b"blob":
            continue
        size = int(header[2])
        oid = header[0].decode()
        if oid not in parsed:
            parsed[oid] = _artifacts(load_yaml(out[pos:pos + size], f"dvc.yaml at {commit[:12]}"))
        blobs[commit] = parsed[oid]
        pos += size + 1
    found = {}
    for commit, model in wanted:
        entry = blobs.get(commit, {}).get(model)
        found[(commit, model)] = entry if isinstance(entry, dict) else None
    return found


def table_at(git_dir: Path, commit: str) -> list[dict[str, str]]:
    """The table's rows at ``commit`` (read, not validated: the zoo validated them when they were committed)."""
    from ..catalog import table

    proc = gitcmd.run(git_dir, "cat-file", "blob", operands=(f"{commit}:{layout.TABLE_PATH}",),
                      end="--end-of-options", check=False)
    if proc.returncode != 0:
        raise ZooError(f"commit {commit[:12]} holds no {layout.TABLE_PATH}")
    return table.parse_csv(proc.stdout, f"{layout.TABLE_PATH} at {commit[:12]}")


def step_of_artifact(entry: dict[str, Any]) -> int | None:
    """The step an artifact entry names: its ``meta.step``, else the step in its canonical path."""
    meta = entry.get("meta")
    step = meta.get("step") if isinstance(meta, dict) else None
    if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
        return step
    return rules.step_of_path(str(entry.get("path", "")))
