"""The S3 remote end to end, against a real HTTP S3 endpoint: moto's S3 server started by
``scripts/s3_server.py`` on 127.0.0.1 (an emulator standing in for AWS S3, MinIO or Ceph RGW).

Nothing is patched: zoo -> DVC -> dvc-s3 -> s3fs/aiobotocore talk HTTP to the server, directly or
through a loopback TCP proxy that the fault tests cut in the middle of a transfer. The server logs every
request, so the tests count exactly which objects were fetched and how many bytes went each way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import PROJECT, dvc, git, isolate, register_arch, run_zoo, write_safetensors
from s3_server import SERVER_SCRIPT, MotoServer, TcpProxy

A10 = "zoo/checkpoints/alpha/step-00000010.safetensors"   # small (32 KB)
A20 = "zoo/checkpoints/alpha/step-00000020.safetensors"   # large (3 MB)
B5 = "zoo/checkpoints/beta/step-00000005.safetensors"     # large (3 MB)
# one bias-free linear layer per size: conf/arch/{vec,wide}.yaml in the template zoo
SHAPES = {A10: ("vec", {"weight": (1, 8192)}), A20: ("wide", {"weight": (768, 1024)}),
          B5: ("wide", {"weight": (768, 1024)})}
FAST = 6.0  # seconds: "fails within a few seconds", the zoo process start-up (~1 s, more on a busy CI box) included


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_auth(tmp_path_factory):
    """The same server with credential checking on: only the IAM key it created is accepted."""
    server = MotoServer(tmp_path_factory.mktemp("moto-auth"), auth=True)
    yield server
    server.stop()


@pytest.fixture
def proxy(s3):
    """A loopback TCP proxy in front of the server, which a test can cut (and bring back)."""
    p = TcpProxy(s3.port)
    yield p
    p.stop()


@pytest.fixture
def aws_env(s3, monkeypatch):
    """Credentials in the environment (as a user would export them); botocore retry knobs left unset
    so that the fast failure on a dead endpoint is zoo's own doing."""
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE",
                "ZOO_S3_MAX_ATTEMPTS"):
        monkeypatch.delenv(key, raising=False)
    return s3.env


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A zoo with alpha@10 (32 KB), alpha@20 and beta@5 (3 MB each), committed; no S3 remote yet."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.api import init

    base = tmp_path_factory.mktemp("s3-template")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = base / "zoo"
        init(root, remote_url=str(base / "local-remote"), registries_from=PROJECT)
        git("commit", "-qm", "empty zoo", cwd=root)
        with Zoo(root) as zoo:
            register_arch(root, "vec", in_features=8192, out_features=1, bias=False)
            register_arch(root, "wide", in_features=1024, out_features=768, bias=False)
            for i, (path, (arch, shapes)) in enumerate(SHAPES.items()):
                model, step = path.split("/")[2], int(path.split("-")[-1].split(".")[0])
                f = write_safetensors(base / "in" / f"{i}.safetensors", seed=i, shapes=shapes)
                zoo.add(f, model=model, step=step, arch=arch, task="tabular-classification",
                        dataset="wine", license="MIT")
        git("add", "conf", cwd=root)
        git("commit", "-qm", "three checkpoints", cwd=root)
    return root


@dataclass
class Origin:
    root: Path
    prefix: str  # the remote's key prefix in the bucket, e.g. "t-test_name"
    endpoint: str


def _origin(template: Path, tmp_path: Path, endpoint: str, prefix: str, bucket: str = "zoo") -> Origin:
    root = tmp_path / "origin"
    shutil.copytree(template, root, symlinks=True)
    r = run_zoo("remote", "add", "s3", f"s3://{bucket}/{prefix}", "--endpoint", endpoint, cwd=root)
    assert r.code == 0, r.err
    git("commit", "-qm", "S3 remote", cwd=root)
    return Origin(root, prefix, endpoint)


