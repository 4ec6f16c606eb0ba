"""DVC storage: the only module that imports dvc.

Each model folder ``zoo/checkpoints/<model>`` is one DVC-tracked directory with its pointer
``zoo/checkpoints/<model>.dvc``. Files inside it are added, removed, fetched and pushed one by one
(DVC's granular targets), so nothing else of the zoo is read or downloaded.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import (
    IntegrityError,
    NotPushedError,
    RemoteAuthError,
    RemoteBucketError,
    RemoteConfigError,
    RemoteUnreachableError,
    StorageError,
    ZooError,
)
from ..safety import pid_alive, redact_url, redact_urls, url_credentials, url_userinfo

# Remote options that are credentials: never written to the committed .dvc/config (only config.local).
SECRET_OPTIONS = frozenset({
    "access_key_id", "secret_access_key", "session_token", "sse_customer_key",  # s3
    "password", "passphrase", "token", "custom_auth_header",                    # ssh, http, webdav
    "account_key", "sas_token", "connection_string", "client_secret",           # azure
    "gdrive_client_secret", "oss_key_id", "oss_key_secret",
})

# botocore.endpoint logs each failed attempt (with its exception) before retrying: after a retry the
# final error only says "could not connect", the first one says the connection was cut mid-transfer
_DVC_LOGGERS = ("dvc", "dvc_data", "dvc_objects", "botocore.endpoint", "s3fs")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class _DvcLog(logging.Handler):
    """Keeps what DVC logs during a transfer (its exceptions and warnings) instead of printing it, so
    that the zoo can say in one line what went wrong."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.errors: list[BaseException] = []
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])
        elif isinstance(record.args, tuple) and any(isinstance(a, BaseException) for a in record.args):
            # s3fs logs the error of each attempt it retries as an argument ("Retryable error: %s")
            self.errors.extend(a for a in record.args if isinstance(a, BaseException))
        elif record.levelno >= logging.WARNING:
            try:
                self.warnings.append(record.getMessage())
            except Exception:  # a malformed log call must not break the transfer
                pass


@contextmanager
def _remote_session() -> Iterator[_DvcLog]:
    """Around every DVC transfer: DVC's console output captured (see _DvcLog), and botocore's retries
    bounded (constants.s3_client_env) so that a dead endpoint fails in seconds, not minutes."""
    import dvc  # noqa: F401  (importing dvc installs its console handlers; swap them after that)

    from .. import constants

    log = _DvcLog()
    saved = []
    for name in _DVC_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.level, logger.propagate))
        logger.handlers = [log]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    try:
        with constants.scoped_env(constants.s3_client_env()):
            yield log
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


_LOST = ("ClientPayloadError", "ContentLengthError", "ConnectionResetError", "IncompleteRead", "BrokenPipeError",
         "ServerDisconnectedError", "ConnectionClosedError", "ReadTimeoutError", "AioReadTimeoutError",
         "SocketTimeoutError", "ConnectionAbortedError", "ClientOSError")
_UNREACHABLE = ("EndpointConnectionError", "ConnectionRefusedError", "ClientConnectorError", "ConnectTimeoutError",
                "gaierror", "ProxyConnectionError")
_AUTH_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken",
               "InvalidClientTokenId", "AuthorizationHeaderMalformed")


def classify_remote_failure(errors: Iterable[BaseException], warnings: Iterable[str] = ()) -> tuple[str, str] | None:
    """(kind, short cause) of a failed transfer from the exceptions DVC raised or logged, or None.

    kind is one of: credentials, bucket, lost (the connection dropped mid-transfer), unreachable,
    missing (an object the remote does not hold).
    """
    excs = [e for err in errors for e in _chain(err)]
    names = [type(e).__name__ for e in excs]
    texts = [str(e) for e in excs]

    def has_name(*wanted: str) -> str | None:
        return next((n for n in names if n in wanted), None)

    if has_name("NoCredentialsError", "PartialCredentialsError"):
        return "credentials", "no credentials found"
    for e, text in zip(excs, texts):
        code = next((c for c in _AUTH_CODES if c in text), None)
        if code:
            return "credentials", code
        if (isinstance(e, PermissionError) and e.errno is None and getattr(e, "filename", None) is None
                and ("Forbidden" in text or "403" in text or "Access" in text)):
            return "credentials", "403 Forbidden"
    if any("NoSuchBucket" in t or "specified bucket does not exist" in t for t in texts):
        return "bucket", "NoSuchBucket"
    lost = has_name(*_LOST)
    if lost:
        detail = {"ConnectionResetError": "connection reset by peer", "ClientPayloadError": "response cut short",
                  "ContentLengthError": "response cut short"}.get(lost, lost)
        return "lost", detail
    down = has_name(*_UNREACHABLE)
    if down:
        refused = any(isinstance(e, ConnectionRefusedError) or "Connect call failed" in t for e, t in zip(excs, texts))
        return "unreachable", "connection refused" if refused else down
    if any("NoSuchKey" in t or "specified key does not exist" in t for t in texts) or any(
            "do not exist neither locally nor on remote" in w for w in warnings):
        return "missing", "not in the remote"
    return None


# dvc_objects.fs.utils.tmp_fname: "." + token_urlsafe(16) + ".tmp"
_DVC_TEMP = re.compile(r"^\.[A-Za-z0-9_-]{22}\.tmp$")


def _raise_if_disk_full(exc: BaseException | None, doing: str, *logged: BaseException) -> None:
    from ..errors import DiskFullError
    from ..safety import disk_full, disk_full_message

    full = disk_full(exc, *logged)
    if full is not None:
        raise DiskFullError(disk_full_message(full, doing)) from None


