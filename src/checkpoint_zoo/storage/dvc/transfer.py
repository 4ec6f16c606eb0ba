"""Moving a DVC zoo's bytes: fetch (by hash, straight from the remote's object store), push (and repair
wrong objects on the remote), and the folder manifests a merge needs (checkout: ``checkout.py``). Every remote failure is
told through ``failures.transfer_error``, with the remote's own secrets masked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import IntegrityError, NotPushedError, ZooError
from ...utils.progress import transfer_progress
from ...utils.redact import redact_urls, url_credentials, url_userinfo
from ...utils.temps import pid_alive
from ..base import Part, tracked_split
from . import s3fast, s5
from .failures import DvcLog, classify_remote_failure, remote_session, transfer_error
from .remotes import SECRET_OPTIONS, check_remote, remote_name

if TYPE_CHECKING:
    from .store import Storage


def _failure(store: Storage, remote: str | None, action: str, log: DvcLog, exc: BaseException | None = None,
             paths: Iterable[str] = (), summary: str | None = None, probed: bool = False) -> ZooError:
    """The one-line error for a failed transfer (``failures.transfer_error``), with the remote's own secrets
    masked wherever the underlying error quotes them (even a password with a space in it, which no pattern
    over free text can delimit) and any credentials in URLs."""
    name = remote_name(store.repo.config, remote)
    try:
        conf = store.repo.config["remote"].get(name) or {}
    except Exception:
        conf = {}
    err = transfer_error(store.describe_remote(remote), name, conf, action, log, exc, paths, summary, probed,
                         store._drop_cache_temps)
    text = str(err)
    known = [url_userinfo(str(v)) if url_credentials(str(v)) else (str(v) if k in SECRET_OPTIONS else None)
             for k, v in conf.items()]
    for secret in sorted({k for k in known if k and len(k) > 3}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return type(err)(redact_urls(text))


def _probe(store: Storage, remote: str | None, fast: s3fast.S3Remote | None = None, plain: bool = False) -> bool:
    """One cheap request (list at most one key under the prefix) to an S3 remote before a transfer,
    so that a dead endpoint, refused credentials or a missing bucket are told apart from a transfer
    that breaks halfway. Raises what the endpoint raised; False for remotes that are not S3.

    Through ``fast``'s boto3 client when the transfer has one: building DVC's s3fs client only for this
    request (importing s3fs and aiobotocore) took ~0.35 s of a 2,000-file pull or push. ``plain``: ``fast`` was
    read from DVC's config files (``exists.s3_remote``), so its bucket and prefix are the remote's URL."""
    if fast is not None and plain:
        bucket, prefix = fast.bucket, fast.base.removesuffix("files/md5")
    else:
        conf = store.repo.config["remote"].get(remote_name(store.repo.config, remote)) or {}
        url = str(conf.get("url", ""))
        if not url.startswith("s3://"):
            return False
        bucket, _, prefix = url[len("s3://"):].partition("/")
    ask = {"Bucket": bucket, "MaxKeys": 1, "Prefix": prefix.strip("/") + "/" if prefix.strip("/") else ""}
    try:
        if fast is not None:
            fast.client.list_objects_v2(**ask)
        else:
            store.repo.cloud.get_remote(remote, "fetch").fs.fs.call_s3("list_objects_v2", **ask)
    except Exception as e:
        if classify_remote_failure([e]) == ("credentials", "AccessDenied"):
            return False  # valid keys without s3:ListBucket: the transfer itself may still be allowed
        raise
    return True


def _fast(store: Storage, remote: str | None, jobs: int | None, action: str) -> tuple[Any, s3fast.S3Remote | None]:
    """(DVC's object database of the remote, its ``s3fast.S3Remote`` or None); (None, None) for a remote DVC
    cannot address by hash (a cloud-versioned one)."""
    from dvc.config import RemoteConfigError as DvcRemoteConfigError

    try:
        odb = store.repo.cloud.get_remote_odb(remote, action)
    except DvcRemoteConfigError:
        return None, None
    return odb, s3fast.open_remote(odb, _state(store), jobs)


def fetch_manifests(store: Storage, pointers: list[Path], remote: str | None = None) -> int:
    """Put the ``.dir`` manifests named by these pointer files into the local cache (nothing else);
    returns how many were downloaded. DVC's merge driver needs all three sides' manifests."""
    missing = store.missing_manifests(pointers)
    if not missing:
        return 0
    with remote_session() as log:
        try:
            odb = store.repo.cloud.get_remote_odb(remote, "fetch")
            for md5 in missing:
                with odb.fs.open(odb.oid_to_path(md5), "rb") as f:
                    raw = f.read(64 * 1024 * 1024)
                store.store_manifest(md5, raw)
        except Exception as e:
            err = _failure(store, remote, "fetch", log, e)
            raise type(err)(f"{err}; (the merge needs the folder manifests: run `dvc fetch` and merge again)") from None
    return len(missing)


def fetch(store: Storage, paths: list[str], remote: str | None = None, jobs: int | None = None) -> None:
    """Download the cache objects of exactly these files (plus their folders' manifests), ``jobs`` at a
    time (default 8).

    Objects the remote does not hold are left out without an error (the caller sees them missing
    from the cache and says which checkpoints were not pushed); every other failure raises the
    StorageError subclass that names its cause. Every object is downloaded to a temp name in the
    cache and renamed when complete, so a failed transfer leaves no partial object in the cache."""
    if _fetch_plain_s3(store, paths, remote, jobs):
        return
    from dvc.exceptions import DownloadError

    check_remote(store.repo.config, remote)
    with remote_session() as log:
        probed = False
        try:
            odb, fast = _fast(store, remote, jobs, "fetch")
            probed = _probe(store, remote, fast)
            if odb is None or not _fetch_objects(store, paths, remote, jobs, odb, fast):
                store.repo.fetch(targets=[store._abs(p) for p in paths], remote=remote, jobs=jobs)
        except ZooError:
            raise
        except DownloadError as e:
            _raise_unless_not_pushed(_failure(store, remote, "download", log, None, paths, probed=probed,
                                              summary=f"{e.amount} file(s) could not be downloaded "
                                                      f"({', '.join(paths)})"))
        except Exception as e:
            _raise_unless_not_pushed(_failure(store, remote, "download", log, e, paths, probed=probed))


def _raise_unless_not_pushed(err: ZooError) -> None:
    """A download's failure, raised unless it is only that objects are not on the remote (the caller sees them
    missing from the cache and names the checkpoints)."""
    if not isinstance(err, NotPushedError):
        raise err from None


def _fetch_plain_s3(store: Storage, paths: list[str], remote: str | None, jobs: int | None) -> bool:
    """``fetch`` from a plain S3 remote (``exists.s3_remote``: read from DVC's config files) without opening
    DVC's repo first; it opens in a thread (``Storage.open_soon``) while the objects move, for the checkout
    that follows.
    Opening DVC, then its S3 filesystem (which imports s3fs and aiobotocore only to name the client's
    arguments) took 0.5-0.8 s of a 2,000-file pull before its first request. False (nothing done) for any
    other remote, or when the config names none: ``fetch`` goes on the usual way, which words any refusal."""
    from . import exists

    with remote_session() as log:
        try:
            fast = exists.s3_remote(store.root, remote, jobs)
        except Exception:  # a setting boto3 refuses: DVC's path says what is wrong, in its words
            fast = None
        if fast is None:
            return False
        probed = False
        try:
            probed = _probe(store, remote, fast, plain=True)
            _fetch_objects(store, paths, remote, jobs, None, fast)
        except ZooError:
            raise
        except Exception as e:
            _raise_unless_not_pushed(_failure(store, remote, "download", log, e, paths, probed=probed))
    return True


def _fetch_objects(store: Storage, paths: list[str], remote: str | None, jobs: int | None, odb,
                   fast: s3fast.S3Remote | None) -> bool:
    """Fetch by hash, straight from the remote's object store: each folder's ``.dir`` manifest (named
    in its pointer; checked against its md5), then the objects the manifests name for these files.

    ``dvc fetch`` with targets reads every ``.dvc`` pointer of the repository first (0.4 s at 100
    model folders); the zoo knows the two hashes it needs. False (nothing done) for remotes DVC
    cannot address by hash (cloud-versioned ones): the caller falls back to ``dvc fetch``."""
    import yaml

    manifests: list[str] = []
    sizes: list[tuple[int, int]] = []  # each pointed folder's (bytes, files), when its pointer says
    for folder in sorted({tracked_split(p)[0] for p in paths}):
        pointer = store.root / store.pointer(folder)
        if pointer.exists():
            outs = (yaml.safe_load(pointer.read_text()) or {}).get("outs") or []
            manifests += [o["md5"] for o in outs if str(o.get("md5", "")).endswith(".dir")]
            sizes += [_out_size(o) for o in outs]
    # many objects of folders each smaller than one multipart object: s5cmd lists the remote itself
    # (``_pull_listed``), and the zoo's own listing would be a second one
    small = fast is not None and s5.usable(fast, len(paths)) and all(0 <= b < fast.threshold for b, _ in sizes)
    # otherwise the objects' listing starts now, while the manifests that name them are read
    held = s3fast.stat if small or fast is None else s3fast.stat_later(fast, len(paths))

    def get(md5s: list[str]) -> None:
        if fast is None:
            _download_all(store, odb, md5s, remote, jobs or 8)
        else:
            _download_s3(store, fast, md5s, remote, jobs, held)

    get(manifests)
    store.open_soon()  # (when not open yet) while this thread waits on the listing and the transfer
    objects = []
    for p in paths:
        folder, rel = tracked_split(p)
        files = store.manifest(folder)
        if files and rel in files:
            objects.append(files[rel])
    todo = sorted(set(objects))
    if small and fast is not None:
        each = max((b // n for b, n in sizes), default=0)
        todo = _pull_listed(store, fast, todo, remote, each)
    get(todo)
    return True


def s3_remote(store: Storage, remote: str | None) -> s3fast.S3Remote | None:
    """The S3 remote ``remote`` (None: the default) as the zoo's own transfers talk to it; None when it is not a
    plain S3 remote."""
    return s3fast.open_remote(store.repo.cloud.get_remote_odb(remote, "fetch"), _state(store))


def _state(store: Storage) -> Path:
    return state_dir(store.root)


def state_dir(root: Path) -> Path:
    """Where unfinished transfers of the zoo at ``root`` keep their journals and partial downloads
    (git-ignored, beside DVC's own)."""
    return root / ".dvc" / "tmp" / "zoo" / "transfers"


def _download_s3(store: Storage, fast: s3fast.S3Remote, md5s: list[str], remote: str | None, jobs: int | None,
                 stat: s3fast.Stat = s3fast.stat) -> None:
    """``_download_all`` for an S3 remote (``s3fast``): one listing or a HEAD each (``stat``) tells which
    objects are there and their sizes; big ones in ranged parts, the others many at a time; an object the
    remote lacks is left out."""
    want = [m for m in md5s if not store.cache_path(m).exists()]
    if want:  # whichever path this pull takes: a killed s5cmd pull's folder goes even when the rest is small
        _sweep_staging(store.cache_path(want[0]).parent.parent.parent)
    listed: dict[str, int] = {}
    held = stat(fast, want, listed)
    todo = [m for m in want if m in held]
    if not todo:
        return
    big = [m for m in todo if held[m][0] >= fast.threshold]
    small = [m for m in todo if m not in big]
    with transfer_progress(sum(held[m][0] for m in todo), "pull", len(todo)) as bar:
        def one(md5: str) -> None:
            sha: list[str] = []

            def get(tmp: Path) -> str:
                digests = s3fast.download(fast, md5, tmp, held[md5], bar.advance)
                sha.append(digests[1])
                return digests[0]

            _download(store, None, md5, remote, get)
            if sha:  # the policy's sha256 check of these bytes need not read them back
                store.fresh.remember(store.cache_path(md5), sha[0])
            bar.done()

        for md5 in big:
            one(md5)
        if s5.usable(fast, len(small)):
            whole = _whole(listed, {m: held[m][0] for m in small})
            got = _download_s5(store, small, remote, bar,
                               lambda names, stage, done: s5.download(fast, names, stage, done, whole))
            small = [m for m in small if m not in got]
        s3fast.run_all(one, small, jobs or s3fast.OBJECT_JOBS)


def _download_all(store: Storage, odb, md5s: list[str], remote: str | None, jobs: int) -> None:
    """Download these objects into the cache, ``jobs`` at a time; an object the remote lacks is left out
    (the caller names the checkpoints not pushed), any other failure raised."""
    from concurrent.futures import ThreadPoolExecutor

    if not md5s:
        return
    with ThreadPoolExecutor(max_workers=min(jobs, len(md5s))) as pool:
        futures = [pool.submit(_download, store, odb, m, remote) for m in md5s]
    for f in futures:
        e = f.exception()
        if e is not None and not (isinstance(e, FileNotFoundError) and not isinstance(e, ZooError)):
            raise e


def _download(store: Storage, odb, md5: str, remote: str | None, get=None) -> None:
    """One object into the cache through a temp name renamed when complete (a manifest checked against
    its md5 first), after removing the temp copies of it that killed zoo processes left. ``get(tmp)``
    writes the object to ``tmp`` and returns its md5 (default: DVC's filesystem, then an md5 pass for a
    manifest)."""
    import hashlib

    dest = store.cache_path(md5)
    if dest.exists():
        return
    tmp = _temp_for(dest)
    try:
        if get is None:
            odb.fs.get_file(odb.oid_to_path(md5), str(tmp))
            got = hashlib.md5(tmp.read_bytes()).hexdigest() if md5.endswith(".dir") else None
        else:
            got = get(tmp)  # a checkpoint object with other bytes is kept: the sha256 policy refuses it
        _keep(store, remote, md5, tmp, got)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _temp_for(dest: Path) -> Path:
    """A fresh temp name beside the cache object ``dest`` (its folder made), after removing the temp copies
    of it that killed zoo processes left."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.zoo-*.tmp"):  # left by a killed zoo process
        pid = stale.name.rsplit(".zoo-", 1)[-1].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            stale.unlink(missing_ok=True)
    return dest.with_name(f".{dest.name}.zoo-{os.getpid()}-{os.urandom(4).hex()}.tmp")


def _keep(store: Storage, remote: str | None, md5: str, tmp: Path, got: str | None) -> None:
    """The downloaded ``tmp`` (bytes of md5 ``got``) into the cache as ``md5``; a manifest whose bytes are
    not the ones its name says, or are not JSON, is refused."""
    if md5.endswith(".dir"):
        raw = tmp.read_bytes()
        if got != md5.removesuffix(".dir"):
            raise IntegrityError(
                f"{store.describe_remote(remote)}: the folder manifest {md5} there has other bytes "
                "(damaged or replaced); nothing was kept or changed here; re-push it from a good clone")
        json.loads(raw)
    os.chmod(tmp, 0o444)  # as DVC keeps its cache
    os.replace(tmp, store.cache_path(md5))


def _whole(listed: dict[str, int], wanted: dict[str, int]) -> set[str]:
    """What ``s5.download`` may fetch by wildcard, from a whole listing of the remote (``listed``; empty when
    there was none): ``{"*"}`` when the rest of the remote is at most a tenth of what is wanted (in objects
    and in bytes: fetched and dropped, it costs less than a HEAD per object), else each cache folder of which
    every object on the remote is wanted."""
    if not listed:
        return set()
    rest = {k: v for k, v in listed.items() if k not in wanted}
    if len(rest) * 10 <= len(wanted) and sum(rest.values()) * 10 <= sum(wanted.values()):
        return {"*"}
    return {m[:2] for m in wanted} - {k[:2] for k in rest}


def _out_size(out: object) -> tuple[int, int]:
    """(bytes, files) a pointer's output says it holds; (-1, 0) when it does not say so plainly (a pointer is
    someone else's data: a count of files below one, quoted or not, is not plain)."""
    try:
        size, files = int(out["size"]), int(out.get("nfiles") or 1)  # type: ignore[index,attr-defined]
    except (TypeError, KeyError, ValueError, AttributeError):
        return -1, 0
    return (size, files) if files >= 1 else (-1, 0)


def _pull_listed(store: Storage, fast: s3fast.S3Remote, md5s: list[str], remote: str | None, each: int) -> list[str]:
    """Many small objects by s5cmd's own listing (``s5.download_listed``) when the remote is small enough to
    list for them (``s3fast.size_hint``: no more pages than a ``stat`` would take); returns those left to the
    usual path (all of them when the remote is too large or may not be listed; one the remote lacks, one
    whose copy failed). ``each``: about how big one object is, for the progress bar."""
    want = [m for m in md5s if not store.cache_path(m).exists()]
    if len(want) < s5.FROM:
        return md5s
    _sweep_staging(store.cache_path(want[0]).parent.parent.parent)
    hint = s3fast.size_hint(fast)
    if hint is None or hint > max(1, len(want) // s3fast.PAGE_BUDGET) * 1000:
        return md5s
    per_folder = len(want) * hint > s5.MATCHES
    with transfer_progress(each * len(want), "pull", len(want)) as bar:
        got = _download_s5(store, want, remote, bar,
                           lambda names, stage, done: s5.download_listed(fast, names, stage, done, per_folder))
    return [m for m in want if m not in got]


def _download_s5(store: Storage, md5s: list[str], remote: str | None, bar,
                 fetch: Callable[[dict[str, str], Path, s5.Done], set[str]]) -> set[str]:
    """Many small objects into the cache in one s5cmd run (``fetch(names, stage, done)``: ``s5.download`` or
    ``s5.download_listed``), into a staging folder beside the cache's ``md5`` folder (s5cmd writes each file
    through a temp name of its own, which a kill would otherwise leave among DVC's objects), then, as s5cmd
    reports each done, read once for its sha256 (remembered for the policy's check, as the boto3 path hashes
    while downloading; a manifest for its md5 too), checked and renamed into the cache as ``_download`` does.
    Returns the md5s placed; the others (a copy that failed, an object the remote lacks) are the caller's to
    fetch on the boto3 path."""
    import hashlib
    import shutil

    root = store.cache_path(md5s[0]).parent.parent
    stage = root.parent / f".zoo-s5-{os.getpid()}-{os.urandom(4).hex()}"
    names = {m: f"{m[:2]}/{m[2:]}" for m in md5s if store.cache_path(m).parent.parent == root}
    stage.mkdir()
    made: set[str] = set()

    def done(md5: str) -> None:
        tmp = stage / names[md5]
        # only a manifest is checked by its md5 here (``_keep``); a checkpoint's object by its sha256 (the policy)
        h, sha, size = (hashlib.md5() if md5.endswith(".dir") else None), hashlib.sha256(), 0
        with open(tmp, "rb") as f:
            while chunk := f.read(s3fast.CHUNK):
                if h is not None:
                    h.update(chunk)
                sha.update(chunk)
                size += len(chunk)
        if md5[:2] not in made:
            (root / md5[:2]).mkdir(exist_ok=True)
            made.add(md5[:2])
        _keep(store, remote, md5, tmp, h.hexdigest() if h is not None else None)
        store.fresh.remember(store.cache_path(md5), sha.hexdigest())
        bar.advance(size)
        bar.done()

    try:
        return fetch(names, stage, done)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _sweep_staging(files: Path) -> None:
    """Remove the staging folders of s5cmd pulls that killed zoo processes left in the cache's ``files``."""
    import shutil

    for stale in files.glob(".zoo-s5-*"):
        pid = stale.name.split("-")[2]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _push_objects(store: Storage, paths: list[str], folders: Iterable[str]) -> dict[str, Path]:
    """oid -> local cache object of these files and of the folder manifests of ``folders`` (and of
    these files' folders): everything a push of them must leave right on the remote."""
    want: dict[str, Path] = {}
    for p in paths:
        obj = store.cached(p)
        if obj is not None:
            want[obj.parent.name + obj.name] = obj
    for folder in {*folders, *(tracked_split(p)[0] for p in paths)}:
        pointer = store.root / store.pointer(folder)
        if pointer.is_file():
            md5 = store._folder_md5(pointer, store.pointer(folder))
            if store.cache_path(md5).exists():
                want[md5] = store.cache_path(md5)
    return want


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


def _push_missing(want: dict[str, Path], odb, jobs: int | None = None) -> int:
    """Upload the objects of ``want`` that the remote still lacks after ``dvc push``.

    DVC takes a folder's files to be on the remote once its ``.dir`` manifest is, but a push of
    some files of a folder uploads that manifest too: a later push of another file of the same
    folder then uploads nothing (measured with DVC 3.67.1). So each pushed file's object is
    checked on the remote, and uploaded if missing. A manifest can be new while none of its files
    is local: DVC's merge driver writes the merged one of two branches' additions."""
    if not want:
        return 0
    present = set(odb.oids_exist(list(want)))
    return _upload(odb, {oid: p for oid, p in want.items() if oid not in present}, jobs)


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


def _replace_wrong(want: dict[str, Path], odb, jobs: int | None) -> int:
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
        verdicts = list(pool.map(lambda oid: _remote_object_ok(odb, oid, want[oid]), present))
    wrong = {oid: want[oid] for oid, ok in zip(present, verdicts) if not ok}
    _upload(odb, wrong, jobs)
    return len(wrong)


def push(store: Storage, paths: Iterable[str], remote: str | None = None, jobs: int | None = None,
         folders: Iterable[str] = ()) -> tuple[int, int]:
    """Upload these files' cache objects and the manifests of ``folders``, ``jobs`` at a time (default
    DVC's: 4 per core), after checking the ones the remote already holds (see ``_replace_wrong``);
    returns (objects uploaded, wrong objects on the remote replaced)."""
    from dvc.exceptions import UploadError

    paths = list(paths)
    check_remote(store.repo.config, remote)
    with remote_session() as log:
        probed = False
        try:
            odb = store.repo.cloud.get_remote_odb(remote, "push")
            fast = s3fast.open_remote(odb, _state(store), jobs)
            probed = _probe(store, remote, fast)
            want = _push_objects(store, paths, folders)
            if fast is not None:
                return _push_s3(fast, want, jobs)
            replaced = _replace_wrong(want, odb, jobs)
            pushed = int(store.repo.push(targets=[store._abs(p) for p in paths], remote=remote, jobs=jobs) or 0) \
                if paths else 0  # no targets would mean everything to DVC
            return pushed + _push_missing(want, odb, jobs), replaced
        except UploadError as e:
            raise _failure(store, remote, "upload", log, summary=f"{e.amount} file(s) failed to upload",
                           probed=probed) from None
        except Exception as e:
            raise _failure(store, remote, "upload", log, e, probed=probed) from None


def _push_s3(fast: s3fast.S3Remote, want: dict[str, Path], jobs: int | None) -> tuple[int, int]:
    """``push`` to an S3 remote (``s3fast``): what the remote holds of ``want`` from one listing (or a HEAD
    each for a few), each held object checked (``s3fast.holds``), then the missing and the wrong ones
    uploaded; (objects uploaded that were missing, wrong ones replaced)."""
    from concurrent.futures import ThreadPoolExecutor

    held = s3fast.stat(fast, want)
    present = sorted(oid for oid in want if oid in held)
    with ThreadPoolExecutor(max_workers=max(1, min(jobs or 8, len(present)))) as pool:
        verdicts = list(pool.map(lambda oid: s3fast.holds(fast, oid, want[oid], held[oid]), present))
    wrong = {oid: want[oid] for oid, ok in zip(present, verdicts) if not ok}
    todo = {oid: p for oid, p in want.items() if oid not in held or oid in wrong}
    with transfer_progress(sum(p.stat().st_size for p in todo.values()), "push", len(todo)) as bar:
        small = {oid: p for oid, p in todo.items() if p.stat().st_size < fast.threshold}
        sent = _upload_s5(fast, small, bar) if s5.usable(fast, len(small)) else set()
        rest = {oid: p for oid, p in todo.items() if oid not in sent}
        s3fast.upload(fast, rest, jobs, bar.advance, bar.done)
    return len(todo) - len(wrong), len(wrong)


def _upload_s5(fast: s3fast.S3Remote, small: dict[str, Path], bar) -> set[str]:
    """Many small cache objects in one s5cmd run (``s5.upload``), named relative to the cache's
    ``files/md5`` folder; the oids sent and found right, the others are left to the boto3 path."""
    root = next(iter(small.values())).parent.parent
    names = {oid: f"{p.parent.name}/{p.name}" for oid, p in small.items() if p.parent.parent == root}

    def done(oid: str) -> None:
        bar.advance(small[oid].stat().st_size)
        bar.done()

    return s5.upload(fast, names, root, done)


def missing_on_remote(store: Storage, parts: Iterable[Part], remote: str | None = None,
                      folders: Iterable[str] = ()) -> tuple[list[Part], list[str]]:
    """The parts whose object the remote lacks (or whose folder's ``.dir`` manifest it lacks: a pull reads
    the manifest first), and the folders whose manifest it lacks, by an existence check of exactly those md5s
    (``_exist``). Only a manifest this clone has never seen is read from the remote (small JSON, to learn
    the md5s it names); no checkpoint bytes move."""
    parts = list(parts)
    quick = _missing_in_folder(store, parts, remote, folders)
    if quick is not None:
        return quick
    check_remote(store.repo.config, remote)
    names = sorted({*folders, *(tracked_split(p.path)[0] for p in parts)})
    manifests = {f: store._folder_md5(store.root / store.pointer(f), store.pointer(f))
                 for f in names if (store.root / store.pointer(f)).is_file()}
    with remote_session() as log:
        try:
            odb = store.repo.cloud.get_remote_odb(remote, "fetch")
            dirs = _exist(odb, set(manifests.values()))
            unseen = [store.root / store.pointer(f) for f, md5 in manifests.items()
                      if md5 in dirs and not store.cache_path(md5).exists()]
            if unseen:
                fetch_manifests(store, unseen, remote)
            oids = {}
            for part in parts:
                folder, rel = tracked_split(part.path)
                oids[part.path] = (store.manifest(folder) or {}).get(rel) if folder in manifests else None
            objects = _exist(odb, {o for o in oids.values() if o})
        except ZooError:
            raise
        except Exception as e:
            raise _failure(store, remote, "existence check", log, e) from None
    lacking = [f for f in names if manifests.get(f) not in dirs]
    return [p for p in parts if oids[p.path] not in objects or tracked_split(p.path)[0] in lacking], lacking


def _missing_in_folder(store: Storage, parts: list[Part], remote: str | None,
                       folders: Iterable[str]) -> tuple[list[Part], list[str]] | None:
    """``missing_on_remote`` without opening DVC's repository (``exists.checker``: a folder remote by paths and
    stats, a plain S3 remote by ``s3fast.stat``). None when only DVC can answer, when the remote fails (DVC's
    path words it), or when a manifest the remote holds is not in the local cache (DVC's path fetches it)."""
    from . import exists

    cache = store.root.joinpath(*exists.CACHE)
    held = exists.checker(store.root, remote)
    if held is None or store._cache_root not in (None, cache):
        return None
    store._cache_root = cache
    names = sorted({*folders, *(tracked_split(p.path)[0] for p in parts)})
    manifests = {f: store._folder_md5(store.root / store.pointer(f), store.pointer(f))
                 for f in names if (store.root / store.pointer(f)).is_file()}
    try:
        dirs = held(set(manifests.values()))
        if not all(store.cache_path(md5).exists() for md5 in dirs):
            return None
        oids = {}
        for part in parts:
            folder, rel = tracked_split(part.path)
            oids[part.path] = (store.manifest(folder) or {}).get(rel) if folder in manifests else None
        found = held({o for o in oids.values() if o})
    except ZooError:
        raise
    except Exception:  # a remote error: DVC's path retries and says what failed, as it always did
        return None
    lacking = [f for f in names if manifests.get(f) not in dirs]
    return [p for p in parts if oids[p.path] not in found or tracked_split(p.path)[0] in lacking], lacking


def _exist(odb, oids: set[str]) -> set[str]:
    """The oids whose object the remote holds: one stat (a HEAD on S3) per object, 8 at a time. Not DVC's
    ``oids_exist``: on a folder remote it re-hashes every object whose file mode is not read-only, and a
    git checkout of an in-repo remote leaves them all writable."""
    from concurrent.futures import ThreadPoolExecutor

    if not oids:
        return set()
    ordered = sorted(oids)
    with ThreadPoolExecutor(max_workers=min(8, len(ordered))) as pool:
        found = list(pool.map(lambda oid: odb.fs.exists(odb.oid_to_path(oid)), ordered))
    return {oid for oid, there in zip(ordered, found) if there}