@pytest.fixture
def origin(template, tmp_path, proxy, aws_env, request) -> Origin:
    """A copy of the template whose committed remote `s3` is s3://zoo/<test name> through the proxy."""
    return _origin(template, tmp_path, proxy.endpoint, "t-" + request.node.name)


def constants_cache_dir() -> Path:
    from checkpoint_zoo.utils import environ

    return environ.cache_dir()


def clone_of(origin: Origin, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(origin.root), str(dest)], check=True)
    return dest


# ---- assertion helpers -----------------------------------------------------------------------------


def md5_key(origin: Origin, path: str) -> str:
    """The bucket key DVC uses for a checkpoint file."""
    from checkpoint_zoo.storage.dvc import Storage

    st = Storage(origin.root)
    try:
        md5 = st.manifest(str(Path(path).parent))[Path(path).name]
    finally:
        st.close()
    return f"{origin.prefix}/files/md5/{md5[:2]}/{md5[2:]}"


def dir_key(root: Path, model: str, prefix: str) -> str:
    import yaml

    md5 = yaml.safe_load((root / f"zoo/checkpoints/{model}.dvc").read_text())["outs"][0]["md5"]
    return f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}"


def cache_files(root: Path) -> list[Path]:
    cache = root / ".dvc" / "cache"
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def assert_clean(root: Path) -> None:
    """No partial or corrupt file: every DVC cache object has the md5 it is named by, no temp files are
    left in the cache, and every checkpoint file in the workspace has the sha256 of its table row."""
    import csv

    for p in cache_files(root):
        name = p.parent.name + p.name
        assert not p.name.endswith(".tmp") and not p.name.startswith("."), f"temp file left in the cache: {p}"
        assert hashlib.md5(p.read_bytes()).hexdigest() == name.removesuffix(".dir"), f"corrupt cache object {p}"
    rows = {r["path"]: r["sha256"] for r in csv.DictReader((root / "zoo/checkpoints.csv").open())}
    for p in (root / "zoo/checkpoints").rglob("*"):
        if p.is_file() and p.suffix == ".safetensors":
            rel = p.relative_to(root).as_posix()
            assert hashlib.sha256(p.read_bytes()).hexdigest() == rows[rel], f"wrong bytes in the workspace: {rel}"
        assert ".tmp" not in p.name, f"temp file in the workspace: {p}"


def one_line_error(r, *needles: str) -> None:
    assert r.code == 1, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{r.err}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in: {lines[0]}"


def fast() -> float:
    """The bound of "fails within a few seconds": FAST, or five times a bare ``zoo --help`` measured now when
    the machine is so busy (two test workers and more on 2 cores) that start-up alone comes near it; a retry
    storm or a client waiting out its timeouts takes far longer either way."""
    start = time.perf_counter()
    run_zoo("--help", cwd=PROJECT)
    return max(FAST, 5 * (time.perf_counter() - start))


def timed_zoo(*args: str, cwd: Path, env: dict | None = None):
    start = time.perf_counter()
    r = run_zoo(*args, cwd=cwd, env=env)
    return r, time.perf_counter() - start


def object_gets(server: MotoServer) -> list:
    return [q for q in server.requests() if q.is_object_get]


# ---- the server script -----------------------------------------------------------------------------


