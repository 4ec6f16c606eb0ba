"""Moving a zoo's objects to and from an S3 remote at the storage's speed, resumably, where DVC puts them.

dvc-s3 moves every object through s3fs one request stream at a time per file, and asks the remote about
each object before sending it; measured on this project's benchmark that is 2-3 x slower than boto3 for
one big file and far slower for thousands of small ones (README, Performance). This module drives the
S3 protocol with boto3 directly: big objects in concurrent parts (uploads through a multipart upload
whose id and finished parts are journaled, downloads through ranged GETs into a partial file whose
finished parts are journaled, so a killed transfer continues where it stopped), small objects many at a
time, and one listing of the remote's ``files/md5/`` instead of an existence probe per object. Keys are
exactly DVC's (``<remote url>/files/md5/<2 hex>/<rest>``), so plain ``dvc pull`` reads what it writes.
The client is built from the DVC remote's own settings (``S3FileSystem.fs_args``: endpoint, keys,
profile, region, TLS, timeouts, encryption, ACL), so it reaches what DVC reaches. A batch of many small
objects goes through s5cmd instead where it is installed (``s5``): botocore's CPU per request is what
bounds those.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...utils.files import atomic_write

MIB = 1024 * 1024
MAX_PARTS = 10_000            # S3's limit on the parts of one upload
MIN_PART = 5 * MIB            # and on the size of each part but the last
PART_SIZE = 16 * MIB          # default part size, grown so that any file fits in MAX_PARTS parts
THRESHOLD = 64 * MIB          # objects from this size on move in parts
PART_JOBS = 8                 # parts of one object in flight
OBJECT_JOBS = 32              # small objects in flight
PAGE_BUDGET = 64              # a listing may take one page (1,000 keys) per this many objects asked about
LIST_FROM = PAGE_BUDGET       # from this many objects on, one listing of the prefix instead of a HEAD each
HINT_KEYS = 1000              # keys of folder 00/ that size_hint reads (one page) before it gives up
CHUNK = MIB                   # read and write granularity of a part: memory stays constant per part in flight
SEGMENT = 256 * MIB           # a download's least ranged-GET stream: few streams, each long (see segment_size)
JOURNAL_EVERY = 8 * MIB       # a download stream journals how far it got this often
# request arguments of dvc-s3's s3fs settings that an upload carries (encryption, ACL, grants) and that a
# read of an object encrypted with a customer key must repeat
_GET_KEYS = ("SSECustomerAlgorithm", "SSECustomerKey")

Advance = Callable[[int], None]


@dataclass
class S3Remote:
    """One S3 remote as this module talks to it: a boto3 client and where DVC keeps objects there."""

    client: Any
    bucket: str
    base: str                 # the key prefix of ``files/md5`` (no trailing slash)
    put_args: dict[str, Any]
    get_args: dict[str, Any]
    state: Path               # journals of unfinished transfers
    part_size: int = PART_SIZE
    threshold: int = THRESHOLD
    part_jobs: int = PART_JOBS
    # how the client was made (endpoint_url, region_name, verify, use_ssl, credentials): what another
    # client of the same remote needs (``s5``)
    settings: dict[str, Any] = field(default_factory=dict)

    def key(self, oid: str) -> str:
        """The key DVC gives an object: ``files/md5/<first 2 hex>/<rest>`` under the remote's URL."""
        return f"{self.base}/{oid[:2]}/{oid[2:]}"

    def segment_size(self, size: int) -> int:
        """Bytes per ranged-GET stream of a download: ``part_jobs`` streams at most, none shorter than
        SEGMENT. Few long streams, not many part-sized GETs: a GET costs an S3 server a lookup and
        some servers (moto) a read of the whole object, while one stream already runs at hundreds of
        MiB/s; a killed stream resumes from its journaled offset, so long ones lose nothing."""
        return max(SEGMENT, self.part_size, -(-size // max(1, self.part_jobs)))

    def parts(self, size: int) -> tuple[int, int]:
        """(part size, number of parts) for an object of ``size`` bytes."""
        part = max(self.part_size, MIN_PART, -(-size // MAX_PARTS))
        return part, max(1, -(-size // part))


def open_remote(odb, state: Path, jobs: int | None = None) -> S3Remote | None:
    """The remote behind a DVC object database as an ``S3Remote``; None when it is not a plain S3 remote
    (another protocol, a version-aware or anonymous one, no boto3): the caller keeps DVC's path then.

    Part size, threshold and concurrency follow the remote profile's AWS config (``multipart_chunksize``,
    ``multipart_threshold``, ``max_concurrent_requests``, as dvc-s3 reads them), else this module's
    defaults; ``jobs`` (``zoo push -j``) overrides the concurrency."""
    fs = odb.fs
    if getattr(fs, "protocol", None) != "s3" and "s3" not in (getattr(fs, "protocol", None) or ()):
        return None
    args = dict(fs.fs_args)
    if args.get("version_aware") or args.get("anon"):
        return None
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        return None
    transfer = getattr(fs, "_transfer_config", None) or {}
    part_jobs = int(jobs or transfer.get("max_concurrency") or PART_JOBS)
    client_kwargs = dict(args.get("client_kwargs") or {})
    config_kwargs = {k: v for k, v in (args.get("config_kwargs") or {}).items() if v is not None}
    # the body is not hashed into the signature (as over https): S3 checks each body against the
    # Content-MD5 or CRC32 sent with it, so a plain-http endpoint does not cost a sha256 pass per upload
    config_kwargs["s3"] = {"payload_signing_enabled": False, **(config_kwargs.get("s3") or {})}
    # what requests are signed with anyway; said explicitly so that a presigned URL is SigV4 too, not the
    # legacy SigV2 botocore presigns with otherwise (``zoo serve --redirect-to-storage``)
    config_kwargs.setdefault("signature_version", "s3v4")
    # every object is checked by its md5 (and the zoo's sha256) anyway, and an upload carries its Content-MD5:
    # botocore's own CRC32 of each body on both sides costs CPU that a pull of many small objects feels
    config_kwargs.setdefault("request_checksum_calculation", "when_required")
    config_kwargs.setdefault("response_checksum_validation", "when_required")
    session = boto3.session.Session(profile_name=args.get("profile"), aws_access_key_id=args.get("key"),
                                    aws_secret_access_key=args.get("secret"), aws_session_token=args.get("token"))
    # timestamps (a GET's Last-Modified, a listing's) stay text: nothing here reads them, and parsing one per
    # object with dateutil was a tenth of a small object's client time
    session._session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    client = session.client(
        "s3", endpoint_url=client_kwargs.get("endpoint_url"), region_name=client_kwargs.get("region_name"),
        verify=client_kwargs.get("verify"), use_ssl=bool(args.get("use_ssl", True)),
        config=Config(max_pool_connections=max(OBJECT_JOBS, part_jobs) + 8, **config_kwargs))
    extra = {k: v for k, v in (args.get("s3_additional_kwargs") or {}).items() if v is not None}
    bucket, _, base = str(odb.path).strip("/").partition("/")
    settings = {"endpoint_url": client_kwargs.get("endpoint_url"), "region_name": client.meta.region_name,
                "verify": client_kwargs.get("verify"), "use_ssl": bool(args.get("use_ssl", True)),
                "credentials": session.get_credentials()}
    return S3Remote(client, bucket, base.rstrip("/"), extra, {k: v for k, v in extra.items() if k in _GET_KEYS},
                    state, part_size=int(transfer.get("multipart_chunksize") or PART_SIZE),
                    threshold=int(transfer.get("multipart_threshold") or THRESHOLD), part_jobs=part_jobs,
                    settings=settings)


def _code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError ('' for anything else)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _missing(exc: BaseException) -> bool:
    return _code(exc) in ("404", "NoSuchKey", "NotFound")


def _oid_of(remote: S3Remote, key: str) -> str | None:
    rest = key[len(remote.base) + 1:] if key.startswith(remote.base + "/") else ""
    head, _, tail = rest.partition("/")
    return head + tail if len(head) == 2 and tail and "/" not in tail else None


def stat(remote: S3Remote, oids: Iterable[str], listed: dict[str, int] | None = None) -> dict[str, tuple[int, str]]:
    """oid -> (size, ETag without quotes) of the objects the remote holds among ``oids``: one paginated
    listing of ``files/md5/`` for many objects (no probe per object), a HEAD each for a few, or when the
    credentials may not list, or when the remote holds so much more than is asked that the listing would
    take more pages than one per PAGE_BUDGET objects asked (it is abandoned there). A whole listing also
    puts every object under ``files/md5/`` into ``listed`` (oid, or the key of one DVC would not name,
    -> size), when given."""
    wanted = set(oids)
    if not wanted:
        return {}
    if len(wanted) >= LIST_FROM:
        found = _listed(remote, wanted, max(1, len(wanted) // PAGE_BUDGET), listed)
        if found is not None:
            return found
    return _heads(remote, wanted)


Stat = Callable[[S3Remote, Iterable[str], dict[str, int] | None], dict[str, tuple[int, str]]]


def stat_later(remote: S3Remote, expected: int) -> Stat:
    """``stat`` of objects not known yet (a pull's, before their folder manifests are read), about ``expected``
    of them: the listing ``stat`` would take is started now in a thread (it waits on the remote, the caller
    meanwhile on its manifests), and the function returned (called as ``stat``, for this remote) answers from
    it, or as ``stat`` does when there was no listing or fewer objects than LIST_FROM are asked about."""
    pool = ThreadPoolExecutor(max_workers=1)
    seen: dict[str, int] = {}
    every: dict[str, tuple[int, str]] = {}
    job = pool.submit(_listed, remote, None, max(1, expected // PAGE_BUDGET), seen, every) \
        if expected >= LIST_FROM else None
    pool.shutdown(wait=False)

    def answer(_: S3Remote, oids: Iterable[str], listed: dict[str, int] | None = None) -> dict[str, tuple[int, str]]:
        wanted = set(oids)
        if job is None or len(wanted) < LIST_FROM:
            return stat(remote, wanted, listed)
        if job.result() is None:  # over its page budget or not allowed: ``stat``'s own listing would be too
            return _heads(remote, wanted)
        if listed is not None:
            listed.update(seen)
        return {oid: every[oid] for oid in wanted if oid in every}

    return answer


def _heads(remote: S3Remote, wanted: set[str]) -> dict[str, tuple[int, str]]:
    """``stat`` by a HEAD of each object, OBJECT_JOBS at a time."""

    def head(oid: str) -> tuple[int, str] | None:
        try:
            meta = remote.client.head_object(Bucket=remote.bucket, Key=remote.key(oid), **remote.get_args)
        except Exception as e:
            if _missing(e):
                return None
            raise
        return int(meta["ContentLength"]), str(meta.get("ETag", "")).strip('"').lower()

    ordered = sorted(wanted)
    with ThreadPoolExecutor(max_workers=min(OBJECT_JOBS, len(ordered))) as pool:
        heads = list(pool.map(head, ordered))
    return {oid: h for oid, h in zip(ordered, heads) if h is not None}


def size_hint(remote: S3Remote) -> int | None:
    """About how many objects the remote holds under ``files/md5/``: the keys in its folder ``00/`` (one 256th
    of DVC's md5 names) times 256, from one request of at most one page, as DVC estimates a remote's size;
    None when that folder has more keys than that page holds (more than a listing may cost) or listing is
    not allowed."""
    try:
        page = remote.client.list_objects_v2(Bucket=remote.bucket, Prefix=remote.base + "/00/", MaxKeys=HINT_KEYS)
    except Exception as e:
        if _code(e) != "AccessDenied":
            raise
        return None
    if page.get("IsTruncated"):
        return None
    return 256 * max(1, len(page.get("Contents", [])))


def _listed(remote: S3Remote, wanted: set[str] | None, pages: int, listed: dict[str, int] | None = None,
            every: dict[str, tuple[int, str]] | None = None) -> dict[str, tuple[int, str]] | None:
    """``stat`` by one listing of at most ``pages`` pages; None when that is not enough or not allowed.
    ``wanted`` None: every object DVC would name (also put into ``every``)."""
    found = every if every is not None else {}
    seen: dict[str, int] = {}
    try:
        for n, page in enumerate(remote.client.get_paginator("list_objects_v2").paginate(
                Bucket=remote.bucket, Prefix=remote.base + "/")):
            for obj in page.get("Contents", []):
                oid = _oid_of(remote, obj["Key"])
                seen[oid or obj["Key"]] = int(obj["Size"])
                if oid is not None and (wanted is None or oid in wanted):
                    found[oid] = (int(obj["Size"]), str(obj.get("ETag", "")).strip('"').lower())
            if page.get("IsTruncated") and n + 1 >= pages:
                return None
    except Exception as e:
        if _code(e) != "AccessDenied":
            raise
        return None
    if listed is not None:
        listed.update(seen)
    return found


def multipart_etag(path: Path, part: int) -> str:
    """The ETag S3 gives a multipart upload of this file in parts of ``part`` bytes (md5 of the parts' md5s)."""
    digests = []
    with open(path, "rb") as f:
        while True:
            h, left = hashlib.md5(), part
            while left and (chunk := f.read(min(CHUNK, left))):
                h.update(chunk)
                left -= len(chunk)
            if left == part:
                break
            digests.append(h.digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def holds(remote: S3Remote, oid: str, local: Path, info: tuple[int, str]) -> bool:
    """Whether the remote's object (``info``: size, ETag) has the bytes named by ``oid``: the size, then a
    plain-md5 ETag, then a multipart ETag recomputed from the local file in this module's part size, and
    only when neither decides, the md5 of the remote's bytes."""
    size, etag = info
    if size != local.stat().st_size:
        return False
    md5 = oid.removesuffix(".dir")
    if etag == md5:
        return True
    if "-" in etag and etag.rsplit("-", 1)[1] == str(remote.parts(size)[1]):
        return multipart_etag(local, remote.parts(size)[0]) == etag
    h = hashlib.md5()
    body = remote.client.get_object(Bucket=remote.bucket, Key=remote.key(oid), **remote.get_args)["Body"]
    for chunk in body.iter_chunks(CHUNK):
        h.update(chunk)
    return h.hexdigest() == md5


# ---- upload ---------------------------------------------------------------------------------------


def upload(remote: S3Remote, objects: dict[str, Path], jobs: int | None, advance: Advance,
           done: Callable[[], None]) -> int:
    """Upload these local objects to their keys (replacing what is there): big ones one after another, each
    in concurrent parts (``upload_parts``), the others ``jobs`` (default 32) at a time; returns how many."""
    big = {oid: p for oid, p in objects.items() if p.stat().st_size >= remote.threshold}
    small = sorted(oid for oid in objects if oid not in big)
    for oid in sorted(big):
        upload_parts(remote, oid, big[oid], advance)
        done()

    def put(oid: str) -> None:
        md5 = base64.b64encode(bytes.fromhex(oid.removesuffix(".dir"))).decode()
        with open(objects[oid], "rb") as f:  # S3 checks the bytes against the md5 they are named by
            remote.client.put_object(Bucket=remote.bucket, Key=remote.key(oid), Body=f, ContentMD5=md5,
                                     **remote.put_args)
        advance(objects[oid].stat().st_size)
        done()

    if small:
        run_all(put, small, jobs or OBJECT_JOBS)
    return len(objects)


def run_all(job: Callable[[Any], Any], items: list, jobs: int) -> None:
    """Run ``job`` on every item, ``jobs`` at a time; the first failure is raised once all have stopped,
    and no item starts after a failure (nor after Ctrl-C)."""
    failed: list[BaseException] = []

    def guarded(item):
        if failed:
            return
        try:
            job(item)
        except BaseException as e:
            failed.append(e)

    pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(items))))
    try:
        list(pool.map(guarded, items))
    except BaseException as e:
        failed.append(e)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failed:
        raise failed[0]


class Journal:
    """A small JSON record of one unfinished transfer under the state folder, rewritten atomically (no
    fsync: it must outlive a killed process, not a power cut) each time a part is finished."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path, self.identity = path, identity
        self.lock = threading.Lock()
        self.data: dict[str, Any] = {}

    def load(self) -> dict[str, Any] | None:
        """The record left by an earlier run of the same transfer, or None."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and all(data.get(k) == v for k, v in self.identity.items()) else None

    def start(self, data: dict[str, Any]) -> None:
        self.data = {**self.identity, **data}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(self.data).encode(), fsync=False)

    def part_done(self, number: int, value: Any) -> None:
        with self.lock:
            self.data.setdefault("parts", {})[str(number)] = value
            atomic_write(self.path, json.dumps(self.data).encode(), fsync=False)

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)


@contextmanager
def _exclusive(remote: S3Remote, name: str) -> Iterator[None]:
    """One process at a time continues a journaled transfer (a pull and ``zoo serve`` fetching the same
    object would write one partial file)."""
    from filelock import FileLock

    remote.state.mkdir(parents=True, exist_ok=True)
    with FileLock(str(remote.state / f"{name}.lock")):
        yield


def upload_parts(remote: S3Remote, oid: str, path: Path, advance: Advance) -> None:
    """One big object through a multipart upload, ``part_jobs`` parts at a time, each part streamed from
    the file. The upload id and each finished part's ETag are journaled; a re-run after a kill asks the
    remote which parts it holds (``list_parts``), sends only the others, and completes."""
    with _exclusive(remote, f"push-{oid}"):
        _upload_parts(remote, oid, path, advance)


def _upload_parts(remote: S3Remote, oid: str, path: Path, advance: Advance) -> None:
    from s3transfer.utils import ReadFileChunk

    size = path.stat().st_size
    part, count = remote.parts(size)
    key = remote.key(oid)
    journal = Journal(remote.state / f"push-{oid}.json",
                      {"bucket": remote.bucket, "key": key, "size": size, "part_size": part})
    record = journal.load()
    finished = _resumable_parts(remote, record)
    if record is None or finished is None:
        uid = remote.client.create_multipart_upload(Bucket=remote.bucket, Key=key, **remote.put_args)["UploadId"]
        journal.start({"upload_id": uid, "parts": {}})
        finished = {}
    else:
        journal.data = {**record, "parts": {str(n): e for n, e in finished.items()}}
    uid = journal.data["upload_id"]
    for n in finished:
        advance(min(part, size - (n - 1) * part))

    def send(n: int) -> None:
        start = (n - 1) * part
        length = min(part, size - start)
        with ReadFileChunk.from_filename(str(path), start, length, enable_callbacks=False) as body:
            etag = remote.client.upload_part(Bucket=remote.bucket, Key=key, UploadId=uid, PartNumber=n,
                                             Body=body, **remote.get_args)["ETag"]
        journal.part_done(n, etag)
        advance(length)

    run_all(send, [n for n in range(1, count + 1) if n not in finished], remote.part_jobs)
    parts = [{"PartNumber": n, "ETag": journal.data["parts"][str(n)]} for n in range(1, count + 1)]
    remote.client.complete_multipart_upload(Bucket=remote.bucket, Key=key, UploadId=uid,
                                            MultipartUpload={"Parts": parts})
    journal.drop()


def _resumable_parts(remote: S3Remote, record: dict[str, Any] | None) -> dict[int, str] | None:
    """part number -> ETag of the parts an earlier, killed upload (its journal ``record``) finished and the
    remote still holds; None when there is nothing to continue (no record, or the upload is gone)."""
    if not record or not record.get("upload_id"):
        return None
    held: dict[int, str] = {}
    try:
        pages = remote.client.get_paginator("list_parts").paginate(Bucket=remote.bucket, Key=record["key"],
                                                                   UploadId=record["upload_id"])
        for page in pages:
            held.update({int(p["PartNumber"]): str(p["ETag"]) for p in page.get("Parts", [])})
    except Exception as e:
        if _code(e) in ("NoSuchUpload", "404", "NotFound"):
            return None
        raise
    journaled = record.get("parts") or {}
    # a part counts only when the journal saw it finish with the ETag the remote lists for it
    return {n: etag for n, etag in held.items() if journaled.get(str(n)) == etag}


def uploads(remote: S3Remote) -> Iterator[tuple[str, str, float]]:
    """(key, upload id, when it was started as a Unix time) of every multipart upload in progress under
    ``files/md5/``: the ones a killed push left behind among them."""
    from botocore.utils import parse_timestamp

    pages = remote.client.get_paginator("list_multipart_uploads").paginate(Bucket=remote.bucket,
                                                                           Prefix=remote.base + "/")
    for page in pages:
        for upload in page.get("Uploads", []):
            started = upload["Initiated"]  # text: this module's client leaves timestamps unparsed
            stamp = parse_timestamp(started) if isinstance(started, str) else started
            yield str(upload["Key"]), str(upload["UploadId"]), stamp.timestamp()


def abort(remote: S3Remote, key: str, upload_id: str) -> None:
    """Abort one multipart upload (its stored parts are freed); one already gone is no error."""
    try:
        remote.client.abort_multipart_upload(Bucket=remote.bucket, Key=key, UploadId=upload_id)
    except Exception as e:
        if _code(e) not in ("NoSuchUpload", "404", "NotFound"):
            raise


# ---- download -------------------------------------------------------------------------------------


def download(remote: S3Remote, oid: str, out: Path, info: tuple[int, str], advance: Advance) -> tuple[str, str]:
    """The object into the file ``out`` (created or replaced); returns the md5 of its bytes, for the caller
    to check against ``oid``, and their sha256 (hashed as they arrive, so the zoo's check of the table's
    sha256 need not read the file back). Big objects arrive in concurrent ranged GETs into a partial file kept under
    the state folder, resumed by a re-run after a kill; a resumed one whose md5 is wrong is fetched once
    more from scratch."""
    size, etag = info
    if size < remote.threshold:
        body = remote.client.get_object(Bucket=remote.bucket, Key=remote.key(oid), **remote.get_args)["Body"]
        h, sha = hashlib.md5(), hashlib.sha256()
        with open(out, "wb") as f:
            for chunk in body.iter_chunks(CHUNK):
                f.write(chunk)
                h.update(chunk)
                sha.update(chunk)
                advance(len(chunk))
        return h.hexdigest(), sha.hexdigest()
    with _exclusive(remote, f"pull-{oid}"):
        digests, resumed = _download_parts(remote, oid, info, advance)
        if digests[0] != oid.removesuffix(".dir") and resumed:
            (remote.state / f"pull-{oid}.json").unlink(missing_ok=True)
            digests, _ = _download_parts(remote, oid, info, advance)
        _move(remote.state / f"pull-{oid}.part", out)
    return digests


def _move(src: Path, dest: Path) -> None:
    try:
        os.replace(src, dest)
    except OSError:  # the cache on another file system than the state folder
        import shutil

        shutil.move(str(src), str(dest))


class _Segments:
    """The partial file of one big download: ``count`` contiguous segments, each fetched by one ranged GET
    stream, and how many bytes of each are written (what the journal keeps, so a re-run continues each
    segment where it stopped)."""

    def __init__(self, size: int, segment: int, written: dict[int, int]) -> None:
        self.size, self.segment = size, segment
        self.count = max(1, -(-size // segment))
        self.written = [min(written.get(n, 0), self.length(n)) for n in range(self.count)]
        self.cond = threading.Condition()
        self.stopped = False

    def length(self, n: int) -> int:
        return min(self.segment, self.size - n * self.segment)

    def wrote(self, n: int, total: int) -> None:
        with self.cond:
            self.written[n] = total
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def wait(self, n: int, pos: int) -> int:
        """Bytes of segment ``n`` written once more than ``pos`` are (or the download stopped)."""
        with self.cond:
            while self.written[n] <= pos and not self.stopped:
                self.cond.wait()
            return self.written[n]


def _download_parts(remote: S3Remote, oid: str, info: tuple[int, str],
                    advance: Advance) -> tuple[tuple[str, str], bool]:
    """Ranged GETs of what the partial file lacks: one stream per segment (``segment_size``), all at once,
    each checked against the ETag the object had when the download started (a replaced object is not mixed
    into the file) and journaled every few MiB; the md5 and sha256 of the file are computed alongside, in
    order, as the bytes arrive. ((md5, sha256), whether an earlier run's bytes were reused)."""
    size, etag = info
    segment = remote.segment_size(size)
    partial = remote.state / f"pull-{oid}.part"
    journal = Journal(remote.state / f"pull-{oid}.json", {"bucket": remote.bucket, "key": remote.key(oid),
                                                          "size": size, "etag": etag, "segment": segment})
    record = journal.load()
    if record and partial.is_file() and partial.stat().st_size == size:
        journal.data = record
        segs = _Segments(size, segment, {int(n): int(b) for n, b in (record.get("parts") or {}).items()})
    else:
        remote.state.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as f:
            f.truncate(size)
        journal.start({"parts": {}})
        segs = _Segments(size, segment, {})
    resumed = any(segs.written)
    advance(sum(segs.written))
    hashed: list[tuple[str, str]] = []
    hasher = threading.Thread(target=_hash_in_order, args=(partial, segs, hashed), daemon=True)
    hasher.start()
    fd = os.open(partial, os.O_WRONLY)
    try:
        def fetch(n: int) -> None:
            start = n * segment
            end, at = start + segs.length(n) - 1, start + segs.written[n]
            if at > end:
                return
            body = remote.client.get_object(Bucket=remote.bucket, Key=remote.key(oid), Range=f"bytes={at}-{end}",
                                            IfMatch=f'"{etag}"' if etag else "*", **remote.get_args)["Body"]
            unjournaled = 0
            for chunk in body.iter_chunks(CHUNK):
                os.pwrite(fd, chunk, at)
                at += len(chunk)
                unjournaled += len(chunk)
                advance(len(chunk))
                segs.wrote(n, at - start)
                if unjournaled >= JOURNAL_EVERY:
                    journal.part_done(n, at - start)
                    unjournaled = 0
            journal.part_done(n, at - start)
            if at != end + 1:
                raise OSError(f"{remote.key(oid)}: bytes {start}-{end} came short ({at - start} bytes)")

        try:
            run_all(fetch, list(range(segs.count)), segs.count)
        finally:
            segs.stop()  # the hasher stops waiting whether or not every byte is there
    finally:
        os.close(fd)
    hasher.join()
    journal.drop()
    return hashed[0], resumed


def _hash_in_order(path: Path, segs: _Segments, out: list[tuple[str, str]]) -> None:
    """md5 and sha256 of the file, following the written bytes in order (read back from the page cache), so the check
    of a big download costs little time of its own; gives up when the download stops short."""
    h, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for n in range(segs.count):
            pos, f_at = 0, n * segs.segment
            f.seek(f_at)
            while pos < segs.length(n):
                ready = segs.wait(n, pos)
                if ready <= pos:
                    return
                while pos < ready and (chunk := f.read(min(CHUNK, ready - pos))):
                    h.update(chunk)
                    sha.update(chunk)
                    pos += len(chunk)
    out.append((h.hexdigest(), sha.hexdigest()))
