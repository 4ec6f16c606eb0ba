"""Guards for what the zoo reads and writes besides checkpoint bytes (docs/architecture.md, Safety).

* YAML is read with safe loading only, and documents with anchors, aliases or explicit tags are
  refused before anything is built from them (a "billion laughs" alias bomb costs nothing to write
  and hangs whatever walks the result, DVC's schema validation included).
* DVC pointers (``zoo/checkpoints/*.dvc``) and ``dvc.yaml``/``dvc.lock`` are checked that way before DVC
  opens the repo (DVC parses every one of them on every command), and refused when they are
  symlinks (DVC would read and write through them, outside the zoo).
* A full disk (or a file-size limit) is named as such, whichever library hit it.
* Temp files that a killed zoo command left behind are swept (only those of processes that are gone).
* Credentials inside URLs (``scheme://USER:PASSWORD@host``) are masked in everything printed, and
  remote config values must be one line of printable text.

Nothing here imports dvc, torch or pandas.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from . import constants
from .errors import UnsafeFileError

# DVC pointers and dvc.yaml are a few hundred bytes; anything this big is not one.
MAX_YAML_BYTES = 1024 * 1024
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def refuse_yaml_tricks(text: str, source: str) -> None:
    """Raise UnsafeFileError if the YAML text uses anchors, aliases or explicit tags (or is not YAML).

    Only the event stream is read (no objects are built), which is linear in the text; documents
    without ``&``, ``*`` or ``!`` cannot use any of those and are not even scanned."""
    if not any(c in text for c in "&*!"):
        return
    import yaml

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise UnsafeFileError(
                    f"{source}: uses YAML anchors/aliases (&/*), which the zoo refuses (an alias bomb "
                    "expands without limit); DVC never writes them: restore the file with `git checkout -- "
                    f"{source}` or rewrite it without them"
                )
            tag = getattr(event, "tag", None)
            if tag is not None:  # set only when the document spells a tag out
                raise UnsafeFileError(
                    f"{source}: uses an explicit YAML tag ({tag}), which the zoo refuses; restore the "
                    f"file with `git checkout -- {source}`"
                )
    except yaml.YAMLError as e:
        raise UnsafeFileError(f"{source}: not valid YAML ({_first_line(e)}); restore it with "
                              f"`git checkout -- {source}`") from None


def load_yaml(data: str | bytes, source: str):
    """``yaml.safe_load`` of a document that is small and free of anchors, aliases and tags."""
    import yaml

    if len(data) > MAX_YAML_BYTES:
        raise UnsafeFileError(f"{source}: {len(data)} bytes is far too big for this YAML file (limit "
                              f"{MAX_YAML_BYTES}); restore it with `git checkout -- {source}`")
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    refuse_yaml_tricks(text, source)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UnsafeFileError(f"{source}: not valid YAML ({_first_line(e)}); restore it with "
                              f"`git checkout -- {source}`") from None


def dvc_files(root: Path) -> Iterator[Path]:
    """The DVC files the zoo owns: ``dvc.yaml``, ``dvc.lock`` and every folder pointer."""
    for name in ("dvc.yaml", "dvc.lock"):
        yield root / name
    folder = root / constants.CHECKPOINTS_DIR
    try:
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it if e.name.endswith(".dvc"))
    except OSError:
        return
    for name in names:
        yield folder / name


def check_dvc_files(root: Path) -> None:
    """Refuse hostile DVC files before DVC parses them: symlinks, oversize files, YAML anchors/aliases/tags."""
    root = Path(root)
    for path in dvc_files(root):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise UnsafeFileError(
                f"{rel}: is a symlink (to {os.readlink(path)}); DVC would read and write through it, outside "
                f"the zoo; delete it and restore the real file with `git checkout -- {rel}`"
            )
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        if size > MAX_YAML_BYTES:
            raise UnsafeFileError(f"{rel}: {size} bytes is far too big for a DVC file (limit {MAX_YAML_BYTES}); "
                                  f"restore it with `git checkout -- {rel}`")
        data = path.read_bytes()
        if b"&" in data or b"*" in data or b"!" in data:
            refuse_yaml_tricks(data.decode("utf-8", errors="replace"), rel)


# scheme://USERINFO@ in free text: greedy up to the last "@" before the host (an unencoded "@" in a
# password is masked too), but not across a space: "alpha@10" further on in a message is no password
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s\"'<>]*)@")
# a whole value that is one URL: its authority runs to the first "/", "?" or "#", as urlsplit reads it
_VALUE_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#]*)@")
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# a bare user name that is really a token (GitHub/GitLab tokens, access key ids, hex keys): long and
# mixing letters with digits; ordinary user names (git, alice, deploy-bot, ubuntu) are shorter or have no digit
_TOKEN_LIKE = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_.~+=%-]{20,}$")


def redact_urls(text: str) -> str:
    """``text`` with the user part of every URL in it (``scheme://USER:PASSWORD@``) replaced by ``***``:
    applied to everything printed that comes from a remote's config, so a hand-written secret never shows."""
    return _URL_USERINFO.sub(lambda m: m["scheme"] + "***@", text)


def redact_url(value: str) -> str:
    """``redact_urls`` of one config value, whose own URL (if it is one) is masked the way urlsplit reads
    it, spaces in the password included."""
    return redact_urls(_VALUE_USERINFO.sub(lambda m: m["scheme"] + "***@", value, count=1))


def url_userinfo(value: str) -> str | None:
    """The user part of a value that is one URL (``USER:PASSWORD`` of ``scheme://USER:PASSWORD@host``), or None."""
    m = _VALUE_USERINFO.match(value)
    return m["userinfo"] if m else None


def url_credentials(value: str) -> str | None:
    """What kind of credential a URL in ``value`` carries in its user part (``"user:password@"`` or
    ``"token@"``), or None. A bare user name (``ssh://git@host``) is not one, unless it looks like a token
    (20 or more characters mixing letters and digits)."""
    from urllib.parse import urlsplit

    for m in _URL_START.finditer(value):
        try:
            parts = urlsplit(value[m.start():])
            user, password = parts.username, parts.password
        except ValueError:  # a malformed URL: the caller says so
            continue
        if password:
            return "user:password@"
        if user and _TOKEN_LIKE.match(user):
            return "token@"
    return None


def control_character(text: str) -> str | None:
    """The first control, format or line-separator character in ``text`` (as ``U+000A``), or None: such
    characters turn one config value into several lines or hide what is printed."""
    import unicodedata

    for c in text:
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp"):
            return f"U+{ord(c):04X}"
    return None


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def disk_full(*errors: BaseException | None) -> OSError | None:
    """The OSError saying the disk (or RLIMIT_FSIZE, or a quota) ran out, anywhere in these exceptions'
    chains, or None."""
    for err in errors:
        for e in _chain(err):
            if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
                return e
    return None


def disk_full_message(err: OSError, doing: str) -> str:
    """One line for DiskFullError: what was being written, why it failed, what to do."""
    why = {errno.ENOSPC: "no space left on the device", errno.EFBIG: "file too large for the size limit",
           errno.EDQUOT: "disk quota exceeded"}.get(err.errno or 0, os.strerror(err.errno or 0))
    name = getattr(err, "filename2", None) or getattr(err, "filename", None)
    where = f" ({name})" if name else ""
    return (f"{doing}: {why}{where}; the temp files were removed and nothing half-written was kept; "
            "free some space (or raise the limit) and run the command again")


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


def remove_path(path: Path) -> None:
    """Remove a file, or a folder with everything in it (a folder checkpoint, its incoming copy); nothing if
    absent."""
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep_stale_temp_files(root: Path, work: Path, keep: Iterable[Path] = ()) -> list[Path]:
    """Remove what killed zoo commands left: incoming copies and their temps, table temps. Call it
    under the zoo lock. Returns what was removed."""
    gone = []
    table_dir = (Path(root) / constants.TABLE_PATH).parent
    table_temp = re.compile(r"^\.(?:checkpoints\.csv|\.gitignore)\.tmp-(\d+)$")
    candidates = stale_temp_files([Path(work) / "incoming"])
    candidates += stale_temp_files([table_dir, Path(root) / constants.CHECKPOINTS_DIR], (table_temp,))
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


# C0 controls but newline and tab, DEL, C1 controls (CSI, OSC ...), and the bidirectional overrides that
# reorder what a terminal shows
_UNPRINTABLE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: every control character or direction override that came from
    input (a file name, a table cell, a hostile revision) is shown escaped (``\\x1b``), never sent raw."""
    return _UNPRINTABLE_RE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                               else f"\\u{ord(m.group()):04x}", text)