def test_server_script_starts_answers_and_stops(tmp_path):
    state = tmp_path / "state"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    start = subprocess.run([sys.executable, str(SERVER_SCRIPT), "start", "--state-dir", str(state),
                            "--bucket", "by-hand"], capture_output=True, text=True, env=env, timeout=120)
    try:
        assert start.returncode == 0, start.stderr
        assert "emulator" in start.stdout
        exports = dict(line[len("export "):].split("=", 1) for line in start.stdout.splitlines()
                       if line.startswith("export "))
        endpoint = exports["S3_ENDPOINT_URL"]
        assert endpoint.startswith("http://127.0.0.1:")
        import boto3

        c = boto3.client("s3", endpoint_url=endpoint, region_name=exports["AWS_DEFAULT_REGION"],
                         aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                         aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"])
        assert [b["Name"] for b in c.list_buckets()["Buckets"]] == ["by-hand"]
        status = subprocess.run([sys.executable, str(SERVER_SCRIPT), "status", "--json", "--state-dir", str(state)],
                                capture_output=True, text=True, env=env)
        assert status.returncode == 0 and json.loads(status.stdout)["endpoint"] == endpoint
    finally:
        stop = subprocess.run([sys.executable, str(SERVER_SCRIPT), "stop", "--state-dir", str(state)],
                              capture_output=True, text=True, env=env, timeout=60)
    assert stop.returncode == 0, stop.stderr
    import socket

    host, port = endpoint.removeprefix("http://").split(":")
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()
    assert not (state / "server.json").exists()
    refused = subprocess.run([sys.executable, str(SERVER_SCRIPT), "serve", "--host", "0.0.0.0"],
                             capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode != 0 and "loopback" in refused.stderr


# ---- configuring a remote ----------------------------------------------------------------------


def test_remote_add_list_modify_remove_and_secrets_refused(template, tmp_path, s3, aws_env):
    root = tmp_path / "z"
    shutil.copytree(template, root, symlinks=True)
    committed = (root / ".dvc/config").read_bytes()
    r = run_zoo("remote", "add", "s3", "s3://zoo/cfg", "--endpoint", s3.endpoint, "--default", cwd=root)
    assert r.code == 0, r.err
    assert "staged: .dvc/config" in r.out
    assert "s3://zoo/cfg" in (root / ".dvc/config").read_text()
    assert ".dvc/config" in git("diff", "--cached", "--name-only", cwd=root).split()
    listed = json.loads(run_zoo("remote", "list", "--format", "json", cwd=root).out)
    s3r = next(x for x in listed if x["name"] == "s3")
    assert s3r["default"] and s3r["endpoint"] == s3.endpoint and s3r["level"] == "repo"
    assert s3r["credentials"] == "environment"
    # the same as the documented dvc commands would write
    assert dvc("remote", "default", cwd=root).stdout.strip() == "s3"
    committed = (root / ".dvc/config").read_bytes()

    for args in (("remote", "modify", "s3", "secret_access_key", "abc"),
                 ("remote", "modify", "s3", "access_key_id", "AKIAEXAMPLE"),
                 ("remote", "modify", "s3", "session_token", "tok"),
                 ("remote", "add", "other", "s3://zoo/x", "-o", "secret_access_key=abc"),
                 ("remote", "add", "other", "s3://zoo/x", "--endpoint", "http://key:secret@127.0.0.1:9")):
        r = run_zoo(*args, cwd=root)
        one_line_error(r, "--local")
        assert (root / ".dvc/config").read_bytes() == committed
    assert not (root / ".dvc/config.local").exists()

    assert run_zoo("remote", "modify", "s3", "access_key_id", s3.access_key_id, "--local", cwd=root).code == 0
    assert run_zoo("remote", "modify", "s3", "secret_access_key", s3.secret_access_key, "--local", cwd=root).code == 0
    assert (root / ".dvc/config").read_bytes() == committed
    assert s3.secret_access_key in (root / ".dvc/config.local").read_text()
    assert git("check-ignore", ".dvc/config.local", cwd=root).strip() == ".dvc/config.local"
    listed = run_zoo("remote", "list", cwd=root)
    assert s3.secret_access_key not in listed.out and "credentials: config.local" in listed.out

    one_line_error(run_zoo("remote", "modify", "nope", "region", "x", cwd=root), "'nope'", "zoo remote list")
    one_line_error(run_zoo("remote", "add", "s3", "s3://zoo/again", cwd=root), "exists")
    one_line_error(run_zoo("remote", "add", "x", "s3://", cwd=root), "bucket")
    one_line_error(run_zoo("remote", "modify", "s3", "no_such_option", "1", cwd=root), "no_such_option")
    (root / A10).unlink()
    shutil.rmtree(root / ".dvc/cache")
    one_line_error(run_zoo("pull", "alpha@10", "--remote", "nope", cwd=root), "'nope'", "zoo remote add")

    r = run_zoo("remote", "remove", "s3", cwd=root)
    assert r.code == 0 and ".dvc/config.local" in r.out and ".dvc/config" in r.out
    assert 'remote "s3"' not in (root / ".dvc/config").read_text()
    assert dvc("remote", "default", cwd=root).returncode != 0  # the default went with it


# ---- push and pull -------------------------------------------------------------------------------


def test_push_once_then_nothing_and_pull_exactly_one_checkpoint(origin, s3, tmp_path):
    s3.clear_log()
    r = run_zoo("push", "--remote", "s3", cwd=origin.root)
    assert r.code == 0, r.err
    assert "5 object(s) uploaded" in r.out  # three files and two folder manifests
    keys = s3.keys(origin.prefix + "/")
    assert set(keys) == {md5_key(origin, p) for p in (A10, A20, B5)} | {
        dir_key(origin.root, m, origin.prefix) for m in ("alpha", "beta")}
    assert sum(q.bytes_in for q in s3.requests() if q.is_object_put) == sum(keys.values())

    s3.clear_log()
    again = run_zoo("push", "alpha@10", "alpha@20", "beta", "--remote", "s3", cwd=origin.root)
    assert again.code == 0 and "0 object(s) uploaded" in again.out
    assert not [q for q in s3.requests() if q.method in ("PUT", "POST")]

    clone = clone_of(origin, tmp_path / "clone")
    s3.clear_log()
    r = run_zoo("pull", "alpha@20", "--remote", "s3", cwd=clone)
    assert r.code == 0, r.err
    assert "downloaded" in r.out and "sha256 verified" in r.out
    gets = object_gets(s3)
    wanted = {md5_key(origin, A20), dir_key(origin.root, "alpha", origin.prefix)}
    assert {q.key for q in gets} == wanted, "fetched something besides the checkpoint and its manifest"
    assert sum(q.bytes_out for q in gets if q.key == md5_key(origin, A20)) == keys[md5_key(origin, A20)]
    total = sum(q.bytes_out for q in s3.requests())
    assert total < keys[md5_key(origin, A20)] + 20_000, f"{total} bytes transferred for one checkpoint"
    assert [p.relative_to(clone).as_posix() for p in (clone / "zoo/checkpoints").rglob("*.safetensors")] == [A20]
    assert len(cache_files(clone)) == 2  # the object and the manifest
    assert run_zoo("verify", "alpha@20", cwd=clone).code == 0
    assert_clean(clone)

    # plain DVC does the same with a path
    s3.clear_log()
    p = dvc("pull", B5, "-r", "s3", cwd=clone)
    assert p.returncode == 0, p.stderr
    assert {q.key for q in object_gets(s3)} == {md5_key(origin, B5), dir_key(origin.root, "beta", origin.prefix)}
    assert sum(q.bytes_out for q in s3.requests()) < keys[md5_key(origin, B5)] + 20_000
    assert run_zoo("verify", "beta@5", cwd=clone).code == 0
    assert not (clone / A10).exists()


def test_default_s3_remote_and_api(template, tmp_path, s3, aws_env):
    """`--default` makes plain `zoo push` / `zoo pull` / `Zoo.fetch` use S3."""
    root = tmp_path / "origin"
    shutil.copytree(template, root, symlinks=True)
    assert run_zoo("remote", "add", "s3", "s3://zoo/default-api", "--endpoint", s3.endpoint, "--default",
                   cwd=root).code == 0
    git("commit", "-qm", "S3 default", cwd=root)
    r = run_zoo("push", "beta@5", cwd=root)
    assert r.code == 0 and "remote 's3'" in r.out and "2 object(s)" in r.out, r.out + r.err
    clone = clone_of(Origin(root, "default-api", s3.endpoint), tmp_path / "clone")
    from checkpoint_zoo import Zoo

    with Zoo(clone) as zoo:
        path = zoo.fetch("beta@5")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == zoo.get("beta@5").sha256
    assert_clean(clone)
    # a zoo at a revision, nothing checked out: the bytes come from S3 into the user cache
    bare = clone_of(Origin(root, "default-api", s3.endpoint), tmp_path / "clone2")  # nothing in its DVC cache
    s3.clear_log()
    at_rev = Zoo(str(bare), rev="HEAD", remote="s3")
    path = at_rev.fetch("beta@5")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == at_rev.get("beta@5").sha256
    assert constants_cache_dir() in path.parents
    assert any(q.is_object_get and q.key.startswith("default-api/") for q in s3.requests())


# ---- faults ------------------------------------------------------------------------------------


def test_endpoint_down_before_the_command_fails_fast(origin, proxy, tmp_path):
    assert run_zoo("push", "alpha@10", "--remote", "s3", cwd=origin.root).code == 0
    clone = clone_of(origin, tmp_path / "clone")
    proxy.kill()  # nothing listens on the remote's port any more
    for cwd, args in ((clone, ("pull", "alpha@10")), (origin.root, ("push", "beta@5"))):
        before = [(p, p.read_bytes()) for p in cache_files(cwd)]
        r, took = timed_zoo(*args, "--remote", "s3", cwd=cwd)
        one_line_error(r, "remote 's3'", proxy.endpoint, "cannot connect", "connection refused")
        assert took < fast(), f"zoo {args[0]} took {took:.1f} s to report a dead endpoint"
        assert [(p, p.read_bytes()) for p in cache_files(cwd)] == before
        assert_clean(cwd)
    assert not (clone / A10).exists()
    proxy.start()  # the endpoint is back on the same port: a re-run completes
    assert run_zoo("push", "beta@5", "--remote", "s3", cwd=origin.root).code == 0
    r = run_zoo("pull", "alpha@10", "beta@5", "--remote", "s3", cwd=clone)
    assert r.code == 0, r.err
    assert_clean(clone)


def test_endpoint_dies_in_the_middle_of_a_pull(origin, proxy, s3, tmp_path):
    assert run_zoo("push", "--remote", "s3", cwd=origin.root).code == 0
    clone = clone_of(origin, tmp_path / "clone")
    keys = {p: md5_key(origin, p) for p in (A10, A20, B5)}
    # one checkpoint is here before the fault: the re-run must not fetch it again
    assert run_zoo("pull", "alpha@10", "--remote", "s3", cwd=clone).code == 0
    # the two 3 MB objects download concurrently: the cut lands in at least one of them (which of the
    # two, if either, arrives whole first depends on scheduling; the re-run must fetch exactly the rest)
    proxy.cut_after(4_500_000, "down")
    r, took = timed_zoo("pull", "alpha@10", "alpha@20", "beta@5", "--remote", "s3", cwd=clone)
    assert proxy.cut_happened.is_set()
    one_line_error(r, "remote 's3'", "connection dropped during the download", "run the command again")
    assert took < 3 * fast()
    pulled = {p.relative_to(clone).as_posix() for p in (clone / "zoo/checkpoints").rglob("*.safetensors")}
    assert pulled == {A10}, "a file of the cut pull reached the workspace"
    assert_clean(clone)
    cached = {p.parent.name + p.name for p in cache_files(clone)}
    done = {path for path, key in keys.items() if key.rsplit("/", 2)[-2] + key.rsplit("/", 1)[-1] in cached}
    assert A10 in done and len(done) < 3, done

    proxy.start()
    s3.clear_log()
    r = run_zoo("pull", "alpha@10", "alpha@20", "beta@5", "--remote", "s3", cwd=clone)
    assert r.code == 0, r.err
    refetched = {q.key for q in object_gets(s3) if "/files/md5/" in q.key and not q.key.endswith(".dir")}
    assert refetched == {keys[p] for p in keys if p not in done}, "the re-run fetched more than what was missing"
    assert run_zoo("verify", cwd=clone).code == 0
    assert_clean(clone)


def test_endpoint_dies_in_the_middle_of_a_push(origin, proxy, s3, tmp_path):
    before = {p.relative_to(origin.root).as_posix(): p.read_bytes() for p in cache_files(origin.root)}
    workspace = {p: (origin.root / p).read_bytes() for p in (A10, A20, B5)}
    proxy.cut_after(4_000_000, "up")  # at least one 3 MB upload gets cut off
    r, took = timed_zoo("push", "--remote", "s3", cwd=origin.root)
    assert proxy.cut_happened.is_set()
    one_line_error(r, "remote 's3'", "connection dropped during the upload", "run the command again")
    assert took < 3 * fast()
    stored = s3.keys(origin.prefix + "/")
    client = s3.client()
    for key in stored:  # whatever arrived is whole: S3 stores an object only once its upload completes
        body = client.get_object(Bucket="zoo", Key=key)["Body"].read()
        assert hashlib.md5(body).hexdigest() == key.rsplit("/", 2)[-2] + key.rsplit("/", 1)[-1].removesuffix(".dir")
    all_keys = {md5_key(origin, p) for p in (A10, A20, B5)} | {dir_key(origin.root, m, origin.prefix)
                                                              for m in ("alpha", "beta")}
    assert set(stored) < all_keys
    assert {p.relative_to(origin.root).as_posix(): p.read_bytes() for p in cache_files(origin.root)} == before
    assert {p: (origin.root / p).read_bytes() for p in workspace} == workspace

    proxy.start()
    s3.clear_log()
    r = run_zoo("push", "--remote", "s3", cwd=origin.root)
    assert r.code == 0, r.err
    uploaded = {q.key for q in s3.requests() if q.is_object_put}
    assert uploaded == all_keys - set(stored), "the re-run uploaded more than what was missing"
    assert set(s3.keys(origin.prefix + "/")) == all_keys
    clone = clone_of(origin, tmp_path / "clone")
    assert run_zoo("pull", "alpha@10", "alpha@20", "beta@5", "--remote", "s3", cwd=clone).code == 0
    assert_clean(clone)


def test_wrong_credentials(template, tmp_path, s3_auth, monkeypatch):
    origin = _origin(template, tmp_path, s3_auth.endpoint, "creds")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    before = [(p, p.read_bytes()) for p in cache_files(origin.root)]
    r, took = timed_zoo("push", "--remote", "s3", cwd=origin.root)
    one_line_error(r, "remote 's3'", "refused the credentials", "AWS_ACCESS_KEY_ID", "--local")
    assert took < fast()
    assert [(p, p.read_bytes()) for p in cache_files(origin.root)] == before
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_auth.access_key_id)  # a real key with the wrong secret
    one_line_error(run_zoo("push", "--remote", "s3", cwd=origin.root), "refused the credentials")
    assert s3_auth.keys("creds/") == {}

    # the fix the message names: the clone's own credentials in .dvc/config.local
    for key, value in (("access_key_id", s3_auth.access_key_id), ("secret_access_key", s3_auth.secret_access_key)):
        assert run_zoo("remote", "modify", "s3", key, value, "--local", cwd=origin.root).code == 0
    r = run_zoo("push", "--remote", "s3", cwd=origin.root)
    assert r.code == 0 and "5 object(s)" in r.out, r.err

    clone = clone_of(Origin(origin.root, "creds", s3_auth.endpoint), tmp_path / "clone")
    r = run_zoo("pull", "alpha@10", "--remote", "s3", cwd=clone)  # the env still holds the wrong secret
    one_line_error(r, "remote 's3'", "refused the credentials")
    assert not cache_files(clone) and not (clone / A10).exists()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_auth.secret_access_key)
    r = run_zoo("pull", "alpha@10", "--remote", "s3", cwd=clone)
    assert r.code == 0, r.err
    assert_clean(clone)


