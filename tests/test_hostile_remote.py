"""Hostile input around remotes: concurrent config writes, credentials and control characters in remote
config values, a remote that holds other bytes at a checkpoint's key, and local cache damage.

Real git + DVC zoos in temp folders, a local directory remote and the real S3 server (tests/s3_server.py)
on 127.0.0.1. The `zoo` CLI is spawned only where its exit code or printed text is the point.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import PROJECT, ZOO_BIN, git, isolate, run_zoo, write_safetensors

from checkpoint_zoo.errors import InvalidValueError, SecretError

A10 = "zoo/checkpoints/alpha/step-00000010.safetensors"
A20 = "zoo/checkpoints/alpha/step-00000020.safetensors"
HYDRA = "[hydra]\n    enabled = true\n"


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A zoo with alpha@10 pushed to its local remote (base/remote), alpha@20 added but not pushed, and
    ``[hydra] enabled = true`` in its committed .dvc/config; all committed."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.api import init

    base = tmp_path_factory.mktemp("hostile-remote")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = base / "zoo"
        init(root, remote_url=str(base / "remote"), registries_from=PROJECT)
        with (root / ".dvc/config").open("a") as f:
            f.write(HYDRA)
        with Zoo(root) as zoo:
            for step, seed in ((10, 1), (20, 2)):
                f = write_safetensors(base / "in" / f"{step}.safetensors", seed=seed)
                zoo.add(f, model="alpha", step=step, arch="linear", task="tabular-classification",
                        dataset="wine", license="MIT")
            zoo.push(["alpha@10"])
        git("add", ".dvc/config", cwd=root)
        git("commit", "-qm", "zoo", cwd=root)
    return root


@pytest.fixture
def zoo(template, tmp_path) -> Path:
    """A private copy of the template with its own copy of the remote (committed as its remote)."""
    remote_from, remote_to = template.parent / "remote", tmp_path / "remote"
    root = tmp_path / "zoo"
    shutil.copytree(template, root, symlinks=True)
    shutil.copytree(remote_from, remote_to)
    config = root / ".dvc" / "config"
    config.write_text(config.read_text().replace(str(remote_from), str(remote_to)))
    git("commit", "-qam", "own remote", cwd=root)
    return root


@pytest.fixture
def aws_env(s3, monkeypatch):
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    return s3.env


def clone(root: Path, dest: Path) -> Path:
    """A git clone of ``root`` with no checkpoint bytes (it shares ``root``'s committed remote)."""
    subprocess.run(["git", "clone", "-q", str(root), str(dest)], check=True)
    return dest


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def remote_object(remote: Path, oid: str) -> Path:
    return remote / "files" / "md5" / oid[:2] / oid[2:]


def poison(path: Path, data: bytes) -> None:
    """Other bytes at an object's key, read-only as DVC leaves its objects (DVC then trusts them unhashed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.chmod(path, 0o644)
    path.write_bytes(data)
    os.chmod(path, 0o444)


def one_line(r, *needles: str) -> str:
    assert r.code == 1, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert "unexpected" not in lines[0], lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# ---- (2a) concurrent config writes -----------------------------------------------------------------


def test_concurrent_remote_adds_all_land_and_keep_the_rest_of_the_config(zoo):
    procs = []
    for i in range(6):
        args = ["remote", "add", f"r{i}", f"s3://zoo/p{i}", "--endpoint", f"http://127.0.0.1:{9000 + i}"]
        procs.append(subprocess.Popen([str(ZOO_BIN), *args], cwd=zoo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    for i in range(2):  # this clone's own config.local, at the same time
        procs.append(subprocess.Popen([str(ZOO_BIN), "remote", "add", f"mine{i}", f"/tmp/mine{i}", "--local"], cwd=zoo,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    config = (zoo / ".dvc/config").read_text()
    for i in range(6):
        assert f"s3://zoo/p{i}" in config and f"http://127.0.0.1:{9000 + i}" in config, config
    assert "remote = local" in config and HYDRA in config and f"url = {zoo.parent / 'remote'}\n" in config, config
    local = (zoo / ".dvc/config.local").read_text()
    assert "/tmp/mine0" in local and "/tmp/mine1" in local, local
    # what is staged is exactly the file: no writer staged a version another one then overwrote
    assert git("show", ":.dvc/config", cwd=zoo) == config
    assert git("diff", "--name-only", "--", ".dvc/config", cwd=zoo) == ""
    from checkpoint_zoo import Zoo

    with Zoo(zoo) as z:
        names = {r.name for r in z.remotes()}
    assert names == {"local", *(f"r{i}" for i in range(6)), "mine0", "mine1"}
    assert not [p for p in (zoo / ".dvc/tmp").glob(".config*.tmp")], "temp config files left behind"


# ---- (3) what goes into a remote's config --------------------------------------------------------


def test_credentials_in_any_url_value_are_refused_in_the_committed_config(zoo):
    from checkpoint_zoo import Zoo

    z = Zoo(zoo)
    z.remote_add("web", "https://example.com/dvc")
    config, staged = (zoo / ".dvc/config").read_bytes(), git("show", ":.dvc/config", cwd=zoo)
    attempts = [
        lambda: z.remote_add("h", "https://alice:tok3n-Secret@example.com/dvc"),
        lambda: z.remote_add("s", "ssh://bob:hunter2@example.com/srv/dvc"),
        lambda: z.remote_add("s3x", "s3://zoo/p", options={"endpointurl": "http://AKIAKEY:SECRETKEY@127.0.0.1:9"}),
        lambda: z.remote_add("s3y", "s3://zoo/p", options={"region": "x", "proxy": "http://u:pw@proxy:3128"}),
        # a GitHub-style token as the user name (spelled in pieces: the repository's secret scan would flag it)
        lambda: z.remote_add("gh", "https://" + "ghp" + "_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8@github.com/o/r"),
        lambda: z.remote_modify("web", "url", "https://carol:pa ss@example.com/dvc"),
        lambda: z.remote_modify("web", "url", "https://dave:p@ss@example.com/dvc"),  # unencoded @ in it
        lambda: z.remote_modify("local", "endpointurl", "https://eve:pw@s3.example.com"),
        lambda: z.remote_modify("web", "secret_access_key", "abc"),
    ]
    for attempt in attempts:
        with pytest.raises(SecretError) as e:
            attempt()
        msg = str(e.value)
        assert "\n" not in msg and "--local" in msg and "nothing was written" in msg, msg
        for secret in ("tok3n", "hunter2", "SECRETKEY", ":pw@", "Q7r8", "pa ss", "ss@example", "eve:"):
            assert secret not in msg, msg
        assert (zoo / ".dvc/config").read_bytes() == config
        assert git("show", ":.dvc/config", cwd=zoo) == staged
    # a bare user name is not a secret; a token in its place is (above)
    z.remote_add("git", "ssh://git@example.com/srv/dvc")
    assert "url = ssh://git@example.com/srv/dvc" in (zoo / ".dvc/config").read_text()
    # this clone's own config.local may hold them; nothing prints them
    info = z.remote_add("priv", "https://alice:tok3n-Secret@example.com/dvc", local=True)
    assert "tok3n" in (zoo / ".dvc/config.local").read_text()
    assert info.url == "https://***@example.com/dvc" and info.level == "local"
    assert "tok3n" not in z.storage.describe_remote("priv") and "***" in z.storage.describe_remote("priv")
    z.close()
    listed = run_zoo("remote", "list", "--format", "json", cwd=zoo)
    assert listed.code == 0 and "tok3n" not in listed.out + listed.err and "***@example.com" in listed.out


def test_control_characters_are_refused_everywhere(zoo):
    from checkpoint_zoo import Zoo

    z = Zoo(zoo)
    z.remote_add("web", "https://example.com/dvc", local=True)
    files = {p: p.read_bytes() for p in (zoo / ".dvc/config", zoo / ".dvc/config.local")}
    for bad in ("\n", "\r", "\r\n[core]\nremote = evil", "\x1b[31m", "\t", "\x00", "\u2028", "\u202e", "\x7f"):
        for local in (False, True):
            attempts = [
                (z.remote_add, ("x", f"s3://zoo/p{bad}q"), {}),
                (z.remote_add, ("x", "s3://zoo/p"), {"endpoint": f"http://127.0.0.1:9{bad}"}),
                (z.remote_add, ("x", "s3://zoo/p"), {"options": {"region": f"eu{bad}west"}}),
                (z.remote_add, ("x", "s3://zoo/p"), {"options": {f"reg{bad}ion": "eu"}}),
                (z.remote_modify, ("web", "url", f"https://example.com/{bad}"), {}),
                (z.remote_modify, ("web", "ssl_verify", f"false{bad}"), {}),
            ]
            for verb, args, kwargs in attempts:
                with pytest.raises(InvalidValueError) as e:
                    verb(*args, **kwargs, local=local)
                msg = str(e.value)
                assert "\n" not in msg and "\r" not in msg and "\x1b" not in msg, repr(msg)
                assert "control character U+" in msg and "nothing was written" in msg, msg
                assert all(p.read_bytes() == data for p, data in files.items())
    z.close()
    # the CLI: exit 1, one line
    one_line(run_zoo("remote", "add", "x", "s3://zoo/p", "-o", "region=eu\x1b[2Jwest", cwd=zoo),
             "remote 'x'", "control character U+001B")


def test_malformed_urls_get_a_clear_error(zoo):
    from checkpoint_zoo import Zoo

    config = (zoo / ".dvc/config").read_bytes()
    one_line(run_zoo("remote", "add", "x", "s3://zoo/p", "--endpoint", "http://[::1", cwd=zoo),
             "--endpoint", "http://[::1", "not a valid URL", "[::1]")
    one_line(run_zoo("remote", "add", "x", "s3://zoo/p", "--endpoint", "http://127.0.0.1:99999", cwd=zoo),
             "--endpoint", "not a valid URL")
    one_line(run_zoo("remote", "modify", "local", "endpointurl", "https://u:pw@[::1", cwd=zoo), "not a valid URL")
    with Zoo(zoo) as z:
        with pytest.raises(InvalidValueError, match="url 'https://\\[::1/dvc' is not a valid URL"):
            z.remote_add("x", "https://[::1/dvc")
        with pytest.raises(InvalidValueError, match="not a valid URL"):
            z.remote_add("x", "s3://zoo/p", options={"endpointurl": "http://[fe80::1"})
    assert (zoo / ".dvc/config").read_bytes() == config


def test_a_hand_written_secret_never_prints(zoo, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with (zoo / ".dvc/config").open("a") as f:  # as someone might have written it by hand
        f.write("['remote \"s3\"']\n    url = s3://zoo/x\n    endpointurl = http://HANDKEY:HANDSECRET@127.0.0.1:9\n"
                "['remote \"web\"']\n    url = https://alice:WEBTOKEN@127.0.0.1:9/dvc\n")
    secrets = ("HANDKEY", "HANDSECRET", "WEBTOKEN")
    listed = run_zoo("remote", "list", cwd=zoo)
    assert listed.code == 0, listed.err
    assert not any(s in listed.out + listed.err for s in secrets), listed.out + listed.err
    assert "http://***@127.0.0.1:9" in listed.out and "https://***@127.0.0.1:9/dvc" in listed.out
    assert "warning: .dvc/config (committed) holds endpointurl for s3" in listed.err  # it should move
    assert "warning: .dvc/config (committed) holds url for web" in listed.err
    for remote in ("s3", "web"):
        r = run_zoo("push", "alpha@10", "--remote", remote, cwd=zoo)
        line = one_line(r, f"remote {remote!r}", "***@127.0.0.1:9")
        assert not any(s in line for s in secrets), line
    from checkpoint_zoo import Zoo

    with Zoo(zoo) as z:
        assert "HANDSECRET" not in z.storage.describe_remote("s3")
        assert not any(s in str(z.remotes()) for s in secrets)


# ---- (5c) other bytes at a checkpoint's key on the remote ---------------------------------------------


def test_push_replaces_poisoned_objects_on_a_local_remote(zoo, tmp_path):
    from checkpoint_zoo import Zoo

    remote = tmp_path / "remote"
    good = (zoo / A20).read_bytes()
    key = remote_object(remote, md5(good))
    assert not key.exists()  # alpha@20 was never pushed: the bytes at its key come from someone else
    poison(key, bytes(b ^ 0xFF if i == 100 else b for i, b in enumerate(good)))  # same size, other bytes
    manifest_key = next(p for p in remote.rglob("*.dir"))
    with Zoo(zoo) as z:
        res = z.push(["alpha@20"])
    assert res.replaced == 1 and key.read_bytes() == good, res
    assert not [p for p in remote.rglob("*") if p.is_file() and p.name.endswith(".tmp")]

    # the folder manifest (rewritten by the push of alpha@20) and alpha@10's object, both poisoned, other sizes
    poison(remote_object(remote, md5(good)), b"short")
    a10 = remote_object(remote, md5((zoo / A10).read_bytes()))
    poison(a10, a10.read_bytes() + b"tail")
    manifests = sorted(remote.rglob("*.dir"), key=lambda p: p.stat().st_mtime)
    newest = manifests[-1]
    poison(newest, b"[]")
    with Zoo(zoo) as z:
        res = z.push()
        assert res.replaced == 3, res
        again = z.push()
    assert (again.replaced, again.uploaded) == (0, 0), again
    assert md5(newest.read_bytes()) == newest.parent.name + newest.name.removesuffix(".dir")
    assert manifest_key.exists()

    c = clone(zoo, tmp_path / "clone")
    with Zoo(c) as z:
        pulled = z.pull(["alpha@10", "alpha@20"])
    assert [p.status for p in pulled] == ["downloaded", "downloaded"]
    assert (c / A20).read_bytes() == good


def test_push_replaces_a_poisoned_object_in_the_s3_bucket(zoo, tmp_path, s3, aws_env):
    from checkpoint_zoo import Zoo

    prefix = "t-poison"
    with Zoo(zoo) as z:
        z.remote_add("s3", f"s3://zoo/{prefix}", endpoint=s3.endpoint, default=True)
    git("commit", "-qm", "S3 remote", cwd=zoo)
    good = (zoo / A20).read_bytes()
    key = f"{prefix}/files/md5/{md5(good)[:2]}/{md5(good)[2:]}"
    client = s3.client()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01
    client.put_object(Bucket="zoo", Key=key, Body=bytes(bad))  # pre-poisoned before the first push

    r = run_zoo("push", cwd=zoo)
    assert r.code == 0, r.err
    assert "replaced 1 wrong object(s) on the remote" in r.out, r.out
    assert client.get_object(Bucket="zoo", Key=key)["Body"].read() == good

    s3.clear_log()  # a re-push checks by size and ETag (the md5 of a single-part upload): no download
    with Zoo(zoo) as z:
        res = z.push()
    assert (res.uploaded, res.replaced) == (0, 0), res
    assert not [q for q in s3.requests() if q.method in ("PUT", "POST")]
    assert not [q for q in s3.requests() if q.is_object_get and not q.key.endswith(".dir")]

    c = clone(zoo, tmp_path / "clone")
    with Zoo(c) as z:
        assert [p.status for p in z.pull(["alpha@20", "alpha@10"])] == ["downloaded", "downloaded"]
    assert (c / A20).read_bytes() == good


# ---- (7) local cache damage is not the remote's fault --------------------------------------------


def test_damaged_local_cache_is_repaired_from_the_remote_not_blamed_on_it(zoo, tmp_path):
    from checkpoint_zoo import Zoo

    c = clone(zoo, tmp_path / "clone")
    with Zoo(c) as z:
        z.pull(["alpha@10"])
        obj = z.storage.cached_object(A10)
    good = obj.read_bytes()
    # bit rot: other bytes, same size and mtime, so the stamp still says the copy is good
    st = obj.stat()
    os.chmod(obj, 0o644)
    obj.write_bytes(bytes(b ^ 0xFF if i == 200 else b for i, b in enumerate(good)))
    os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns))
    (c / A10).unlink()
    with Zoo(c) as z:
        assert [p.status for p in z.pull(["alpha@10"])] == ["downloaded"]
    assert (c / A10).read_bytes() == good and obj.read_bytes() == good

    # damaged with a new mtime: the same
    os.chmod(obj, 0o644)
    obj.write_bytes(b"x" * len(good))
    (c / A10).unlink()
    r = run_zoo("pull", "alpha@10", cwd=c)
    assert r.code == 0, r.err
    assert (c / A10).read_bytes() == good

    # a damaged folder manifest in the local cache is named as local damage, then fetched again
    with Zoo(c) as z:
        manifest = z.storage.cache_path(z.storage._folder_md5(c / "zoo/checkpoints/alpha.dvc", "alpha.dvc"))
    os.chmod(manifest, 0o644)
    manifest.write_bytes(b"[]")
    (c / A10).unlink()
    line = one_line(run_zoo("pull", "alpha@10", cwd=c), "local DVC cache", "damaged on this disk", "run the command again")
    assert "re-push" not in line
    r = run_zoo("pull", "alpha@10", cwd=c)
    assert r.code == 0, r.err