def _save_config_atomically(cfg, level: str, conf: dict) -> None:
    """Write one level of DVC's config to a temp file and rename it over the old one.

    DVC's own ``Config._save_config`` truncates the file and writes it in place: a command reading it
    at that moment (another zoo or dvc process) sees an empty config, and if it then writes, drops
    every section it did not add (the default remote, ``[hydra]``)."""
    from configobj import ConfigObj
    from dvc.config import _pack_named

    path = Path(cfg.files[level])
    tmp_dir = Path(cfg.dvc_dir) / "tmp"  # git-ignored, on the same file system as the config
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f".{path.name}.zoo-{os.getpid()}-{os.urandom(4).hex()}.tmp"
    try:
        with open(tmp, "wb") as f:
            ConfigObj(_pack_named(conf)).write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def tracked_split(path: str) -> tuple[str, str]:
    """(model folder, path inside it) of a file under ``zoo/checkpoints/<model>/``: a checkpoint's file sits in
    its model folder, or one level deeper for a checkpoint that is a folder of files."""
    from .. import constants

    parts = Path(path).parts
    depth = len(Path(constants.CHECKPOINTS_DIR).parts) + 1
    if len(parts) <= depth + 1:
        return str(Path(path).parent), Path(path).name
    return "/".join(parts[:depth]), "/".join(parts[depth:])