def test_bucket_missing(template, tmp_path, s3, aws_env):
    origin = _origin(template, tmp_path, s3.endpoint, "x", bucket="no-such-bucket")
    r, took = timed_zoo("push", "--remote", "s3", cwd=origin.root)
    one_line_error(r, "remote 's3'", "bucket 'no-such-bucket' does not exist", "zoo remote modify s3 url")
    assert took < fast()
    clone = clone_of(origin, tmp_path / "clone")
    one_line_error(run_zoo("pull", "beta@5", "--remote", "s3", cwd=clone), "bucket 'no-such-bucket' does not exist")
    assert not cache_files(clone)
    s3.client().create_bucket(Bucket="no-such-bucket")
    try:
        assert run_zoo("push", "beta@5", "--remote", "s3", cwd=origin.root).code == 0
        r = run_zoo("pull", "beta@5", "--remote", "s3", cwd=clone)
        assert r.code == 0, r.err
        assert_clean(clone)
    finally:
        c = s3.client()
        for key in s3.keys(bucket="no-such-bucket"):
            c.delete_object(Bucket="no-such-bucket", Key=key)
        c.delete_bucket(Bucket="no-such-bucket")


def test_checkpoint_not_pushed_yet(origin, s3, tmp_path):
    clone = clone_of(origin, tmp_path / "clone")
    r = run_zoo("pull", "alpha@10", "--remote", "s3", cwd=clone)
    one_line_error(r, "remote 's3'", "alpha@10", "not pushed yet", "zoo push alpha@10 --remote s3")
    assert not (clone / A10).exists()
    # pushed partly: beta's folder is there, alpha@20 is not
    assert run_zoo("push", "alpha@10", "beta@5", "--remote", "s3", cwd=origin.root).code == 0
    r = run_zoo("pull", "alpha@20", "beta@5", "--remote", "s3", cwd=clone)
    one_line_error(r, "alpha@20", "not pushed yet", "zoo push alpha@20 --remote s3")
    assert not list((clone / "zoo/checkpoints").rglob("*.safetensors"))
    assert_clean(clone)
    assert run_zoo("push", "alpha@20", "--remote", "s3", cwd=origin.root).code == 0
    r = run_zoo("pull", "alpha@20", "beta@5", "--remote", "s3", cwd=clone)
    assert r.code == 0, r.err
    assert_clean(clone)


