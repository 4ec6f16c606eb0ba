"""Temp files of killed commands: whose process is gone, and the sweep that removes them (under the zoo lock)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .. import layout
from .files import remove_path

# incoming/<model>-<step>-<pid>.safetensors, .<name>.tmp-<pid>, <model>-<step>-<pid>.previous,
# <model>-<step>-<pid>.converted.safetensors
_TEMP_PATTERNS = (re.compile(r"^\..+\.tmp-(\d+)$"), re.compile(r"^.+-(\d+)\.[a-z.]+$"))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours, or someone else's)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, it is someone else's
        return True
    return True


def stale_temp_files(folders: Iterable[Path], patterns: Iterable[re.Pattern[str]] = _TEMP_PATTERNS) -> list[Path]:
    """Temp files (and the incoming copies of folder checkpoints) in these folders whose writer process no longer
    exists (a killed zoo command)."""
    out = []
    for folder in folders:
        try:
            with os.scandir(folder) as it:
                entries = [e for e in it if e.is_file(follow_symlinks=False) or e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for entry in entries:
            for pattern in patterns:
                m = pattern.match(entry.name)
                if m:
                    if not pid_alive(int(m.group(1))):
                        out.append(Path(entry.path))
                    break
    return out


def sweep_stale_temp_files(root: Path, work: Path, keep: Iterable[Path] = ()) -> list[Path]:
    """Remove what killed zoo commands left: incoming copies and their temps, table temps. Call it
    under the zoo lock. Returns what was removed."""
    gone = []
    table_dir = (Path(root) / layout.TABLE_PATH).parent
    table_temp = re.compile(r"^\.(?:checkpoints\.csv|\.gitignore)\.tmp-(\d+)$")
    candidates = stale_temp_files([Path(work) / "incoming"])
    candidates += stale_temp_files([table_dir, Path(root) / layout.CHECKPOINTS_DIR], (table_temp,))
    kept = set(keep)  # what a journal still names (one that could not be undone) is never swept
    candidates = [p for p in candidates if p not in kept]
    for path in candidates:
        try:
            remove_path(path)
        except OSError:
            continue
        if not path.exists():
            gone.append(path)
    return gone
