"""Big transfers to an S3 remote, killed and resumed: ``zoo push`` and ``zoo pull`` of one big checkpoint,
each killed (SIGKILL) at a random point three times, then run to the end.

A real HTTP S3 endpoint (moto's server, ``scripts/s3_server.py``) logs every request, so the tests count the
bytes each run sent or fetched: a re-run sends only the parts the killed runs did not finish. The remote's
AWS config (``multipart_chunksize``, ``multipart_threshold``, ``max_concurrent_requests``, read as dvc-s3
reads them) makes the parts small, so a 64 MiB checkpoint moves in 11 parts and the tests stay quick;
the benchmark (``scripts/bench_s3.py --only transfer``) moves 1 GiB.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import (
    PROJECT,
    ZOO_BIN,
    dvc,
    git,
    isolate,
    kill_when,
    register_arch,
    run_zoo,
    write_safetensors,
    zoo_of_small_checkpoints,
)
from s3_server import MotoServer

REL = "zoo/checkpoints/big/step-00000001.safetensors"
SHAPE = (4096, 4096)        # float32: 64 MiB
PART = 6 * 1024 * 1024      # the remote's multipart_chunksize (S3's least is 5 MiB)
JOBS = 3                    # its max_concurrent_requests: parts in flight, lost by a kill at most
KILLS = 3


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A committed zoo holding one 64 MiB checkpoint, big@1; no remote yet."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.api import init

    base = tmp_path_factory.mktemp("transfer-template")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = base / "zoo"
        init(root, remote_url=str(base / "local-remote"), registries_from=PROJECT)
        register_arch(root, "square", in_features=SHAPE[1], out_features=SHAPE[0], bias=False)
        f = write_safetensors(base / "big.safetensors", seed=7, shapes={"weight": SHAPE})
        with Zoo(root) as zoo:
            zoo.add(f, model="big", step=1, arch="square", task="tabular-classification", dataset="wine", license="MIT")
        git("add", "-A", cwd=root)
        git("commit", "-qm", "one big checkpoint", cwd=root)
    return root


@pytest.fixture
def origin(template, tmp_path, s3, monkeypatch, request) -> Path:
    """A copy of the template whose committed default remote is s3://zoo/<test name>, with the AWS config
    of small parts and the server's credentials in the environment."""
    aws = tmp_path / "aws-config"
    aws.write_text(f"[default]\ns3 =\n  multipart_chunksize = {PART}\n  multipart_threshold = {2 * PART}\n"
                   f"  max_concurrent_requests = {JOBS}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws))
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "origin"
    shutil.copytree(template, root, symlinks=True)
    r = run_zoo("remote", "add", "s3", f"s3://zoo/{request.node.name}", "--endpoint", s3.endpoint, "--default",
                cwd=root)
    assert r.code == 0, r.err
    git("commit", "-qm", "S3 remote", cwd=root)
    return root


def object_key(root: Path, prefix: str) -> str:
    from checkpoint_zoo.storage.dvc import Storage

    st = Storage(root)
    try:
        md5 = st.manifest(str(Path(REL).parent))[Path(REL).name]
    finally:
        st.close()
    return f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}"


def sent(s3: MotoServer, key: str) -> int:
    """Bytes of the object's body that reached the server (whole PUTs and parts)."""
    return sum(min(q.bytes_in, PART) for q in s3.requests() if q.method == "PUT" and q.key == key)


def fetched(s3: MotoServer, key: str) -> int:
    return sum(q.bytes_out for q in s3.requests() if q.method == "GET" and q.key == key)


def journaled(root: Path, kind: str) -> int:
    """Bytes the journals of unfinished transfers (``push`` or ``pull``) under ``root`` record as done."""
    total = 0
    for path in state_files(root):
        if path.name.startswith(kind) and path.suffix == ".json":
            try:
                parts = json.loads(path.read_text()).get("parts") or {}
            except ValueError:  # caught between a write and its rename: not possible, but never fail on it
                continue
            total += len(parts) * PART if kind == "push" else sum(parts.values())
    return total