def test_object_replaced_in_the_bucket_is_refused(origin, s3, tmp_path):
    assert run_zoo("push", "--remote", "s3", cwd=origin.root).code == 0
    key = md5_key(origin, A20)
    client = s3.client()
    good = client.get_object(Bucket="zoo", Key=key)["Body"].read()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01  # same size, one bit flipped
    client.put_object(Bucket="zoo", Key=key, Body=bytes(bad))
    clone = clone_of(origin, tmp_path / "clone")
    for _ in range(2):  # a second try must not pick up anything the first left behind
        r = run_zoo("pull", "alpha@20", "--remote", "s3", cwd=clone)
        one_line_error(r, A20, "remote 's3'", "do not match sha256")
        assert not (clone / A20).exists()
        assert_clean(clone)
        assert key.rsplit("/", 2)[-2] + key.rsplit("/", 1)[-1] not in {p.parent.name + p.name for p in cache_files(clone)}
    one_line_error(run_zoo("pull", "alpha@20", "--remote", "s3", cwd=clone), "do not match sha256")

    # a folder manifest replaced by other bytes is refused too
    mkey = dir_key(origin.root, "beta", origin.prefix)
    manifest = client.get_object(Bucket="zoo", Key=mkey)["Body"].read()
    client.put_object(Bucket="zoo", Key=mkey, Body=manifest.replace(b"step-00000005", b"step-00000006"))
    one_line_error(run_zoo("pull", "beta@5", "--remote", "s3", cwd=clone), "remote 's3'", "manifest", "other bytes")
    assert not (clone / B5).exists()
    assert_clean(clone)

    client.put_object(Bucket="zoo", Key=key, Body=good)  # the fault is gone
    client.put_object(Bucket="zoo", Key=mkey, Body=manifest)
    r = run_zoo("pull", "alpha@20", "beta@5", "--remote", "s3", cwd=clone)
    assert r.code == 0, r.err
    assert_clean(clone)