class Storage:
    """DVC operations on one zoo repository, opened lazily."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._repo = None
        # parsed once per process: pointer bytes -> .dir md5, and checked .dir md5 -> its entries
        self._pointer_md5: dict[tuple[str, bytes], str] = {}
        self._good_manifests: dict[str, dict[str, str]] = {}

    @property
    def repo(self):
        if self._repo is None:
            from dvc.exceptions import NotDvcRepoError
            from dvc.repo import Repo

            from ..safety import check_dvc_files

            check_dvc_files(self.root)  # DVC parses every pointer: refuse alias bombs and symlinks first
            try:
                repo = Repo(str(self.root))
            except NotDvcRepoError:
                raise StorageError(f"{self.root}: not a DVC repository; run `dvc init` there") from None
            # zoo stages files itself; DVC's "To track the changes with git" hint would be noise
            repo.scm_context.quiet = True
            self._repo = repo
        return self._repo

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def default_remote(self) -> str | None:
        """Name of the default remote, or None."""
        return self.repo.config["core"].get("remote")

    def _remote_name(self, remote: str | None) -> str:
        return remote or self.default_remote() or "(no default remote)"

    def describe_remote(self, remote: str | None) -> str:
        """``remote 'NAME' (URL at ENDPOINT)`` for messages."""
        name = self._remote_name(remote)
        try:
            conf = self.repo.config["remote"].get(name) or {}
        except Exception:
            conf = {}
        url = str(conf.get("url", ""))
        if "://" not in url:
            return f"remote {name!r}"
        endpoint = conf.get("endpointurl")
        endpoint = redact_url(str(endpoint)) if endpoint else ""
        return f"remote {name!r} ({redact_url(url)}{' at ' + endpoint if endpoint else ''})"

    def _check_remote(self, remote: str | None) -> None:
        """A named remote must exist and a default must be set when none is named."""
        remotes = self.repo.config["remote"]
        if remote is None and not self.default_remote():
            raise RemoteConfigError("no remote named and no default remote set; pass --remote NAME "
                                    "or set one with `zoo remote add NAME URL --default`")
        if remote is not None and remote not in remotes:
            known = ", ".join(sorted(remotes)) or "none"
            raise RemoteConfigError(f"remote {remote!r} is not configured (configured: {known}); "
                                    f"add it with `zoo remote add {remote} s3://BUCKET/PREFIX --endpoint URL`")

    def _probe(self, remote: str | None) -> bool:
        """One cheap request (list at most one key under the prefix) to an S3 remote before a transfer,
        so that a dead endpoint, refused credentials or a missing bucket are told apart from a transfer
        that breaks halfway. Raises what the endpoint raised; False for remotes that are not S3."""
        conf = self.repo.config["remote"].get(self._remote_name(remote)) or {}
        url = str(conf.get("url", ""))
        if not url.startswith("s3://"):
            return False
        bucket, _, prefix = url[len("s3://"):].partition("/")
        s3fs = self.repo.cloud.get_remote(remote, "fetch").fs.fs
        try:
            s3fs.call_s3("list_objects_v2", Bucket=bucket, MaxKeys=1,
                         Prefix=prefix.strip("/") + "/" if prefix.strip("/") else "")
        except Exception as e:
            if classify_remote_failure([e]) == ("credentials", "AccessDenied"):
                return False  # valid keys without s3:ListBucket: the transfer itself may still be allowed
            raise
        return True

    def _failure(self, remote: str | None, action: str, log: _DvcLog, exc: BaseException | None = None,
                 paths: Iterable[str] = (), summary: str | None = None, probed: bool = False) -> ZooError:
        """The one-line error for a failed transfer: which remote, what went wrong, how to fix it (credentials
        in the remote's URLs masked: the underlying errors quote the endpoint URL)."""
        err = self._failure_unmasked(remote, action, log, exc, paths, summary, probed)
        text = str(err)
        try:
            conf = self.repo.config["remote"].get(self._remote_name(remote)) or {}
        except Exception:
            conf = {}
        # the remote's own secrets, masked wherever the underlying error quotes them (even a password
        # with a space in it, which no pattern over free text can delimit)
        known = [url_userinfo(str(v)) if url_credentials(str(v)) else (str(v) if k in SECRET_OPTIONS else None)
                 for k, v in conf.items()]
        for secret in sorted({k for k in known if k and len(k) > 3}, key=len, reverse=True):
            text = text.replace(secret, "***")
        return type(err)(redact_urls(text))

    def _failure_unmasked(self, remote: str | None, action: str, log: _DvcLog, exc: BaseException | None,
                          paths: Iterable[str], summary: str | None, probed: bool) -> ZooError:
        name = self._remote_name(remote)
        where = self.describe_remote(remote)
        errors = [*log.errors, *([exc] if exc is not None else [])]
        from ..errors import DiskFullError
        from ..safety import disk_full, disk_full_message

        full = disk_full(*errors)
        if full is not None:
            self._drop_cache_temps(*errors)
            return DiskFullError(disk_full_message(full, f"{where}: {action}"))
        found = classify_remote_failure(errors, log.warnings)
        if found and found[0] == "unreachable" and probed:
            found = ("lost", f"{found[1]} after the transfer had started")
        if found is None:
            # the first real error: later ones are often its aftermath (e.g. a failed multipart abort);
            # 404s are DVC asking whether objects exist
            logged = next((e for e in log.errors if not isinstance(e, FileNotFoundError)
                           and "(404)" not in str(e) and "Not Found" not in str(e)), None)
            first = logged if logged is not None else exc
            cause = _first_line(first) if first is not None else "unknown cause"
            return StorageError(f"{where}: {summary or action + ' failed'}: {cause}")
        kind, detail = found
        again = "run the command again"
        if kind == "unreachable":
            return RemoteUnreachableError(
                f"{where}: cannot connect to the endpoint ({detail}); check that it is up and that `zoo remote "
                f"list` shows the right endpoint (fix: `zoo remote modify {name} endpointurl URL`), then {again}")
        if kind == "lost":
            return RemoteUnreachableError(
                f"{where}: the connection dropped during the {action} ({detail}); nothing partial was kept; "
                f"{again} when the endpoint is back (it transfers only what is missing)")
        if kind == "credentials":
            return RemoteAuthError(
                f"{where}: the endpoint refused the credentials ({detail}); set AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, or store them for this clone only with `zoo remote modify {name} "
                "access_key_id KEY --local` (and secret_access_key)")
        if kind == "bucket":
            url = str((self.repo.config["remote"].get(name) or {}).get("url", ""))
            bucket = url.split("://", 1)[-1].split("/", 1)[0] or "?"
            return RemoteBucketError(
                f"{where}: bucket {bucket!r} does not exist; create it, or point the remote at an existing one "
                f"with `zoo remote modify {name} url s3://BUCKET/PREFIX`")
        listed = ", ".join(paths) or "the requested files"
        return NotPushedError(f"{where}: {listed} not there: not pushed yet; run `zoo push --remote {name}` "
                              "in the clone that added them")

    # ---- remote configuration (.dvc/config, .dvc/config.local) -------------------------------

    def _config(self):
        from dvc.config import Config

        cfg = Config(dvc_dir=str(self.root / ".dvc"))
        cfg._save_config = lambda level, conf: _save_config_atomically(cfg, level, conf)
        return cfg

    def remotes(self) -> list[dict]:
        """Every configured remote: name, url, options (secrets masked), level, default, secret keys
        found in the committed config."""
        cfg = self._config()
        repo_level, local_level = cfg.read("repo"), cfg.read("local")
        merged = cfg.read()
        default = merged["core"].get("remote")
        out = []
        for name, conf in merged["remote"].items():
            committed = repo_level["remote"].get(name) or {}
            local = local_level["remote"].get(name) or {}
            out.append({
                "name": name,
                "url": redact_url(str(conf.get("url", ""))),
                "options": {k: ("***" if k in SECRET_OPTIONS else redact_url(str(v)))
                            for k, v in conf.items() if k != "url"},
                "level": "repo" if name in repo_level["remote"] else ("local" if name in local_level["remote"] else "global"),
                "default": name == default,
                "local_secrets": tuple(sorted(k for k in local if k in SECRET_OPTIONS)),
                "committed_secrets": tuple(sorted(k for k, v in committed.items()
                                                  if k in SECRET_OPTIONS or url_credentials(str(v)))),
            })
        return out

    def _edit_config(self, level: str):
        from dvc.config import ConfigError

        cfg = self._config()

        @contextmanager
        def editing():
            try:
                with cfg.edit(level) as conf:
                    yield conf
            except ConfigError as e:
                raise RemoteConfigError(f"{redact_urls(_first_line(e))}; nothing was written (see `dvc remote modify --help` "
                                        "for the options of each remote type)") from None
        return cfg, editing()

    def add_remote(self, name: str, url: str, options: dict[str, str], level: str = "repo",
                   default: bool = False, force: bool = False) -> None:
        """Write a remote section (and optionally core.remote) to .dvc/config or .dvc/config.local."""
        cfg, editing = self._edit_config(level)
        if name in cfg.read()["remote"] and not force:
            raise RemoteConfigError(f"remote {name!r} exists already; change it with `zoo remote modify {name} KEY "
                                    f"VALUE` or remove it with `zoo remote remove {name}`")
        with editing as conf:
            conf["remote"][name] = {"url": url, **options}
            if default:
                conf["core"]["remote"] = name
        self._forget_config()

    def modify_remote(self, name: str, key: str, value: str | None, level: str = "repo") -> None:
        """Set (or with value None, unset) one option of an existing remote at this level."""
        cfg, editing = self._edit_config(level)
        if name not in cfg.read()["remote"]:
            raise RemoteConfigError(f"remote {name!r} is not configured; `zoo remote list` shows the remotes")
        with editing as conf:
            section = conf["remote"].setdefault(name, {})
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value
        self._forget_config()

    def remove_remote(self, name: str) -> list[str]:
        """Remove a remote from every repo-level file that defines it (and core.remote pointing at it);
        returns the levels it was removed from."""
        cfg = self._config()
        levels = [lv for lv in ("local", "repo") if name in cfg.read(lv)["remote"]]
        if not levels:
            raise RemoteConfigError(f"remote {name!r} is not configured in this clone; `zoo remote list` shows the remotes")
        for level in ("local", "repo"):
            cfg_level, editing = self._edit_config(level)
            data = cfg_level.read(level)
            if name in data["remote"] or data["core"].get("remote") == name:
                with editing as conf:
                    conf["remote"].pop(name, None)
                    if conf["core"].get("remote") == name:
                        del conf["core"]["remote"]
        self._forget_config()
        return levels

    def set_default_remote(self, name: str | None, level: str = "repo") -> None:
        cfg, editing = self._edit_config(level)
        if name is not None and name not in cfg.read()["remote"]:
            raise RemoteConfigError(f"remote {name!r} is not configured; `zoo remote list` shows the remotes")
        with editing as conf:
            if name is None:
                conf["core"].pop("remote", None)
            else:
                conf["core"]["remote"] = name
        self._forget_config()

    def _forget_config(self) -> None:
        """An open Repo holds the config it read; reopen it next time."""
        self.close()

    def _abs(self, rel: str) -> str:
        # DVC resolves relative targets against the process's cwd, not the repo
        return str(self.root / rel)

    @staticmethod
    def pointer(model_dir: str) -> str:
        return model_dir.rstrip("/") + ".dvc"

    def track(self, files: list[str]) -> None:
        """Record new or changed files (and removed ones) in their model folder's DVC pointer.

        A folder with no pointer yet is added whole; so is one that gets several files and holds
        exactly its tracked files plus these (one hashing pass over the folder instead of one manifest
        rewrite per file). Otherwise the folder is updated file by file, which keeps the entries of
        files that are not pulled locally.
        """
        repo = self.repo
        by_folder: dict[str, list[str]] = {}
        for f in files:
            by_folder.setdefault(tracked_split(f)[0], []).append(f)
        whole, granular = [], []
        for folder, mine in by_folder.items():
            if not (self.root / self.pointer(folder)).exists() or (len(mine) > 1 and self._only_these_new(folder, mine)):
                whole.append(folder)
            else:
                granular.extend(mine)
        doing = f"dvc add of {', '.join(whole + granular)} (copying into the DVC cache)"
        from dvc.repo import lock_repo

        with _remote_session() as log:  # DVC only logs a failed copy into its cache; catch what it logs
            try:
                with lock_repo(repo):  # DVC's own repo lock: no DVC command is writing these folders
                    self._sweep_dvc_temps(files)
                    if whole:  # one call: DVC collects and checks the stage graph once, not per folder
                        repo.add([self._abs(t) for t in whole])
                    for target in granular:
                        repo.add(self._abs(target))
            except Exception as e:  # DVC raises many unrelated types; all mean the add failed
                self._drop_cache_temps(*log.errors, e)
                _raise_if_disk_full(e, doing, *log.errors)
                raise StorageError(f"dvc add failed for {', '.join(whole + granular)}: {_first_line(e)}") from None
        self._drop_cache_temps(*log.errors)
        _raise_if_disk_full(None, doing, *log.errors)

    def _only_these_new(self, folder: str, new: list[str]) -> bool:
        """Whether ``folder`` holds every file its manifest lists, and nothing else but ``new``."""
        tracked = self.manifest(folder)
        if tracked is None:
            return False
        base = self.root / folder
        present = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file() and not p.is_symlink()}
        names = {tracked_split(f)[1] for f in new}
        return set(tracked) <= present and present <= set(tracked) | names and names <= present

    def _sweep_dvc_temps(self, paths: Iterable[str]) -> None:
        """Remove the partial files (``.<22 chars>.tmp``) that a killed DVC checkout left in these files'
        model folders: DVC would count them as folder content (``dvc status`` says modified, a whole-folder
        add would track them). Call with DVC's repo lock held. Checkpoint names never look like that."""
        import os

        for folder in sorted({(self.root / p).parent for p in paths} | {self.root / tracked_split(p)[0] for p in paths}):
            try:
                with os.scandir(folder) as it:
                    stale = [e.path for e in it if _DVC_TEMP.match(e.name) and e.is_file(follow_symlinks=False)]
            except OSError:
                continue
            for path in stale:
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def _drop_cache_temps(self, *errors: BaseException | None) -> None:
        """Remove the partial temp files (in the DVC cache or the model folders) that a failed copy names
        (DVC leaves some of them behind)."""
        from .. import constants
        from ..safety import _chain

        try:
            roots = (Path(self.repo.cache.local.path).resolve(), (self.root / constants.CHECKPOINTS_DIR).resolve())
        except Exception:
            return
        for err in errors:
            for e in _chain(err):
                for name in (getattr(e, "filename", None), getattr(e, "filename2", None)):
                    if not isinstance(name, str) or not name.endswith(".tmp"):
                        continue
                    p = Path(name)
                    if any(r in p.resolve().parents for r in roots):
                        p.unlink(missing_ok=True)

    def repair_after_kill(self) -> bool:
        """Remove DVC's stage-lock file (``.dvc/tmp/rwlock``) when a DVC call killed while writing it left it
        cut short: every later DVC command would fail with "JSON structure is corrupted". Checked again
        under DVC's own guard of that file; True if it was removed."""
        tmp = self.root / ".dvc" / "tmp"
        path = tmp / "rwlock"

        def corrupt() -> bool:
            try:
                json.loads(path.read_text(encoding="utf-8"))
                return False
            except FileNotFoundError:
                return False
            except (ValueError, OSError):
                return True

        if not corrupt():
            return False
        from dvc.lock import LockError, make_lock

        try:
            with make_lock(str(tmp / "rwlock.lock"), tmp_dir=str(tmp)):
                if corrupt():
                    path.unlink(missing_ok=True)
                    return True
        except LockError:
            pass  # a live DVC process holds it: it is rewriting the file now
        return False

    def untrack_folder(self, folder: str) -> None:
        """Stop tracking a model folder that no longer holds any checkpoint."""
        pointer = self.root / self.pointer(folder)
        try:
            self.repo.remove(str(pointer), outs=True)
        except Exception as e:
            raise StorageError(f"dvc remove failed for {pointer.name}: {_first_line(e)}") from None

    def manifest(self, folder: str) -> dict[str, str] | None:
        """relpath -> md5 for a tracked folder, from its ``.dir`` manifest in the local cache (None if absent)."""
        pointer = self.root / self.pointer(folder)
        if not pointer.exists():
            return None
        from ..errors import UnsafeFileError

        rel = pointer.relative_to(self.root).as_posix()
        if pointer.is_symlink():
            raise UnsafeFileError(f"{rel}: is a symlink; restore the real pointer with `git checkout -- {rel}`")
        md5 = self._folder_md5(pointer, rel)
        obj = self.cache_path(md5)
        if not obj.exists():
            return None
        if md5 in self._good_manifests:
            return dict(self._good_manifests[md5])
        raw = obj.read_bytes()
        import hashlib

        if hashlib.md5(raw).hexdigest() != md5.removesuffix(".dir"):
            # DVC names a manifest by the md5 of its bytes, and the zoo checks a downloaded one before it
            # enters the cache: this copy was damaged here (or fetched unchecked by plain `dvc fetch`)
            obj.unlink(missing_ok=True)
            raise IntegrityError(f"{folder}: its folder manifest in the local DVC cache ({obj}) does not match md5 "
                                 f"{md5} (damaged on this disk, not on the remote); the damaged copy was removed and "
                                 f"the workspace left as it was; run the command again (`zoo pull` downloads the "
                                 "manifest again)")
        entries = {e["relpath"]: e["md5"] for e in json.loads(raw)}
        self._good_manifests[md5] = entries
        return dict(entries)

    def _folder_md5(self, pointer: Path, rel: str) -> str:
        """The ``.dir`` md5 a folder pointer names (parsed once per process per pointer content)."""
        from ..errors import UnsafeFileError
        from ..safety import load_yaml

        content = pointer.read_bytes()
        md5 = self._pointer_md5.get((rel, content))
        if md5 is None:
            data = load_yaml(content, rel)
            try:
                md5 = str(data["outs"][0]["md5"])
                path = data["outs"][0].get("path")
            except (TypeError, KeyError, IndexError, AttributeError):
                raise UnsafeFileError(f"{rel}: not a DVC pointer (no outs[0].md5); restore it with "
                                      f"`git checkout -- {rel}`") from None
            if len(data["outs"]) != 1 or path != Path(rel).stem:
                raise UnsafeFileError(f"{rel}: must track exactly the folder {Path(rel).stem!r} beside it (outs[0].path "
                                      f"is {str(path)[:80]!r}); restore it with `git checkout -- {rel}`")
            if not _is_folder_md5(md5):
                raise UnsafeFileError(f"{rel}: outs[0].md5 {md5[:80]!r} is not a folder hash; restore it with "
                                      f"`git checkout -- {rel}`")
            self._pointer_md5[(rel, content)] = md5
        return md5

    def cache_path(self, md5: str) -> Path:
        """Where DVC keeps an object with this md5 in the local cache."""
        cache_root = Path(self.repo.cache.local.path)
        return cache_root / md5[:2] / md5[2:]

    def manifest_object(self, folder: str) -> Path | None:
        """The local cache object of a tracked folder's ``.dir`` manifest (None when the folder is not tracked)."""
        pointer = self.root / self.pointer(folder)
        if not pointer.is_file():
            return None
        return self.cache_path(self._folder_md5(pointer, pointer.relative_to(self.root).as_posix()))

    def cached_object(self, path: str) -> Path | None:
        """Local cache object of a file inside a tracked folder (None if not fetched)."""
        folder, rel = tracked_split(path)
        files = self.manifest(folder)
        if not files or rel not in files:
            return None
        obj = self.cache_path(files[rel])
        return obj if obj.exists() else None

    def missing_manifests(self, pointers: list[Path]) -> list[str]:
        """The ``.dir`` md5s these pointer files (in the zoo, or the merge driver's temp copies) name that the
        local cache lacks; an unreadable pointer is skipped here and refused where it is used."""
        from ..errors import UnsafeFileError
        from ..safety import load_yaml

        wanted = set()
        for p in pointers:
            try:
                outs = (load_yaml(p.read_bytes(), str(p)) or {}).get("outs") or []
            except (OSError, UnsafeFileError, AttributeError):
                continue
            wanted |= {o["md5"] for o in outs if isinstance(o, dict) and _is_folder_md5(str(o.get("md5", "")))}
        return [m for m in sorted(wanted) if not self.cache_path(m).exists()]

    def store_manifest(self, md5: str, raw: bytes) -> None:
        """Put a folder manifest into the local cache, after checking it is the JSON its md5 names."""
        import hashlib

        # a manifest is JSON named by its md5; anything else must not enter the cache
        if hashlib.md5(raw).hexdigest() != md5.removesuffix(".dir"):
            raise ValueError(f"manifest {md5} has other bytes (md5 mismatch)")
        json.loads(raw)
        dest = self.cache_path(md5)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + f".{os.getpid()}.tmp")
        try:
            tmp.write_bytes(raw)
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)

    def fetch_manifests(self, pointers: list[Path], remote: str | None = None) -> int:
        """Put the ``.dir`` manifests named by these pointer files into the local cache (nothing else);
        returns how many were downloaded. DVC's merge driver needs all three sides' manifests."""
        missing = self.missing_manifests(pointers)
        if not missing:
            return 0
        with _remote_session() as log:
            try:
                odb = self.repo.cloud.get_remote_odb(remote, "fetch")
                for md5 in missing:
                    with odb.fs.open(odb.oid_to_path(md5), "rb") as f:
                        raw = f.read(64 * 1024 * 1024)
                    self.store_manifest(md5, raw)
            except Exception as e:
                err = self._failure(remote, "fetch", log, e)
                raise type(err)(f"{err}; (the merge needs the folder manifests: run `dvc fetch` and merge again)") from None
        return len(missing)

    def fetch(self, paths: list[str], remote: str | None = None, jobs: int | None = None) -> None:
        """Download the cache objects of exactly these files (plus their folders' manifests), ``jobs`` at a
        time (default 8).

        Objects the remote does not hold are left out without an error (the caller sees them missing
        from the cache and says which checkpoints were not pushed); every other failure raises the
        StorageError subclass that names its cause. Every object is downloaded to a temp name in the
        cache and renamed when complete, so a failed transfer leaves no partial object in the cache."""
        from dvc.exceptions import DownloadError

        self._check_remote(remote)
        with _remote_session() as log:
            probed = False
            try:
                probed = self._probe(remote)
                if not self._fetch_objects(paths, remote, jobs or 8):
                    self.repo.fetch(targets=[self._abs(p) for p in paths], remote=remote, jobs=jobs)
            except ZooError:
                raise
            except DownloadError as e:
                err = self._failure(remote, "download", log, None, paths, probed=probed,
                                    summary=f"{e.amount} file(s) could not be downloaded ({', '.join(paths)})")
                if isinstance(err, NotPushedError):
                    return
                raise err from None
            except Exception as e:
                err = self._failure(remote, "download", log, e, paths, probed=probed)
                if isinstance(err, NotPushedError):
                    return
                raise err from None

    def _fetch_objects(self, paths: list[str], remote: str | None, jobs: int) -> bool:
        """Fetch by hash, straight from the remote's object store: each folder's ``.dir`` manifest (named
        in its pointer; checked against its md5), then the objects the manifests name for these files.

        ``dvc fetch`` with targets reads every ``.dvc`` pointer of the repository first (0.4 s at 100
        model folders); the zoo knows the two hashes it needs. False (nothing done) for remotes DVC
        cannot address by hash (cloud-versioned ones): the caller falls back to ``dvc fetch``."""
        import hashlib
        import os
        from concurrent.futures import ThreadPoolExecutor

        import yaml
        from dvc.config import RemoteConfigError as DvcRemoteConfigError

        try:
            odb = self.repo.cloud.get_remote_odb(remote, "fetch")
        except DvcRemoteConfigError:
            return False

        def download(md5: str) -> None:
            dest = self.cache_path(md5)
            if dest.exists():
                return
            dest.parent.mkdir(parents=True, exist_ok=True)
            for stale in dest.parent.glob(f".{dest.name}.zoo-*.tmp"):  # left by a killed zoo process
                pid = stale.name.rsplit(".zoo-", 1)[-1].split("-", 1)[0]
                if pid.isdigit() and not pid_alive(int(pid)):
                    stale.unlink(missing_ok=True)
            tmp = dest.with_name(f".{dest.name}.zoo-{os.getpid()}-{os.urandom(4).hex()}.tmp")
            try:
                odb.fs.get_file(odb.oid_to_path(md5), str(tmp))
                if md5.endswith(".dir"):
                    raw = tmp.read_bytes()
                    if hashlib.md5(raw).hexdigest() != md5.removesuffix(".dir"):
                        raise IntegrityError(
                            f"{self.describe_remote(remote)}: the folder manifest {md5} there has other bytes "
                            "(damaged or replaced); nothing was kept or changed here; re-push it from a good clone")
                    json.loads(raw)
                os.chmod(tmp, 0o444)  # as DVC keeps its cache
                os.replace(tmp, dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

        def fetch_all(md5s: list[str]) -> None:
            if not md5s:
                return
            with ThreadPoolExecutor(max_workers=min(jobs, len(md5s))) as pool:
                futures = [pool.submit(download, m) for m in md5s]
            for f in futures:
                e = f.exception()
                # an object the remote lacks is left out: the caller names the checkpoints not pushed
                if e is not None and not (isinstance(e, FileNotFoundError) and not isinstance(e, ZooError)):
                    raise e

        manifests = []
        for folder in sorted({tracked_split(p)[0] for p in paths}):
            pointer = self.root / self.pointer(folder)
            if pointer.exists():
                outs = (yaml.safe_load(pointer.read_text()) or {}).get("outs") or []
                manifests += [o["md5"] for o in outs if str(o.get("md5", "")).endswith(".dir")]
        fetch_all(manifests)
        objects = []
        for p in paths:
            folder, rel = tracked_split(p)
            files = self.manifest(folder)
            if files and rel in files:
                objects.append(files[rel])
        fetch_all(sorted(set(objects)))
        return True

    def _narrow_index(self, paths: list[str]) -> None:
        """Give DVC an index of just these files' folder pointers for the next command (call it with
        DVC's repo lock held; the lock's release drops it). For a path inside a tracked folder, ``dvc
        checkout`` otherwise parses every ``.dvc`` pointer of the repository first: 0.4 s at 100 model
        folders, the largest part of pulling one checkpoint."""
        from dvc.repo.index import Index

        pointers = sorted({str(self.root / self.pointer(tracked_split(p)[0])) for p in paths})
        if all(Path(p).is_file() for p in pointers):
            self.repo.__dict__["index"] = Index.from_indexes(self.repo, [Index.from_file(self.repo, p) for p in pointers])

    def checkout(self, paths: list[str]) -> None:
        """Put fetched files into the workspace."""
        from dvc.repo import lock_repo

        with _remote_session() as log:  # DVC logs why a file could not be checked out; keep it
            try:
                with lock_repo(self.repo):  # DVC's own repo lock: no DVC command is writing these folders
                    self._sweep_dvc_temps(paths)
                    self._narrow_index(paths)
                    self.repo.checkout(targets=[self._abs(p) for p in paths], force=True)
            except Exception as e:
                self._drop_cache_temps(*log.errors, e)
                _raise_if_disk_full(e, f"checking out {', '.join(paths)}", *log.errors)
                raise StorageError(f"checkout failed for {', '.join(paths)}: {_first_line(e)}") from None

    def _push_objects(self, paths: list[str], folders: Iterable[str]) -> dict[str, Path]:
        """oid -> local cache object of these files and of the folder manifests of ``folders`` (and of
        these files' folders): everything a push of them must leave right on the remote."""
        want: dict[str, Path] = {}
        for p in paths:
            obj = self.cached_object(p)
            if obj is not None:
                want[obj.parent.name + obj.name] = obj
        for folder in {*folders, *(tracked_split(p)[0] for p in paths)}:
            pointer = self.root / self.pointer(folder)
            if pointer.is_file():
                md5 = self._folder_md5(pointer, self.pointer(folder))
                if self.cache_path(md5).exists():
                    want[md5] = self.cache_path(md5)
        return want

    @staticmethod
    def _upload(odb, objects: dict[str, Path], jobs: int | None) -> int:
        """Upload these local objects, replacing whatever the remote holds at their keys."""
        if not objects:
            return 0
        from dvc_objects.fs.local import LocalFileSystem

        errors: list[BaseException] = []
        done = odb.add([str(p) for p in objects.values()], LocalFileSystem(), list(objects), check_exists=False,
                       on_error=lambda oid, exc: errors.append(exc), **({"batch_size": jobs} if jobs else {}))
        if errors:
            raise errors[0]
        return done

    def _push_missing(self, want: dict[str, Path], odb, jobs: int | None = None) -> int:
        """Upload the objects of ``want`` that the remote still lacks after ``dvc push``.

        DVC takes a folder's files to be on the remote once its ``.dir`` manifest is, but a push of
        some files of a folder uploads that manifest too: a later push of another file of the same
        folder then uploads nothing (measured with DVC 3.67.1). So each pushed file's object is
        checked on the remote, and uploaded if missing. A manifest can be new while none of its files
        is local: DVC's merge driver writes the merged one of two branches' additions."""
        if not want:
            return 0
        present = set(odb.oids_exist(list(want)))
        return self._upload(odb, {oid: p for oid, p in want.items() if oid not in present}, jobs)

    @staticmethod
    def _remote_object_ok(odb, oid: str, local: Path) -> bool:
        """Whether the remote's object at ``oid``'s key holds the bytes named by ``oid`` (their md5): the
        size first, then an S3 ETag that is a plain md5 (single-part upload), else the md5 of its bytes
        (a multipart ETag, an encrypted object's ETag, a local or other remote)."""
        import hashlib

        path = odb.oid_to_path(oid)
        info = odb.fs.info(path)
        if info.get("size") is not None and int(info["size"]) != local.stat().st_size:
            return False
        md5 = oid.removesuffix(".dir")
        etag = str(info.get("ETag") or info.get("etag") or "").strip('"').lower()
        if etag == md5:
            return True
        h = hashlib.md5()
        with odb.fs.open(path, "rb") as f:
            while chunk := f.read(8 * 1024 * 1024):
                h.update(chunk)
        return h.hexdigest() == md5

    def _replace_wrong(self, want: dict[str, Path], odb, jobs: int | None) -> int:
        """Check the objects of ``want`` that the remote already holds and overwrite each wrong one (other
        bytes at its key: a pre-poisoned bucket, a damaged copy) with the good local one; returns how many.
        DVC would take them as pushed and upload nothing, so they could never be repaired."""
        if not want:
            return 0
        from concurrent.futures import ThreadPoolExecutor

        present = sorted(set(odb.oids_exist(list(want))))
        if not present:
            return 0
        with ThreadPoolExecutor(max_workers=min(jobs or 8, len(present))) as pool:
            verdicts = list(pool.map(lambda oid: self._remote_object_ok(odb, oid, want[oid]), present))
        wrong = {oid: want[oid] for oid, ok in zip(present, verdicts) if not ok}
        self._upload(odb, wrong, jobs)
        return len(wrong)

    def push(self, paths: Iterable[str], remote: str | None = None, jobs: int | None = None,
             folders: Iterable[str] = ()) -> tuple[int, int]:
        """Upload these files' cache objects and the manifests of ``folders``, ``jobs`` at a time (default
        DVC's: 4 per core), after checking the ones the remote already holds (see ``_replace_wrong``);
        returns (objects uploaded, wrong objects on the remote replaced)."""
        from dvc.exceptions import UploadError

        paths = list(paths)
        self._check_remote(remote)
        with _remote_session() as log:
            probed = False
            try:
                probed = self._probe(remote)
                want = self._push_objects(paths, folders)
                odb = self.repo.cloud.get_remote_odb(remote, "push")
                replaced = self._replace_wrong(want, odb, jobs)
                pushed = int(self.repo.push(targets=[self._abs(p) for p in paths], remote=remote, jobs=jobs) or 0) \
                    if paths else 0  # no targets would mean everything to DVC
                return pushed + self._push_missing(want, odb, jobs), replaced
            except UploadError as e:
                raise self._failure(remote, "upload", log, summary=f"{e.amount} file(s) failed to upload",
                                    probed=probed) from None
            except Exception as e:
                raise self._failure(remote, "upload", log, e, probed=probed) from None


def _endpoint(conf: dict) -> tuple[str, str]:
    return str(conf.get("url") or "").rstrip("/"), str(conf.get("endpointurl") or "").rstrip("/")


def _describe(conf: dict) -> str:
    url, endpoint = _endpoint(conf)
    return f"{url}, endpoint {endpoint}" if endpoint else url


def _refuse_foreign_remote(config: dict, remote: str | None, own_dvc_dir: Path | None, where: str) -> None:
    """Raise RemoteConfigError unless the remote DVC would use at a revision is one the user configured.

    Credentials (the environment's, ``.dvc/config.local``'s) go to whatever remote DVC talks to, and at a
    revision DVC takes the remotes from that revision's committed ``.dvc/config``. So a cloud remote is
    used only when its url and endpoint are those of a remote of the user's own configuration (the
    working tree's ``.dvc/config`` and ``config.local`` at ``own_dvc_dir``, and the global and system
    DVC config), or when it is named explicitly with ``remote`` and the user has no remote of that name
    pointing elsewhere. Local folder remotes get no credentials and are always allowed."""
    from dvc.config import Config

    name = config["core"].get("remote")
    conf = config.get("remote", {}).get(name) if name else None
    if conf is None:
        return  # no remote: DVC reads its cache only, and says so if the object is not there
    url = str(conf.get("url") or "")
    if "://" not in url or url.startswith("file://"):
        return
    mine = Config(dvc_dir=str(own_dvc_dir) if own_dvc_dir else None).get("remote", {})
    if _endpoint(conf) in {_endpoint(r) for r in mine.values()}:
        return
    if name in mine:
        raise RemoteConfigError(
            f"{where}: remote {name!r} there points at {_describe(conf)}, but your {name!r} points at "
            f"{_describe(mine[name])} and your credentials for it go only there; read that revision with "
            "remote=NAME (CLI: --remote NAME) of a remote you configured for its bytes")
    if remote is not None:
        return  # named by the user: they chose to trust it
    how = ("add it to your clone with `zoo remote add`" if own_dvc_dir else
           f"pass remote={name!r} (CLI: --remote {name}) if you trust it, or configure it with `dvc remote add --global`")
    raise RemoteConfigError(
        f"{where}: its default remote {name!r} ({_describe(conf)}) comes from that revision, not from your "
        f"configuration, and gets none of your credentials; pass remote=NAME (CLI: --remote NAME) of a remote "
        f"you configured, or {how}")


def download_at_revision(repo: str, rev: str, path: str, dest: Path, remote: str | None = None,
                         own_dvc_dir: Path | None = None, label: str | None = None) -> str:
    """Stream one DVC-tracked file of ``repo`` (path or git URL) at ``rev`` into ``dest``; return its sha256.

    Only that file's object (and its folder's manifest) is read from the remote; nothing is checked out.
    A cloud remote that only the revision defines is refused before anything connects (see
    ``_refuse_foreign_remote``): ``own_dvc_dir`` is the ``.dvc`` folder of the user's working tree, None
    for a zoo read from a URL. ``label`` names the repository in messages (default ``repo``).
    """
    import hashlib
    import os

    from dvc.api import DVCFileSystem

    h = hashlib.sha256()
    where = f"{path} at {rev[:12]} of {label or repo}"
    with _remote_session() as log:
        try:
            fs = DVCFileSystem(repo, rev=rev, remote=remote)
            try:
                _refuse_foreign_remote(fs.repo.config, remote, own_dvc_dir, where)
                with fs.open(path, "rb") as src, open(dest, "wb") as dst:
                    while chunk := src.read(8 * 1024 * 1024):
                        h.update(chunk)
                        dst.write(chunk)
                    dst.flush()
                    os.fsync(dst.fileno())
            finally:
                fs.close()
        except ZooError:
            raise
        except Exception as e:  # DVC and its remotes raise many unrelated types
            found = classify_remote_failure([*log.errors, e], log.warnings)
            kind = {"unreachable": RemoteUnreachableError, "lost": RemoteUnreachableError, "credentials": RemoteAuthError,
                    "bucket": RemoteBucketError, "missing": NotPushedError}.get(found[0] if found else "", StorageError)
            cause = f"{found[1]} ({_first_line(e)})" if found else _first_line(e)
            raise kind(redact_urls(f"{where}: download failed"
                                   f"{' from remote ' + repr(remote) if remote else ''}: {cause}")) from None
    return h.hexdigest()


def _is_folder_md5(md5: str) -> bool:
    """True for the hash DVC gives a tracked folder: 32 hex digits and ``.dir``."""
    return len(md5) == 36 and md5.endswith(".dir") and all(c in "0123456789abcdef" for c in md5[:32])


def stale_stages(root: Path) -> list[str]:
    """Names of the pipeline stages of ``root`` whose outputs are not up to date (``dvc status``); [] if none
    or if there is no pipeline."""
    if not (root / "dvc.yaml").is_file():
        return []
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            status = repo.status()
    except Exception as e:  # DVC raises many unrelated types; each means the status is unknown
        raise StorageError(f"dvc status failed in {root}: {_first_line(e)}; run `dvc status` to see why") from None
    return sorted(str(name).rsplit(":", 1)[-1] for name in status if not str(name).endswith(".dvc"))


def pipeline_paths(root: Path) -> list[str]:
    """Every file or folder the pipeline (``dvc.yaml``) reads or writes, repo-relative: deps, outs, metrics,
    plots and the params files; [] without a pipeline."""
    from ..safety import load_yaml

    path = root / "dvc.yaml"
    if not path.is_file():
        return []
    data = load_yaml(path.read_bytes(), "dvc.yaml") or {}
    out: list[str] = ["dvc.yaml", "dvc.lock"]
    for stage in (data.get("stages") or {}).values():
        if not isinstance(stage, dict):
            continue
        for key in ("deps", "outs", "metrics", "plots"):
            for item in stage.get(key) or []:
                out.append(next(iter(item)) if isinstance(item, dict) else str(item))
        if stage.get("params"):
            out.append("params.yaml")
    return list(dict.fromkeys(p for p in out if p and not p.startswith(("/", "..")) and "${" not in p))
