"""The one way the zoo runs git: every git command line of the package is built by ``argv``.

Options and operands never mix: operands (paths, URLs, revisions) follow ``--`` (or ``--end-of-options``
where ``--`` would mean "paths follow"), so a value such as ``--upload-pack=CMD`` can never become an
option; URLs and revisions that begin with ``-`` are refused before git runs anyway, with a message
that says so. The ``ext::`` transport (which runs a command) is off in every invocation. Commands that
talk to a git server run with progress on and are killed, with their whole process group, once the
server has been silent for ``ZOO_NETWORK_TIMEOUT`` seconds (a stall timeout: a large clone that keeps
making progress is never cut off).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..errors import RemoteUnreachableError, UsageError, ZooError
from . import environ

HARDENING = ("-c", "protocol.ext.allow=never")
_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=10"}


def argv(*args: str, operands: Sequence[str] = (), end: str = "--") -> list[str]:
    """``git``, the hardening options, ``args`` (the subcommand and its options), then ``end`` and the
    operands; ``end`` is ``--`` or, for commands where that would start paths, ``--end-of-options``."""
    cmd = ["git", *HARDENING, *args]
    if operands:
        cmd += [end, *operands]
    return cmd


def env() -> dict[str, str]:
    """The environment of every git child: no prompts (nobody answers them), ssh in batch mode."""
    return {**os.environ, **_ENV}


def run(cwd: Path | str, *args: str, operands: Sequence[str] = (), end: str = "--", check: bool = True,
        timeout: float | None = 120, input: bytes | str | None = None, text: bool = False,
        env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a local git command in ``cwd`` (see ``argv``); with ``check``, a failure raises ZooError with
    git's own last line. ``env_extra``: the zoo's own settings for this command (a tag's date)."""
    try:
        proc = subprocess.run(argv(*args, operands=operands, end=end), cwd=cwd, capture_output=True, timeout=timeout,
                              input=input, text=text, env={**env(), **(env_extra or {})})
    except subprocess.TimeoutExpired:
        raise ZooError(f"git {' '.join(args[:2])} in {cwd} did not finish within {timeout:g} s (another git process "
                       "holding a lock, or a very slow disk); try again") from None
    if check and proc.returncode != 0:
        raise ZooError(f"git {' '.join(args[:2])} failed in {cwd}: {last_line(proc)}")
    return proc


def last_line(proc: subprocess.CompletedProcess) -> str:
    """git's most telling stderr line: its first ``fatal:``/``error:`` line, else its last line
    (progress output, which ends in carriage returns, split into lines too)."""
    raw = proc.stderr or proc.stdout or b""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    lines = [s.strip() for s in text.replace("\r", "\n").splitlines() if s.strip()]
    fatal = [s for s in lines if s.startswith(("fatal:", "error:"))]
    return (fatal or lines or [f"exit {proc.returncode}"])[0 if fatal else -1]


def check_revision(rev: str, where: str) -> str:
    """``rev`` unchanged, or UsageError if git could take it for an option."""
    if not rev or rev.startswith("-"):
        raise UsageError(f"revision {rev!r} of {where}: a revision cannot be empty or begin with '-'; "
                         "give a branch, tag or commit (`zoo versions` lists them)")
    return rev


def check_url(url: str) -> str:
    """``url`` unchanged, or UsageError if git could take it for an option or it names the ``ext::``
    transport (which runs a command instead of fetching)."""
    if not url or url.startswith("-"):
        raise UsageError(f"{url!r}: a zoo path or git URL cannot be empty or begin with '-'; "
                         "give a zoo clone or a git URL (write ./NAME for a folder whose name begins with '-')")
    if url.lower().startswith(("ext::", "fd::")):
        raise UsageError(f"{url}: the {url.split('::')[0]}:: git transport runs commands, not fetches; "
                         "give a https://, ssh:// or file:// git URL")
    return url


def run_network(cwd: Path | str, url: str, *args: str, operands: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run a git command that talks to the server at ``url`` (clone, fetch) with progress on; its process
    group is killed and RemoteUnreachableError raised once git has printed nothing for
    ``environ.network_timeout()`` seconds. Returns the finished process (stderr as bytes)."""
    check_url(url)
    limit = environ.network_timeout()
    proc = subprocess.Popen(argv(*args, operands=operands), cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env(), start_new_session=True)
    assert proc.stderr is not None
    err = bytearray()
    try:
        fd = proc.stderr.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], limit)
            if not ready:
                raise RemoteUnreachableError(
                    f"cannot reach {url}: no answer for {limit:g} s; check the URL and the network, or allow "
                    "a slower server more time with ZOO_NETWORK_TIMEOUT=SECONDS")
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            err += chunk
            del err[:-65536]  # only the end is ever reported
    except BaseException:
        # git forks helpers (git-remote-http, ssh): the whole group goes, not only git
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise
    finally:
        proc.wait()
        proc.stderr.close()
    return subprocess.CompletedProcess(proc.args, proc.returncode, b"", bytes(err))
