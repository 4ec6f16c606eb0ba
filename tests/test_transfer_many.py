"""Many small checkpoints to and from an S3 remote: the s5cmd path (``storage/dvc/s5.py``) and its fallback.

The real moto server logs each request's User-Agent, so the tests see which client moved each object:
s5cmd's Go SDK for a batch of many small objects, boto3 when s5cmd is turned off or cannot express the
remote. Keys stay DVC's (plain ``dvc pull`` reads them), a replaced object is refused by its sha256, and a
pull killed halfway fetches only what it had not finished.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ZOO_BIN, dvc, git, kill_when, run_zoo, zoo_of_small_checkpoints
from s3_server import MotoServer

MANY = 48  # checkpoints of model "many", each one small file: above s5.FROM, so one s5cmd batch
FOLDER = Path("zoo/checkpoints/many")
REFS = [f"many@{s}" for s in range(MANY)]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A committed zoo of MANY small checkpoints in one model folder; no remote yet."""
    return zoo_of_small_checkpoints(tmp_path_factory.mktemp("many-template"), MANY)


def origin_with(template: Path, tmp_path: Path, s3: MotoServer, monkeypatch, prefix: str) -> Path:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ZOO_S5CMD", raising=False)
    root = tmp_path / "origin"
    shutil.copytree(template, root, symlinks=True)
    r = run_zoo("remote", "add", "s3", f"s3://zoo/{prefix}", "--endpoint", s3.endpoint, "--default", cwd=root)
    assert r.code == 0, r.err
    git("commit", "-qam", "S3 remote", cwd=root)
    return root


def clone(origin: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True)
    return dest


def by_s5cmd(s3: MotoServer, method: str, prefix: str) -> tuple[int, int]:
    """(requests of ``method`` on objects under ``prefix`` sent by s5cmd, by any other client)."""
    mine = [q for q in s3.requests() if q.method == method and q.key.startswith(prefix) and q.key != ""]
    s5 = [q for q in mine if "aws-sdk-go" in q.agent]  # s5cmd is built on the Go SDK
    return len(s5), len(mine) - len(s5)


def cached(root: Path) -> set[str]:
    base = root / ".dvc" / "cache" / "files" / "md5"
    return {p.parent.name + p.name for p in base.glob("*/*") if not p.name.startswith(".")} if base.is_dir() else set()


def sha_of(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / FOLDER).iterdir())}


def test_many_objects_go_through_s5cmd_to_dvcs_keys(template, tmp_path, s3, monkeypatch):
    origin = origin_with(template, tmp_path, s3, monkeypatch, "s5")
    s3.clear_log()
    r = run_zoo("push", cwd=origin)
    assert r.code == 0, r.err
    assert f"{MANY + 1} object(s) uploaded" in r.out, r.out
    assert by_s5cmd(s3, "PUT", "s5/files/md5/") == (MANY + 1, 0)  # the checkpoints and their folder's manifest
    keys = s3.keys("s5/files/md5/")
    stored = {k.split("/", 3)[3].replace("/", "") for k in keys}  # <prefix>/files/md5/<2 hex>/<rest>
    assert len(stored) == MANY + 1 and stored <= cached(origin), stored - cached(origin)

    # a fresh clone pulls them through s5cmd, checks every sha256 and places them as DVC's checkout does
    s3.clear_log()
    zoo_clone = clone(origin, tmp_path / "zoo-clone")
    r = run_zoo("pull", *REFS, cwd=zoo_clone)
    assert r.code == 0, r.err
    s5_gets, other_gets = by_s5cmd(s3, "GET", "s5/files/md5/")
    assert s5_gets == MANY and other_gets == 1, (s5_gets, other_gets)  # the one manifest on the boto3 path
    # the remote is listed once, by s5cmd; the zoo's own requests list one key (the probe) or one folder
    # (its size hint), and no object is asked for by a HEAD but the manifest
    lists = [q for q in s3.requests() if "list-type=2" in q.query]
    assert sum("aws-sdk-go" in q.agent for q in lists) == 1, lists
    assert all("max-keys=" in q.query for q in lists if "aws-sdk-go" not in q.agent), lists
    assert by_s5cmd(s3, "HEAD", "s5/files/md5/") == (0, 1)
    assert sha_of(zoo_clone) == sha_of(origin)
    for path in (zoo_clone / FOLDER).iterdir():  # copies of the cache's objects, as DVC's checkout makes here
        assert path.stat().st_ino != cache_object(zoo_clone, path).stat().st_ino and not path.is_symlink()
    assert run_zoo("verify", *REFS, cwd=zoo_clone).code == 0
    status = dvc("status", cwd=zoo_clone)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr

    # plain DVC reads what the zoo wrote
    plain = clone(origin, tmp_path / "plain")
    p = dvc("pull", "-r", "s3", cwd=plain)
    assert p.returncode == 0, p.stderr
    assert sha_of(plain) == sha_of(origin)


