"""The schema check of a batch's new rows in a child interpreter.

Importing pandas and pandera costs a bulk add ~0.3-0.45 s of CPU, the largest part of what it does beyond its
floor (copy, ``dvc add``, table write). In a thread of the same process that import holds the GIL against the
copying, hashing and ``dvc add`` it was meant to overlap; in a child started when the batch starts it runs on
another core, and the rows are checked there while DVC tracks the files.

The child only says whether the rows passed. Anything but a pass (a refusal, a crash, a child that could not
start or imports another copy of the package) makes ``check`` run the same ``validate_frame`` in this process,
so a refusal is always the in-process check's, word for word. The rows go over a pipe as JSON (plain strings):
nothing read from them can run code, and no argument of the child comes from them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO

# The child: the package folder comes first on stdin (so the child checks the same code as this process), then
# the rows; it prints "ok" only when validate_frame returns.
_CHILD = """
import json, os, sys
where = json.loads(sys.stdin.readline())
sys.path.insert(0, where["path"])
import checkpoint_zoo
if os.path.realpath(checkpoint_zoo.__file__) != where["file"]:
    sys.exit(3)
from checkpoint_zoo.catalog.schema import validate_frame
job = json.loads(sys.stdin.read())
validate_frame(job["rows"], source=job["source"], fix=job["fix"])
sys.stdout.write("ok\\n")
"""

TIMEOUT = 300  # seconds a child may take over rows that passed in-process in a second or so


class SchemaChild:
    """A child interpreter importing the schema from the moment it is started; ``check`` uses it once."""

    def __init__(self, proc: subprocess.Popen[bytes] | None) -> None:
        self.proc = proc

    @classmethod
    def start(cls) -> SchemaChild:
        """Start the child (a child that cannot start, or one core with nothing to overlap, leaves the check
        in-process)."""
        if not sys.executable or (os.cpu_count() or 1) < 2:
            return cls(None)
        try:
            proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        except OSError:
            return cls(None)
        package = Path(__file__).resolve().parents[1]
        where = {"path": str(package.parent), "file": str(package / "__init__.py")}
        try:
            _stdin(proc).write(json.dumps(where).encode() + b"\n")
            _stdin(proc).flush()
        except OSError:
            _stop(proc)
            return cls(None)
        return cls(proc)

    def check(self, rows: list[dict[str, str]], source: str = "", fix: str = "") -> None:
        """``schema.validate_frame(rows, source, fix)``: a pass from the child, else the check in this process."""
        if self._passed(rows, source, fix):
            return
        from ..catalog.schema import validate_frame

        validate_frame(rows, source=source, fix=fix)

    def _passed(self, rows: list[dict[str, str]], source: str, fix: str) -> bool:
        proc, self.proc = self.proc, None
        if proc is None:
            return False
        try:
            out, _ = proc.communicate(json.dumps({"rows": rows, "source": source, "fix": fix}).encode(), TIMEOUT)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            _stop(proc)
            return False
        return proc.returncode == 0 and out == b"ok\n"

    def close(self) -> None:
        """Stop a child that was not used (the batch was refused before its rows were checked)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _stop(proc)


def _stdin(proc: subprocess.Popen[bytes]) -> IO[bytes]:
    assert proc.stdin is not None  # opened with stdin=PIPE
    return proc.stdin


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()