def killed_runs(cmd: list[str], cwd: Path, progress, size: int) -> list[int]:
    """Start ``cmd`` again and again, SIGKILL it once ``progress()`` passes a random point (each further than
    the last), KILLS times; the points it was killed at."""
    points: list[int] = []
    rng = random.Random(os.getpid())
    while len(points) < KILLS:
        at = rng.randrange(max(points, default=0) + PART, size * (len(points) + 2) // (KILLS + 2))
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert kill_when(proc, lambda at=at: progress() >= at), f"{cmd} finished before the kill at {at}"
        points.append(at)
    return points


def state_files(root: Path) -> list[Path]:
    state = root / ".dvc" / "tmp" / "zoo" / "transfers"
    return sorted(p for p in state.iterdir() if p.suffix in (".json", ".part")) if state.is_dir() else []


def test_killed_push_and_pull_resume_verify_and_plain_dvc_pulls(origin, s3, tmp_path, request):
    size = (origin / REL).stat().st_size
    sha = hashlib.sha256((origin / REL).read_bytes()).hexdigest()
    key = object_key(origin, request.node.name)

    # push: killed three times (at parts the server has received), each run continuing the multipart
    # upload its journal names
    s3.clear_log()
    killed_runs([str(ZOO_BIN), "push"], origin, lambda: sent(s3, key), size)
    done = journaled(origin, "push")
    assert done > 0, "a killed push left no journal to resume from"
    before = sent(s3, key)
    s3.clear_log()
    r = run_zoo("push", cwd=origin)
    assert r.code == 0, r.err
    last = sent(s3, key)
    assert 0 < last <= size - done, f"the re-run sent {last:,} of {size:,} bytes, {done:,} were done"
    # every part went over the wire once, plus at most the parts in flight at each kill
    assert before + last <= size + KILLS * JOBS * PART, (before, last)
    assert not state_files(origin), "a finished push left its journal"
    assert s3.keys(key)[key] == size
    assert not s3.client().list_multipart_uploads(Bucket="zoo").get("Uploads"), "an upload was left unfinished"
    # pushed again: the remote is asked once, the multipart object checked by its ETag recomputed here
    # (nothing downloaded), nothing sent
    s3.clear_log()
    r = run_zoo("push", cwd=origin)
    assert r.code == 0 and "0 object(s) uploaded" in r.out, r.out
    assert not [q for q in s3.requests() if q.method in ("PUT", "POST")]
    assert sum(q.bytes_out for q in s3.requests()) < 100_000, "the push downloaded what it should check by ETag"

    # pull: killed three times in a fresh clone (at bytes its journal records), each run continuing the
    # partial file with a ranged GET from where the last one stopped
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    points = killed_runs([str(ZOO_BIN), "pull", "big@1"], clone, lambda: journaled(clone, "pull"), size)
    done = journaled(clone, "pull")
    assert done >= points[-1] and not (clone / REL).exists()
    s3.clear_log()
    r = run_zoo("pull", "big@1", cwd=clone)
    assert r.code == 0, r.err
    last = fetched(s3, key)
    assert 0 < last <= size - done, f"the re-run fetched {last:,} of {size:,} bytes, {done:,} were there"
    assert hashlib.sha256((clone / REL).read_bytes()).hexdigest() == sha
    assert run_zoo("verify", "big@1", cwd=clone).code == 0
    assert not state_files(clone), "a finished pull left its partial file"

    # what zoo pushed is where DVC looks for it: plain `dvc pull` in another fresh clone
    other = tmp_path / "plain"
    subprocess.run(["git", "clone", "-q", str(origin), str(other)], check=True)
    p = dvc("pull", "-r", "s3", cwd=other)
    assert p.returncode == 0, p.stderr
    assert hashlib.sha256((other / REL).read_bytes()).hexdigest() == sha


SMALL = 12  # checkpoints of model "many", each one small file


@pytest.fixture(scope="module")
def many_template(tmp_path_factory) -> Path:
    """A committed zoo of SMALL small checkpoints many@0..many@11 in one model folder; no remote yet."""
    return zoo_of_small_checkpoints(tmp_path_factory.mktemp("many-template"), SMALL)


def test_a_pull_places_files_as_dvc_checkout_does_and_dvc_knows_them(many_template, tmp_path, s3, monkeypatch):
    """The zoo places pulled files itself (not through ``dvc checkout``): same bytes and modes as a plain
    ``dvc pull``, recorded in DVC's state and links databases as its checkout records them, so ``dvc status``
    is clean without hashing them again and ``dvc checkout`` has nothing to do."""
    from dvc.repo import Repo

    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    origin = tmp_path / "origin"
    shutil.copytree(many_template, origin, symlinks=True)
    assert run_zoo("remote", "add", "s3", "s3://zoo/many", "--endpoint", s3.endpoint, "--default", cwd=origin).code == 0
    git("commit", "-qam", "S3 remote", cwd=origin)
    r = run_zoo("push", cwd=origin)
    assert r.code == 0, r.err
    zoo_clone, dvc_clone = tmp_path / "zoo-clone", tmp_path / "dvc-clone"
    for clone in (zoo_clone, dvc_clone):
        subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    r = run_zoo("pull", *(f"many@{s}" for s in range(SMALL)), cwd=zoo_clone)
    assert r.code == 0, r.err
    assert dvc("pull", "-r", "s3", cwd=dvc_clone).returncode == 0
    folder = Path("zoo/checkpoints/many")
    names = sorted(p.name for p in (dvc_clone / folder).iterdir())
    assert len(names) == SMALL and sorted(p.name for p in (zoo_clone / folder).iterdir()) == names
    for name in names:
        mine, theirs = (zoo_clone / folder / name), (dvc_clone / folder / name)
        assert mine.read_bytes() == theirs.read_bytes() and mine.stat().st_mode == theirs.stat().st_mode, name
    with Repo(str(zoo_clone)) as repo:
        known = [repo.state.get(str(zoo_clone / folder / n), repo.fs)[1] for n in names]
        assert all(h is not None and h.name == "md5" for h in known), known
        assert str(folder) in list(repo.state.links)
    status = dvc("status", cwd=zoo_clone)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
    checkout = dvc("checkout", cwd=zoo_clone)
    assert checkout.returncode == 0 and not checkout.stdout.strip(), checkout.stdout
    r = run_zoo("verify", *(f"many@{s}" for s in range(SMALL)), cwd=zoo_clone)
    assert r.code == 0, r.out + r.err