def cache_object(root: Path, path: Path) -> Path:
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def test_the_link_type_the_cache_asks_for_is_made(template, tmp_path, s3, monkeypatch):
    origin = origin_with(template, tmp_path, s3, monkeypatch, "linked")
    assert run_zoo("push", cwd=origin).code == 0
    there = clone(origin, tmp_path / "clone")
    assert dvc("config", "--local", "cache.type", "hardlink", cwd=there).returncode == 0
    r = run_zoo("pull", *REFS, cwd=there)
    assert r.code == 0, r.err
    for path in (there / FOLDER).iterdir():  # DVC's hardlinks, as `dvc checkout` makes them
        assert path.stat().st_ino == cache_object(there, path).stat().st_ino, path.name
    assert sha_of(there) == sha_of(origin)
    status = dvc("status", cwd=there)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr


def test_an_object_replaced_on_the_remote_is_refused(template, tmp_path, s3, monkeypatch):
    origin = origin_with(template, tmp_path, s3, monkeypatch, "tampered")
    assert run_zoo("push", cwd=origin).code == 0
    target = FOLDER / "step-00000007.safetensors"
    md5 = hashlib.md5((origin / target).read_bytes()).hexdigest()
    key = f"tampered/files/md5/{md5[:2]}/{md5[2:]}"
    client = s3.client()
    bad = bytearray(client.get_object(Bucket="zoo", Key=key)["Body"].read())
    bad[len(bad) // 2] ^= 0x01  # same size, one bit flipped
    client.put_object(Bucket="zoo", Key=key, Body=bytes(bad))
    there = clone(origin, tmp_path / "clone")
    s3.clear_log()
    r = run_zoo("pull", *REFS, cwd=there)
    assert r.code != 0 and "do not match sha256" in r.err and str(target) in r.err, r.err
    assert by_s5cmd(s3, "GET", "tampered/files/md5/")[0] >= MANY - 1
    assert not (there / target).exists()
    assert md5 not in cached(there)
    assert not (there / FOLDER / "step-00000008.safetensors").exists()  # nothing placed at all


def test_a_killed_many_file_pull_fetches_only_what_it_lacked(template, tmp_path, s3, monkeypatch):
    origin = origin_with(template, tmp_path, s3, monkeypatch, "killed")
    assert run_zoo("push", cwd=origin).code == 0
    there = clone(origin, tmp_path / "clone")
    proc = subprocess.Popen([str(ZOO_BIN), "pull", *REFS], cwd=there, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert kill_when(proc, lambda: len(cached(there)) >= 1 + MANY // 4), "the pull finished before the kill"
    had = cached(there)
    assert 1 < len(had) < MANY + 1  # the manifest and some of the checkpoints
    s3.clear_log()
    r = run_zoo("pull", *REFS, cwd=there)
    assert r.code == 0, r.err
    # (a request of the killed run may still be logged after the clear: it is for an object it lacked too)
    got = {q.key.split("/", 3)[3].replace("/", "") for q in s3.requests()
           if q.method == "GET" and q.key.startswith("killed/files/md5/")}
    assert got and not got & had, got & had
    assert len(cached(there)) == MANY + 1
    assert sha_of(there) == sha_of(origin)
    leftovers = [p for p in (there / ".dvc" / "cache").rglob("*") if p.is_file() and p.parent.parent.name == "md5"
                 and not re.fullmatch(r"[0-9a-f]{30}(\.dir)?", p.name)]
    assert not leftovers and not list((there / ".dvc" / "cache" / "files").glob(".zoo-s5-*")), leftovers
    assert run_zoo("verify", *REFS, cwd=there).code == 0


@pytest.mark.parametrize("how", ["off", "prefix"])
def test_the_boto3_path_takes_over(template, tmp_path, s3, monkeypatch, how):
    """With s5cmd turned off (``ZOO_S5CMD=0``), or a remote prefix s5cmd's command file could misread
    (a quote, a space, a glob character), every object moves through boto3 and lands where DVC looks."""
    prefix = "fallback" if how == "off" else "odd'name *[x]"
    origin = origin_with(template, tmp_path, s3, monkeypatch, prefix)
    if how == "off":
        monkeypatch.setenv("ZOO_S5CMD", "0")
    s3.clear_log()
    r = run_zoo("push", cwd=origin)
    assert r.code == 0, r.err
    s5_puts, other_puts = by_s5cmd(s3, "PUT", f"{prefix}/files/md5/")
    assert s5_puts == 0 and other_puts == MANY + 1, (s5_puts, other_puts)
    there = clone(origin, tmp_path / "clone")
    s3.clear_log()
    r = run_zoo("pull", *REFS, cwd=there)
    assert r.code == 0, r.err
    assert by_s5cmd(s3, "GET", f"{prefix}/files/md5/") == (0, MANY + 1)
    assert sha_of(there) == sha_of(origin)
    monkeypatch.delenv("ZOO_S5CMD", raising=False)
    plain = clone(origin, tmp_path / "plain")
    assert dvc("pull", "-r", "s3", cwd=plain).returncode == 0
    assert sha_of(plain) == sha_of(origin)


def test_only_plain_names_reach_the_command_file():
    """``s5._flags`` refuses what s5cmd's command-file parser or URL handling could read otherwise."""
    from checkpoint_zoo.storage.dvc import s5
    from checkpoint_zoo.storage.dvc.s3fast import S3Remote

    def flags(bucket: str, base: str, **put):
        remote = S3Remote(None, bucket, base, put, {}, Path("."), settings={"credentials": object(),
                                                                            "endpoint_url": "http://127.0.0.1:9"})
        return s5._flags(remote)

    assert flags("zoo", "team/files/md5") is not None
    for base in ("a b/files/md5", "it's/files/md5", "x*/files/md5", "--endpoint-url=x/files/md5", "a//b",
                 "a\nb/files/md5", "a?/files/md5", "a\\b/files/md5", "a#b/files/md5"):
        assert flags("zoo", base) is None, base
    assert flags("Bad_Bucket", "files/md5") is None
    assert flags("zoo", "files/md5", ACL="private")[1] == ["--raw", "--acl", "private"]
    assert flags("zoo", "files/md5", ACL="private --no-verify-ssl") is None
    assert flags("zoo", "files/md5", GrantRead="id=1") is None  # no s5cmd flag: the boto3 path


def test_s5_upload_sends_only_files_whose_bytes_are_what_their_name_says(s3, tmp_path):
    """s5cmd's Content-MD5 is of the file's bytes, not of the name; ``s5.upload`` hashes each file first and
    leaves one whose bytes are not what its name says to the caller's boto3 path (which the remote refuses),
    so wrong bytes never land at an object's key."""
    from botocore.credentials import Credentials

    from checkpoint_zoo.storage.dvc import s5
    from checkpoint_zoo.storage.dvc.s3fast import S3Remote

    remote = S3Remote(s3.client(), "zoo", "unit/files/md5", {}, {}, tmp_path / "state",
                      settings={"credentials": Credentials(s3.access_key_id, s3.secret_access_key),
                                "endpoint_url": s3.endpoint, "region_name": "us-east-1"})
    cache = tmp_path / "md5"
    objects = {}
    for i in range(40):
        data = f"object {i}".encode()
        md5 = hashlib.md5(data).hexdigest()
        (cache / md5[:2]).mkdir(parents=True, exist_ok=True)
        (cache / md5[:2] / md5[2:]).write_bytes(data + (b"!" if i == 7 else b""))  # one named by other bytes
        objects[md5] = f"{md5[:2]}/{md5[2:]}"
    bad = hashlib.md5(b"object 7").hexdigest()
    reported: list[str] = []
    s3.clear_log()
    sent = s5.upload(remote, objects, cache, reported.append)
    assert sent == set(objects) - {bad} and sorted(reported) == sorted(sent)
    assert set(s3.keys("unit/")) == {f"unit/files/md5/{m[:2]}/{m[2:]}" for m in sent}
    assert by_s5cmd(s3, "PUT", "unit/files/md5/") == (39, 0)


def test_a_stalled_s5cmd_is_stopped_and_its_objects_left_to_the_boto3_path(tmp_path, monkeypatch):
    """An endpoint that accepts connections and never answers: s5cmd is stopped once it has reported
    nothing for ``s5.STALL`` seconds, and nothing is claimed done (the caller's boto3 path then tries,
    with its own timeouts and error messages)."""
    import socket
    import time

    from botocore.credentials import Credentials

    from checkpoint_zoo.storage.dvc import s5
    from checkpoint_zoo.storage.dvc.s3fast import S3Remote

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(128)  # accepted by the kernel, never read or answered
    try:
        monkeypatch.setattr(s5, "STALL", 2.0)
        remote = S3Remote(None, "zoo", "stall/files/md5", {}, {}, tmp_path / "state",
                          settings={"credentials": Credentials("k", "s"), "region_name": "us-east-1",
                                    "endpoint_url": f"http://127.0.0.1:{silent.getsockname()[1]}"})
        names = {hashlib.md5(str(i).encode()).hexdigest(): "" for i in range(40)}
        names = {m: f"{m[:2]}/{m[2:]}" for m in names}
        for name in names.values():
            (tmp_path / name[:2]).mkdir(exist_ok=True)
        started = time.monotonic()
        got = s5.download(remote, names, tmp_path, lambda oid: None)
        assert got == set() and time.monotonic() - started < 30
    finally:
        silent.close()


def test_stat_later_answers_from_one_listing_started_before_it_is_asked(s3, tmp_path):
    """A pull's listing of the remote starts while its folder manifests are read (``s3fast.stat_later``): its
    answer is ``stat``'s (sizes and ETags of the objects there, absent ones left out, the whole listing in
    ``listed``) from one listing and no HEAD; fewer objects than LIST_FROM are asked by a HEAD each, as
    ``stat`` does."""
    from checkpoint_zoo.storage.dvc import s3fast
    from checkpoint_zoo.storage.dvc.s3fast import S3Remote

    remote = S3Remote(s3.client(), "zoo", "later/files/md5", {}, {}, tmp_path / "state")
    there = []
    for i in range(s3fast.LIST_FROM + 6):
        data = f"later {i}".encode() * (i + 1)
        md5 = hashlib.md5(data).hexdigest()
        remote.client.put_object(Bucket="zoo", Key=remote.key(md5), Body=data)
        there.append(md5)
    absent = [hashlib.md5(f"absent {i}".encode()).hexdigest() for i in range(3)]
    asked = there[:-2] + absent
    s3.clear_log()
    later = s3fast.stat_later(remote, len(asked))
    listed: dict[str, int] = {}
    got = later(remote, asked, listed)
    requests = [q for q in s3.requests() if q.path.startswith("/zoo")]
    assert [q.method for q in requests] == ["GET"] and "list-type=2" in requests[0].query
    expected_listed: dict[str, int] = {}
    assert got == s3fast.stat(remote, asked, expected_listed) and listed == expected_listed
    assert set(got) == set(there[:-2]) and all(got[m][1] == m for m in got)
    assert set(listed) == set(there)
    s3.clear_log()
    few = there[:3] + absent[:1]
    assert later(remote, few, None) == s3fast.stat(remote, few)
    assert {q.method for q in s3.requests() if q.path.startswith("/zoo")} == {"HEAD"}


def test_a_pull_from_a_plain_s3_remote_needs_neither_s3fs_nor_dvc_before_its_transfer(template, tmp_path, s3,
                                                                                      monkeypatch):
    """``transfer._fetch_plain_s3``: the remote's client comes from DVC's config files, so the pull imports
    neither s3fs nor aiobotocore (dvc-s3's filesystem imports them only to name the client's arguments), and
    DVC's repo, opened in a thread meanwhile, is there for the checkout; what lands is what ``dvc pull`` reads."""
    import sys

    origin = origin_with(template, tmp_path, s3, monkeypatch, "plain")
    assert run_zoo("push", cwd=origin).code == 0
    there = clone(origin, tmp_path / "clone")
    code = ("import sys\nfrom checkpoint_zoo import Zoo\nwith Zoo(sys.argv[1]) as zoo:\n"
            "    got = zoo.pull(sys.argv[2:])\n"
            "print(len(got), sorted(m for m in ('s3fs', 'aiobotocore', 'dvc.repo') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code, str(there), *REFS], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [str(MANY), "['dvc.repo']"], p.stdout
    assert sha_of(there) == sha_of(origin)
    status = dvc("status", cwd=there)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr


def _remote_of(s3: MotoServer, tmp_path: Path, base: str):
    from botocore.credentials import Credentials

    from checkpoint_zoo.storage.dvc.s3fast import S3Remote

    return S3Remote(s3.client(), "zoo", base, {}, {}, tmp_path / "state",
                    settings={"credentials": Credentials(s3.access_key_id, s3.secret_access_key),
                              "endpoint_url": s3.endpoint, "region_name": "us-east-1"})


@pytest.mark.parametrize("per_folder", [False, True])
def test_s5_download_listed_fetches_exactly_the_objects_asked_for(s3, tmp_path, per_folder):
    """``s5.download_listed``: s5cmd's own listing (one, or one per folder asked about) and a GET of each
    object asked for that the remote holds: no HEAD, nothing else fetched, an absent object not reported."""
    from checkpoint_zoo.storage.dvc import s5

    remote = _remote_of(s3, tmp_path, f"listed-{per_folder}/files/md5")
    there = {}
    for i in range(60):
        data = f"listed {i}".encode()
        md5 = hashlib.md5(data).hexdigest()
        remote.client.put_object(Bucket="zoo", Key=remote.key(md5), Body=data)
        there[md5] = data
    asked = sorted(there)[:40] + [hashlib.md5(f"absent {i}".encode()).hexdigest() for i in range(3)]
    names = {m: f"{m[:2]}/{m[2:]}" for m in asked}
    out = tmp_path / "out"
    out.mkdir()
    reported: list[str] = []
    s3.clear_log()
    got = s5.download_listed(remote, names, out, reported.append, per_folder)
    assert got == set(sorted(there)[:40]) and sorted(reported) == sorted(got)
    assert {p.parent.name + p.name: p.read_bytes() for p in out.glob("*/*")} == {m: there[m] for m in got}
    mine = [q for q in s3.requests() if q.path.startswith("/zoo")]
    lists = [q for q in mine if "list-type=2" in q.query]
    assert len(lists) == (len({m[:2] for m in asked}) if per_folder else 1), lists
    assert sorted(q.key for q in mine if q.method == "GET" and q.key) == sorted(remote.key(m) for m in got)
    assert not [q for q in mine if q.method == "HEAD"]


def test_size_hint_counts_one_folder_of_256(s3, tmp_path, monkeypatch):
    """``s3fast.size_hint``: 256 x the keys of folder ``00/`` (at least one's worth), from one listing request;
    None when that folder alone has more keys than its page holds (too large a remote to list for a pull: the
    usual path decides)."""
    from checkpoint_zoo.storage.dvc import s3fast

    remote = _remote_of(s3, tmp_path, "hint/files/md5")
    assert s3fast.size_hint(remote) == 256
    for i in range(3):
        remote.client.put_object(Bucket="zoo", Key=f"hint/files/md5/00/{i:030x}", Body=b"x")
    remote.client.put_object(Bucket="zoo", Key="hint/files/md5/01/" + "1" * 30, Body=b"x")
    s3.clear_log()
    assert s3fast.size_hint(remote) == 3 * 256
    listed = lambda reqs: any("list-type=2" in q.query for q in reqs)  # noqa: E731
    asked = [q for q in s3.requests(until=listed) if q.path.startswith("/zoo") and q.method != "PUT"]
    assert len(asked) == 1 and "list-type=2" in asked[0].query, asked
    monkeypatch.setattr(s3fast, "HINT_KEYS", 2)
    assert s3fast.size_hint(remote) is None
    monkeypatch.setattr(s3fast, "HINT_KEYS", 3)
    assert s3fast.size_hint(remote) == 3 * 256


@pytest.mark.parametrize("out, expected", [({"size": 4096, "nfiles": 4}, (4096, 4)), ({"size": "10"}, (10, 1)),
                                           ({"size": 10, "nfiles": "0"}, (-1, 0)), ({"size": 10, "nfiles": -2}, (-1, 0)),
                                           ({"size": "big"}, (-1, 0)), ({"nfiles": 3}, (-1, 0)), ("text", (-1, 0))])
def test_a_pointers_size_is_read_plainly_or_not_at_all(out, expected):
    """What a pull reads of a pointer's ``size`` and ``nfiles`` to choose its path and share its bytes per file:
    anything but plain counts (a file count below one among them, which it would divide by) is not used."""
    from checkpoint_zoo.storage.dvc.transfer import _out_size

    assert _out_size(out) == expected
